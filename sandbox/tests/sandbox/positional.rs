//! Offsets on channels (`positional.c`): a sequential channel is sequential
//! (a positional call on a direct one is a forbidden call, a mediated one
//! ignores the offset), and no output grows past its size at start plus
//! `put_size`, however far the offset (-EDQUOT when mediated, the kernel's
//! file size limit when direct), even for a guest that calls around the gates.

use crate::harness::{assert_kv, guest, kv, Lab, Limits, Manifest, Outcome, Report, U};

/// 15 TiB: an offset that would make a huge sparse file.
const FAR: &str = "16492674416640";

fn size(lab: &Lab, name: &str) -> u64 {
    std::fs::metadata(lab.path(name)).unwrap_or_else(|e| panic!("stat {name}: {e}")).len()
}

/// Runs `positional ARGS...`.
fn run(lab: &Lab, m: Manifest, args: &[&str]) -> (Outcome, Report) {
    let out = lab.run(&m.timeout(5).arg("positional").args(args));
    let r = out.report();
    (out, r)
}

#[test]
fn a_positional_write_on_a_direct_sequential_output_is_a_forbidden_call() {
    let lab = Lab::new();
    let (out, r) = run(&lab, lab.manifest(guest("positional")), &["raw-pwrite", "/dev/stdout", FAR]);
    assert_eq!(out.code, 4, "{out}\n{}", lab.read_string("stderr"));
    assert!(r.exit_state.starts_with("forbidden call 18 (pwrite64) at 0x1"), "{r:?}");
    assert_eq!(size(&lab, "stdout"), 3, "stdout holds only the \"abc\" written before");
    assert_eq!(lab.read_string("stderr"), "");
}

#[test]
fn a_positional_write_on_a_mediated_sequential_output_ignores_the_offset() {
    let lab = Lab::new();
    let limited = Limits::write_only(100, 1 << 20);
    let m = lab.manifest(guest("positional")).channel(lab.path("stdout"), "/dev/stdout", 0, limited);
    let (out, r) = run(&lab, m, &["raw-pwrite", "/dev/stdout", FAR, "0"]);
    assert_eq!((out.code, r.exit_state.as_str()), (0, "ok"), "{out}");
    assert_kv(&lab.read_string("stderr"), &[("r0", &5), ("r1", &5), ("done", &1)]);
    assert_eq!(lab.read_string("stdout"), "abchellohello");
}

#[test]
fn a_mediated_random_write_stops_at_the_files_size_at_start_plus_put_size() {
    let lab = Lab::new();
    let out_file = lab.write("out", "");
    // put_size 12: "abc" at 0 uses 3; far away: -EDQUOT, nothing used; at 8:
    // 4 of 5 bytes fit below 12, 7 used; at 0: 5 more, 12 used; then -EDQUOT.
    let m = lab.manifest(guest("positional")).channel(&out_file, "/dev/out", 2, Limits::write_only(U, 12));
    let (out, r) = run(&lab, m, &["gate", "/dev/out", FAR, "8", "0", "0"]);
    assert_eq!((out.code, r.exit_state.as_str()), (0, "ok"), "{out}");
    assert_kv(&lab.read_string("stderr"), &[("r0", &-122), ("r1", &4), ("r2", &5), ("r3", &-122), ("done", &1)]);
    assert_eq!(lab.read("out"), b"hello\0\0\0hell");
}

#[test]
fn a_direct_random_output_cannot_grow_into_a_huge_sparse_file() {
    let lab = Lab::new();
    let out_file = lab.write("out", "");
    let m = lab.manifest(guest("positional")).channel(&out_file, "/dev/out", 2, Limits::WRITE_ONLY);
    // 1 GiB is within the bound (size at start 0 + put_size 4 GiB); 15 TiB is not.
    let (out, r) = run(&lab, m, &["gate", "/dev/out", "1073741824", FAR]);
    let stderr = lab.read_string("stderr");
    let results = kv(&stderr);
    assert_eq!(results.get("r0").map(String::as_str), Some("5"), "{out}\n{stderr}");
    // The kernel refuses the write: -EFBIG when the guest ignores SIGXFSZ, else the signal kills it.
    let refused = results.get("r1").map(String::as_str) == Some("-27")
        || r.exit_state.starts_with("Signal 25 from untrusted code");
    assert!(refused, "{out}\n{stderr}");
    assert_eq!(size(&lab, "out"), (1 << 30) + 5);
}

#[test]
fn positional_reads_only_on_random_direct_inputs() {
    let lab = Lab::new();
    let data = lab.write("data", "0123456789");
    let m = lab.manifest(guest("positional")).channel(&data, "/dev/in", 1, Limits::READ_ONLY);
    let (out, r) = run(&lab, m, &["raw-pread", "/dev/in", "3"]);
    assert_eq!((out.code, r.exit_state.as_str()), (0, "ok"), "{out}");
    assert_kv(&lab.read_string("stderr"), &[("r0", &5), ("done", &1)]);

    let lab = Lab::new();
    let data = lab.write("data", "0123456789");
    let m = lab.manifest(guest("positional")).channel(&data, "/dev/in", 0, Limits::READ_ONLY);
    let (out, r) = run(&lab, m, &["raw-pread", "/dev/in", "3"]);
    assert_eq!(out.code, 4, "{out}\n{}", lab.read_string("stderr"));
    assert!(r.exit_state.starts_with("forbidden call 17 (pread64) at 0x1"), "{r:?}");
    assert_eq!(lab.read_string("stderr"), "");
}
