//! Daemon mode (`Job = SOCKET`, `zvm_fork`): a guest initialises once, and
//! every job manifest sent to the socket runs in a copy of it wired to the
//! job's channels. Each copy starts from the daemon's memory whatever other
//! copies did, a copy that faults, exits or overruns its `Timeout` harms no
//! other, and every report says 1 on the daemon line. While it serves, the
//! daemon keeps copies launched ahead of their jobs (its pool): each runs one
//! job, the pool is refilled after a burst, and nothing is left when the
//! daemon ends.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use zerolab_sandbox::session::daemon::submit;

use zerolab_sandbox::session::pool::SLOTS;

use crate::harness::{
    children_of, guest, is_guest_comm, live_process, posix_guest, python_tar, wait_gone, Lab, Limits, Manifest, Report,
};

/// A daemon of `program` on `lab/daemon.sock`, serving for `secs` seconds
/// (its `Timeout`), with extra channels from `more`.
fn start_daemon(lab: &Lab, program: PathBuf, secs: u64, more: impl FnOnce(Manifest) -> Manifest) -> (Child, PathBuf) {
    let socket = lab.path("daemon.sock");
    let m = more(lab.manifest(program).timeout(secs).job(&socket));
    let path = lab.write("daemon.manifest", m.render());
    let child = lab.zvsh().arg("--manifest").arg(path).spawn();
    let until = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < until, "the daemon did not listen on {}", socket.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, socket)
}

/// Runs job `name` (stdin `input`) through the daemon: its report, return
/// code and stdout.
fn job(
    lab: &Lab,
    socket: &Path,
    program: &Path,
    name: &str,
    input: &str,
    more: impl FnOnce(Manifest) -> Manifest,
) -> (Report, i32, String) {
    let stdin = lab.write(&format!("{name}.in"), input);
    let m = Manifest::new(program)
        .timeout(2)
        .channel(&stdin, "/dev/stdin", 0, Limits::READ_ONLY)
        .channel(lab.path(&format!("{name}.out")), "/dev/stdout", 0, Limits::WRITE_ONLY)
        .channel(lab.path(&format!("{name}.err")), "/dev/stderr", 0, Limits::WRITE_ONLY);
    let (report, code) = submit(socket, more(m).render().as_bytes()).expect("the daemon answers");
    (Report::parse(&report), code, lab.read_string(&format!("{name}.out")))
}

/// Waits for the daemon to end at its `Timeout`; its report.
fn daemon_report(child: Child) -> Report {
    let out = child.wait_with_output().expect("the daemon ends");
    Report::parse(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn without_job_zvm_fork_answers_enosys() {
    let lab = Lab::new();
    let out = lab.zvsh().arg(guest("daemon")).run().expect_code(3);
    assert_eq!(out.stdout(), "fork=-38\n");
}

#[test]
fn jobs_through_one_daemon_each_start_from_the_initialised_guest() {
    let lab = Lab::new();
    let program = guest("daemon");
    let (daemon, socket) = start_daemon(&lab, program.clone(), 6, |m| m);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "only the daemon's user may send jobs: they name host paths");
    let shown = "fork=0 starts=1 table=8386560 seen=0\n";
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..6)
            .map(|i| {
                let (lab, socket, program) = (&lab, &socket, &program);
                s.spawn(move || job(lab, socket, program, &format!("show-{i}"), "show", |m| m))
            })
            .collect();
        for j in jobs {
            let (report, code, out) = j.join().unwrap();
            // Each copy saw the daemon's table and counters, not another copy's
            // scribbles: copies share nothing but the daemon's memory, copy-on-write.
            assert_eq!((code, report.daemon, report.exit_state.as_str(), out.as_str()), (0, 1, "ok", shown));
        }
    });
    let (report, _, out) = job(&lab, &socket, &program, "fork-again", "fork", |m| m);
    assert_eq!((report.user_code, out.as_str()), (0, "again=-38\n"), "a copy is no daemon");
    let report = daemon_report(daemon);
    assert_eq!((report.daemon, report.exit_state.as_str()), (1, "ok"));
    assert!(!socket.exists(), "the daemon removes its socket when it ends");
}

#[test]
fn a_failing_job_harms_neither_the_daemon_nor_other_jobs() {
    let lab = Lab::new();
    let program = guest("daemon");
    let (daemon, socket) = start_daemon(&lab, program.clone(), 8, |m| m);
    let shown = "fork=0 starts=1 table=8386560 seen=0\n";
    std::thread::scope(|s| {
        let spin = s.spawn(|| job(&lab, &socket, &program, "spin", "spin", |m| m.timeout(1)));
        let (report, code, _) = job(&lab, &socket, &program, "crash", "crash", |m| m);
        assert_eq!((code, report.daemon), (4, 1));
        assert!(report.exit_state.starts_with("Signal 11 from untrusted code"), "{}", report.exit_state);
        let (report, code, _) = job(&lab, &socket, &program, "exit", "exit 7", |m| m);
        assert_eq!((code, report.user_code, report.exit_state.as_str()), (0, 7, "ok"));
        let (report, code, _) = spin.join().unwrap();
        assert_eq!((code, report.exit_state.as_str()), (4, "session timeout"));
    });
    let (_, code, out) = job(&lab, &socket, &program, "after", "show", |m| m);
    assert_eq!((code, out.as_str()), (0, shown), "jobs after the failures start from the daemon as before");
    // A job manifest that is not one gets the parser's report, and the daemon goes on.
    let (report, code) = submit(&socket, b"Version = 1\n").unwrap();
    assert_eq!(code, 14, "{report}");
    assert_eq!(daemon_report(daemon).exit_state, "ok");
}

#[test]
fn a_posix_daemon_keeps_its_open_files_and_takes_each_jobs_channels() {
    let lab = Lab::new();
    let tar = lab.path("data.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(12);
    h.set_mode(0o644);
    b.append_data(&mut h, "data/greeting.txt", &b"hello image\n"[..]).unwrap();
    b.into_inner().unwrap();
    let nvram = lab.write("nvram", "[fstab]\nchannel=/dev/image, mountpoint=/, access=ro\n");
    let program = posix_guest("forks");
    let out = lab.zvsh().arg(&program).run().expect_code(3);
    assert_eq!(out.stdout(), "fork=ENOSYS\n", "without Job, fork is refused as before");

    let image = |m: Manifest| m.channel(&tar, "/dev/image", 3, Limits::READ_ONLY);
    let (daemon, socket) =
        start_daemon(&lab, program.clone(), 6, |m| image(m).channel(&nvram, "/dev/nvram", 0, Limits::READ_ONLY));
    for i in 0..3 {
        let (report, code, out) = job(&lab, &socket, &program, &format!("j{i}"), &format!("job {i}\n"), image);
        assert_eq!((code, report.daemon), (0, 1), "{}", report.exit_state);
        assert_eq!(out, format!("pid=0 in=job {i} kept=hello image opened=hello image sum=499500\n"));
    }
    // A job without the image: the copy's files from it fail to read; nothing faults.
    let (report, code, out) = job(&lab, &socket, &program, "bare", "bare\n", |m| m);
    assert_eq!((code, report.exit_state.as_str()), (0, "ok"));
    assert_eq!(out, "pid=0 in=bare kept=none opened=none sum=499500\n");
    assert_eq!(daemon_report(daemon).daemon, 1);
}

/// The daemon's waiting slots: its guest-process children (a job's running
/// copy is one too, so call it only between jobs).
fn slots_of(daemon: &Child) -> Vec<i32> {
    children_of(daemon.id() as i32).into_iter().filter(|(_, comm)| is_guest_comm(comm)).map(|(pid, _)| pid).collect()
}

/// User and system CPU time of process `pid` so far, in clock ticks (0 once it is gone).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
}

/// Waits (at most 20 s) until the daemon has exactly [`SLOTS`] waiting slots; their pids.
fn full_pool(daemon: &Child) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let slots = slots_of(daemon);
        if slots.len() == SLOTS {
            return slots;
        }
        assert!(Instant::now() < until, "the pool holds {} slots, not {SLOTS}", slots.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pool_slots_each_serve_one_job_are_refilled_after_a_burst_and_end_with_the_daemon() {
    let lab = Lab::new();
    let program = guest("daemon");
    let (daemon, socket) = start_daemon(&lab, program.clone(), 6, |m| m);
    let mut before = full_pool(&daemon);
    before.sort();
    // A job runs in the oldest slot, launched before it: that very process spins.
    std::thread::scope(|s| {
        let spin = s.spawn(|| job(&lab, &socket, &program, "spin", "spin", |m| m.timeout(1)));
        std::thread::sleep(Duration::from_millis(300));
        let ticks = cpu_ticks(before[0]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(cpu_ticks(before[0]) > ticks, "the job did not run in the oldest slot, {}", before[0]);
        let (report, code, _) = spin.join().unwrap();
        assert_eq!((code, report.exit_state.as_str()), (4, "session timeout"));
    });
    assert!(wait_gone(before[0], Duration::from_secs(5)), "a slot serves one job only");
    // A burst of twice the pool, one crashing among them: every job (the
    // first SLOTS in the slots that waited before it) starts from the
    // daemon's memory alone, so no slot ever ran a job before.
    let shown = "fork=0 starts=1 table=8386560 seen=0\n";
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..2 * SLOTS)
            .map(|i| {
                let (lab, socket, program) = (&lab, &socket, &program);
                let cmd = if i == 3 { "crash" } else { "show" };
                s.spawn(move || (cmd, job(lab, socket, program, &format!("burst-{i}"), cmd, |m| m)))
            })
            .collect();
        for j in jobs {
            let (cmd, (report, code, out)) = j.join().unwrap();
            if cmd == "crash" {
                assert_eq!((code, report.daemon), (4, 1), "{}", report.exit_state);
            } else {
                assert_eq!((code, report.exit_state.as_str(), out.as_str()), (0, "ok", shown));
            }
        }
    });
    // A report is sent before the copy's teardown: give that a moment.
    for pid in &before {
        assert!(wait_gone(*pid, Duration::from_secs(5)), "slot {pid} still lives after the burst took it");
    }
    let after = full_pool(&daemon);
    assert!(after.iter().all(|pid| !before.contains(pid)), "the refilled pool is new slots: {before:?} {after:?}");
    let (_, code, out) = job(&lab, &socket, &program, "after", "show", |m| m);
    assert_eq!((code, out.as_str()), (0, shown));
    let daemon_pid = daemon.id() as i32;
    assert_eq!(daemon_report(daemon).exit_state, "ok");
    for pid in after {
        assert!(live_process(pid).is_none(), "slot {pid} outlived the daemon");
    }
    assert!(children_of(daemon_pid).is_empty(), "the daemon left processes behind");
}

/// Before its first slot the pool runs a warm-up copy of the daemon on the
/// daemon's own channels, to learn which pages a copy touches: its writes go
/// to `/dev/null` (the daemon's stdout stays as the daemon left it), what it
/// scribbles is its own (every job still starts from the daemon's memory),
/// and the slots then map those pages ahead.
#[test]
fn the_pools_warm_up_copy_writes_nowhere_and_changes_no_job() {
    let lab = Lab::new();
    let program = guest("daemon");
    // The daemon's stdin says "show": the warm-up copy reads it and answers.
    let stdin = lab.write("daemon.in", "show");
    let socket = lab.path("daemon.sock");
    let m = Manifest::new(&program)
        .channel(&stdin, "/dev/stdin", 0, Limits::READ_ONLY)
        .channel(lab.path("daemon.out"), "/dev/stdout", 0, Limits::WRITE_ONLY)
        .channel(lab.path("daemon.err"), "/dev/stderr", 0, Limits::WRITE_ONLY)
        .timeout(5)
        .job(&socket);
    let path = lab.write("daemon.manifest", m.render());
    let mut zvsh = lab.zvsh().arg("--manifest").arg(path);
    zvsh.command().env("ZVSH_LOG", "zerolab_sandbox::session::warmup=debug");
    let daemon = zvsh.spawn();
    full_pool(&daemon);
    let shown = "fork=0 starts=1 table=8386560 seen=0\n";
    for i in 0..2 {
        let (report, code, out) = job(&lab, &socket, &program, &format!("w{i}"), "show", |m| m);
        assert_eq!((code, report.exit_state.as_str(), out.as_str()), (0, "ok", shown));
    }
    let out = daemon.wait_with_output().expect("the daemon ends");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("daemon warm-up:") && log.contains("copied ahead per slot"), "no warm-up: {log}");
    assert_eq!(lab.read_string("daemon.out"), "", "the warm-up copy wrote to the daemon's stdout");
}

/// CPython as a daemon (ZeroVM's use of it): the script imports its modules
/// once and calls `os.fork()` (`zvm_fork`); every job then runs the rest of
/// the script in a copy, on its own stdin and stdout, with the image mounted.
#[test]
fn python_initialises_once_and_serves_jobs_from_os_fork() {
    let lab = Lab::new();
    let tar = python_tar();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let mut entry =
        archive.entries().unwrap().map(Result::unwrap).find(|e| e.path().unwrap().as_os_str() == "bin/python");
    let program = lab.path("python");
    entry.as_mut().expect("bin/python in python.tar").unpack(&program).unwrap();
    let script = lab.write(
        "serve.py",
        "import collections, json, os, re, sys\n\
         words = re.compile(r'\\w+')\n\
         pid = os.fork()\n\
         counts = collections.Counter(words.findall(sys.stdin.read()))\n\
         print(json.dumps({'pid': pid, 'top': counts.most_common(1)}))\n",
    );
    let nvram = lab.write("nvram", "[fstab]\nchannel=/dev/image, mountpoint=/, access=ro\n");
    let image = |m: Manifest| m.channel(&tar, "/dev/image", 3, Limits::READ_ONLY).memory(256 << 20);
    let (daemon, socket) = start_daemon(&lab, program.clone(), 15, |m| {
        image(m)
            .channel(&nvram, "/dev/nvram", 0, Limits::READ_ONLY)
            .channel(&script, "/dev/script", 3, Limits::READ_ONLY)
            .args(["python", "/dev/script"])
    });
    for (i, word) in ["ant", "bee", "cat"].iter().enumerate() {
        let text = format!("{word} {word} other {word}\n");
        let (report, code, out) = job(&lab, &socket, &program, &format!("py{i}"), &text, image);
        assert_eq!((code, report.daemon), (0, 1), "{}: {}", report.exit_state, lab.read_string(&format!("py{i}.err")));
        assert_eq!(out, format!("{{\"pid\": 0, \"top\": [[\"{word}\", 3]]}}\n"));
    }
    assert_eq!(daemon_report(daemon).daemon, 1);
}
