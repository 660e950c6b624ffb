//! A real `netns` lab for the orchestrator's end-to-end tests: a temp dir
//! holding a copy of examples/netns-3.yaml (own lab name and subnet, so test
//! binaries can run in parallel) and the lab root, a `zerolab` command builder
//! (also for other cluster files: [`zerolab`]), and a drop guard that takes the
//! lab down even when a test fails; what the tests read of a node from the
//! host: its pid files, its processes, `status` rows; and for the job tests, guests and
//! job files written beside the lab, runs in the background, summary rows.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use zerolab::cluster::Cluster;
use zerolab::lab::Lab;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `target/<profile>/zerolab-agent`, beside this test's `target/<profile>/deps/`.
pub fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("zerolab-agent");
    path.is_file().then_some(path)
}

/// The agent binary when `test` can run here; otherwise says why it is skipped.
pub fn prerequisites(test: &str) -> Option<PathBuf> {
    if !is_root() {
        eprintln!("skipped: {test} on a netns lab needs root (CI runs it as root)");
        return None;
    }
    let agent = agent_binary();
    if agent.is_none() {
        eprintln!("skipped: no zerolab-agent beside the test binaries; run `cargo build --release -p zerolab-agent`");
    }
    agent
}

/// Builds a guest with the SDK's zvm-gcc.
pub fn zvm_gcc(source: &Path, out: &Path) {
    let zvm_gcc = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/zvm-gcc");
    let status = Command::new(zvm_gcc).arg("-O2").arg(source).arg("-o").arg(out).status().unwrap();
    assert!(status.success(), "zvm-gcc {}", source.display());
}

/// What one `zerolab` run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code and both outputs, showing everything on a mismatch.
    pub fn expect(&self, code: i32, stdout: &str, stderr: &str) {
        assert_eq!((self.code, self.stdout.as_str(), self.stderr.as_str()), (code, stdout, stderr), "{self:#?}");
    }
}

/// `zerolab ARGS...` run in `dir`, so diagnostics name files as written there.
pub fn zerolab_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_zerolab")).args(args).current_dir(dir).output().expect("run zerolab");
    Run {
        code: output.status.code().expect("exit code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// A temp dir holding the cluster file and the lab root; takes the lab down on drop.
pub struct LabHarness {
    dir: tempfile::TempDir,
    pub file: PathBuf,
    pub cluster: Cluster,
    agent: PathBuf,
}

impl LabHarness {
    /// examples/netns-3.yaml as lab `<prefix><x>` on subnet 10.77.<x>.0/24.
    pub fn new(prefix: &str, x: u8, agent: PathBuf) -> LabHarness {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/netns-3.yaml")).unwrap();
        assert!(text.contains("name: netns-3\n") && text.contains("10.77.0.0/24"));
        let text = text
            .replace("name: netns-3\n", &format!("name: {prefix}{x}\n"))
            .replace("10.77.0.0/24", &format!("10.77.{x}.0/24"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        fs::write(&file, &text).unwrap();
        let cluster = zerolab::cluster::from_str(&text, "lab.yaml").unwrap();
        LabHarness { dir, file, cluster, agent }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn lab(&self) -> Lab {
        Lab::at(self.root(), self.cluster.name()).unwrap()
    }

    /// `zerolab COMMAND... FILE --lab-root ROOT ARGS...` (`up` also gets `--agent`).
    pub fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        zerolab(command, &self.file, &self.root(), &self.agent, args)
    }

    /// Makes the lab's namespace hosts (each with its sshd), without installing anything
    /// on them: what `up` does before it provisions.
    pub fn create_nodes(&self) {
        let lab = Lab::open_or_create(self.root(), self.cluster.name()).unwrap();
        zerolab::provider::netns::create(&lab, &self.cluster, &|_: &str, _| {}).unwrap();
    }
}

/// Builds guest `name` from C `source` into the lab's directory.
pub fn guest(lab: &LabHarness, name: &str, source: &str) {
    let file = lab.path(&format!("{name}.c"));
    fs::write(&file, source).unwrap();
    zvm_gcc(&file, &lab.path(name));
}

/// Writes job file `name.yaml` into the lab's directory; its path.
pub fn job(lab: &LabHarness, name: &str, text: &str) -> String {
    let path = lab.path(&format!("{name}.yaml"));
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// `zerolab run FILE JOB` started, its stdout piped.
pub fn run_in_background(lab: &LabHarness, job: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["run"])
        .arg(&lab.file)
        .arg(job)
        .arg("--lab-root")
        .arg(lab.root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The summary row of `instance` in a `zerolab run`'s output: its whitespace-separated cells.
pub fn row<'a>(run: &'a Run, instance: &str) -> Vec<&'a str> {
    let line = run.stdout.lines().find(|l| l.starts_with(&format!("{instance} "))).unwrap_or_else(|| {
        panic!("no row for {instance}: {run:#?}");
    });
    line.split_whitespace().collect()
}

/// `zerolab COMMAND... FILE --lab-root ROOT ARGS...` (`up` also gets `--agent AGENT`).
pub fn zerolab(command: &[&str], file: &Path, root: &Path, agent: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerolab"));
    cmd.args(command).arg(file).arg("--lab-root").arg(root);
    if command == ["up"] {
        cmd.arg("--agent").arg(agent);
    }
    let output = cmd.args(args).output().unwrap();
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `zerolab::up::down`, from outside a runtime; the error as one line.
pub fn down(root: &Path, cluster: &Cluster) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime
        .block_on(zerolab::up::down(root, cluster, &zerolab::lab::LockWait::default()))
        .map_err(|e| zerolab_sandbox::session::error_chain(&e))
}

impl Drop for LabHarness {
    fn drop(&mut self) {
        if let Err(e) = down(&self.root(), &self.cluster) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A pid file of `node`'s agent, read from the host through the node's private /run.
pub fn pid(lab: &LabHarness, node: &str, file: &str) -> i32 {
    let path = lab.lab().nodes_dir().join(node).join("run/zerolab").join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().parse().unwrap()
}

/// Running, not a zombie (a zombie holds no namespace; its parent reaps it later).
pub fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

pub fn wait_dead(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The status table's rows: (node, state, agent version).
pub fn status_rows(run: &Run) -> Vec<(String, String, String)> {
    let mut lines = run.stdout.lines();
    assert!(lines.next().unwrap().starts_with("NODE "), "{run:#?}");
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[0].to_owned(), cells[3].to_owned(), cells[4].to_owned())
        })
        .collect()
}
