//! What the workshop tests share: a workshop directory in a temp dir with its own name,
//! network and ports ([`Case`]), the service opened in-process on it, waits, and a drop
//! guard that takes every lab of the workshop down, also when a test fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerolab::workshop::{self, Options, Workshop, WorkshopFile};

/// Every workshop the suite makes: its number `N` gives its name `wcN`, network
/// `10.212.(16N).0/20`, SSH ports `23000+10N..+9` and portal port `18100+N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Case {
    /// `api`: join, claim, view, queue, remove.
    Api = 1,
    /// `labs`: reset, extend, check scripts, a killed lab replaced.
    Labs = 2,
    /// `ssh`: attendees' keys and ports.
    Ssh = 3,
    /// `commands`: `workshop up|status|down`, `serve` killed and restarted.
    Commands = 4,
    /// `labs`: an idle lab shelved, back when its attendee returns.
    Idle = 5,
}

impl Case {
    pub fn name(self) -> String {
        format!("wc{}", self as u8)
    }

    pub fn network(self) -> String {
        format!("10.212.{}.0/20", 16 * self as u8)
    }

    pub fn ssh_ports(self) -> String {
        let first = 23000 + 10 * u16::from(self as u8);
        format!("{first}-{}", first + 9)
    }

    pub fn portal(self) -> String {
        format!("127.0.0.1:{}", 18100 + u16::from(self as u8))
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `target/<profile>/zerolab-agent` when the test can run; otherwise says why not.
pub fn prerequisites(test: &str) -> Option<PathBuf> {
    if !is_root() {
        eprintln!("skipped: {test} makes netns labs and needs root (CI runs it as root)");
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let agent = exe.parent()?.parent()?.join("zerolab-agent");
    if !agent.is_file() {
        eprintln!("skipped: {test}: no zerolab-agent beside the test binaries; cargo build --release -p zerolab-agent");
        return None;
    }
    Some(agent)
}

/// A workshop in a temp dir: its file, lab root, and the labs taken down on drop.
pub struct Harness {
    opened: std::sync::Mutex<Vec<Arc<Workshop>>>,
    pub dir: tempfile::TempDir,
    pub case: Case,
    pub file: PathBuf,
    pub agent: PathBuf,
}

impl Harness {
    /// Writes the workshop file: `fields` (capacity, pool, timers, ...) and `steps`
    /// after the case's name, network and portal; the lab is one netns node.
    pub fn new(case: Case, agent: PathBuf, fields: &str, steps: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Workshop\nname: {}\nlab: lab.yaml\nnetwork: {}\naccess_code: sesame\n\
             portal: {{listen: '{}', ssh_ports: {}}}\n{fields}steps:\n{steps}",
            case.name(),
            case.network(),
            case.portal(),
            case.ssh_ports()
        );
        std::fs::write(
            dir.path().join("lab.yaml"),
            "apiVersion: zerolab/v1\nkind: Cluster\nname: template\nprovider: netns\nnodes:\n  - name: node\n",
        )
        .unwrap();
        let file = dir.path().join("workshop.yaml");
        std::fs::write(&file, text).unwrap();
        Harness { opened: Default::default(), dir, case, file, agent }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    pub fn workshop_dir(&self) -> PathBuf {
        workshop::dir(&self.root(), &self.case.name())
    }

    pub fn parsed(&self) -> WorkshopFile {
        workshop::from_path(&self.file).unwrap()
    }

    /// The service, opened and started in this process.
    pub fn open(&self, options: impl FnOnce(&mut Options)) -> Arc<Workshop> {
        // The service's warnings (a lab not made, a node not answering) in the test's output.
        let _ = tracing_subscriber::fmt().with_env_filter("zerolab=info").with_test_writer().try_init();
        let mut opts = Options::new(self.agent.clone(), PathBuf::from(env!("CARGO_BIN_EXE_zerolab")));
        opts.check_every = Duration::from_secs(2);
        opts.health_every = Duration::from_secs(1);
        options(&mut opts);
        let ws = Workshop::open(self.parsed(), self.workshop_dir(), opts).unwrap();
        ws.start();
        self.opened.lock().unwrap().push(ws.clone());
        ws
    }

    /// Takes down every lab of the workshop found under its labs root, and its rules.
    fn clean(&self) {
        let file = self.parsed();
        let labs = self.workshop_dir().join("labs");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        // The services first: none may make a lab while they are taken down.
        for ws in self.opened.lock().unwrap().drain(..) {
            runtime.block_on(ws.close());
        }
        for index in 1..=file.max_index() {
            if labs.join(file.lab_name(index)).exists() {
                let cluster = file.lab(index, &zerolab::provider::REGISTRY).unwrap();
                let options = zerolab::down::DownOptions { force: true, purge: true, ..Default::default() };
                let _ = runtime.block_on(zerolab::down::down(&labs, &cluster, &options));
            }
        }
        runtime.block_on(zerolab::workshop::sshport::remove_all(&file.name));
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Off the test's runtime: `clean` runs one of its own.
        std::thread::scope(|scope| drop(scope.spawn(|| self.clean()).join()));
    }
}

/// Waits up to `within` for `probe` to give `Some`; panics saying `what` otherwise.
pub async fn until<T>(within: Duration, what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < within, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
