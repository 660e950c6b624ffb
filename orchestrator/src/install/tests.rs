//! The rendered unit and the node-side scripts, run for real with `sh` against a
//! temporary directory standing in for the node's paths. This machine has no systemd,
//! so `systemctl` is a recording stand-in there (the real one is exercised on Vagrant
//! nodes); the supervisor branch and the remove script run for real.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

/// Directive lines (`Key=value`) of a unit, comments and sections left out.
fn directives(unit: &str) -> Vec<&str> {
    unit.lines().filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.is_empty()).collect()
}

#[test]
fn unit_runs_the_agent_on_its_paths_and_restarts_it() {
    let unit = unit_file(&Paths::NODE).unwrap();
    assert_eq!(
        directives(&unit),
        [
            "Description=zerolab node agent",
            "Type=simple",
            "ExecStart=/var/lib/zerolab/bin/zerolab-agent --socket /run/zerolab/agent.sock --state-dir /var/lib/zerolab",
            "Restart=always",
            "RestartSec=1",
            "RuntimeDirectory=zerolab",
            "RuntimeDirectoryMode=0700",
            "StateDirectory=zerolab",
            "StateDirectoryMode=0700",
            "UMask=0077",
            "LimitCORE=0",
            "WantedBy=multi-user.target",
        ]
    );
    // The template's own comment (why the hardening stops) is not in the unit.
    assert!(!unit.contains("NoNewPrivileges") && !unit.contains("{"), "{unit}");
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("skipped: systemd-analyze not found (apt-get install systemd); the unit was checked by content only");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // verify insists that ExecStart is executable: point it at this test binary.
    let exe = std::env::current_exe().unwrap();
    let paths = Paths { agent: exe.to_str().unwrap(), ..Paths::NODE };
    let path = dir.path().join("zerolab-agent.service");
    fs::write(&path, unit_file(&paths).unwrap()).unwrap();
    let output = Command::new(analyze).arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.is_empty(), "systemd-analyze verify: {stderr}");
}

#[test]
fn scripts_are_posix_shell() {
    let owner = owner();
    let claim = Claim { owner: &owner, adopt: false };
    for script in [
        start_script(&Paths::NODE, &claim, false, None),
        start_script(&Paths::NODE, &claim, true, None),
        remove_script(&Paths::NODE, &owner),
    ] {
        let script = script.unwrap();
        let output = Command::new("sh").arg("-n").arg("-c").arg(&script).output().unwrap();
        assert!(output.status.success(), "{}\n{script}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn refuses_paths_the_scripts_cannot_use_unquoted() {
    let owner = owner();
    let claim = Claim { owner: &owner, adopt: false };
    let err = start_script(&Paths { state_dir: "/var/lib/my state", ..Paths::NODE }, &claim, false, None).unwrap_err();
    assert!(err.source.to_string().contains("path `/var/lib/my state` is not absolute"), "{}", err.source);
    let err = remove_script(&Paths { run_dir: "run/zerolab", ..Paths::NODE }, &owner).unwrap_err();
    assert_eq!(err.name, "remove-agent.sh.j2");
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).ok_or(())
}

/// A stand-in node: the node's paths under a temporary directory, a `systemctl` that
/// records its calls and keeps `active`/`enabled` as files, and an "agent" that sleeps.
struct Node {
    dir: tempfile::TempDir,
    strings: Vec<String>,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        let bin = dir.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(dir.path().join("state/bin")).unwrap();
        fs::create_dir_all(dir.path().join("units")).unwrap();
        let systemctl = format!(
            "#!/bin/sh\necho \"$*\" >> {root}/systemctl.log\n\
             case \"$1\" in\n\
             is-active) [ -e {root}/active ];;\n\
             is-enabled) [ -e {root}/enabled ];;\n\
             enable) touch {root}/enabled; [ \"$2\" = --now ] && touch {root}/active; true;;\n\
             start|restart) touch {root}/active;;\n\
             disable) rm -f {root}/enabled {root}/active;;\n\
             esac\n"
        );
        executable(&bin.join("systemctl"), &systemctl);
        // Not `exec sleep`: the agent's command line must name zerolab-agent.
        executable(&dir.path().join("state/bin/zerolab-agent"), "#!/bin/sh\nsleep 30\n");
        let strings = ["state/bin/zerolab-agent", "run/agent.sock", "state", "run", "units/zl.service", "systemd"]
            .map(|p| format!("{root}/{p}"))
            .to_vec();
        Node { dir, strings }
    }

    fn paths(&self) -> Paths<'_> {
        let s = &self.strings;
        Paths { agent: &s[0], socket: &s[1], state_dir: &s[2], run_dir: &s[3], unit_path: &s[4], systemd_marker: &s[5] }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `script` as the node would, with the stand-in `systemctl` first on PATH;
    /// returns what it printed.
    fn run(&self, script: &str) -> String {
        let path = format!("{}:{}", self.path("bin").display(), std::env::var("PATH").unwrap_or_default());
        let output = Command::new("sh").arg("-c").arg(script).env("PATH", path).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn start(&self, restart: bool) -> String {
        let owner = owner();
        self.run(&start_script(&self.paths(), &Claim { owner: &owner, adopt: true }, restart, None).unwrap())
    }

    fn remove(&self) -> String {
        self.run(&remove_script(&self.paths(), &owner()).unwrap())
    }

    /// The `systemctl` calls since the last look.
    fn systemctl(&self) -> Vec<String> {
        let log = self.path("systemctl.log");
        let calls = fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_owned).collect();
        let _ = fs::remove_file(&log);
        calls
    }

    fn pid(&self, file: &str) -> i32 {
        fs::read_to_string(self.path("run").join(file)).unwrap().trim().parse().unwrap()
    }
}

/// A test that fails half-way leaves no supervisor behind: it leads its own process
/// group (`setsid -f`), so one signal stops it and its agent.
impl Drop for Node {
    fn drop(&mut self) {
        let pid = fs::read_to_string(self.path("run").join("supervisor.pid")).ok();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()).filter(|&pid| running(pid)) {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}

/// The lab these tests install for.
fn owner() -> Owner {
    Owner { lab: "demo".into(), dir: "/labs/demo".into(), host: "box".into() }
}

fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Running and not a zombie: a zombie's command line is empty.
fn running(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| !cmdline.is_empty())
}

#[test]
fn with_systemd_the_unit_is_installed_once_and_the_service_started_or_restarted() {
    let node = Node::new();
    fs::create_dir_all(node.path("systemd")).unwrap();
    let unit = node.paths().unit_path;
    let service = "zl.service";

    let (is_active, is_enabled) = (format!("is-active --quiet {service}"), format!("is-enabled --quiet {service}"));

    // First time: the unit is written, systemd reloaded, the service enabled and started.
    assert_eq!(node.start(true), "started");
    assert_eq!(fs::read_to_string(unit).unwrap(), unit_file(&node.paths()).unwrap());
    assert_eq!(
        node.systemctl(),
        ["daemon-reload".into(), is_active.clone(), format!("enable --now --quiet {service}")]
    );

    // Nothing changed: no reload, no restart.
    assert_eq!(node.start(false), "running");
    assert_eq!(node.systemctl(), [is_active.clone(), is_enabled.clone()]);

    // A new upload: restarted, the unit left alone.
    assert_eq!(node.start(true), "restarted");
    assert_eq!(node.systemctl(), [is_active.clone(), is_enabled.clone(), format!("restart {service}")]);

    // Stopped and disabled by someone: enabled and started again.
    for file in ["active", "enabled"] {
        fs::remove_file(node.path(file)).unwrap();
    }
    assert_eq!(node.start(false), "started");
    assert_eq!(node.systemctl(), [is_active.clone(), format!("enable --now --quiet {service}")]);

    // The unit edited on the node: rewritten, reloaded, restarted.
    fs::write(unit, "[Service]\nExecStart=/bin/false\n").unwrap();
    assert_eq!(node.start(false), "restarted");
    assert_eq!(fs::read_to_string(unit).unwrap(), unit_file(&node.paths()).unwrap());
    let reload = ["daemon-reload".into(), is_active, is_enabled, format!("restart {service}")];
    assert_eq!(node.systemctl(), reload);

    // Removed: disabled and stopped, the unit and the agent's directories gone.
    assert_eq!(node.remove(), "removed");
    assert_eq!(node.systemctl(), [format!("disable --now --quiet {service}"), "daemon-reload".into()]);
    for gone in [unit, node.paths().state_dir, node.paths().run_dir] {
        assert!(!Path::new(gone).exists(), "{gone}");
    }
}

#[test]
fn without_systemd_a_supervisor_keeps_the_agent_running_until_removed() {
    let node = Node::new();
    assert_eq!(node.start(false), "started");
    // The supervisor writes its pid, then the agent's, once it runs (the pid file may
    // be there a moment before the process it names is).
    let deadline = Instant::now() + Duration::from_secs(5);
    let (supervisor, agent) = loop {
        let pids = ["supervisor.pid", "agent.pid"].map(|file| {
            fs::read_to_string(node.path("run").join(file)).ok().and_then(|text| text.trim().parse::<i32>().ok())
        });
        if let [Some(supervisor), Some(agent)] = pids {
            if running(supervisor) && running(agent) {
                break (supervisor, agent);
            }
        }
        assert!(Instant::now() < deadline, "the supervisor did not start the agent: {pids:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(node.start(false), "running");
    assert_eq!(node.pid("supervisor.pid"), supervisor);

    // A new upload: the agent is stopped, and the supervisor starts it again.
    assert_eq!(node.start(true), "restarted");
    assert!(!running(agent));
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.pid("agent.pid") == agent {
        assert!(Instant::now() < deadline, "the supervisor did not restart the agent");
        std::thread::sleep(Duration::from_millis(10));
    }
    let agent = node.pid("agent.pid");

    assert_eq!(node.remove(), "removed");
    assert!(!running(supervisor) && !running(agent));
    assert!(!node.path("state").exists() && !node.path("run").exists());
    // systemd was never asked, and removing again is fine.
    assert!(node.systemctl().is_empty());
    assert_eq!(node.remove(), "removed");
}

#[test]
fn with_an_expected_sum_a_different_binary_asks_for_the_upload_and_starts_nothing() {
    let node = Node::new();
    let agent = fs::read(node.paths().agent).unwrap();
    let sum = Sha256::of_bytes(&agent);
    let other: Sha256 = "0".repeat(64).parse().unwrap();
    let owner = owner();
    let claim = Claim { owner: &owner, adopt: true };
    assert_eq!(node.run(&start_script(&node.paths(), &claim, false, Some(&other)).unwrap()), "upload");
    assert!(!node.path("run/supervisor.pid").exists(), "nothing started");
    assert_eq!(node.run(&start_script(&node.paths(), &claim, false, Some(&sum)).unwrap()), "started");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.path("run/agent.pid").exists() {
        assert!(Instant::now() < deadline, "the supervisor did not start the agent");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(running(node.pid("supervisor.pid")));
    assert_eq!(node.remove(), "removed");
    // What is not a sha256 never reaches the script: it is not a `Sha256`.
    assert!("not-a-sum".parse::<Sha256>().is_err());
}

#[test]
fn another_labs_agent_is_neither_started_nor_removed() {
    let node = Node::new();
    let other = Owner { lab: "other".into(), dir: "/elsewhere/other".into(), host: "box".into() };
    let claim = Claim { owner: &other, adopt: false };
    // The state directory holds an agent binary already: `other` claims it only with the file.
    assert_eq!(node.run(&start_script(&node.paths(), &claim, false, None).unwrap()), "unowned");
    assert!(!node.path("state/owner").exists() && !node.path("run/supervisor.pid").exists());
    assert_eq!(node.start(false), "started");
    assert_eq!(fs::read_to_string(node.path("state/owner")).unwrap(), owner().to_file());
    // The detached supervisor writes its pid a moment after the script ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    let supervisor = loop {
        let pid = fs::read_to_string(node.path("run/supervisor.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            break pid;
        }
        assert!(Instant::now() < deadline, "the supervisor did not start");
        std::thread::sleep(Duration::from_millis(10));
    };

    // Another lab: told whose it is, and nothing changes, also when it asks to restart.
    let (first, found) = answer(node.run(&start_script(&node.paths(), &claim, true, None).unwrap()).as_bytes());
    assert_eq!((first.as_str(), found), ("owned", Some(owner())));
    let (first, found) = answer(node.run(&remove_script(&node.paths(), &other).unwrap()).as_bytes());
    assert_eq!((first.as_str(), found), ("owned", Some(owner())));
    assert!(running(supervisor));
    assert_eq!(fs::read_to_string(node.path("state/owner")).unwrap(), owner().to_file());

    // Its own lab removes it.
    assert_eq!(node.remove(), "removed");
    assert!(!running(supervisor) && !node.path("state").exists());
}

#[test]
fn an_agent_without_owner_file_is_adopted_only_when_asked() {
    let node = Node::new();
    let owner = owner();
    let adopt = |adopt| start_script(&node.paths(), &Claim { owner: &owner, adopt }, false, None).unwrap();
    assert_eq!(node.run(&adopt(false)), "unowned");
    assert_eq!(node.run(&adopt(true)), "started");
    assert_eq!(fs::read_to_string(node.path("state/owner")).unwrap(), owner.to_file());
    // Now it is the lab's: found running, whatever `adopt` says.
    assert_eq!(node.run(&adopt(false)), "running");
    assert_eq!(node.remove(), "removed");
}

#[test]
fn the_hints_name_the_node_its_owner_and_the_paths_to_remove() {
    let err = InstallError::Owned { node: "n1".into(), owner: owner() };
    assert_eq!(
        err.to_string(),
        "node n1 is provisioned by lab demo (/labs/demo on box); take that lab down first, or use it"
    );
    assert_eq!(
        by_hand(&Paths::NODE),
        "as root on the node: `systemctl disable --now zerolab-agent.service` (without systemd: \
         `kill -TERM -$(cat /run/zerolab/supervisor.pid)`), then \
         `rm -rf /var/lib/zerolab /run/zerolab /etc/systemd/system/zerolab-agent.service`"
    );
}
