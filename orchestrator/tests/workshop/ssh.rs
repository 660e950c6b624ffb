//! Attendees' own SSH keys through forwarded ports: each reaches their own node with
//! their key; their key is refused on another attendee's port; a bad key is refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use zerolab::workshop::AccessError;

use crate::harness::{prerequisites, until, Case, Harness};

/// This machine's first global IPv4 address outside the labs' networks (forwarded
/// ports are reached at the machine's own addresses, not at 127.0.0.1).
fn host_address() -> Option<String> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(3)?.split('/').next().map(str::to_owned))
        .find(|address| !address.starts_with("10.21"))
}

fn keygen(dir: &Path, name: &str) -> String {
    let key = dir.join(name);
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(made.success());
    std::fs::read_to_string(key.with_extension("pub")).unwrap()
}

fn ssh(dir: &Path, key: &str, host: &str, port: u16) -> std::process::Output {
    Command::new("ssh")
        .arg("-i")
        .arg(dir.join(key))
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes", "-p", &port.to_string()])
        .arg(format!("root@{host}"))
        .arg("hostname")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_key_reaches_its_own_node_only() {
    let Some(agent) = prerequisites("workshop ssh") else { return };
    let Some(host) = host_address() else {
        eprintln!("skipped: workshop ssh needs a global IPv4 address on this machine");
        return;
    };
    let h = Harness::new(Case::Ssh, agent, "capacity: 2\npool: {warm: 2, reserve: 0}\n", "  - {title: One}\n");
    let ws = h.open(|_| {});
    until(Duration::from_secs(60), "two warm labs", async || (ws.overview().await.pool.free == 2).then_some(())).await;
    let (ann, bob) = (ws.join("sesame", "Ann").await.unwrap(), ws.join("sesame", "Bob").await.unwrap());
    let keys = h.dir.path();
    let (ann_key, bob_key) = (keygen(keys, "ann"), keygen(keys, "bob"));

    let bad = ws.add_ssh_key(&ann.token, &format!("command=\"sh\" {ann_key}")).await.unwrap_err();
    assert!(matches!(bad, AccessError::BadKey { .. }), "{bad}");
    let ann_port = ws.add_ssh_key(&ann.token, &ann_key).await.unwrap().port;
    let bob_port = ws.add_ssh_key(&bob.token, &bob_key).await.unwrap().port;
    assert_ne!(ann_port, bob_port);
    let ann_lab = ws.view(&ann.token).await.unwrap().lab.unwrap().name;
    let bob_lab = ws.view(&bob.token).await.unwrap().lab.unwrap().name;

    let ok = ssh(keys, "ann", &host, ann_port);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).trim().ends_with("node"), "{ok:?}");
    let own = ssh(keys, "bob", &host, bob_port);
    assert!(own.status.success(), "{own:?}");
    // Ann's key on Bob's port: Bob's node refuses it.
    let refused = ssh(keys, "ann", &host, bob_port);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Permission denied"), "{refused:?}");
    assert_ne!(ann_lab, bob_lab);

    // Reset takes Ann's port away.
    ws.reset(ann.attendee).await.unwrap();
    until(Duration::from_secs(30), "Ann's rules gone", async || {
        let rules = Command::new("iptables").args(["-t", "nat", "-S"]).output().ok()?;
        (!String::from_utf8_lossy(&rules.stdout).contains(&format!("--dport {ann_port} "))).then_some(())
    })
    .await;
    assert!(!ssh(keys, "ann", &host, ann_port).status.success());
}
