//! The library API: `session::spawn` with channels given as descriptors (a TCP socket's
//! traffic reported as network traffic), `Session::kill`, killing through a
//! `KillHandle`, `wait_until`, and many sessions at once from threads.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use zerolab_sandbox::channel::Channel;
use zerolab_sandbox::codes::ReturnCode;
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::report::Traffic;
use zerolab_sandbox::session::{self, Guest, Options};

use crate::harness::{guest, noise, read_until, Lab};

const READ: Limits = Limits::READ_ONLY;
const WRITE: Limits = Limits::WRITE_ONLY;

fn channel(alias: &str, limits: Limits, fd: impl Into<OwnedFd>) -> Channel {
    Channel::from_fd(alias, AccessType::SeqGetSeqPut, limits, fd.into()).expect("channel from fd")
}

fn devnull(write: bool) -> OwnedFd {
    std::fs::OpenOptions::new().read(!write).write(write).open("/dev/null").unwrap().into()
}

/// A guest with stdin from /dev/null, stderr to /dev/null and `stdout`.
pub fn guest_with_stdout(program: &Path, stdout: impl Into<OwnedFd>, timeout: Duration) -> Guest {
    Guest {
        program: program.to_path_buf(),
        program_member: None,
        memory: 32 << 20,
        timeout,
        channels: vec![
            channel("/dev/stdin", READ, devnull(false)),
            channel("/dev/stdout", WRITE, stdout),
            channel("/dev/stderr", WRITE, devnull(true)),
        ],
        args: Vec::new(),
        env: Vec::new(),
    }
}

#[test]
fn pipe_stdin_and_socket_stdout_carry_the_guests_data() {
    let _lab = Lab::new();
    let (pipe_r, pipe_w) = nix::unistd::pipe().unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let g = Guest {
        program: guest("cat"),
        program_member: None,
        memory: 32 << 20,
        timeout: Duration::from_secs(10),
        channels: vec![
            channel("/dev/stderr", WRITE, devnull(true)),
            channel("/dev/stdout", WRITE, theirs),
            channel("/dev/stdin", READ, pipe_r),
        ],
        args: Vec::new(),
        env: Vec::new(),
    };
    let session = session::spawn(g, &Options::default()).expect("spawn");
    let data = noise(3 << 20, 5);
    let sent = data.clone();
    let feeder = std::thread::spawn(move || std::fs::File::from(pipe_w).write_all(&sent));
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut s = ours;
        s.read_to_end(&mut got).map(|_| got)
    });
    let r = session.wait();
    feeder.join().unwrap().expect("feed the pipe");
    let got = reader.join().unwrap().expect("read the socket");
    assert_eq!((r.exit_state.as_str(), r.return_code, r.user_code), ("ok", ReturnCode::Ok, 0), "{r}");
    assert!(got == data, "{} bytes in, {} out", data.len(), got.len());
}

#[test]
fn a_tcp_stdin_is_network_traffic_and_a_pipe_stdout_local() {
    let _lab = Lab::new();
    let data = noise((1 << 20) + 17, 9);
    // Direct, then mediated (limits that do not bind, but limits).
    for stdin in [READ, Limits::read_only(1 << 20, 1 << 30)] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let ours = listener.accept().unwrap().0;
        let (out_r, out_w) = nix::unistd::pipe().unwrap();
        let g = Guest {
            program: guest("cat"),
            program_member: None,
            memory: 32 << 20,
            timeout: Duration::from_secs(10),
            channels: vec![
                channel("/dev/stdin", stdin, ours),
                channel("/dev/stdout", WRITE, out_w),
                channel("/dev/stderr", WRITE, devnull(true)),
            ],
            args: Vec::new(),
            env: Vec::new(),
        };
        let session = session::spawn(g, &Options::default()).expect("spawn");
        let sent = data.clone();
        let feeder = std::thread::spawn(move || peer.write_all(&sent).and_then(|()| peer.shutdown(Shutdown::Write)));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::from(out_r).read_to_end(&mut got).map(|_| got)
        });
        let r = session.wait();
        feeder.join().unwrap().expect("feed the socket");
        let got = reader.join().unwrap().expect("read the pipe");
        assert_eq!((r.exit_state.as_str(), got.len()), ("ok", data.len()), "{r}");
        let (local, net, n) = (r.accounting.local, r.accounting.net, data.len() as u64);
        if stdin == READ {
            // The kernel counts direct calls together: a direct socket's are local.
            assert_eq!(net, Traffic { gets: 0, get_bytes: n, puts: 0, put_bytes: 0 }, "{r}");
        } else {
            assert!(net.gets >= 2 && net.get_bytes == n && net.puts == 0 && net.put_bytes == 0, "{r}");
        }
        // Direct channels are counted from /proc/PID/io, which only root reads (see calls.rs).
        if nix::unistd::geteuid().is_root() {
            assert!(local.get_bytes == 0 && local.put_bytes == n && local.puts >= 1, "{r}");
        }
    }
}

/// Starts `loop` with its stdout on a pipe and waits until it has started.
pub fn start_loop(timeout: Duration) -> (session::Session, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    let s = session::spawn(guest_with_stdout(&guest("loop"), w, timeout), &Options::default()).expect("spawn");
    read_until(&r, "started=1\n", Duration::from_secs(5));
    (s, r)
}

#[test]
fn session_kill_ends_a_looping_guest_as_killed() {
    let _lab = Lab::new();
    let (mut s, _out) = start_loop(Duration::from_secs(20));
    let pid = s.pid();
    let start = Instant::now();
    s.kill();
    let r = s.wait();
    assert!(start.elapsed() < Duration::from_secs(2), "kill took {:?}", start.elapsed());
    assert_eq!((r.exit_state.as_str(), r.return_code.code(), r.user_code), ("killed", 4, 0), "{r}");
    assert!(crate::harness::live_process(pid).is_none(), "guest {pid} still there");
}

#[test]
fn kill_handle_from_another_thread_is_reported_as_killed() {
    let _lab = Lab::new();
    let (s, _out) = start_loop(Duration::from_secs(20));
    let handle = s.kill_handle().expect("kill handle");
    // Whether the signal lands before or during `wait`, the report must say `killed`.
    let killer = std::thread::spawn(move || handle.kill());
    let r = s.wait();
    killer.join().unwrap();
    assert_eq!((r.exit_state.as_str(), r.return_code.code()), ("killed", 4), "{r}");
}

#[test]
fn wait_until_returns_the_session_while_the_guest_runs() {
    let _lab = Lab::new();
    let (s, _out) = start_loop(Duration::from_secs(20));
    let start = std::time::Instant::now();
    let mut s = s.wait_until(start + Duration::from_millis(100)).expect_err("the loop is still running");
    assert!(start.elapsed() >= Duration::from_millis(100));
    s.kill();
    let r = s.wait_until(std::time::Instant::now() + Duration::from_secs(5)).expect("ended after kill");
    assert_eq!(r.exit_state, "killed", "{r}");
}

#[test]
fn twenty_sessions_spawned_from_threads_all_succeed() {
    let _lab = Lab::new();
    let opts = Options::default();
    let hello = guest("hello");
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let (opts, hello) = (opts.clone(), hello.clone());
            std::thread::spawn(move || {
                let (ours, theirs) = UnixStream::pair().unwrap();
                let s = session::spawn(guest_with_stdout(&hello, theirs, Duration::from_secs(20)), &opts)
                    .unwrap_or_else(|e| panic!("session {i}: {e}"));
                let r = s.wait();
                let mut got = String::new();
                let mut ours = ours;
                ours.read_to_string(&mut got).unwrap();
                (r, got)
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let (r, got) = t.join().unwrap();
        assert_eq!(
            (r.exit_state.as_str(), r.return_code, got.as_str()),
            ("ok", ReturnCode::Ok, "Hello, World!\n"),
            "session {i}"
        );
    }
}

/// Every guest of a root supervisor is `nobody` and sends its listener over a
/// Unix socket at start-up; the kernel caps a user's descriptors in flight at
/// the sender's RLIMIT_NOFILE. 64 simultaneous start-ups must all succeed.
#[test]
fn sixty_four_simultaneous_start_ups_all_succeed() {
    let _lab = Lab::new();
    let opts = Options::default();
    let hello = guest("hello");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (opts, hello, barrier) = (opts.clone(), hello.clone(), barrier.clone());
            std::thread::spawn(move || {
                let (mut ours, theirs) = UnixStream::pair().unwrap();
                barrier.wait();
                let s = session::spawn(guest_with_stdout(&hello, theirs, Duration::from_secs(20)), &opts)
                    .unwrap_or_else(|e| panic!("session {i}: {e}"));
                let r = s.wait();
                let mut got = String::new();
                ours.read_to_string(&mut got).unwrap();
                (r.exit_state, got)
            })
        })
        .collect();
    for t in threads {
        let (state, got) = t.join().unwrap();
        assert_eq!((state.as_str(), got.as_str()), ("ok", "Hello, World!\n"));
    }
}
