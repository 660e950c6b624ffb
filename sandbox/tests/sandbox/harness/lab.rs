//! [`Lab`], one test's temp dir, and [`Zvsh`], the command builder for the real binary.

use std::ffi::OsStr;
use std::fmt::{self, Display};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::{wait_exit, Limits, Manifest, Report};

/// The longest any single `zvsh` run may take before the harness kills it.
const RUN_LIMIT: Duration = Duration::from_secs(30);

static EXCLUSIVE: RwLock<()> = RwLock::new(());

/// Held for a test's whole life: shared by ordinary tests, exclusive for [`Lab::alone`].
enum Turn {
    Shared { _guard: RwLockReadGuard<'static, ()> },
    Alone { _guard: RwLockWriteGuard<'static, ()> },
}

/// One test's world: a temp dir and the runs made in it.
pub struct Lab {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
    // Dropped after `dir` (fields drop in order).
    _turn: Turn,
}

impl Lab {
    /// A lab for a test that may run alongside others.
    pub fn new() -> Lab {
        Lab::with(Turn::Shared { _guard: EXCLUSIVE.read().unwrap_or_else(PoisonError::into_inner) })
    }

    /// A lab for a test that counts the process's descriptors or children:
    /// no other test runs while it exists.
    pub fn alone() -> Lab {
        Lab::with(Turn::Alone { _guard: EXCLUSIVE.write().unwrap_or_else(PoisonError::into_inner) })
    }

    fn with(turn: Turn) -> Lab {
        let dir = tempfile::Builder::new().prefix("zerolab-test-").tempdir().expect("create temp dir");
        Lab { dir, runs: AtomicUsize::new(0), _turn: turn }
    }

    /// The temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file in the temp dir and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Reads a file in the temp dir.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let p = self.path(name);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Reads a file in the temp dir as text.
    pub fn read_string(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.read(name)).into_owned()
    }

    /// The names in the temp dir, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir())
            .expect("list temp dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `zvsh`, run in the temp dir with its caches and config confined to it.
    pub fn zvsh(&self) -> Zvsh {
        self.zvsh_at(Path::new(env!("CARGO_BIN_EXE_zvsh")))
    }

    /// The `zvsh` binary at `bin` (another build of it), run as [`Lab::zvsh`] runs.
    pub fn zvsh_at(&self, bin: &Path) -> Zvsh {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir())
            .env("XDG_CACHE_HOME", self.path(".cache"))
            .env("HOME", self.dir())
            .env_remove("ZVSH_LOG");
        Zvsh { cmd, stdin: None, limit: RUN_LIMIT }
    }

    /// A manifest for `program` with the standard channels: `/dev/stdin` reads
    /// `/dev/null`, `/dev/stdout` and `/dev/stderr` write the files `stdout`
    /// and `stderr` here; all unlimited.
    pub fn manifest(&self, program: impl AsRef<Path>) -> Manifest {
        Manifest::new(program)
            .channel("/dev/null", "/dev/stdin", 0, Limits::READ_ONLY)
            .channel(self.path("stdout"), "/dev/stdout", 0, Limits::WRITE_ONLY)
            .channel(self.path("stderr"), "/dev/stderr", 0, Limits::WRITE_ONLY)
    }

    /// Writes `m` to a new file here and runs `zvsh --manifest` on it.
    pub fn run(&self, m: &Manifest) -> Outcome {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let path = self.write(&format!("manifest.{n}"), m.render());
        self.zvsh().arg("--manifest").arg(path).run()
    }
}

/// Writes to the real stderr, past libtest's capture, so a skip is seen.
pub fn announce_skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether the test runs as root; if not, announces the skip.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    announce_skip(test, "needs root (CI runs as root)");
    false
}

/// A `zvsh` command line.
pub struct Zvsh {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    limit: Duration,
}

impl Zvsh {
    /// Adds an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, a: I) -> Self {
        self.cmd.args(a);
        self
    }

    /// How long [`Zvsh::run`] waits before it kills zvsh (default [`RUN_LIMIT`]).
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Feeds these bytes on stdin (default: `/dev/null`).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// The underlying command, for settings the builder does not cover.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Starts it with stdout and stderr piped, stdin as set.
    pub fn spawn(self) -> Child {
        self.start().0
    }

    /// Starts it; the thread feeding stdin, if any, ends once zvsh is gone.
    fn start(mut self) -> (Child, Option<std::thread::JoinHandle<()>>) {
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        let mut child =
            self.cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start zvsh");
        let feeder = self.stdin.take().map(|bytes| {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A guest may stop reading early; a broken pipe is not the test's failure.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            })
        });
        (child, feeder)
    }

    /// Runs it to the end (at most its limit) and collects its output.
    pub fn run(self) -> Outcome {
        let start = Instant::now();
        let limit = self.limit;
        let (mut child, feeder) = self.start();
        let out = drain(child.stdout.take().expect("stdout pipe"));
        let err = drain(child.stderr.take().expect("stderr pipe"));
        if !wait_exit(&child, limit) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zvsh ran longer than {limit:?}; killed");
        }
        let status = child.wait().expect("wait for zvsh");
        let elapsed = start.elapsed();
        if let Some(f) = feeder {
            f.join().expect("stdin feeder");
        }
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Outcome {
            code,
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
            elapsed,
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).expect("read zvsh output");
        v
    })
}

/// What a `zvsh` run did.
pub struct Outcome {
    /// Exit code (128 + signal if killed).
    pub code: i32,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Wall time from start to exit.
    pub elapsed: Duration,
}

impl Outcome {
    /// Stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics (showing the output) unless zvsh exited with `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "zvsh exit code\n{self}");
        self
    }

    /// The report `zvsh --manifest` printed on stdout.
    #[track_caller]
    pub fn report(&self) -> Report {
        Report::parse(&self.stdout())
    }

    /// The report inside the failure text `zvsh PROGRAM` prints on stderr
    /// (manifest, blank line, report, blank line, `ERROR: ...`).
    #[track_caller]
    pub fn failure_report(&self) -> Report {
        let text = self.stderr();
        let lines: Vec<&str> = text.lines().collect();
        let err = lines
            .iter()
            .position(|l| l.starts_with("ERROR: ZeroVM return code is "))
            .unwrap_or_else(|| panic!("no ERROR line in stderr:\n{text}"));
        assert!(err >= 8 && lines[err - 1].is_empty(), "no blank line before ERROR:\n{text}");
        Report::parse(&lines[err - 7..err - 1].join("\n"))
    }
}

impl Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clip = |b: &[u8]| {
            let s = String::from_utf8_lossy(&b[..b.len().min(4000)]).into_owned();
            if b.len() > 4000 {
                format!("{s}… ({} bytes)", b.len())
            } else {
                s
            }
        };
        writeln!(f, "exit code {} after {:?}", self.code, self.elapsed)?;
        writeln!(f, "--- stdout\n{}", clip(&self.stdout))?;
        write!(f, "--- stderr\n{}", clip(&self.stderr))
    }
}
