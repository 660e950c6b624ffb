//! Shelving a live pxe machine of a lab that is up (run inside the live lab test, on its
//! BIOS machine n1: no lab boot of its own): `zerolab shelve` (frozen) is refused in one
//! line; `zerolab shelve --offload` powers it off (QMP says so, SSH does not answer,
//! `status`, `exec` and `ssh` say it is shelved); `unshelve` powers it on and follows its
//! network boot to the agent: the same address and host key (the one zerolab made), a
//! fresh live system (a file written before is gone: it was in RAM). Prints how long the
//! power-on to agent ready took.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::e2e::PxeLab;

/// Shelves and unshelves n1 (10.99.16.11), whose QMP socket is `qmp`.
pub fn power_off_and_on_come_back(lab: &PxeLab, qmp: &Path) {
    let wrote = lab.zerolab("exec", &["--nodes", "n1", "--", "echo gone > /root/shelf"]);
    assert_eq!(wrote.code, Some(0), "{wrote:#?}");
    let key = std::fs::read_to_string(lab.pxe_dir().join("keys/n1/ssh_host_ed25519_key.pub")).unwrap();
    let key = key.split_whitespace().nth(1).unwrap().to_owned();

    let frozen = lab.zerolab("shelve", &["n1"]);
    assert_eq!(frozen.code, Some(1), "{frozen:#?}");
    assert!(frozen.stderr.starts_with("n1: shelve is not supported by the pxe provider: its power control"));

    let shelved = lab.zerolab("shelve", &["--offload", "n1"]);
    assert_eq!((shelved.code, shelved.stdout.as_str()), (Some(0), "n1: shelved_offloaded\n"), "{shelved:#?}");
    assert_eq!(crate::lab::qmp_status(qmp), "prelaunch", "switched off");
    assert!(banner("10.99.16.11:22").is_none(), "sshd answers on a machine switched off");
    let status = lab.zerolab("status", &[]);
    let row = status.stdout.lines().find(|l| l.starts_with("n1 ")).unwrap_or_default().to_owned();
    assert!(
        status.code == Some(1) && row.contains("shelved_offloaded") && row.contains("off (shelved)"),
        "{status:#?}"
    );
    let hint = format!("n1 is shelved: zerolab unshelve {} n1", lab.file.display());
    let exec = lab.zerolab("exec", &["--nodes", "n1", "--", "true"]);
    assert!(exec.code == Some(1) && exec.stderr.contains(&hint), "{exec:#?}");
    let login = lab.zerolab("ssh", &["n1", "--", "true"]);
    assert!(login.code == Some(2) && login.stderr.contains(&hint), "{login:#?}");

    let back = lab.zerolab("unshelve", &["n1"]);
    assert_eq!(back.code, Some(0), "{back:#?}");
    assert!(back.stdout.starts_with("n1: unshelved (") && back.stdout.contains("healthy"), "{back:#?}");
    eprintln!("unshelve of a live pxe machine (power on, network boot, agent) took {:.1}s", back.took.as_secs_f64());
    let scan = Command::new("ssh-keyscan").args(["-t", "ed25519", "10.99.16.11"]).output().unwrap();
    assert!(String::from_utf8_lossy(&scan.stdout).contains(&key), "the same host key as before");
    let fresh = lab.zerolab("exec", &["--nodes", "n1", "--", "test -e /root/shelf || echo fresh"]);
    assert!(fresh.code == Some(0) && fresh.stdout.contains("n1: fresh"), "a live system keeps nothing: {fresh:#?}");
    let status = lab.zerolab("status", &[]);
    assert_eq!(status.code, Some(0), "every node ready again: {status:#?}");
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
