//! `zvm_pread`/`zvm_pwrite` semantics (reference §2) with `calls.c`, in both
//! of the runtime's modes: DIRECT (every limit 4294967296: the guest's calls
//! go straight to the kernel) and MEDIATED (small limits: the supervisor
//! performs each call). The guest must not be able to tell them apart.

use std::fmt::Display;

use crate::harness::{announce_skip, assert_kv, guest, hex, Lab, Limits, U};

const SEQ: &[u8] = b"hello sequential world"; // 22 bytes: reads of 7, 7, 7, 1
const RAND: &[u8] = b"ABCDEFGHIJKLMNOP"; // 16 bytes

fn check_calls(read: Limits, write: Limits) {
    let lab = Lab::new();
    let seq = lab.write("seq", SEQ);
    let rin = lab.write("rin", RAND);
    let m = lab
        .manifest(guest("calls"))
        .channel(&seq, "/dev/stdin", 0, read)
        .channel(lab.path("stdout"), "/dev/stdout", 0, write)
        .channel(lab.path("stderr"), "/dev/stderr", 0, write)
        .channel(&rin, "/dev/rin", 1, read)
        .channel(lab.path("rout"), "/dev/rout", 2, write)
        .args(["calls", "/dev/stdin", "/dev/rin", "/dev/rout"]);
    let out = lab.run(&m).expect_code(0);
    let report = out.report();
    assert_eq!((report.validator, report.user_code, report.exit_state.as_str()), (0, 0, "ok"), "{out}");

    let stdout = lab.read_string("stdout");
    let n = RAND.len();
    let s = |v: &str| v.to_string();
    let einval = -22;
    let expected: Vec<(&str, &dyn Display)> = vec![
        ("seq_in", &0),
        ("rand_in", &3),
        ("rand_out", &4),
        ("seq_read.0", &7),
        ("seq_read.1", &7),
        ("seq_read.2", &7),
        ("seq_read.3", &1),
        ("seq_bytes", &22),
        ("seq_end", &0),
        ("seq_after_end", &0),
        ("rand_size", &16),
        ("rand_read_0", &4),
        ("rand_read_8", &4),
        ("rand_read_2", &4),
        ("rand_clamped", &3),
        ("rand_at_end", &0),
        ("rand_beyond_end", &0),
        ("read_size0", &0),
        ("write_size0", &0),
        ("read_neg_size", &-14),
        ("write_neg_size", &-14),
        ("read_neg_offset", &einval),
        ("write_neg_offset", &einval),
        ("read_desc_m1", &einval),
        ("read_desc_99", &einval),
        ("read_desc_count", &einval),
        ("write_desc_m1", &einval),
        ("write_desc_99", &einval),
        ("write_desc_count", &einval),
        ("read_buf_8", &einval),
        ("read_buf_tramp", &einval),
        ("read_buf_manifest", &einval),
        ("read_buf_text", &einval),
        // Like the kernel: the bytes that fit before the end of the heap.
        ("read_buf_heap_end", &2),
        ("read_buf_wrap", &einval),
        ("write_buf_8", &einval),
        ("write_buf_kernel", &einval),
        ("write_readonly", &einval),
        ("write_readonly_seq", &einval),
        ("read_writeonly", &einval),
        ("read_stdout", &einval),
        ("seq_write_data", &"abc"),
        ("seq_write", &19),
        ("rand_write_0", &4),
        ("rand_write_10", &2),
        ("rand_write_2", &2),
        ("done", &1),
    ];
    let data = [
        ("seq_data", s(&hex(SEQ))),
        ("rand_data_0", s(&hex(&RAND[0..4]))),
        ("rand_data_8", s(&hex(&RAND[8..12]))),
        ("rand_data_2", s(&hex(&RAND[2..6]))),
        ("rand_clamped_data", s(&hex(&RAND[n - 3..]))),
    ];
    let mut all = expected;
    all.extend(data.iter().map(|(k, v)| (*k, v as &dyn Display)));
    assert_kv(&stdout, &all);
    assert_eq!(lab.read("stderr"), b"");
    assert_eq!(lab.read("rout"), b"AACC\0\0\0\0\0\0BB", "RAND_OUT");
    assert_eq!(lab.read("seq"), SEQ, "SEQ_IN changed");
    assert_eq!(lab.read("rin"), RAND, "RAND_IN changed");

    assert!(report.net == Default::default(), "network accounting {report:?}");
    assert!(report.sys_s < 5.0 && report.user_s < 5.0, "times {report:?}");
    // Accounting: the bytes the guest moved, exactly; calls at least one a result.
    // Direct channels are counted from /proc/PID/io, which an unprivileged
    // supervisor does not get (BUG: see unprivileged_report_counts_direct_channel_io).
    let direct = read.gets >= U || write.puts >= U;
    if direct && !nix::unistd::geteuid().is_root() {
        announce_skip("calls accounting check", "direct-channel accounting is zero without root (known bug)");
        return;
    }
    let read_bytes = (SEQ.len() + 4 + 4 + 4 + 3 + 2) as u64;
    let written = (stdout.len() + 4 + 2 + 2) as u64;
    let a = report.local;
    assert_eq!((a.get_bytes, a.put_bytes), (read_bytes, written), "accounting {report:?}");
    assert!(a.gets >= 8 && a.puts >= stdout.lines().count() as u64, "accounting {report:?}");
}

#[test]
fn calls_behave_as_documented_in_direct_mode() {
    check_calls(Limits::READ_ONLY, Limits::WRITE_ONLY);
}

#[test]
fn calls_behave_as_documented_in_mediated_mode() {
    check_calls(Limits::read_only(1000, 100_000), Limits::write_only(1000, 100_000));
}

#[test]
fn calls_behave_as_documented_when_only_reads_are_mediated() {
    check_calls(Limits::read_only(1000, U), Limits::WRITE_ONLY);
}
