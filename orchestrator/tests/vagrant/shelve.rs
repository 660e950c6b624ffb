//! Shelving a machine of a lab that is up (run inside the lab test, on its machine n1:
//! no lab boot of its own): suspended (`zerolab shelve`: libvirt says `paused`, SSH does
//! not answer, a process started before is still there after `unshelve`) and halted
//! (`zerolab shelve --offload`: `shut off`, that process gone); both times the same
//! address, host key and files come back, with the agent healthy. Prints how long each
//! `unshelve` took.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::VmLab;
use crate::pin;

/// n1's SSH address in the lab test's cluster file.
const N1_SSH: &str = "10.78.31.2:22";

/// Shelves n1 in both modes and brings it back each time (see the module doc).
pub fn suspend_and_halt_come_back(lab: &VmLab) {
    let pin_before = pin(lab, "n1");
    let wrote = lab.zerolab(&["exec"], &["--nodes", "n1", "--", "echo kept > /root/shelf && sync"]);
    assert_eq!(wrote.code, 0, "{wrote:#?}");
    let pid = sleeper(lab);

    // SHELVED: paused, memory and processes kept.
    let shelved = lab.zerolab(&["shelve"], &["n1"]);
    assert_eq!((shelved.code, shelved.stdout.as_str()), (0, "n1: shelved\n"), "{shelved:#?}");
    assert_eq!(lab.virsh(&["domstate", "zl-vgt_n1"]).trim(), "paused");
    assert_shelved(lab, "shelved", "paused");
    let back = unshelve(lab, "vagrant resume");
    assert_eq!(lab.virsh(&["domstate", "zl-vgt_n1"]).trim(), "running");
    assert_eq!(pin(lab, "n1"), pin_before, "the same host key");
    assert_eq!(exec_n1(lab, "cat /root/shelf"), "kept");
    assert_eq!(exec_n1(lab, &format!("kill -0 {pid} && echo alive")), "alive", "its processes kept: {back}");

    // SHELVED_OFFLOADED: shut off, processes gone, disk kept.
    let offloaded = lab.zerolab(&["shelve"], &["--offload", "n1"]);
    assert_eq!((offloaded.code, offloaded.stdout.as_str()), (0, "n1: shelved_offloaded\n"), "{offloaded:#?}");
    assert_eq!(lab.virsh(&["domstate", "zl-vgt_n1"]).trim(), "shut off");
    assert_shelved(lab, "shelved_offloaded", "shut off");
    unshelve(lab, "vagrant halt, then up");
    assert_eq!(pin(lab, "n1"), pin_before, "the same host key");
    assert_eq!(exec_n1(lab, "cat /root/shelf"), "kept");
    assert_eq!(exec_n1(lab, &format!("kill -0 {pid} 2>/dev/null || echo gone")), "gone");
    assert_eq!(exec_n1(lab, "systemctl is-active zerolab-agent.service"), "active");
}

/// Starts a process on n1 that outlives the command; its pid.
fn sleeper(lab: &VmLab) -> String {
    exec_n1(lab, "setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $!")
}

/// What a shelved n1 looks like: its state in `status`, libvirt's word for its machine,
/// commands refused with the unshelve hint, and no SSH banner at its address.
fn assert_shelved(lab: &VmLab, state: &str, machine: &str) {
    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.code, 1, "a shelved node is not ready: {status:#?}");
    let row: Vec<&str> = status.stdout.lines().find(|l| l.starts_with("n1 ")).unwrap().split_whitespace().collect();
    assert_eq!(row[1..3], ["vagrant", machine.split(' ').next().unwrap()], "{status:#?}");
    assert!(row.contains(&state), "{status:#?}");
    let exec = lab.zerolab(&["exec"], &["--nodes", "n1", "--", "true"]);
    let hint = format!("n1 is shelved: zerolab unshelve {} n1", lab.file.display());
    assert!(exec.code == 1 && exec.stderr.contains(&hint), "{exec:#?}");
    assert!(banner(N1_SSH).is_none(), "sshd answers on a shelved machine");
}

/// `zerolab unshelve FILE n1`, timed and printed as `how`; its line.
fn unshelve(lab: &VmLab, how: &str) -> String {
    let started = Instant::now();
    let back = lab.zerolab(&["unshelve"], &["n1"]);
    let took = started.elapsed();
    assert_eq!(back.code, 0, "{back:#?}");
    assert!(back.stdout.starts_with("n1: unshelved (") && back.stdout.contains("healthy"), "{back:#?}");
    eprintln!("unshelve of a vagrant machine ({how}) to agent healthy took {:.1}s", took.as_secs_f64());
    back.stdout
}

/// One command on n1; its stdout without the `n1: ` prefix.
fn exec_n1(lab: &VmLab, command: &str) -> String {
    let run = lab.zerolab(&["exec"], &["--nodes", "n1", "--", command]);
    assert_eq!(run.code, 0, "{command}: {run:#?}");
    run.stdout.lines().find_map(|l| l.strip_prefix("n1: ")).unwrap_or_default().trim().to_owned()
}

/// The SSH banner at `address`, if one comes within 3 s.
fn banner(address: &str) -> Option<String> {
    let address: SocketAddr = address.parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut buffer = [0u8; 64];
    let read = stream.read(&mut buffer).ok().filter(|n| *n > 0)?;
    Some(String::from_utf8_lossy(&buffer[..read]).into_owned())
}
