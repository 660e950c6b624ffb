//! Sessions: one guest each, run on its own thread, with outputs in files.
//!
//! [`Sessions::start`] checks the request (devices and program with
//! [`devices::check`]), makes `STATE/sessions/ID/`, and hands the session to a
//! new `std::thread` that makes its devices ready ([`devices::Checked::prepare`]:
//! files opened, URLs fetched, checksums checked; `stdout`, `stderr` and a
//! collected `output` go to the session's directory), waits for its channels,
//! and calls [`session::spawn`] and then [`Session::wait`](zerolab_sandbox::session::Session::wait).
//! The thread matters: the guest's parent-death signal follows the thread
//! that forked it, so spawning from a tokio worker (which may exit) could kill
//! a healthy guest. A panic in that thread is caught and becomes a failed
//! report, so one session never takes the agent down.
//!
//! A session with channels to other guests is registered with the
//! [`Hub`] in [`Sessions::start`] (so a bad or conflicting channel is the
//! request's error) and starts out [`Waiting`](api::SessionState::Waiting):
//! its thread waits for every channel (see [`crate::channels`]) before it
//! spawns the guest, which takes its channels as descriptors at spawn.
//!
//! Killing races with starting: a kill that arrives before the guest exists
//! is remembered under the entry's lock and applied as soon as it does; one
//! that arrives while the session fetches a URL or waits for its channels
//! ends the wait.
//!
//! A session may have a lease (see [`lease`]): unless renewed in time, it is
//! killed like a `DELETE` would, its exit state `lease expired`.
//!
//! A finished session is kept for the TTL ([`Sessions::with_ttl`]), then
//! [`Sessions::expire`] removes it and its directory; its id is remembered, so
//! a request for it is told it expired ([`SessionsError::Expired`]) rather
//! than that it never existed. Directories left by an earlier run of the agent
//! expire the same way, counted from when they were last written.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use zerolab_sandbox::codes::ReturnCode;
use zerolab_sandbox::manifest::MAX_MEMORY;
use zerolab_sandbox::report::{Report, ValidatorState};
use zerolab_sandbox::session::{self, Guest, KillHandle, Options};

use crate::api;
use crate::blobs::{BlobError, Blobs};
use crate::channels::{ChannelsError, Hub, Pending, WaitError};
use crate::devices::{self, Checked, Context, DevicesError, Extracted, PrepareError, Prepared};
use crate::fetch::Fetcher;
use crate::warm::Start;

mod expiry;
pub mod lease;

use expiry::Expired;
pub use expiry::SessionCounts;
use lease::Leases;

/// Why a session could not be started or found.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// The program or stdin blob is missing or misnamed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// No such session.
    #[error("no session {0}; list sessions with GET /v1/sessions")]
    Unknown(String),
    /// The session finished more than the TTL ago and was removed.
    #[error(
        "session {id} expired: finished sessions are kept {ttl_secs} s (the agent's --session-ttl), then removed with their outputs; collect outputs sooner or raise it"
    )]
    Expired {
        /// Session id.
        id: String,
        /// The TTL, in seconds.
        ttl_secs: u64,
    },
    /// `memory` or `timeout` out of range.
    #[error("{0}")]
    BadRequest(String),
    /// A device or the program is malformed.
    #[error(transparent)]
    Devices(#[from] DevicesError),
    /// No such output kept for this session.
    #[error("session {id} kept no {name}: it was not collected (a node file, or no such device)")]
    NoOutput {
        /// Session id.
        id: String,
        /// `stdout`, `stderr` or `output`.
        name: &'static str,
    },
    /// A channel is malformed or conflicts with another session's.
    #[error(transparent)]
    Channels(#[from] ChannelsError),
    /// Channels asked of sessions that have no hub (a library user's setup).
    #[error("this agent runs no channel hub; sessions with channels need the zerolab-agent daemon")]
    NoHub,
    /// The session's directory or files could not be made.
    #[error("cannot prepare session {id} in {}", dir.display())]
    Prepare {
        /// Session id.
        id: String,
        /// Its directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No thread for the session.
    #[error("cannot start a thread for session {id}; the node is out of threads, retry later")]
    Thread {
        /// Session id.
        id: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The longest `timeout` accepted, in seconds (one day).
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// The request's numbers within what the runtime can use: `timeout` 1 to
/// [`MAX_TIMEOUT_SECS`], `memory` 1 byte to 4 GiB (a manifest's `Memory`) and
/// `lease_secs`, when given, 1 to [`lease::MAX_LEASE_SECS`]. The
/// guest's deadline, memory reservation and limits are computed from them, so they are
/// refused here, with the request, rather than overflow there.
pub fn check_numbers(req: &api::SessionRequest) -> Result<(), SessionsError> {
    if req.timeout == 0 || req.timeout > MAX_TIMEOUT_SECS {
        return Err(SessionsError::BadRequest(format!(
            "timeout {} is out of range; give 1 to {MAX_TIMEOUT_SECS} seconds",
            req.timeout
        )));
    }
    if !(1..=MAX_MEMORY).contains(&req.memory) {
        return Err(SessionsError::BadRequest(format!(
            "memory {} is out of range; give 1 to {MAX_MEMORY} bytes",
            req.memory
        )));
    }
    lease::check(req.lease_secs)
}

/// Which output of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The guest's `/dev/stdout`.
    Stdout,
    /// The guest's `/dev/stderr`.
    Stderr,
    /// The guest's `/dev/output`.
    Output,
}

impl Output {
    fn file_name(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
            Output::Output => "output",
        }
    }
}

#[derive(Debug, Default)]
struct Progress {
    kill: Option<KillHandle>,
    /// Why the session was asked to stop (`killed`, `lease expired`): the first wins.
    kill_requested: Option<&'static str>,
    report: Option<api::Report>,
    /// Waiting for channels: the guest does not exist yet.
    waiting: bool,
    /// The aliases of the channels not yet connected.
    waiting_for: Vec<String>,
    /// When the report was recorded.
    ended: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    id: String,
    dir: PathBuf,
    progress: Mutex<Progress>,
    /// Ends a wait for channels (a kill that comes before the guest).
    cancel: Notify,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills the guest, or the session before its guest exists, for `why` (its report's
    /// exit state; a reason given earlier wins).
    fn kill(&self, why: &'static str) {
        {
            let mut p = self.lock();
            let why = *p.kill_requested.get_or_insert(why);
            if let Some(k) = &p.kill {
                k.kill_because(why);
            }
        }
        // A session still preparing or waiting for channels stops (a stored permit
        // if it has not begun to wait yet; harmless once the guest runs).
        self.cancel.notify_one();
    }

    /// The report of a session stopped before its guest existed.
    fn stopped(&self) -> Option<Report> {
        let why = self.lock().kill_requested?;
        Some(Report::failed(ReturnCode::Killed, ValidatorState::NotRun, why))
    }

    fn status(&self) -> api::SessionStatus {
        let p = self.lock();
        let state = match (&p.report, p.waiting) {
            (Some(_), _) => api::SessionState::Done,
            (None, true) => api::SessionState::Waiting,
            (None, false) => api::SessionState::Running,
        };
        let waiting_for = if state == api::SessionState::Waiting { p.waiting_for.clone() } else { Vec::new() };
        api::SessionStatus { id: self.id.clone(), state, report: p.report.clone(), waiting_for }
    }
}

/// What a session's thread needs besides its own request.
#[derive(Debug)]
struct Shared {
    blobs: Blobs,
    fetcher: Option<Fetcher>,
    extracted: Extracted,
    opts: Options,
    /// The leases of live sessions, apart from the table so renewals take one lock.
    leases: Mutex<Leases>,
    /// Warm daemons for `warm: true` sessions.
    warm: crate::warm::Warm,
}

impl Shared {
    fn leases(&self) -> MutexGuard<'_, Leases> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one session's thread runs.
struct Launch {
    checked: Checked,
    pending: Option<Pending>,
    memory: u64,
    timeout: Duration,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// For `warm: true`, its daemon's key (see [`crate::warm`]).
    warm: Option<String>,
}

/// A warm request's daemon key: what the daemon is made of (program,
/// arguments, environment, memory, and the image and input devices).
fn warm_key(req: &api::SessionRequest) -> Option<String> {
    let inputs: Vec<&api::DeviceSpec> =
        req.devices.iter().filter(|d| matches!(d.name, api::DeviceName::Image | api::DeviceName::Input)).collect();
    req.warm.then(|| serde_json::json!([req.program, req.args, req.env, req.memory, inputs]).to_string())
}

/// Every session since the agent started that has not expired.
#[derive(Debug)]
pub struct Sessions {
    dir: PathBuf,
    shared: Arc<Shared>,
    hub: Option<Arc<Hub>>,
    next: AtomicU64,
    table: Mutex<BTreeMap<String, Arc<Entry>>>,
    ttl: Duration,
    expired: Mutex<Expired>,
}

impl Sessions {
    /// Sessions with their directories under `dir`, programs and inputs from `blobs`,
    /// and URL devices fetched by `fetcher` (refused without one).
    pub fn new(
        dir: impl Into<PathBuf>,
        blobs: Blobs,
        fetcher: Option<Fetcher>,
        opts: Options,
    ) -> std::io::Result<Sessions> {
        let dir = dir.into();
        crate::state::create_private_dir(&dir)?;
        let orphans = expiry::orphans(&dir)?;
        let shared = Arc::new(Shared {
            blobs,
            fetcher,
            extracted: Extracted::default(),
            opts,
            leases: Mutex::default(),
            warm: crate::warm::Warm::default(),
        });
        Ok(Sessions {
            dir,
            shared,
            hub: None,
            next: AtomicU64::new(1),
            table: Mutex::new(BTreeMap::new()),
            ttl: crate::state::DEFAULT_SESSION_TTL,
            expired: Mutex::new(Expired { orphans, ..Expired::default() }),
        })
    }

    /// The same sessions, able to have channels through `hub`.
    pub fn with_hub(self, hub: Arc<Hub>) -> Sessions {
        Sessions { hub: Some(hub), ..self }
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expired(&self) -> MutexGuard<'_, Expired> {
        self.expired.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Entry>, SessionsError> {
        if let Some(entry) = self.table().get(id) {
            return Ok(Arc::clone(entry));
        }
        let id: String = id.chars().take(80).collect();
        match self.expired().ids.contains(&id) {
            true => Err(SessionsError::Expired { id, ttl_secs: self.ttl.as_secs() }),
            false => Err(SessionsError::Unknown(id)),
        }
    }

    /// A fresh id: start time in seconds and a counter, both hex, so ids sort
    /// by age and never repeat across restarts of the agent.
    fn new_id(&self) -> String {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        format!("{secs:010x}-{:06x}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// A fresh id and its new directory (0700). An id left by an earlier run
    /// of the agent is skipped, never reused.
    fn new_dir(&self) -> Result<(String, PathBuf), SessionsError> {
        loop {
            let id = self.new_id();
            let dir = self.dir.join(&id);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok((id, dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(SessionsError::Prepare { id, dir, source }),
            }
        }
    }

    /// Starts a session; its guest runs on its own thread.
    pub fn start(&self, req: &api::SessionRequest) -> Result<String, SessionsError> {
        let checked = devices::check(req, &self.shared.blobs, self.shared.fetcher.is_some())?;
        check_numbers(req)?;
        let hub = match (&self.hub, req.channels.is_empty()) {
            (_, true) => None,
            (Some(hub), false) => Some(hub),
            (None, false) => return Err(SessionsError::NoHub),
        };
        let (id, dir) = self.new_dir()?;
        let pending = match hub.map(|h| h.prepare(&id, &req.channels, req.channel_wait_secs)).transpose() {
            Ok(p) => p,
            Err(e) => {
                // `prepare` withdrew whatever it registered; leave no trace either.
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        };
        // The kept outputs exist (empty) from the start, so they can be read at once.
        for name in checked.kept() {
            if let Err(source) = std::fs::File::create(dir.join(name.name())) {
                drop(pending); // withdraws its channels
                let _ = std::fs::remove_dir_all(&dir);
                return Err(SessionsError::Prepare { id, dir, source });
            }
        }
        let mut waiting_for = checked.needs_work();
        if waiting_for.is_empty() {
            waiting_for = pending.as_ref().map(Pending::unconnected).unwrap_or_default();
        }
        let progress = Progress { waiting: !waiting_for.is_empty(), waiting_for, ..Progress::default() };
        let entry = Arc::new(Entry { id: id.clone(), dir, progress: Mutex::new(progress), cancel: Notify::new() });
        let launch = Launch {
            checked,
            pending,
            memory: req.memory,
            timeout: Duration::from_secs(req.timeout),
            args: req.args.clone(),
            env: req.env.clone(),
            warm: warm_key(req),
        };
        // Granted before the thread starts, which ends it when the guest has ended.
        if let Some(secs) = req.lease_secs {
            self.shared.leases().grant(&id, Duration::from_secs(secs), Instant::now());
        }
        let shared = Arc::clone(&self.shared);
        let runner = Arc::clone(&entry);
        std::thread::Builder::new()
            .name(format!("session-{id}"))
            .spawn(move || run(&runner, launch, &shared))
            .map_err(|source| {
                self.shared.leases().end(&id);
                SessionsError::Thread { id: id.clone(), source }
            })?;
        self.table().insert(id.clone(), entry);
        Ok(id)
    }

    /// Every session, oldest first.
    pub fn list(&self) -> api::SessionList {
        let entries: Vec<Arc<Entry>> = self.table().values().cloned().collect();
        let sessions = entries
            .iter()
            .map(|e| {
                let s = e.status();
                api::SessionSummary { id: s.id, state: s.state, exit_state: s.report.map(|r| r.exit_state) }
            })
            .collect();
        api::SessionList { sessions }
    }

    /// One session's state and report.
    pub fn status(&self, id: &str) -> Result<api::SessionStatus, SessionsError> {
        Ok(self.get(id)?.status())
    }

    /// Kills a session's guest (no-op once it has ended).
    pub fn kill(&self, id: &str) -> Result<api::SessionStatus, SessionsError> {
        let entry = self.get(id)?;
        entry.kill("killed");
        Ok(entry.status())
    }

    /// The path of a session's output file: the one it keeps in its directory. A
    /// session still preparing has none yet; ask again once it runs.
    pub fn output(&self, id: &str, which: Output) -> Result<PathBuf, SessionsError> {
        let path = self.get(id)?.dir.join(which.file_name());
        match path.is_file() {
            true => Ok(path),
            false => Err(SessionsError::NoOutput { id: id.to_owned(), name: which.file_name() }),
        }
    }
}

/// The session thread: devices, channels, spawn, register the kill handle, wait, record.
fn run(entry: &Entry, launch: Launch, shared: &Shared) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| supervise(entry, launch, shared)));
    let report = outcome.unwrap_or_else(|_| {
        tracing::error!(session = %entry.id, "session thread panicked");
        Report::failed(ReturnCode::Killed, ValidatorState::NotRun, "agent error: session supervisor panicked")
    });
    tracing::info!(session = %entry.id, exit_state = %report.exit_state, code = report.return_code.code(), "session done");
    // Before the report: once a session is done, renewing its lease says not renewed.
    shared.leases().end(&entry.id);
    let mut p = entry.lock();
    p.kill = None;
    p.waiting = false;
    p.report = Some(to_api(&report));
    p.ended = Some(Instant::now());
}

/// The report of a session whose devices could not be made ready.
fn unprepared(e: &PrepareError) -> Report {
    let code = match e {
        PrepareError::Killed => ReturnCode::Killed,
        PrepareError::NotInImage { .. } => ReturnCode::ProgramMissing,
        PrepareError::Refused { source, .. } => source.code(),
        PrepareError::Mismatch { .. }
        | PrepareError::Fetch { source: crate::fetch::FetchError::Mismatch { .. }, .. } => ReturnCode::Corrupted,
        _ => ReturnCode::Malformed,
    };
    Report::failed(code, ValidatorState::NotRun, zerolab_sandbox::session::error_chain(e))
}

fn supervise(entry: &Entry, launch: Launch, shared: &Shared) -> Report {
    let Launch { checked, pending, memory, timeout, args, env, warm } = launch;
    let cx = Context {
        dir: &entry.dir,
        blobs: &shared.blobs,
        fetcher: shared.fetcher.as_ref(),
        extracted: &shared.extracted,
        deadline: Instant::now() + timeout,
        timeout_secs: timeout.as_secs(),
        cancel: &entry.cancel,
    };
    // `_pins` (fetched and extracted blobs) and `checked` (the request's blobs) keep
    // their blobs from collection until the guest has ended.
    let Prepared { program, mut channels, pins: _pins } = match checked.prepare(&cx) {
        Ok(prepared) => prepared,
        Err(e) => {
            if let (PrepareError::Killed, Some(stopped)) = (&e, entry.stopped()) {
                return stopped;
            }
            tracing::warn!(session = %entry.id, "devices not ready: {e}");
            return unprepared(&e);
        }
    };
    if let Some(stopped) = entry.stopped() {
        return stopped;
    }
    {
        let mut p = entry.lock();
        p.waiting_for = pending.as_ref().map(Pending::unconnected).unwrap_or_default();
        p.waiting = pending.is_some();
    }
    if let Some(pending) = pending {
        let waited = pending.wait(&entry.cancel, |left| entry.lock().waiting_for = left);
        match waited {
            Ok(more) => channels.extend(more),
            Err(WaitError::Killed) => {
                return entry
                    .stopped()
                    .unwrap_or_else(|| Report::failed(ReturnCode::Killed, ValidatorState::NotRun, "killed"))
            }
            Err(e) => {
                let why = zerolab_sandbox::session::error_chain(&e);
                tracing::warn!(session = %entry.id, "channels not connected: {why}");
                return Report::failed(ReturnCode::Killed, ValidatorState::NotRun, why);
            }
        }
        let mut p = entry.lock();
        p.waiting = false;
        p.waiting_for.clear();
    }
    let spawned = match warm {
        None => {
            session::spawn(Guest { program, program_member: None, memory, timeout, channels, args, env }, &shared.opts)
        }
        Some(key) => {
            let start = Start { program: &program, memory, timeout, args: &args, env: &env, channels: &channels };
            match shared.warm.daemon(&key, start, &shared.opts) {
                Ok(daemon) => daemon.spawn_job(channels, timeout, &shared.opts),
                Err(report) => return report,
            }
        }
    };
    let session = match spawned {
        Ok(s) => s,
        Err(e) => return e.into_report(),
    };
    match session.kill_handle() {
        Ok(k) => {
            let mut p = entry.lock();
            if let Some(why) = p.kill_requested {
                k.kill_because(why);
            }
            p.kill = Some(k);
        }
        Err(e) => tracing::warn!(session = %entry.id, error = %e, "no kill handle; DELETE cannot stop this guest"),
    }
    session.wait()
}

/// The API's form of a sandbox report.
pub fn to_api(r: &Report) -> api::Report {
    let t = |t: &zerolab_sandbox::report::Traffic| [t.gets, t.get_bytes, t.puts, t.put_bytes];
    api::Report {
        text: r.to_string(),
        validator: r.validator as u8,
        user_code: r.user_code,
        exit_state: r.exit_state.clone(),
        return_code: r.return_code.code(),
        sys_s: r.accounting.sys_s,
        user_s: r.accounting.user_s,
        local: t(&r.accounting.local),
        net: t(&r.accounting.net),
    }
}

#[cfg(test)]
mod tests;
