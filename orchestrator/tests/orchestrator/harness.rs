//! What the suite's modules share: a real `netns` lab in a temp dir (a copy of
//! examples/netns-3.yaml under its own name and subnet from [`Subnet`], so labs of tests
//! running in parallel never meet) and its lab root, a `zerolab` command builder (also for
//! other cluster files: [`zerolab`]), and a drop guard that takes the lab down even when a
//! test fails; what the tests read of a node from the host: its pid files, its processes,
//! `status` rows; for the job tests, guests and job files written beside the lab, runs in
//! the background, summary rows; and the machine's programs, found on `PATH` ([`program`]).

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

/// Declares [`Subnet`]: one variant per netns lab, its discriminant the `x` of its subnet.
macro_rules! subnets {
    ($($(#[$doc:meta])* $variant:ident = $x:literal, $prefix:literal;)*) => {
        /// Every netns lab the suite makes, with its subnet `10.77.<x>.0/24` (the
        /// discriminant, so the compiler rejects two labs on one subnet) and its name
        /// `<prefix><x>` (unique with it). Tests run in parallel in one binary: a lab of
        /// its own is what keeps one test's namespaces, links and addresses out of
        /// another's. A new lab test adds its row here.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Subnet {
            $($(#[$doc])* $variant = $x,)*
        }

        impl Subnet {
            /// Every row of the table.
            pub const ALL: &[Subnet] = &[$(Subnet::$variant),*];

            fn prefix(self) -> &'static str {
                match self {
                    $(Subnet::$variant => $prefix,)*
                }
            }
        }
    };
}

subnets! {
    /// `ssh_provider`: the netns hosts under an `ssh` lab (that lab is `sp40-ssh`).
    SshProviderUp = 40, "sp";
    /// `ssh_provider`: one of its nodes unreachable.
    SshProviderPartial = 41, "sp";
    /// `login`: `zerolab ssh`.
    Login = 42, "zs";
    /// `faults`: a changed host key and a rejected login key.
    FaultsKeys = 50, "ft";
    /// `faults`: an unreachable node.
    FaultsUnreachable = 51, "ft";
    /// `faults`: an agent killed mid-request.
    FaultsAgentKilled = 52, "ft";
    /// `netns`: three nodes made and destroyed through the provider.
    NetnsThree = 101, "nt";
    /// `netns`: a create refused (its subnet taken) or failing.
    NetnsRefused = 102, "nt";
    /// `netns`: a create failing on a node that cannot start.
    NetnsFailing = 103, "nt";
    /// `netns`: the ignored many-node timing.
    NetnsMany = 104, "nt";
    /// `netns`: refused without root (nothing is made).
    NetnsNotRoot = 105, "nt";
    /// `up`: up, status and down.
    Up = 120, "up";
    /// `exec`: exec and inventory.
    Exec = 130, "ex";
    /// `sandbox`: sandbox run.
    Sandbox = 131, "sb";
    /// `keeper`: the connection keeper.
    Keeper = 132, "kp";
    /// `run`: run, jobs, logs and cancel.
    Run = 133, "rn";
    /// `examples`: the README's wordcount and 1 GiB pipeline.
    Examples = 134, "xm";
    /// `collect`: a 256 MiB output collected.
    Collect = 135, "co";
    /// `job_devices`: every kind of device (its HTTP server listens on the bridge).
    Devices = 136, "dv";
    /// `sandbox_follow`: 64 MiB followed.
    SandboxFollow = 137, "sf";
    /// `retry`: retries.
    Retry = 140, "rt";
    /// `sandbox`: sandbox run's stdin.
    SandboxStdin = 180, "ls";
    /// `scripting`: `--output json`, the run table and `graph` on a lab that is up.
    Scripting = 190, "gr";
    /// `labs`: one lab used from two working directories and a second lab root.
    LabsAnywhere = 150, "li";
    /// `labs`: reconciling with a cluster file that gained and lost a node.
    LabsReconcile = 151, "li";
    /// `labs`: a lab with the previous build's names.
    LabsLegacy = 152, "li";
    /// `down`: an ssh lab over this lab's hosts.
    DownShared = 160, "dn";
    /// `down`: nodes down cannot clean (never let in, unreachable).
    DownUnclean = 161, "dn";
    /// `down`: the changed-host-key hint followed.
    DownHostKey = 162, "dn";
    /// `down`: collected results kept.
    DownRuns = 163, "dn";
    /// `runs`: concurrent runs, `jobs` states, cancel, `logs -f`, output directories.
    RunsRecords = 170, "rl";
    /// `runs`: Ctrl-C, a killed `zerolab run`, `--detach`, `wait`.
    RunsInterrupted = 171, "rl";
    /// `runs`: the keeper killed mid-run.
    RunsKeeper = 172, "rl";
    /// `runs`: a node whose agent stops answering.
    RunsNodeLoss = 173, "rl";
    /// `provision`: ordered steps, uploads, idempotence and `--reprovision`.
    ProvisionOrder = 200, "pv";
    /// `provision`: a failing step and readiness checks (retried, expired).
    ProvisionFail = 201, "pv";
}

impl Subnet {
    /// The `x` of `10.77.<x>.0/24`.
    pub fn x(self) -> u8 {
        self as u8
    }

    /// The lab's name.
    pub fn name(self) -> String {
        format!("{}{}", self.prefix(), self.x())
    }

    /// Address `host` in the subnet: 1 is the host's side of the bridge, nodes start at 2.
    pub fn address(self, host: u8) -> String {
        format!("10.77.{}.{host}", self.x())
    }

    /// examples/netns-3.yaml as this lab: its name and subnet replaced.
    pub fn example(self) -> String {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/netns-3.yaml")).unwrap();
        assert!(text.contains("name: netns-3\n") && text.contains("10.77.0.0/24"));
        text.replace("name: netns-3\n", &format!("name: {}\n", self.name()))
            .replace("10.77.0.0/24", &format!("10.77.{}.0/24", self.x()))
    }
}

/// `program` on `PATH` or in an sbin directory (which a non-login root shell may lack on
/// `PATH`), when it is there; otherwise says that `test` is skipped and what to install.
pub fn program(test: &str, program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    let found = std::env::split_paths(&path).chain(sbin).map(|dir| dir.join(program)).find(|file| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    });
    if found.is_none() {
        eprintln!("skipped: {test} needs {program} (apt-get install -y {package})");
    }
    found
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
    /// examples/netns-3.yaml as lab `subnet` (not made yet: `zerolab up` makes it).
    pub fn new(subnet: Subnet, agent: PathBuf) -> LabHarness {
        let text = subnet.example();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        fs::write(&file, &text).unwrap();
        let cluster = zerolab::cluster::from_str(&text, "lab.yaml").unwrap();
        LabHarness { dir, file, cluster, agent }
    }

    /// The temp dir holding the cluster file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The agent binary `up` installs.
    pub fn agent(&self) -> &Path {
        &self.agent
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

/// `zerolab::down::down`, from outside a runtime, forced and purged (a test's lab leaves
/// nothing behind); the error, or the first node not cleaned, as one line.
pub fn down(root: &Path, cluster: &Cluster) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = zerolab::down::DownOptions { force: true, purge: true, ..Default::default() };
    let report = runtime
        .block_on(zerolab::down::down(root, cluster, &options))
        .map_err(|e| zerolab_sandbox::session::error_chain(&e))?;
    match report.left.first() {
        Some(left) => Err(left.to_string()),
        None => Ok(()),
    }
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
pub fn alive(pid: impl std::fmt::Display) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

pub fn wait_dead(pid: impl std::fmt::Display + Copy) {
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

#[test]
fn every_lab_has_its_own_name_and_links() {
    let count = Subnet::ALL.len();
    let names: std::collections::BTreeSet<String> = Subnet::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), count, "{names:?}");
    // Bridges carry 7 bytes of the lab name and a 16-bit hash of it: no two labs may share one.
    let bridges: std::collections::BTreeSet<String> =
        names.iter().map(|name| zerolab::provider::netns::Names::new(name).bridge()).collect();
    assert_eq!(bridges.len(), count, "{bridges:?}");
}
