//! What the lab benchmarks share (`lab.rs`, `wordcount.rs`): medians, checked commands,
//! knobs from the environment, a netns lab made with `zerolab up`, and the runner's
//! `elapsed=` timings read back from its tracing lines.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const ZEROLAB: &str = env!("CARGO_BIN_EXE_zerolab");

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// True when running as root (namespace hosts need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `command`, which must succeed; returns its stdout and how long it took.
pub fn run(command: &mut Command) -> (String, Duration) {
    let started = Instant::now();
    let output = command.stdin(Stdio::null()).output().expect("benchmark command runs");
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (String::from_utf8_lossy(&output.stdout).into_owned(), elapsed)
}

/// The release `zerolab-agent` beside the benchmark's `zerolab`, which `up` uploads.
pub fn agent() -> PathBuf {
    let agent = Path::new(ZEROLAB).with_file_name("zerolab-agent");
    assert!(agent.is_file(), "build the agent first: cargo build --release -p zerolab-agent");
    agent
}

/// A netns lab for a benchmark: its cluster file and lab root in `dir`.
pub struct Lab {
    pub name: String,
    pub file: PathBuf,
    pub root: PathBuf,
    pub nodes: usize,
}

impl Lab {
    /// Lab `name` of `nodes` nodes on subnet 10.OCTET.0.0/24 (node n-I is 10.OCTET.0.(I+1)).
    pub fn new(dir: &Path, name: &str, nodes: usize, octet: u8) -> Lab {
        let file = dir.join(format!("{name}.yaml"));
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: netns\n\
             network: {{subnet: 10.{octet}.0.0/24}}\nnodes:\n  - {{name: n, count: {nodes}}}\n"
        );
        fs::write(&file, text).unwrap();
        Lab { name: name.to_owned(), file, root: dir.join("labs"), nodes }
    }

    pub fn zerolab(&self, command: &str) -> Command {
        let mut cmd = Command::new(ZEROLAB);
        cmd.arg(command).arg(&self.file).arg("--lab-root").arg(&self.root);
        cmd
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    pub fn up(&self, agent: &Path) -> Duration {
        run(self.zerolab("up").arg("--agent").arg(agent)).1
    }

    pub fn exec(&self, shell: &str) -> Duration {
        run(self.zerolab("exec").arg("--").arg(shell)).1
    }

    /// A guard that takes the lab down when dropped: when the benchmark ends, and when a
    /// check panics (a lab is left behind otherwise: its namespaces, sshd and agents).
    pub fn down_on_drop(&self) -> Down<'_> {
        Down(self)
    }
}

/// See [`Lab::down_on_drop`].
pub struct Down<'a>(&'a Lab);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let status = self.0.zerolab("down").stdout(std::process::Stdio::null()).status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("benchmark: `zerolab down` failed; take the lab {} down by hand", self.0.name);
        }
    }
}

/// The `elapsed=…` of a tracing line (`elapsed=83.8885ms`, `elapsed=1.2s`).
pub fn elapsed_in(line: &str) -> Duration {
    let text = line.split("elapsed=").nth(1).unwrap().split_whitespace().next().unwrap();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(us) = text.strip_suffix("µs") {
        (us, 1e-6)
    } else {
        (text.trim_end_matches('s'), 1.0)
    };
    Duration::from_secs_f64(number.parse::<f64>().unwrap() * scale)
}
