//! The lab's connection keeper for real on a 3-node `netns` lab: `up` leaves one running
//! with a connection per node, `exec` reuses those connections instead of making new
//! ones, a connection that dies is made again, a killed keeper is replaced by the next
//! command, a connection whose node went silent (link down) is given up within
//! seconds instead of hanging, garbage on its socket does not stop it, nobody but its
//! user can reach it, and `down` stops it. Needs root and a built `zerolab-agent` (as `up`).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{prerequisites, LabHarness, Subnet};
use zerolab::provider::netns::Names;

/// Established TCP connections from this machine to port 22 of the lab's subnet, as
/// sorted `local-address peer-address` pairs (the same pairs later: the same connections).
fn ssh_connections(subnet_prefix: &str) -> Vec<String> {
    let out = Command::new("ss").args(["-Htn", "state", "established", "( dport = :22 )"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut pairs: Vec<String> = text
        .lines()
        .filter(|l| l.contains(subnet_prefix))
        .map(|l| l.split_whitespace().skip(2).take(2).collect::<Vec<_>>().join(" "))
        .collect();
    pairs.sort();
    pairs
}

/// Waits until `check` holds (keeper connects and exits happen in the background).
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of keeper processes serving `lab_dir`.
fn keepers(lab_dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.len() >= 3 && args[1] == b"keeper" && Path::new(std::str::from_utf8(args[2]).unwrap()) == lab_dir {
            pids.push(pid);
        }
    }
    pids
}

/// Connects to `socket` as user nobody from a forked child; returns the child's errno.
fn connect_as_nobody(socket: &Path) -> i32 {
    let path = std::ffi::CString::new(socket.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: the child only makes async-signal-safe calls (setgid, setuid, socket,
    // connect) on memory prepared before the fork, then _exit()s.
    unsafe {
        match libc::fork() {
            0 => {
                let mut address: libc::sockaddr_un = std::mem::zeroed();
                address.sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (i, byte) in path.as_bytes().iter().enumerate() {
                    address.sun_path[i] = *byte as libc::c_char;
                }
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    libc::_exit(100);
                }
                let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
                let size = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
                let rc = libc::connect(fd, (&raw const address).cast(), size);
                libc::_exit(if rc == 0 { 0 } else { *libc::__errno_location() });
            }
            pid => {
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                libc::WEXITSTATUS(status)
            }
        }
    }
}

#[test]
fn keeper_holds_one_connection_per_node_and_goes_with_the_lab() {
    let Some(agent) = prerequisites("the connection keeper") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Keeper, agent);
    let subnet = &format!("10.77.{}.", Subnet::Keeper.x());
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let lab_dir = lab.lab().dir().to_path_buf();
    let socket = lab_dir.join("keeper.sock");

    // `up` leaves a keeper, warmed with a connection to each node.
    eventually("the keeper holds 3 connections", || ssh_connections(subnet).len() == 3);
    let connections = ssh_connections(subnet);
    let first = keepers(&lab_dir);
    assert_eq!(first.len(), 1, "one keeper: {first:?}");
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(connect_as_nobody(&socket), libc::EACCES, "another user must not reach the keeper");

    // exec reuses them: the same 3 connections after several runs.
    for _ in 0..3 {
        let run = lab.zerolab(&["exec"], &["--", "true"]);
        assert_eq!(run.code, 0, "{run:#?}");
    }
    assert_eq!(ssh_connections(subnet), connections);
    assert_eq!(keepers(&lab_dir), first);

    // Garbage on the socket is dropped; the keeper serves the next client.
    let mut client = UnixStream::connect(&socket).unwrap();
    client.write_all(b"{not json\n").unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // A connection that dies (node-2's sshd session for it is killed) is made again.
    let run = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "kill -9 $PPID"]);
    assert_eq!(run.code, 1, "the killed session ends the command: {run:#?}");
    let run = lab.zerolab(&["exec"], &["--", "hostname"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("node-2: node-2"), "{run:#?}");
    let now = ssh_connections(subnet);
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now.iter().filter(|c| connections.contains(c)).count(), 2, "node-2's is new: {now:?}");

    // node-2's link cut under a kept connection: the command fails within seconds,
    // naming node-2, instead of waiting on a connection that carries nothing.
    let veth = Names::new(lab.cluster.name()).veth("node-2");
    let link =
        |state: &str| assert!(Command::new("ip").args(["link", "set", &veth, state]).status().unwrap().success());
    link("down");
    let started = Instant::now();
    let run = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "true"]);
    let took = started.elapsed();
    link("up");
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.starts_with("node-2: failed: "), "{run:#?}");
    assert!(took < Duration::from_secs(15), "exec took {took:?} on a dead connection");
    let run = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "true"]);
    assert_eq!(run.code, 0, "node-2 is reached again once its link is back: {run:#?}");

    // A killed keeper is replaced by the next command.
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(first[0] as i32, libc::SIGKILL) };
    eventually("the killed keeper is gone", || keepers(&lab_dir).is_empty());
    let run = lab.zerolab(&["exec"], &["--", "true"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let second = keepers(&lab_dir);
    assert_eq!(second.len(), 1);
    assert_ne!(second, first);

    // down stops it and closes its connections.
    let run = lab.zerolab(&["down"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    eventually("no keeper is left", || keepers(&lab_dir).is_empty());
    assert_eq!(ssh_connections(subnet), Vec::<String>::new());
}
