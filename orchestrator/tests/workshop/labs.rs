//! An attendee's lab over time: check scripts advance the step, extend adds time, reset
//! gives a different lab at once and takes the old one down, and a lab killed behind
//! the workshop's back is replaced, its attendee told; a lab idle longer than the
//! workshop's `idle` is shelved (its processes frozen) and back when its attendee returns.

use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::workshop::LabStateLabel;

use crate::harness::{prerequisites, until, Case, Harness};

fn namespace_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checks_extend_reset_and_a_killed_lab_replaced() {
    let Some(agent) = prerequisites("workshop labs") else { return };
    let steps = "  - {title: Touch, text: touch ~/done, check: test -f ~/done}\n  - {title: Two, check: 'false'}\n";
    let h =
        Harness::new(Case::Labs, agent, "capacity: 3\npool: {warm: 2, reserve: 1}\nduration: 10m\nextend: 5m\n", steps);
    let ws = h.open(|_| {});
    until(Duration::from_secs(60), "two warm labs", async || (ws.overview().await.pool.free == 2).then_some(())).await;
    let ann = ws.join("sesame", "Ann").await.unwrap();
    let first = ws.view(&ann.token).await.unwrap().lab.unwrap().name;

    // Check scripts run on her node: nothing done, then step 1 done once the file exists.
    let view = ws.check(&ann.token).await.unwrap();
    assert_eq!((view.step, view.steps[0].done), (0, false));
    let node = ws.terminal(&ann.token, None).await.unwrap();
    let ssh = Command::new("ssh")
        .args(["-i"])
        .arg(&node.key)
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p"])
        .arg(node.port.to_string())
        .arg(format!("{}@{}", node.user, node.address))
        .arg("touch ~/done")
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{ssh:?}");
    let view = ws.check(&ann.token).await.unwrap();
    assert_eq!((view.step, view.steps[0].done, view.steps[1].done), (1, true, false));

    // Extend: five more minutes.
    let before = ws.view(&ann.token).await.unwrap().time_left.unwrap();
    ws.extend(ann.attendee, None).await.unwrap();
    let after = ws.view(&ann.token).await.unwrap().time_left.unwrap();
    assert!(after >= before + Duration::from_secs(299), "{before:?} -> {after:?}");

    // Reset: another lab at once, the old one taken down in the background.
    let started = Instant::now();
    ws.reset(ann.attendee).await.unwrap();
    let view = ws.view(&ann.token).await.unwrap();
    let second = view.lab.expect("a lab at once").name;
    assert!(started.elapsed() < Duration::from_secs(2), "reset took {:?}", started.elapsed());
    assert_ne!(second, first);
    assert_eq!(view.step, 0, "a fresh lab: nothing done");
    until(Duration::from_secs(30), "the old lab gone", async || {
        (!namespace_exists(&format!("zl-{first}-node"))).then_some(())
    })
    .await;

    // Her node's processes killed behind the workshop's back: replaced, and she is told.
    let pids = Command::new("ip").args(["netns", "pids", &format!("zl-{second}-node")]).output().unwrap();
    let pids = String::from_utf8(pids.stdout).unwrap();
    assert!(!pids.trim().is_empty());
    let killed = Command::new("kill").arg("-9").args(pids.split_whitespace()).status().unwrap();
    assert!(killed.success());
    let view = until(Duration::from_secs(60), "a replacement lab", async || {
        let view = ws.view(&ann.token).await?;
        let lab = view.lab.as_ref()?;
        (lab.name != second && lab.state == LabStateLabel::Ready).then_some(view)
    })
    .await;
    assert!(view.notice.unwrap().contains("stopped answering"));
}

/// The freezer state of lab `lab`'s node (`FROZEN`, `THAWED`), when it has a freezer cgroup.
fn freezer_state(lab: &str) -> Option<String> {
    let path = format!("/sys/fs/cgroup/freezer/zerolab/zl-{lab}-node/freezer.state");
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_lab_is_shelved_and_back_when_its_attendee_returns() {
    let Some(agent) = prerequisites("workshop idle labs") else { return };
    let h =
        Harness::new(Case::Idle, agent, "capacity: 1\npool: {warm: 1, reserve: 0}\nidle: 3s\n", "  - {title: One}\n");
    let ws = h.open(|_| {});
    until(Duration::from_secs(60), "a warm lab", async || (ws.overview().await.pool.free == 1).then_some(())).await;
    let ann = ws.join("sesame", "Ann").await.unwrap();

    // Nothing from her for `idle`: her lab is shelved, its node's processes frozen.
    let lab = until(Duration::from_secs(30), "the idle lab shelved", async || {
        let lab = ws.view(&ann.token).await?.lab?;
        (lab.state == LabStateLabel::Shelved).then_some(lab.name)
    })
    .await;
    if let Some(state) = freezer_state(&lab) {
        assert_eq!(state, "FROZEN");
    }

    // She comes back: the same lab, running again within 2 s, her node answering.
    let started = Instant::now();
    ws.touch(&ann.token).await;
    let back = until(Duration::from_secs(10), "the lab back", async || {
        let back = ws.view(&ann.token).await?.lab?;
        (back.state == LabStateLabel::Ready).then_some(back.name)
    })
    .await;
    assert_eq!(back, lab);
    assert!(started.elapsed() < Duration::from_secs(2), "unshelve took {:?}", started.elapsed());
    if let Some(state) = freezer_state(&lab) {
        assert_eq!(state, "THAWED");
    }
    let node = ws.terminal(&ann.token, None).await.unwrap();
    let ssh = Command::new("ssh")
        .arg("-i")
        .arg(&node.key)
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p"])
        .arg(node.port.to_string())
        .arg(format!("{}@{}", node.user, node.address))
        .arg("true")
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{ssh:?}");
}
