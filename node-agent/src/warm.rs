//! Warm daemons (`warm: true` in a session request): ZeroVM's daemon mode for
//! repeated short guests of one job group.
//!
//! The first warm request for a program, its arguments and environment, its
//! `memory` and its `image` and `input` devices starts a daemon
//! ([`Daemon::start`]): the guest runs with those two devices (and
//! `/dev/nvram`, which mounts the image) until it calls `zvm_fork`, and its
//! memory then becomes the template of its copies. That request and every
//! later one with the same key run as copies
//! ([`Daemon::spawn_job`]): a fresh jailed guest on the request's own
//! devices, resumed where `zvm_fork` returned. A daemon is no process, only
//! a sealed memory file, so keeping one costs memory and no CPU; the agent
//! keeps at most [`MAX_DAEMONS`] and forgets them all when one more is needed.
//!
//! Requests with one key wait for its daemon's start-up, once; a start-up that
//! fails (the guest ended without `zvm_fork`, or faulted) is that request's
//! report and is tried again by the next one.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zerolab_sandbox::channel::Channel;
use zerolab_sandbox::codes::ReturnCode;
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::report::{Report, ValidatorState};
use zerolab_sandbox::session::daemon::Daemon;
use zerolab_sandbox::session::{Guest, Options};

/// How many daemons the agent keeps.
pub const MAX_DAEMONS: usize = 16;

/// The channels a daemon keeps from the request that starts it (by alias).
const KEPT: [&str; 3] = ["/dev/image", "/dev/input", "/dev/nvram"];

type Slot = Arc<Mutex<Option<Arc<Daemon>>>>;

/// The agent's warm daemons, by key.
#[derive(Debug, Default)]
pub struct Warm {
    daemons: Mutex<HashMap<String, Slot>>,
}

/// What a warm daemon is started from: the first request's guest.
pub struct Start<'a> {
    /// The program.
    pub program: &'a Path,
    /// `memory`.
    pub memory: u64,
    /// How long its start-up may take (the request's `timeout`).
    pub timeout: Duration,
    /// argv.
    pub args: &'a [String],
    /// Environment.
    pub env: &'a [(String, String)],
    /// The request's channels (the daemon gets its own descriptors for
    /// `/dev/image`, `/dev/input` and `/dev/nvram`).
    pub channels: &'a [Channel],
}

impl Warm {
    /// The daemon for `key`, started from `start` if there is none yet.
    #[allow(clippy::result_large_err)] // the report, as a session gives it
    pub fn daemon(&self, key: &str, start: Start<'_>, opts: &Options) -> Result<Arc<Daemon>, Report> {
        let slot = {
            let mut daemons = self.daemons.lock().unwrap_or_else(|e| e.into_inner());
            if !daemons.contains_key(key) && daemons.len() >= MAX_DAEMONS {
                daemons.clear();
            }
            Arc::clone(daemons.entry(key.to_owned()).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(daemon) = slot.as_ref() {
            return Ok(Arc::clone(daemon));
        }
        let failed = |what: &str, e: std::io::Error| {
            Report::failed(ReturnCode::Killed, ValidatorState::NotRun, format!("warm daemon: {what}: {e}"))
        };
        let mut channels = Vec::new();
        for (alias, write) in [("/dev/stdin", false), ("/dev/stdout", true), ("/dev/stderr", true)] {
            let null = OpenOptions::new().read(!write).write(write).open("/dev/null");
            let null = null.map_err(|e| failed("cannot open /dev/null", e))?;
            let limits = if write {
                Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED }
            } else {
                Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED }
            };
            channels.push(
                Channel::from_fd(alias, AccessType::SeqGetSeqPut, limits, null.into()).map_err(|e| failed(alias, e))?,
            );
        }
        for ch in start.channels.iter().filter(|c| KEPT.contains(&c.alias.as_str())) {
            let fd = ch.fd.try_clone().map_err(|e| failed(&ch.alias, e))?;
            channels
                .push(Channel::from_fd(ch.alias.clone(), ch.access, ch.limits, fd).map_err(|e| failed(&ch.alias, e))?);
        }
        let guest = Guest {
            program: start.program.to_path_buf(),
            program_member: None,
            memory: start.memory,
            timeout: start.timeout,
            channels,
            args: start.args.to_vec(),
            env: start.env.to_vec(),
        };
        let daemon = Arc::new(Daemon::start(guest, opts)?);
        *slot = Some(Arc::clone(&daemon));
        Ok(daemon)
    }
}
