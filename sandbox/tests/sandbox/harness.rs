//! The harness: guests built once per run, a temp dir per test ([`Lab`]), a
//! command builder for the real `zvsh` ([`Zvsh`]), a manifest builder
//! ([`Manifest`]), and parsers for the six-line report ([`Report`]) and the
//! guests' `key=value` output ([`kv`], [`assert_kv`]).
//!
//! Guests are compiled with `guest/zvm-gcc` on first use, once per run, into
//! `$CARGO_TARGET_TMPDIR/zvm-guests` (world-readable, so the unprivileged
//! tests can run them); a build goes to a private name and is renamed into
//! place, so concurrent test runs never see a half-written guest.
//!
//! Every `zvsh` run gets the test's temp dir as its current directory, `HOME`
//! and `XDG_CACHE_HOME`: verdict caches and `zvsh.cfg` never leak between
//! tests or from the developer's home. Tests that count the process's
//! descriptors or children take the [`Lab::alone`] lock, which waits for every
//! other test to finish its [`Lab`] and keeps new ones out meanwhile.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::{self, Display, Write as _};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// ZeroVM's "no limit" value (4 GiB).
pub const U: u64 = 1 << 32;

/// The longest any single `zvsh` run may take before the harness kills it.
const RUN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Guests

fn sandbox_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn guest_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zvm-guests");
        fs::create_dir_all(&dir).expect("create the guest directory");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod the guest directory");
        dir
    })
}

/// The guest built from `tests/guests/NAME.c` or `guest/examples/NAME.c`
/// (built once per run, on first use).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<PathBuf>>>> = Mutex::new(BTreeMap::new());
    let cell = BUILT.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_string()).or_default().clone();
    cell.get_or_init(|| {
        let src = ["tests/guests", "guest/examples"]
            .iter()
            .map(|d| sandbox_dir().join(d).join(format!("{name}.c")))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no guest source {name}.c"));
        compile(Command::new(sandbox_dir().join("guest/zvm-gcc")).arg("-O2").arg(&src), name)
    })
    .clone()
}

/// A hello program built with the host's plain `gcc`: dynamically linked.
pub fn dynamic_elf() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = guest_dir().join(format!(".dynamic-{}.c", std::process::id()));
            fs::write(&src, "int main(void) { return 0; }\n").expect("write dynamic.c");
            let out = compile(Command::new("gcc").arg(&src), "host-dynamic");
            let _ = fs::remove_file(&src);
            out
        })
        .clone()
}

fn compile(cmd: &mut Command, name: &str) -> PathBuf {
    let out = guest_dir().join(name);
    let tmp = guest_dir().join(format!(".{name}.{}", std::process::id()));
    let result = cmd.arg("-o").arg(&tmp).output().expect("run the compiler");
    assert!(result.status.success(), "building {name} failed:\n{}", String::from_utf8_lossy(&result.stderr));
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod guest");
    fs::rename(&tmp, &out).expect("move guest into place");
    out
}

// ---------------------------------------------------------------------------
// Lab: one test's temp dir

static EXCLUSIVE: RwLock<()> = RwLock::new(());

enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
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
        Lab::with(Turn::Shared(EXCLUSIVE.read().unwrap_or_else(PoisonError::into_inner)))
    }

    /// A lab for a test that counts the process's descriptors or children:
    /// no other test runs while it exists.
    pub fn alone() -> Lab {
        Lab::with(Turn::Alone(EXCLUSIVE.write().unwrap_or_else(PoisonError::into_inner)))
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_zvsh"));
        cmd.current_dir(self.dir())
            .env("XDG_CACHE_HOME", self.path(".cache"))
            .env("HOME", self.dir())
            .env_remove("ZVSH_LOG");
        Zvsh { cmd, stdin: None }
    }

    /// A manifest for `program` with the standard channels: `/dev/stdin` reads
    /// `/dev/null`, `/dev/stdout` and `/dev/stderr` write the files `stdout`
    /// and `stderr` here; all unlimited.
    pub fn manifest(&self, program: impl AsRef<Path>) -> Manifest {
        Manifest::new(program)
            .channel("/dev/null", "/dev/stdin", 0, Limits::READ)
            .channel(self.path("stdout"), "/dev/stdout", 0, Limits::WRITE)
            .channel(self.path("stderr"), "/dev/stderr", 0, Limits::WRITE)
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

// ---------------------------------------------------------------------------
// zvsh

/// A `zvsh` command line.
pub struct Zvsh {
    cmd: Command,
    stdin: Option<Vec<u8>>,
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
    pub fn spawn(mut self) -> Child {
        let stdin = if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        let mut child =
            self.cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start zvsh");
        if let Some(bytes) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A guest may stop reading early; a broken pipe is not the test's failure.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        child
    }

    /// Runs it to the end (at most [`RUN_LIMIT`]) and collects its output.
    pub fn run(self) -> Outcome {
        let start = Instant::now();
        let mut child = self.spawn();
        let out = drain(child.stdout.take().expect("stdout pipe"));
        let err = drain(child.stderr.take().expect("stderr pipe"));
        if !wait_exit(&child, RUN_LIMIT) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("zvsh ran longer than {RUN_LIMIT:?}; killed");
        }
        let status = child.wait().expect("wait for zvsh");
        let elapsed = start.elapsed();
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Outcome { code, stdout: out.join().expect("stdout reader"), stderr: err.join().expect("stderr reader"), elapsed }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        r.read_to_end(&mut v).expect("read zvsh output");
        v
    })
}

/// Opens a pidfd for a process.
pub fn pidfd_open(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes no pointers; the result is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Waits until `child` has exited (without reaping it), at most `limit`.
pub fn wait_exit(child: &Child, limit: Duration) -> bool {
    let pidfd = pidfd_open(child.id());
    poll_in(pidfd.as_fd(), limit)
}

/// Waits until `fd` is readable (or hung up), at most `limit`.
pub fn poll_in(fd: std::os::fd::BorrowedFd<'_>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Reads from `fd` until `want` has been seen (or end of data), at most `limit`.
pub fn read_until(fd: &OwnedFd, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            poll_in(fd.as_fd(), left),
            "no {want:?} within {limit:?}; got {:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut buf = [0u8; 4096];
        let n = nix::unistd::read(fd, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
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

// ---------------------------------------------------------------------------
// Manifests

/// A channel's four limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Read calls.
    pub gets: u64,
    /// Bytes read.
    pub get_size: u64,
    /// Write calls.
    pub puts: u64,
    /// Bytes written.
    pub put_size: u64,
}

impl Limits {
    /// Read-only, unlimited.
    pub const READ: Limits = Limits { gets: U, get_size: U, puts: 0, put_size: 0 };
    /// Write-only, unlimited.
    pub const WRITE: Limits = Limits { gets: 0, get_size: 0, puts: U, put_size: U };
    /// Read and write, unlimited.
    pub const BOTH: Limits = Limits { gets: U, get_size: U, puts: U, put_size: U };
    /// Neither side.
    pub const NONE: Limits = Limits { gets: 0, get_size: 0, puts: 0, put_size: 0 };

    /// Read-only with these limits.
    pub const fn read(gets: u64, get_size: u64) -> Limits {
        Limits { gets, get_size, puts: 0, put_size: 0 }
    }

    /// Write-only with these limits.
    pub const fn write(puts: u64, put_size: u64) -> Limits {
        Limits { gets: 0, get_size: 0, puts, put_size }
    }
}

/// Manifest text, built as intent.
#[derive(Debug, Clone)]
pub struct Manifest {
    program: String,
    memory: String,
    timeout: String,
    /// (alias, value) in manifest order.
    channels: Vec<(String, String)>,
    tail: Vec<String>,
}

impl Manifest {
    /// `Version`, `Program`, `Memory = 32 MiB`, `Timeout = 5`, no channels.
    pub fn new(program: impl AsRef<Path>) -> Manifest {
        Manifest {
            program: program.as_ref().display().to_string(),
            memory: (32u64 << 20).to_string(),
            timeout: "5".into(),
            channels: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// `Memory = bytes, 0`.
    pub fn memory(mut self, bytes: impl Display) -> Self {
        self.memory = bytes.to_string();
        self
    }

    /// `Timeout = secs`.
    pub fn timeout(mut self, secs: impl Display) -> Self {
        self.timeout = secs.to_string();
        self
    }

    /// A `Channel` line; replaces an earlier channel with the same alias (in
    /// its place), so tests can swap one standard channel.
    pub fn channel(mut self, path: impl AsRef<Path>, alias: &str, ty: u8, l: Limits) -> Self {
        let value = format!(
            "{}, {alias}, {ty}, 0, {}, {}, {}, {}",
            path.as_ref().display(),
            l.gets,
            l.get_size,
            l.puts,
            l.put_size
        );
        match self.channels.iter_mut().find(|(a, _)| a == alias) {
            Some(c) => c.1 = value,
            None => self.channels.push((alias.to_string(), value)),
        }
        self
    }

    /// An `Arg` line (percent-encoded as needed).
    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.tail.push(format!("Arg = {}", encode(a.as_ref())));
        self
    }

    /// `Arg` lines.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, a: I) -> Self {
        for a in a {
            self = self.arg(a);
        }
        self
    }

    /// An `Env` line.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.tail.push(format!("Env = {}, {}", encode(name), encode(value)));
        self
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Version = 20130611");
        let _ = writeln!(s, "Program = {}", self.program);
        let _ = writeln!(s, "Memory = {}, 0", self.memory);
        let _ = writeln!(s, "Timeout = {}", self.timeout);
        for (_, v) in &self.channels {
            let _ = writeln!(s, "Channel = {v}");
        }
        for l in &self.tail {
            let _ = writeln!(s, "{l}");
        }
        s
    }
}

/// The manifest's percent-encoding for `Arg`/`Env` values (docs/manifest.md).
fn encode(text: &str) -> String {
    let n = text.chars().count();
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if matches!(c, '%' | ',' | '=') || c.is_ascii_control() || (c == ' ' && (i == 0 || i + 1 == n)) {
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Reports and guest output

/// Calls and bytes, as on the accounting line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Read calls.
    pub gets: u64,
    /// Bytes read.
    pub get_bytes: u64,
    /// Write calls.
    pub puts: u64,
    /// Bytes written.
    pub put_bytes: u64,
}

/// The six-line report, parsed strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Line 1: 0 passed, 1 failed, 2 not run.
    pub validator: u8,
    /// Line 2.
    pub daemon: u8,
    /// Line 3.
    pub user_code: i64,
    /// Line 4.
    pub etags: String,
    /// Line 5, fields 1–2.
    pub sys_s: f64,
    /// Line 5, field 2.
    pub user_s: f64,
    /// Line 5, fields 3–6.
    pub local: Traffic,
    /// Line 5, fields 7–10.
    pub net: Traffic,
    /// Line 6.
    pub exit_state: String,
}

impl Report {
    /// Parses exactly six lines; panics, showing the text, on anything else.
    #[track_caller]
    pub fn parse(text: &str) -> Report {
        let fail = |why: &str| -> ! { panic!("bad report ({why}):\n{text}") };
        let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(text).split('\n').collect();
        if lines.len() != 6 {
            fail("not six lines");
        }
        let acct: Vec<&str> = lines[4].split(' ').collect();
        if acct.len() != 10 {
            fail("accounting is not 10 fields");
        }
        let secs = |s: &str| -> f64 {
            let ok = s.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && b.len() == 2 && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
            if !ok {
                fail("a time is not N.NN");
            }
            s.parse().unwrap_or_else(|_| fail("time"))
        };
        let int = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| fail("accounting count")) };
        let traffic = |f: &[&str]| Traffic { gets: int(f[0]), get_bytes: int(f[1]), puts: int(f[2]), put_bytes: int(f[3]) };
        Report {
            validator: lines[0].parse().unwrap_or_else(|_| fail("validator state")),
            daemon: lines[1].parse().unwrap_or_else(|_| fail("daemon state")),
            user_code: lines[2].parse().unwrap_or_else(|_| fail("user code")),
            etags: lines[3].to_string(),
            sys_s: secs(acct[0]),
            user_s: secs(acct[1]),
            local: traffic(&acct[2..6]),
            net: traffic(&acct[6..10]),
            exit_state: lines[5].to_string(),
        }
    }

    /// A report for a session that never ran: validator `validator`, nothing
    /// counted, etags disabled, user code 0.
    #[track_caller]
    pub fn assert_never_ran(&self, validator: u8) {
        assert_eq!(self.validator, validator, "validator state in {self:?}");
        assert_eq!((self.daemon, self.user_code, self.etags.as_str()), (0, 0, "disabled"), "{self:?}");
        assert_eq!((self.local, self.net), (Traffic::default(), Traffic::default()), "{self:?}");
        assert_ne!(self.exit_state, "ok");
    }
}

/// `key=value` lines (split at the first `=`); other lines are ignored.
pub fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Checks that the guest printed exactly these keys with these values, and
/// lists every difference at once.
#[track_caller]
pub fn assert_kv(text: &str, expected: &[(&str, &dyn Display)]) {
    let actual = kv(text);
    let mut diffs = String::new();
    for (k, v) in expected {
        let want = v.to_string();
        match actual.get(*k) {
            Some(got) if *got == want => {}
            Some(got) => {
                let _ = writeln!(diffs, "  {k}: expected {want:?}, got {got:?}");
            }
            None => {
                let _ = writeln!(diffs, "  {k}: expected {want:?}, missing");
            }
        }
    }
    for (k, v) in &actual {
        if !expected.iter().any(|(e, _)| e == k) {
            let _ = writeln!(diffs, "  {k}: unexpected, = {v:?}");
        }
    }
    assert!(diffs.is_empty(), "guest output differs:\n{diffs}--- output\n{text}");
}

/// Lower-case hex, as the guests print data.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), for bulk data.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Processes and descriptors

/// The parent pid and command name of a process, if it exists and is not a zombie.
pub fn live_process(pid: i32) -> Option<(i32, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    (state != "Z" && state != "X").then_some((ppid, comm))
}

/// Live processes whose parent is `parent`: (pid, comm).
pub fn children_of(parent: i32) -> Vec<(i32, String)> {
    fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| live_process(pid).filter(|(pp, _)| *pp == parent).map(|(_, c)| (pid, c)))
        .collect()
}

/// Whether a command name is a guest's (the loader runs from a sealed memfd).
pub fn is_guest_comm(comm: &str) -> bool {
    comm.starts_with("memfd:zerolab")
}

/// Waits until process `pid` is gone or a zombie, at most `limit`.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while live_process(pid).is_some() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").expect("list /proc/self/fd").count()
}

/// A raw descriptor number, for messages.
pub fn raw(fd: &impl AsRawFd) -> i32 {
    fd.as_raw_fd()
}
