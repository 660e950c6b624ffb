//! What the VM tests share: the gate ([`prerequisites`]: `ZEROLAB_VM_TESTS=1`, root, the
//! tools, one test at a time), a lab in a temp dir ([`VmLab`]: its cluster file, its lab
//! root, `zerolab` run with a `vagrant` shim first on `PATH` that logs every call, and a
//! guard that takes the lab down when the test ends, also when it fails), and what is
//! left of a lab in libvirt, the firewall and the process table ([`leftovers`]).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// The repository's examples.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// One VM test at a time.
static VM_TESTS: Mutex<()> = Mutex::new(());

/// The turn of `test` when VM tests can run here; otherwise says why it is skipped.
pub fn prerequisites(test: &str) -> Option<MutexGuard<'static, ()>> {
    if std::env::var("ZEROLAB_VM_TESTS").as_deref() != Ok("1") {
        eprintln!(
            "skipped: {test} boots virtual machines; set ZEROLAB_VM_TESTS=1 after `sudo vagrant/setup` and `sudo \
             vagrant/build-box` (scripts/test does)"
        );
        return None;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "ZEROLAB_VM_TESTS=1 but not root: the VM tests need root");
    assert!(agent().is_file(), "no zerolab-agent beside the test binaries; cargo build --release -p zerolab-agent");
    Some(VM_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// `target/<profile>/zerolab-agent`.
pub fn agent() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("zerolab-agent")
}

/// What one command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A `vagrant` lab in a temp dir; taken down on drop.
pub struct VmLab {
    dir: tempfile::TempDir,
    pub name: String,
    pub file: PathBuf,
}

impl VmLab {
    /// Lab `name` from cluster file `text` (not made yet).
    pub fn new(name: &str, text: &str) -> VmLab {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{name}.yaml"));
        fs::write(&file, text).unwrap();
        let shim = dir.path().join("shim");
        fs::create_dir(&shim).unwrap();
        let log = dir.path().join("vagrant-calls");
        fs::write(&log, "").unwrap();
        let real = which("vagrant").expect("vagrant on PATH (vagrant/setup installs it)");
        let script = format!("#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n", log.display(), real.display());
        fs::write(shim.join("vagrant"), script).unwrap();
        Command::new("chmod").arg("+x").arg(shim.join("vagrant")).status().unwrap();
        VmLab { dir, name: name.to_owned(), file }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    pub fn lab_dir(&self) -> PathBuf {
        self.root().join(&self.name)
    }

    /// `zerolab COMMAND... FILE --lab-root ROOT ARGS...`, the shim first on `PATH`.
    pub fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        let mut cmd = self.command(command, args);
        let output = cmd.output().unwrap();
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The command [`zerolab`](Self::zerolab) runs, to start in the background.
    pub fn command(&self, command: &[&str], args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zerolab"));
        cmd.args(command).arg(&self.file).arg("--lab-root").arg(self.root());
        if command == ["up"] || command == ["unshelve"] {
            cmd.arg("--agent").arg(agent());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(self.dir.path().join("shim")).chain(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap()).args(args);
        cmd
    }

    /// Every `vagrant` call since the last reset, one per line (its arguments).
    pub fn shim_calls(&self) -> String {
        fs::read_to_string(self.dir.path().join("vagrant-calls")).unwrap()
    }

    pub fn shim_calls_reset(&self) {
        fs::write(self.dir.path().join("vagrant-calls"), "").unwrap();
    }

    /// `virsh ARGS` on the system connection; its stdout (it must succeed).
    pub fn virsh(&self, args: &[&str]) -> String {
        virsh(args)
    }
}

impl Drop for VmLab {
    fn drop(&mut self) {
        if self.lab_dir().join("vagrant").exists() {
            let down = self.zerolab(&["down"], &["--force", "--purge"]);
            if down.code != 0 {
                eprintln!("cleanup of lab {}: {down:#?}", self.name);
            }
        }
    }
}

/// `virsh -c qemu:///system ARGS`; its stdout (it must succeed).
pub fn virsh(args: &[&str]) -> String {
    let output = Command::new("virsh").arg("-c").arg("qemu:///system").args(args).output().unwrap();
    assert!(output.status.success(), "virsh {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Everything of a lab still there: domains, networks and volumes whose names start
/// with `prefix`, firewall rules naming its bridge (`bridge`: the bridge's name or a
/// prefix of it), QEMU processes of its domains.
pub fn leftovers(prefix: &str, bridge: &str) -> Vec<String> {
    let mut left = Vec::new();
    for (kind, args) in [("domain", &["list", "--all", "--name"][..]), ("network", &["net-list", "--all", "--name"])] {
        left.extend(virsh(args).lines().filter(|l| l.starts_with(prefix)).map(|l| format!("{kind} {l}")));
    }
    let volumes = virsh(&["vol-list", "default"]);
    left.extend(
        volumes
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|v| v.starts_with(prefix))
            .map(|v| format!("volume {v}")),
    );
    if let Ok(output) = Command::new("iptables-save").output() {
        let rules = String::from_utf8_lossy(&output.stdout).into_owned();
        left.extend(rules.lines().filter(|l| l.contains(bridge)).map(|l| format!("rule {l}")));
    }
    let processes = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let processes = String::from_utf8_lossy(&processes.stdout).into_owned();
    left.extend(
        processes
            .lines()
            .filter(|l| l.starts_with("/usr/bin/qemu-system") && l.contains(&format!("guest={prefix}")))
            .map(|l| format!("process {}", &l[..l.len().min(80)])),
    );
    left
}

/// The first `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|file| file.is_file())
}
