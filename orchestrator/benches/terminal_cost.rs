//! Where a browser terminal's time goes (root only): on one warm workshop lab of one
//! netns node (`wjoin2`, 10.230.128.0/17), `BENCH_ROUNDS` times each (default 50), one
//! after the other: an SSH login (TCP, key exchange, public-key auth, host key check),
//! a login plus a login shell on a pty until its prompt, and a shell on a connection
//! already made. For each: wall time, this process's CPU and the node's (its sshd and
//! everything sshd started: `/proc/PID/stat` utime + stime + cutime + cstime). Then the
//! memory (PSS) one warm terminal holds, here and on the node, with that many held at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use zerolab::ssh::{ConnectOptions, HostKeys, Session};
use zerolab::workshop::{self, Options, Workshop};

const ZEROLAB: &str = env!("CARGO_BIN_EXE_zerolab");

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the terminal cost benchmark makes a netns lab, which needs root");
        return;
    }
    let rounds: u32 = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let yaml = "apiVersion: zerolab/v1\nkind: Workshop\nname: wjoin2\n\
                lab: {provider: netns, nodes: [{name: node, count: 1}]}\n\
                network: 10.230.128.0/17\ncapacity: 1\npool: {warm: 1, reserve: 0}\naccess_code: c\n\
                portal: {listen: 127.0.0.1:18399, ssh_ports: 24950-24959}\nsteps: [{title: One}]\n";
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, yaml).unwrap();
    let file = workshop::from_path(&path).unwrap();
    let agent = Path::new(ZEROLAB).with_file_name("zerolab-agent");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let root = workshop::dir(&dir.path().join("labs"), &file.name);
    let ws = Workshop::open(file.clone(), root.clone(), Options::new(agent, PathBuf::from(ZEROLAB))).unwrap();
    let measured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async {
            ws.start();
            while ws.overview().await.pool.free < 1 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let joined = ws.join("c", "bench").await.unwrap();
            let access = ws.terminal(&joined.token, None).await.unwrap();
            let keys = HostKeys::open(&access.known_hosts).unwrap();
            let target = access.target();
            let sshd = sshd_pid(&format!("zl-{}-{}", file.lab_name(1), access.node));
            let options = ConnectOptions::known_up();
            println!("{rounds} rounds, one after the other        wall/each  our CPU/each  node CPU/each");
            let login = measure(rounds, sshd, async {
                for _ in 0..rounds {
                    let session = Session::connect(&target, &keys, &options).await.unwrap();
                    session.close().await.unwrap();
                }
            })
            .await;
            report("login (kex, auth, host key)", login);
            let shell = measure(rounds, sshd, async {
                for _ in 0..rounds {
                    let session = Session::connect(&target, &keys, &options).await.unwrap();
                    prompt(&session).await;
                    session.close().await.unwrap();
                }
            })
            .await;
            report("login + shell to its prompt", shell);
            // One connection for all rounds, made before and closed inside the count (the
            // node's share of a shell is counted once sshd reaps its session process).
            let warm = Session::connect(&target, &keys, &options).await.unwrap();
            let channel = measure(rounds, sshd, async {
                for _ in 0..rounds {
                    prompt(&warm).await;
                }
                warm.close().await.unwrap();
            })
            .await;
            report("shell on a connection made", channel);
            // Memory: `rounds` warm terminals held at once (a login and a shell at its prompt each).
            let ns = format!("zl-{}-{}", file.lab_name(1), access.node);
            let (ours, node) = (pss(std::process::id()), ns_pss(&ns));
            let mut held = Vec::new();
            for _ in 0..rounds {
                let session = Session::connect(&target, &keys, &options).await.unwrap();
                let shell = open_to_prompt(&session).await;
                held.push((session, shell));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let per = |after: u64, before: u64| after.saturating_sub(before) / u64::from(rounds) / 1024;
            println!(
                "memory of a warm terminal (PSS, {rounds} held): this process {} KiB, the node {} KiB",
                per(pss(std::process::id()), ours),
                per(ns_pss(&ns), node)
            );
            for (session, _) in held {
                session.close().await.unwrap();
            }
            ws.close().await;
        })
    }));
    runtime.block_on(ws.close());
    let labs = root.join("labs");
    let cluster = file.lab(1, &zerolab::provider::REGISTRY).unwrap();
    let options = zerolab::down::DownOptions { force: true, purge: true, ..Default::default() };
    let _ = runtime.block_on(zerolab::down::down(&labs, &cluster, &options));
    if let Err(panic) = measured {
        std::panic::resume_unwind(panic);
    }
}

/// Opens a login shell on a pty, reads to its prompt, ends it.
async fn prompt(session: &Session) {
    let shell = open_to_prompt(session).await;
    let _ = shell.close().await;
}

/// A login shell on a pty, read to its prompt.
async fn open_to_prompt(session: &Session) -> zerolab::ssh::Shell {
    let mut shell = session.open_shell("xterm-256color", 80, 24).await.unwrap();
    let mut screen = String::new();
    while !(screen.trim_end().ends_with('#') || screen.trim_end().ends_with('$')) {
        match shell.wait().await {
            Some(ChannelMsg::Data { data }) => screen.push_str(&String::from_utf8_lossy(&data)),
            Some(ChannelMsg::Close) | None => panic!("shell closed before its prompt"),
            Some(_) => {}
        }
    }
    shell
}

/// PSS of process `pid`, bytes.
fn pss(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    text.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
        * 1024
}

/// PSS of every process in network namespace `ns`, bytes.
fn ns_pss(ns: &str) -> u64 {
    let pids = std::process::Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
    String::from_utf8(pids.stdout).unwrap().split_whitespace().filter_map(|p| p.parse().ok()).map(pss).sum()
}

/// (wall, our CPU, node CPU) per round of `work`, which runs `rounds` rounds.
async fn measure(
    rounds: u32,
    sshd: u32,
    work: impl std::future::Future<Output = ()>,
) -> (Duration, Duration, Duration) {
    let (ours, node) = (cpu_self(), cpu_of(sshd));
    let started = Instant::now();
    work.await;
    let wall = started.elapsed();
    // The node's children are counted once reaped: give sshd a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (wall / rounds, (cpu_self() - ours) / rounds, (cpu_of(sshd) - node) / rounds)
}

fn report(label: &str, (wall, ours, node): (Duration, Duration, Duration)) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{label:<36} {:>8.1}ms {:>11.1}ms {:>12.1}ms", ms(wall), ms(ours), ms(node));
}

fn cpu_self() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// utime + stime + cutime + cstime of process `pid`.
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<u64> =
        stat.rsplit_once(')').unwrap().1.split_whitespace().skip(11).take(4).map(|f| f.parse().unwrap()).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(fields.iter().sum::<u64>() * 1000 / hz)
}

/// The listening sshd of network namespace `ns`.
fn sshd_pid(ns: &str) -> u32 {
    let pids = std::process::Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
    String::from_utf8(pids.stdout)
        .unwrap()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|pid: &u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("[listener]"))
        })
        .expect("the node's sshd")
}
