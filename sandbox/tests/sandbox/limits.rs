//! Channel limits: `-EDQUOT` (-122) at exactly the configured call count or
//! byte total (`limits.c`), with every call counting, end-of-data reads too;
//! and a flood (`flood.c`) against `put_size` leaves exactly `put_size` bytes.

use crate::harness::{assert_kv, guest, noise, Lab, Limits, U};

const DATA_LEN: usize = 100_000;

/// Runs `limits /dev/data MODE CHUNK` with `/dev/data` on a file holding
/// `initial` and `limits` as its limits; returns the lab and the guest's stdout.
fn limits_on_data(mode: &str, chunk: usize, initial: &[u8], limits: Limits) -> (Lab, String) {
    let lab = Lab::new();
    let data = lab.write("data", initial);
    let m = lab.manifest(guest("limits")).channel(&data, "/dev/data", 0, limits).args([
        "limits",
        "/dev/data",
        mode,
        &chunk.to_string(),
    ]);
    let out = lab.run(&m).expect_code(0);
    let r = out.report();
    assert_eq!((r.user_code, r.exit_state.as_str()), (0, "ok"), "{out}\n{}", lab.read_string("stderr"));
    let stdout = lab.read_string("stdout");
    (lab, stdout)
}

#[test]
fn read_call_limit_gives_edquot_at_exactly_gets_calls() {
    let (_lab, out) = limits_on_data("read", 1000, &noise(DATA_LEN, 1), Limits::read_only(5, U));
    assert_kv(&out, &[("desc", &3), ("calls", &5), ("bytes", &5000), ("result", &-122)]);
}

#[test]
fn read_byte_limit_gives_edquot_at_exactly_get_size_bytes() {
    let (_lab, out) = limits_on_data("read", 1000, &noise(DATA_LEN, 2), Limits::read_only(U, 2500));
    assert_kv(&out, &[("desc", &3), ("calls", &3), ("bytes", &2500), ("result", &-122)]);
}

#[test]
fn reads_at_end_of_data_count_against_gets() {
    // 1000 + 500 bytes, then three reads of 0 bytes: five calls in all.
    let (_lab, out) = limits_on_data("read", 1000, &noise(1500, 3), Limits::read_only(5, U));
    assert_kv(&out, &[("desc", &3), ("calls", &5), ("bytes", &1500), ("result", &-122)]);
}

#[test]
fn write_call_limit_gives_edquot_at_exactly_puts_calls() {
    let (lab, out) = limits_on_data("write", 1000, b"", Limits::write_only(5, U));
    assert_kv(&out, &[("desc", &3), ("calls", &5), ("bytes", &5000), ("result", &-122)]);
    assert_eq!(lab.read("data"), vec![b'z'; 5000]);
}

#[test]
fn write_byte_limit_gives_edquot_with_exactly_put_size_bytes_in_the_file() {
    let (lab, out) = limits_on_data("write", 1000, b"", Limits::write_only(U, 2500));
    assert_kv(&out, &[("desc", &3), ("calls", &3), ("bytes", &2500), ("result", &-122)]);
    assert_eq!(lab.read("data"), vec![b'z'; 2500]);
}

#[test]
fn stdout_byte_limit_keeps_exactly_put_size_bytes() {
    let lab = Lab::new();
    let m = lab
        .manifest(guest("limits"))
        .channel(lab.path("stdout"), "/dev/stdout", 0, Limits::write_only(U, 2500))
        .args(["limits", "/dev/stdout", "write", "1000"]);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read("stdout"), vec![b'z'; 2500]);
    // The summary goes to stderr when stdout's quota is what ran out.
    assert_kv(&lab.read_string("stderr"), &[("desc", &1), ("calls", &3), ("bytes", &2500), ("result", &-122)]);
}

fn flood(limits: Limits) -> (Lab, crate::harness::Report) {
    let lab = Lab::new();
    let m = lab.manifest(guest("flood")).channel(lab.path("stdout"), "/dev/stdout", 0, limits);
    let out = lab.run(&m).expect_code(0);
    let r = out.report();
    assert_eq!((r.user_code, r.exit_state.as_str()), (0, "ok"), "{out}\n{}", lab.read_string("stderr"));
    (lab, r)
}

#[test]
fn flood_against_put_size_leaves_exactly_put_size_bytes() {
    let put_size = 1_000_000; // not a multiple of the guest's 64 KiB chunk
    let (lab, r) = flood(Limits::write_only(U, put_size));
    assert_eq!(lab.read("stdout"), vec![b'f'; put_size as usize]);
    assert_kv(&lab.read_string("stderr"), &[("flood_calls", &16), ("flood_bytes", &put_size), ("flood_result", &-122)]);
    assert!(r.local.put_bytes >= put_size, "accounting {r:?}");
}

#[test]
fn flood_against_puts_stops_after_exactly_puts_calls() {
    let (lab, _) = flood(Limits::write_only(7, U));
    assert_eq!(lab.read("stdout").len(), 7 * 65536);
    assert_kv(
        &lab.read_string("stderr"),
        &[("flood_calls", &7), ("flood_bytes", &(7 * 65536)), ("flood_result", &-122)],
    );
}

#[test]
fn channel_etag_is_the_hash_of_exactly_the_bytes_written() {
    let lab = Lab::new();
    let m =
        lab.manifest(guest("hello")).channel(lab.path("out"), "/dev/stdout", 0, Limits::WRITE_ONLY).etag("/dev/stdout");
    let r = lab.run(&m).expect_code(0).report();
    let written = lab.read("out");
    assert_eq!(written, b"Hello, World!\n");
    let want = format!("/dev/stdout {}", blake3::hash(&written).to_hex());
    assert_eq!(r.etags, want, "{r:?}");
    assert_eq!((r.local.puts, r.local.put_bytes), (1, 14), "an etag channel is mediated and counted exactly");
}
