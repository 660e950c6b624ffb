//! `zvm_jail` costs the supervisor bounded memory and time (`jail_loop.c`): a
//! guest that jails and unjails its whole 1 GiB heap again and again is killed
//! at its Timeout, and the supervisor never holds more than a small buffer of
//! the region it validates.

use std::time::{Duration, Instant};

use crate::harness::{guest, kv, wait_exit, Lab, Report};

/// A process's peak resident set (`VmHWM`) in bytes, while it lives.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim();
    kb.parse::<u64>().ok().map(|k| k << 10)
}

#[test]
fn jailing_the_whole_heap_in_a_loop_ends_at_timeout_with_flat_supervisor_memory() {
    let lab = Lab::new();
    let memory: u64 = 1 << 30;
    let m = lab.manifest(guest("jail_loop")).memory(memory).timeout(1);
    let path = lab.write("manifest", m.render());
    let start = Instant::now();
    let zvsh = lab.zvsh().arg("--manifest").arg(&path).spawn();
    // The peak only grows: sample it until zvsh exits (a zombie has none).
    let mut peak = 0;
    while !wait_exit(&zvsh, Duration::from_millis(10)) {
        peak = peak.max(peak_rss(zvsh.id()).unwrap_or(0));
        assert!(start.elapsed() < Duration::from_secs(30), "zvsh ran longer than 30 s");
    }
    let elapsed = start.elapsed();
    let out = zvsh.wait_with_output().expect("wait for zvsh");
    let r = Report::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(r.exit_state, "session timeout", "{r:?}");
    assert_eq!(out.status.code(), Some(4));
    let stdout = lab.read_string("stdout");
    let heap: u64 = kv(&stdout).get("heap").and_then(|h| h.parse().ok()).unwrap_or(0);
    assert!(heap > memory / 2 && stdout.ends_with("started=1\n"), "the guest did not start looping: {stdout}");
    assert!(peak > 0, "no VmHWM sample of zvsh");
    // Both at once, so a failure shows both figures.
    assert!(
        elapsed < Duration::from_millis(1500) && peak < 64 << 20,
        "Timeout = 1 took {elapsed:?}; zvsh's peak resident set was {} MiB validating a {} MiB heap",
        peak >> 20,
        heap >> 20
    );
}
