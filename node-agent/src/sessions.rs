//! Sessions: one guest each, run on its own thread, with outputs in files.
//!
//! [`Sessions::start`] prepares `STATE/sessions/ID/` (`stdout`, `stderr`),
//! opens the channels, and hands the guest to a new `std::thread` that calls
//! [`session::spawn`] and then [`Session::wait`](zerolab_sandbox::session::Session::wait).
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
//! that arrives while the session waits for its channels ends the wait.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

use zerolab_sandbox::channel::Channel;
use zerolab_sandbox::codes::ReturnCode;
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::report::{Report, ValidatorState};
use zerolab_sandbox::session::{self, Guest, KillHandle, Options};

use crate::api;
use crate::blobs::{BlobError, Blobs};
use crate::channels::{ChannelsError, Hub, Pending, WaitError};

/// Why a session could not be started or found.
#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    /// The program or stdin blob is missing or misnamed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// No such session.
    #[error("no session {0}; list sessions with GET /v1/sessions")]
    Unknown(String),
    /// `memory` or `timeout` out of range.
    #[error("{0}")]
    BadRequest(String),
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

/// Which output of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The guest's `/dev/stdout`.
    Stdout,
    /// The guest's `/dev/stderr`.
    Stderr,
}

impl Output {
    fn file_name(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Default)]
struct Progress {
    kill: Option<KillHandle>,
    kill_requested: bool,
    report: Option<api::Report>,
    /// Waiting for channels: the guest does not exist yet.
    waiting: bool,
    /// The aliases of the channels not yet connected.
    waiting_for: Vec<String>,
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

/// All sessions since the agent started.
#[derive(Debug)]
pub struct Sessions {
    dir: PathBuf,
    blobs: Blobs,
    opts: Options,
    hub: Option<Arc<Hub>>,
    next: AtomicU64,
    table: Mutex<BTreeMap<String, Arc<Entry>>>,
}

impl Sessions {
    /// Sessions with their directories under `dir` and programs from `blobs`.
    pub fn new(dir: impl Into<PathBuf>, blobs: Blobs, opts: Options) -> std::io::Result<Sessions> {
        let dir = dir.into();
        crate::server::create_private_dir(&dir)?;
        Ok(Sessions { dir, blobs, opts, hub: None, next: AtomicU64::new(1), table: Mutex::new(BTreeMap::new()) })
    }

    /// The same sessions, able to have channels through `hub`.
    pub fn with_hub(self, hub: Arc<Hub>) -> Sessions {
        Sessions { hub: Some(hub), ..self }
    }

    fn table(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Entry>, SessionsError> {
        self.table().get(id).cloned().ok_or_else(|| SessionsError::Unknown(id.chars().take(80).collect()))
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
        let program = self.blobs.path(&req.program)?;
        let stdin = req.stdin.as_deref().map(|s| self.blobs.path(s)).transpose()?;
        if req.timeout == 0 || req.timeout > MAX_TIMEOUT_SECS {
            return Err(SessionsError::BadRequest(format!(
                "timeout {} is out of range; give 1 to {MAX_TIMEOUT_SECS} seconds",
                req.timeout
            )));
        }
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
        let prep = |source| SessionsError::Prepare { id: id.clone(), dir: dir.clone(), source };
        let channels = open_channels(&dir, stdin.as_deref()).map_err(prep)?;
        let guest = Guest {
            program,
            memory: req.memory,
            timeout: Duration::from_secs(req.timeout),
            channels,
            args: req.args.clone(),
            env: req.env.clone(),
        };
        let progress = Progress {
            waiting: pending.is_some(),
            waiting_for: pending.as_ref().map(Pending::unconnected).unwrap_or_default(),
            ..Progress::default()
        };
        let entry = Arc::new(Entry { id: id.clone(), dir, progress: Mutex::new(progress), cancel: Notify::new() });
        let opts = self.opts.clone();
        let runner = Arc::clone(&entry);
        std::thread::Builder::new()
            .name(format!("session-{id}"))
            .spawn(move || run(&runner, guest, pending, &opts))
            .map_err(|source| SessionsError::Thread { id: id.clone(), source })?;
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
        {
            let mut p = entry.lock();
            p.kill_requested = true;
            if let Some(k) = &p.kill {
                k.kill();
            }
        }
        // A session still waiting for channels stops waiting (a stored permit
        // if it has not begun to wait yet; harmless once the guest runs).
        entry.cancel.notify_one();
        Ok(entry.status())
    }

    /// The path of a session's output file.
    pub fn output(&self, id: &str, which: Output) -> Result<PathBuf, SessionsError> {
        Ok(self.get(id)?.dir.join(which.file_name()))
    }
}

/// stdin from the blob (or `/dev/null`), stdout and stderr to new files.
fn open_channels(dir: &Path, stdin: Option<&Path>) -> std::io::Result<Vec<Channel>> {
    let read_only = Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED };
    let write_only = Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED };
    let input = File::open(stdin.unwrap_or(Path::new("/dev/null")))?;
    let stdout = File::create(dir.join("stdout"))?;
    let stderr = File::create(dir.join("stderr"))?;
    Ok(vec![
        Channel::from_fd("/dev/stdin", AccessType::SeqGetSeqPut, read_only, input.into())?,
        Channel::from_fd("/dev/stdout", AccessType::SeqGetSeqPut, write_only, stdout.into())?,
        Channel::from_fd("/dev/stderr", AccessType::SeqGetSeqPut, write_only, stderr.into())?,
    ])
}

/// The session thread: channels, spawn, register the kill handle, wait, record.
fn run(entry: &Entry, guest: Guest, pending: Option<Pending>, opts: &Options) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| supervise(entry, guest, pending, opts)));
    let report = outcome.unwrap_or_else(|_| {
        tracing::error!(session = %entry.id, "session thread panicked");
        Report::failed(ReturnCode::Killed, ValidatorState::NotRun, "agent error: session supervisor panicked")
    });
    tracing::info!(session = %entry.id, exit_state = %report.exit_state, code = report.return_code.code(), "session done");
    let mut p = entry.lock();
    p.kill = None;
    p.waiting = false;
    p.report = Some(to_api(&report));
}

fn supervise(entry: &Entry, mut guest: Guest, pending: Option<Pending>, opts: &Options) -> Report {
    if let Some(pending) = pending {
        let waited = pending.wait(&entry.cancel, |left| entry.lock().waiting_for = left);
        match waited {
            Ok(channels) => guest.channels.extend(channels),
            Err(WaitError::Killed) => return Report::failed(ReturnCode::Killed, ValidatorState::NotRun, "killed"),
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
    let session = match session::spawn(guest, opts) {
        Ok(s) => s,
        Err(e) => return e.into_report(),
    };
    match session.kill_handle() {
        Ok(k) => {
            let mut p = entry.lock();
            if p.kill_requested {
                k.kill();
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
mod tests {
    use super::*;

    fn sessions() -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path().join("blobs")).unwrap();
        let s = Sessions::new(dir.path().join("sessions"), blobs, Options::default()).unwrap();
        (dir, s)
    }

    #[test]
    fn refuses_unknown_program_blob() {
        let (_d, s) = sessions();
        let err = s.start(&api::SessionRequest::new("a".repeat(64))).unwrap_err();
        assert!(matches!(err, SessionsError::Blob(BlobError::Missing(_))), "{err}");
    }

    #[test]
    fn refuses_zero_timeout() {
        let (_d, s) = sessions();
        let name = crate::blobs::sha256_hex(b"x");
        s.blobs.put(&name, b"x").unwrap();
        let req = api::SessionRequest { timeout: 0, ..api::SessionRequest::new(name) };
        assert!(matches!(s.start(&req), Err(SessionsError::BadRequest(_))));
    }

    #[test]
    fn refuses_channels_without_a_hub() {
        let (_d, s) = sessions();
        let name = crate::blobs::sha256_hex(b"x");
        s.blobs.put(&name, b"x").unwrap();
        let channel = api::ChannelSpec {
            alias: "/dev/in/a".into(),
            direction: api::ChannelDirection::In,
            job: "j".into(),
            channel: "a>b".into(),
            key: "00".repeat(32),
            peer: api::ChannelPeer::Local,
        };
        let req = api::SessionRequest { channels: vec![channel], ..api::SessionRequest::new(name) };
        assert!(matches!(s.start(&req), Err(SessionsError::NoHub)));
        assert!(s.list().sessions.is_empty());
    }

    #[test]
    fn unknown_session_is_an_error_for_every_call() {
        let (_d, s) = sessions();
        assert!(matches!(s.status("nope"), Err(SessionsError::Unknown(_))));
        assert!(matches!(s.kill("nope"), Err(SessionsError::Unknown(_))));
        assert!(matches!(s.output("nope", Output::Stdout), Err(SessionsError::Unknown(_))));
    }

    #[test]
    fn bad_executable_ends_in_a_failed_report_not_a_crash() {
        let (_d, s) = sessions();
        let name = crate::blobs::sha256_hex(b"not an elf");
        s.blobs.put(&name, b"not an elf").unwrap();
        let id = s.start(&api::SessionRequest::new(name)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let report = loop {
            if let Some(r) = s.status(&id).unwrap().report {
                break r;
            }
            assert!(std::time::Instant::now() < deadline, "session never ended");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(report.return_code, ReturnCode::BadExecutable.code());
        assert_eq!(s.list().sessions.len(), 1);
    }

    #[test]
    fn skips_ids_left_by_an_earlier_run() {
        let (_d, s) = sessions();
        let taken = s.new_id();
        s.next.store(1, Ordering::Relaxed);
        std::fs::create_dir(s.dir.join(&taken)).unwrap();
        let (id, _) = s.new_dir().unwrap();
        assert_ne!(id, taken);
    }
}
