//! What the end-to-end tests of `provider: pxe` share (`install.rs`, `services_e2e.rs`):
//! a lab in a temp dir ([`PxeLab`]: its cluster file, its lab root, `zerolab` run as the
//! real binary, taken down on drop also when a test fails), the boot server's events
//! (`LAB/pxe/events.jsonl`), and what a lab must not leave behind after `down`
//! ([`assert_nothing_left`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::machine::qmp;

/// What one `zerolab` command printed, how it exited and how long it took.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Panics with everything it printed unless it exited 0.
    pub fn ok(self, what: &str) -> Run {
        assert_eq!(self.code, Some(0), "{what} failed:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A `pxe` lab in a temp dir; `zerolab down` on drop.
pub struct PxeLab {
    dir: tempfile::TempDir,
    pub name: String,
    pub file: PathBuf,
}

impl PxeLab {
    /// Lab `name` from cluster file `text`, the file written in `room_dir` (relative
    /// paths in it, e.g. a BMC's password file, resolve there).
    pub fn new(name: &str, room_dir: &Path, text: &str) -> PxeLab {
        let dir = tempfile::tempdir().unwrap();
        let file = room_dir.join(format!("{name}.yaml"));
        std::fs::write(&file, text).unwrap();
        PxeLab { dir, name: name.to_owned(), file }
    }

    /// The lab's directory.
    pub fn lab_dir(&self) -> PathBuf {
        self.dir.path().join("labs").join(&self.name)
    }

    /// `LAB/pxe`.
    pub fn pxe_dir(&self) -> PathBuf {
        self.lab_dir().join("pxe")
    }

    /// `zerolab COMMAND FILE ARGS... --lab-root ROOT` (with `--agent` for `up` and `unshelve`).
    pub fn zerolab(&self, command: &str, args: &[&str]) -> Run {
        self.run(None, command, args)
    }

    /// [`zerolab`](Self::zerolab), killed after `limit` when given (`timeout`).
    fn run(&self, limit: Option<Duration>, command: &str, args: &[&str]) -> Run {
        let mut cmd = match limit {
            Some(limit) => {
                let mut cmd = Command::new("timeout");
                cmd.arg(limit.as_secs().to_string()).arg(env!("CARGO_BIN_EXE_zerolab"));
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_zerolab")),
        };
        cmd.arg(command);
        // `zerolab power ACTION FILE NODE...`; options before the rest (`exec ... -- CMD`).
        let rest = match command {
            "power" => {
                cmd.arg(args[0]);
                &args[1..]
            }
            _ => args,
        };
        cmd.arg(&self.file).arg("--lab-root").arg(self.dir.path().join("labs"));
        if command == "up" || command == "unshelve" {
            cmd.arg("--agent").arg(agent());
        }
        cmd.args(rest);
        let start = Instant::now();
        let output = cmd.output().unwrap();
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            took: start.elapsed(),
        };
        eprintln!("zerolab {command} {args:?}: exit {:?} in {:.1}s", run.code, run.took.as_secs_f64());
        run
    }

    /// `zerolab exec FILE -- CMD` until it succeeds or `deadline` passes; its stdout and
    /// how long it took.
    pub fn exec_until_ok(&self, command: &str, deadline: Duration) -> (String, Duration) {
        let start = Instant::now();
        loop {
            // A connection to a machine that was reset may hang until TCP gives up on it.
            let run = self.run(Some(Duration::from_secs(90)), "exec", &["--", command]);
            if run.code == Some(0) {
                return (run.stdout, start.elapsed());
            }
            assert!(
                start.elapsed() < deadline,
                "`zerolab exec -- {command}` did not succeed within {}s; last:\n{}\n{}",
                deadline.as_secs(),
                run.stdout,
                run.stderr
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }

    /// The boot server's events of `node` with step `step` so far.
    pub fn events(&self, node: &str, step: &str) -> usize {
        self.event_times(node, step).len()
    }

    /// When (epoch ms) each event of `node` with step `step` was recorded.
    pub fn event_times(&self, node: &str, step: &str) -> Vec<u64> {
        let text = std::fs::read_to_string(self.pxe_dir().join("events.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["node"] == node && e["step"] == step)
            .filter_map(|e| e["ms"].as_u64())
            .collect()
    }

    /// The `n`th install of `node` (from 0) in phases: the live kernel fetched to the live
    /// system's sshd, the image written, rebooted to the installed system answering SSH
    /// at `answered` (epoch ms).
    pub fn install_phases(&self, node: &str, n: usize, answered: u64) -> String {
        let at = |step: &str| self.event_times(node, step).get(n).copied().unwrap_or_default();
        let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
        let (kernel, live, installing, installed) = (at("kernel"), at("live"), at("installing"), at("installed"));
        format!(
            "kernel to live sshd {:.0}s, image write {:.0}s, installed to SSH from disk {:.0}s",
            secs(kernel, live),
            secs(installing, installed),
            secs(installed, answered)
        )
    }

    /// Waits until `node` has more than `count` events `step`.
    pub fn wait_event(&self, node: &str, step: &str, count: usize, deadline: Duration) {
        let start = Instant::now();
        while self.events(node, step) <= count {
            assert!(start.elapsed() < deadline, "no new {step} event of {node} within {}s", deadline.as_secs());
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for PxeLab {
    fn drop(&mut self) {
        if self.lab_dir().exists() {
            let run = self.zerolab("down", &[]);
            if run.code != Some(0) {
                eprintln!("down at the end failed: {}{}", run.stdout, run.stderr);
            }
        }
    }
}

/// `target/<profile>/zerolab-agent`.
pub fn agent() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("zerolab-agent")
}

/// Whether the agent binary is there to install; otherwise says that `test` is skipped.
pub fn agent_present(test: &str) -> bool {
    if !agent().is_file() {
        eprintln!("skipped: {test} installs the agent: cargo build --release -p zerolab-agent");
        return false;
    }
    true
}

/// After `down`: no boot server or dnsmasq of the lab runs, no iptables rule carries its
/// comment, the server's address is off `interface`, `LAB/pxe` is gone, and every QMP
/// socket in `machines` says its machine does not run.
pub fn assert_nothing_left(lab: &PxeLab, interface: &str, server: &str, machines: &[PathBuf]) {
    let pxe = lab.pxe_dir();
    let pxe_text = pxe.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let ours = cmdline.contains(&pxe_text) && (cmdline.contains("pxe-serve") || cmdline.contains("dnsmasq"));
        assert!(!ours, "still running after down: {cmdline}");
    }
    let rules = Command::new("iptables-save").output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    let comment = format!("zerolab:{}", lab.name);
    assert!(!rules.lines().any(|l| l.contains(&comment)), "rules of {comment} left:\n{rules}");
    let addresses = Command::new("ip").args(["-4", "-o", "addr", "show", "dev", interface]).output().unwrap();
    let addresses = String::from_utf8_lossy(&addresses.stdout);
    assert!(!addresses.contains(&format!(" {server}/")), "{server} still on {interface}: {addresses}");
    assert!(!pxe.exists(), "{} is still there", pxe.display());
    for socket in machines {
        let status = qmp(socket, "query-status", None).unwrap();
        assert_ne!(status["status"], "running", "{} still runs", socket.display());
    }
}
