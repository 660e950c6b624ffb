//! Lab services for real: a keeper process (the `zerolab` binary) runs a service, which is
//! killed and restarted, health-checked, listed by `zerolab status`, logged to
//! `LAB/services/NAME.log`, stopped by `zerolab down`, and dies with a killed keeper; a
//! service that cannot start, or keeps exiting, says why. Needs no root: the lab is an
//! `ssh` lab whose one node is never reached (nothing listens on its port).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::keeper::{Health, Keeper, ServiceSpec, ServiceState, ServiceStatus};

use crate::harness::wait_dead;

/// A lab directory under a temp root, with the `ssh` cluster file naming it.
struct Lab {
    dir: tempfile::TempDir,
    name: String,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: ssh\n\
             nodes:\n  - {{name: a, address: 127.0.0.1, port: 1, user: root, key: /nonexistent/key}}\n"
        );
        fs::write(dir.path().join("lab.yaml"), text).unwrap();
        fs::create_dir_all(dir.path().join("labs").join(name)).unwrap();
        Lab { dir, name: name.to_owned() }
    }

    fn lab_dir(&self) -> PathBuf {
        self.dir.path().join("labs").join(&self.name)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `zerolab COMMAND lab.yaml --lab-root labs`: exit code, stdout, stderr.
    fn zerolab(&self, command: &str) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
            .args([command, "lab.yaml", "--lab-root", "labs"])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (output.status.code().unwrap(), text(output.stdout), text(output.stderr))
    }

    async fn keeper(&self) -> Keeper {
        Keeper::open(&self.lab_dir(), Path::new(env!("CARGO_BIN_EXE_zerolab"))).await.unwrap()
    }
}

fn spec(name: &str, script: &str, health: Health) -> ServiceSpec {
    ServiceSpec { name: name.into(), command: vec!["sh".into(), "-c".into(), script.into()], health }
}

fn parent(pid: u32) -> u32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn kill(pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
}

/// The status of `name` once `check` holds for it (within 10 s).
async fn eventually(keeper: &Keeper, name: &str, what: &str, check: impl Fn(&ServiceStatus) -> bool) -> ServiceStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let services = keeper.services().await.unwrap();
        let status = services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name}: {services:?}"));
        if check(status) {
            return status.clone();
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The service log at `path` once it holds `line` (the service writes it after it started,
/// on its own time: a busy machine may not have run it yet when `start_service` returns).
fn log_with(path: &Path, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap();
        if text.contains(line) {
            return text;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {line:?} in {}: {text}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_restarted_health_checked_listed_logged_and_stopped_by_down() {
    let lab = Lab::new("svc1");
    let keeper = lab.keeper().await;
    let ticker = keeper.start_service(&spec("ticker", "echo up $$; exec sleep 600", Health::Running)).await.unwrap();
    assert_eq!((ticker.state.clone(), ticker.restarts), (ServiceState::Running, 0));
    let first = ticker.pid.unwrap();
    let log = lab.lab_dir().join("services/ticker.log");
    assert_eq!(ticker.log, log);
    log_with(&log, &format!("up {first}\n"));
    // Started again with the same spec: kept, not restarted.
    let again = keeper.start_service(&spec("ticker", "echo up $$; exec sleep 600", Health::Running)).await.unwrap();
    assert_eq!(again.pid, Some(first));

    // Killed: restarted after a short wait, and the log says so.
    kill(first);
    let restarted =
        eventually(&keeper, "ticker", "restarted", |s| s.state == ServiceState::Running && s.pid != Some(first)).await;
    assert_eq!(restarted.restarts, 1);
    let second = restarted.pid.unwrap();
    let text = log_with(&log, &format!("up {second}\n"));
    assert!(text.contains("zerolab keeper: killed by signal 9; restarting in 100ms\n"), "{text}");

    // Health: a service whose check fails is unhealthy, and healthy again when it passes.
    let ready = lab.file("ready");
    fs::write(&ready, "").unwrap();
    let check = Health::Command { command: vec!["test".into(), "-e".into(), ready.display().to_string()] };
    let checked = keeper.start_service(&spec("checked", "exec sleep 600", check)).await.unwrap();
    assert_eq!(checked.state, ServiceState::Running);
    fs::remove_file(&ready).unwrap();
    eventually(&keeper, "checked", "unhealthy", |s| s.state == ServiceState::Unhealthy).await;
    fs::write(&ready, "").unwrap();
    eventually(&keeper, "checked", "healthy again", |s| s.state == ServiceState::Running).await;

    // `zerolab status` lists the services after the nodes.
    let (code, stdout, _) = lab.zerolab("status");
    assert_eq!(code, 1, "the node is not reachable: {stdout}");
    let services: Vec<Vec<&str>> =
        stdout.lines().skip_while(|l| !l.starts_with("SERVICE ")).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(services[0], ["SERVICE", "STATE", "PID", "RESTARTS", "LOG", "/", "CAUSE"], "{stdout}");
    let checked_log = lab.lab_dir().join("services/checked.log").display().to_string();
    assert_eq!(services[1][..4], ["checked", "running", &checked.pid.unwrap().to_string(), "0"], "{stdout}");
    assert_eq!(services[1][4], checked_log);
    assert_eq!(services[2][..4], ["ticker", "running", &second.to_string(), "1"], "{stdout}");

    // `down` stops the keeper and its services with it: nothing is left running.
    let keeper_pid = parent(second);
    let (code, stdout, stderr) = lab.zerolab("down");
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "lab svc1: down\n", ""));
    for pid in [second, checked.pid.unwrap(), keeper_pid] {
        wait_dead(pid);
    }
    assert!(!lab.lab_dir().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn services_die_with_a_killed_keeper() {
    let lab = Lab::new("svc2");
    let keeper = lab.keeper().await;
    let service = keeper.start_service(&spec("orphan", "exec sleep 600", Health::Running)).await.unwrap();
    let pid = service.pid.unwrap();
    let keeper_pid = parent(pid);
    let cmdline = fs::read_to_string(format!("/proc/{keeper_pid}/cmdline")).unwrap();
    assert!(cmdline.contains("keeper"), "the service's parent is the keeper: {cmdline:?}");
    kill(keeper_pid);
    wait_dead(pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_cannot_start_or_keeps_exiting_says_why() {
    let lab = Lab::new("svc3");
    let keeper = lab.keeper().await;
    let missing =
        ServiceSpec { name: "missing".into(), command: vec!["/nonexistent/dnsmasq".into()], health: Health::Running };
    let err = keeper.start_service(&missing).await.unwrap_err().to_string();
    let log = lab.lab_dir().join("services/missing.log");
    assert_eq!(
        err,
        format!(
            "service missing: cannot start /nonexistent/dnsmasq: No such file or directory (os error 2); check the \
             command (see {})",
            log.display()
        )
    );

    // Never healthy: the start fails with what was seen last.
    let never = Health::Command { command: vec!["false".into()] };
    let err = keeper.start_service(&spec("never", "exit 3", never)).await.unwrap_err().to_string();
    let log = lab.lab_dir().join("services/never.log");
    assert_eq!(
        err,
        format!("service never did not become healthy within 10s: exited with status 3; see {}", log.display())
    );

    // Healthy at first, then exiting again and again: restarted a bounded number of times.
    let flaky = keeper.start_service(&spec("flaky", "sleep 0.2; exit 4", Health::Running)).await.unwrap();
    assert_eq!(flaky.state, ServiceState::Running);
    let failed = eventually(&keeper, "flaky", "failed", |s| matches!(s.state, ServiceState::Failed { .. })).await;
    let log = lab.lab_dir().join("services/flaky.log");
    let cause = format!("exited with status 4, after 5 restarts in a row; see {}", log.display());
    assert_eq!((failed.state, failed.restarts, failed.pid), (ServiceState::Failed { cause }, 5, None));
    let (code, _, _) = lab.zerolab("down");
    assert_eq!(code, 0);
}
