//! FIFOs as channels, in both modes: a readable FIFO fed by a writer thread,
//! a write-only FIFO drained by a reader thread; and a write-only FIFO that
//! nobody reads fails at `Timeout` instead of hanging.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::stat::Mode;

use crate::harness::{guest, noise, Lab, Limits, U};

fn mkfifo(lab: &Lab, name: &str) -> PathBuf {
    let p = lab.path(name);
    nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    p
}

fn reader_fifo(limits: Limits) {
    let lab = Lab::new();
    let fifo = mkfifo(&lab, "in.fifo");
    // A reader of our own keeps the FIFO open, so the writer can open it now
    // and the guest never sees end of data before the writer is done.
    let _keeper = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let mut writer = OpenOptions::new().write(true).open(&fifo).unwrap();
    let data = noise(1 << 20, 7);
    let sent = data.clone();
    let feeder = std::thread::spawn(move || writer.write_all(&sent));
    let m = lab.manifest(guest("cat")).channel(&fifo, "/dev/stdin", 0, limits);
    let out = lab.run(&m).expect_code(0);
    feeder.join().unwrap().expect("write the FIFO");
    assert_eq!(out.report().exit_state, "ok");
    assert!(lab.read("stdout") == data, "cat's output differs from what the FIFO carried");
}

#[test]
fn readable_fifo_delivers_what_a_writer_thread_sends() {
    reader_fifo(Limits::READ_ONLY);
}

#[test]
fn readable_fifo_delivers_what_a_writer_thread_sends_when_mediated() {
    reader_fifo(Limits::read_only(1 << 20, 1 << 30));
}

fn writer_fifo(limits: Limits) {
    let lab = Lab::new();
    let fifo = mkfifo(&lab, "out.fifo");
    let data = noise(1 << 20, 9);
    let input = lab.write("input", &data);
    let path = fifo.clone();
    // Blocks until zvsh opens the FIFO for writing; reads to end of data.
    let drain = std::thread::spawn(move || {
        let mut got = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut got)).map(|_| got)
    });
    let m = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY).channel(
        &fifo,
        "/dev/stdout",
        0,
        limits,
    );
    let out = lab.run(&m).expect_code(0);
    assert_eq!(out.report().exit_state, "ok");
    let got = drain.join().unwrap().expect("read the FIFO");
    assert!(got == data, "the FIFO carried {} bytes, not the {} cat read", got.len(), data.len());
}

#[test]
fn write_only_fifo_reaches_a_reader_thread() {
    writer_fifo(Limits::WRITE_ONLY);
}

#[test]
fn write_only_fifo_reaches_a_reader_thread_when_mediated() {
    writer_fifo(Limits::write_only(U, 1 << 30));
}

#[test]
fn write_only_fifo_without_a_reader_fails_at_timeout() {
    let lab = Lab::new();
    let fifo = mkfifo(&lab, "nobody.fifo");
    let m = lab.manifest(guest("hello")).timeout(1).channel(&fifo, "/dev/stdout", 0, Limits::WRITE_ONLY);
    let out = lab.run(&m).expect_code(14);
    assert!(out.elapsed < Duration::from_millis(1500), "took {:?}", out.elapsed);
    let r = out.report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("no reader"), "{r:?}");
}
