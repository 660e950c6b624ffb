//! Nothing outlives a session: no guest process after normal, killed and
//! timed-out sessions (library and zvsh, including a zvsh killed under its
//! guest), and no descriptor after library sessions. These tests run alone
//! ([`Lab::alone`]) so other tests' guests and descriptors do not count.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use zerolab_sandbox::session::{self, Options};

use crate::harness::{children_of, guest, is_guest_comm, live_process, open_fds, read_until, wait_gone, Lab};
use crate::library::guest_with_stdout;

#[test]
fn no_guest_process_remains_after_sessions_end() {
    let lab = Lab::alone();
    let me = std::process::id() as i32;
    let mut pids = Vec::new();

    // A library session that times out, in the background.
    let timed_out = std::thread::spawn(|| {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let s = session::spawn(guest_with_stdout(&guest("loop"), theirs, Duration::from_secs(1)), &Options::default())
            .expect("spawn");
        (s.pid(), s.wait())
    });

    // Library: one that ends by itself, one killed.
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let s = session::spawn(guest_with_stdout(&guest("hello"), theirs, Duration::from_secs(5)), &Options::default())
        .expect("spawn");
    pids.push(s.pid());
    assert_eq!(s.wait().exit_state, "ok");
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut s = session::spawn(guest_with_stdout(&guest("loop"), w, Duration::from_secs(20)), &Options::default())
        .expect("spawn");
    read_until(&r, "started=1", Duration::from_secs(5));
    pids.push(s.pid());
    s.kill();
    assert_eq!(s.wait().exit_state, "killed");

    // zvsh killed while its guest loops: the guest must die with it.
    let mut zvsh = lab.zvsh().arg(guest("loop")).spawn();
    let zvsh_pid = zvsh.id() as i32;
    let out: std::os::fd::OwnedFd = zvsh.stdout.take().unwrap().into();
    read_until(&out, "started=1", Duration::from_secs(5));
    let guests: Vec<i32> =
        children_of(zvsh_pid).into_iter().filter(|(_, c)| is_guest_comm(c)).map(|(p, _)| p).collect();
    assert_eq!(guests.len(), 1, "zvsh {zvsh_pid} should have one guest child: {:?}", children_of(zvsh_pid));
    zvsh.kill().unwrap();
    zvsh.wait().unwrap();
    assert!(wait_gone(guests[0], Duration::from_secs(2)), "guest {} outlived its killed zvsh", guests[0]);

    // zvsh sessions that time out and that end by themselves.
    let m = lab.manifest(guest("loop")).timeout(1);
    assert_eq!(lab.run(&m).expect_code(4).report().exit_state, "session timeout");
    lab.zvsh().arg(guest("hello")).run().expect_code(0);

    let (pid, report) = timed_out.join().unwrap();
    assert_eq!(report.exit_state, "session timeout");
    pids.push(pid);

    for pid in pids {
        assert!(live_process(pid).is_none(), "guest {pid} still exists");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "guest {pid} was not reaped");
    }
    let left: Vec<_> = children_of(me).into_iter().filter(|(_, c)| is_guest_comm(c)).collect();
    assert!(left.is_empty(), "guest processes left: {left:?}");
}

#[test]
fn library_sessions_release_every_descriptor() {
    let _lab = Lab::alone();
    let hello = guest("hello");
    let looping = guest("loop");
    let run_some = || {
        for _ in 0..3 {
            let (mut ours, theirs) = UnixStream::pair().unwrap();
            let s = session::spawn(guest_with_stdout(&hello, theirs, Duration::from_secs(5)), &Options::default())
                .expect("spawn");
            assert_eq!(s.wait().exit_state, "ok");
            let mut got = String::new();
            std::io::Read::read_to_string(&mut ours, &mut got).unwrap();
            assert_eq!(got, "Hello, World!\n");
        }
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut s = session::spawn(guest_with_stdout(&looping, w, Duration::from_secs(20)), &Options::default())
            .expect("spawn");
        read_until(&r, "started=1", Duration::from_secs(5));
        s.kill();
        assert_eq!(s.wait().exit_state, "killed");
    };
    // Once first, so one-time set-up (lazy statics, caches) is not counted.
    run_some();
    let before = open_fds();
    run_some();
    let after = open_fds();
    assert_eq!(after, before, "descriptors before and after library sessions");
}
