//! A serving daemon's pool of slots: copies launched ahead of their jobs
//! (`jail::slot`), so that a job's path skips the clone, the exec of the
//! loader and the mapping of the guest.
//!
//! One thread, the pool's, first learns which pages a copy touches (the
//! daemon's warm-up copy, `warmup`), so each slot maps them before its job,
//! then launches slots until [`SLOTS`] wait, and again each
//! time a job takes one; a job takes the oldest (or, when none waits, its copy
//! starts afresh as before). The pool's thread is the parent of every slot and
//! so of every guest a slot becomes: it lives until the pool is dropped, which the
//! daemon does only after its jobs have ended, and which kills and reaps the
//! slots still waiting. If a slot cannot be launched, the pool says so once
//! and stops launching: jobs then start afresh.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::sys::resource::{getrlimit, Resource};

use super::daemon::Daemon;
use super::{at_random, descriptor_limit, Options, SessionError};
use crate::abi;
use crate::jail::layout::{Auxv, Layout, WarmRun};
use crate::jail::slot::{self, Slot, SlotSpec};
use crate::jail::spawn::Rlimit;
use crate::manifest::MAX_TIMEOUT;

/// Slots kept waiting: enough for a few jobs arriving at once; each is a
/// process with the daemon's memory mapped (page tables only until touched).
pub const SLOTS: usize = 4;

#[derive(Default)]
struct State {
    ready: VecDeque<Slot>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The slots of one serving daemon.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pool {
    /// Starts the pool's thread for `daemon`.
    pub fn start(daemon: Arc<Daemon>, opts: Options) -> Pool {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::spawn(move || refill(&theirs, &daemon, &opts));
        Pool { shared, thread: Some(thread) }
    }

    /// A waiting slot, if any (the pool's thread then launches another).
    pub fn take(&self) -> Option<Slot> {
        let slot = self.shared.lock().ready.pop_front();
        self.shared.changed.notify_all();
        slot
    }
}

impl Drop for Pool {
    /// Ends the pool: its thread stops, and the slots still waiting are
    /// killed and reaped. Drop it only once no guest a slot became still runs.
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.lock().ready.clear();
    }
}

/// The pool's thread: keeps [`SLOTS`] slots waiting until told to stop.
fn refill(shared: &Shared, daemon: &Daemon, opts: &Options) {
    let nice = lower_priority();
    let warm = daemon.learn_warm(opts);
    loop {
        {
            let mut state = shared.lock();
            while !state.stop && state.ready.len() >= SLOTS {
                state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.stop {
                return;
            }
        }
        match prestart(daemon, opts, nice, &warm) {
            Ok(slot) => shared.lock().ready.push_back(slot),
            Err(e) => {
                tracing::warn!("cannot start a daemon's pool slot ({e}); its jobs start afresh");
                let mut state = shared.lock();
                while !state.stop {
                    state = shared.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                return;
            }
        }
    }
}

/// Makes this thread, and so the slots it launches, yield to everything
/// else of the supervisor (nice 19): a slot is launched with the CPU that
/// jobs leave. Only where the supervisor may set its guests back (root:
/// `CAP_SYS_NICE`); returns the nice a slot gets back when its job starts.
fn lower_priority() -> Option<i32> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    // Raw: nix has no getpriority/setpriority. Errno is cleared first
    // because -1 is a valid nice value.
    // SAFETY: plain integer calls on this process and this thread (a
    // thread's nice is its own on Linux: PRIO_PROCESS with its tid).
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if *libc::__errno_location() != 0 {
            return None;
        }
        let tid = libc::gettid() as libc::id_t;
        (libc::setpriority(libc::PRIO_PROCESS, tid, 19) == 0).then_some(nice)
    }
}

/// Launches one slot of `daemon`: its program and memory, no channels yet;
/// `nice`, the priority it gets back with its job; `warm`, the pages it maps
/// before its job (`warmup`).
fn prestart(daemon: &Daemon, opts: &Options, nice: Option<i32>, warm: &[WarmRun]) -> Result<Slot, SessionError> {
    let (plan, memory, args, env) = daemon.parts();
    let template = daemon.template();
    let layout = Layout {
        entry: plan.image.elf.entry,
        segments: &plan.segments,
        heap: (abi::HEAP_ADDR, plan.heap_size),
        stack_size: plan.stack,
        channels: &[],
        args,
        env,
        auxv: Auxv {
            phdr: plan.image.elf.phdr,
            phnum: plan.image.elf.phnum,
            entry: plan.image.elf.entry,
            random: at_random(&plan.image.hash),
        },
        filter: &[],
        resume: Some(template.resume()),
        warm,
    }
    .write()?;
    // Each at least what any job gets; a job's CPU time and file size are
    // lowered to its own when it takes the slot.
    let fsize = getrlimit(Resource::RLIMIT_FSIZE).map_or(u64::MAX, |(_, hard)| hard);
    let files = descriptor_limit(slot::MAX_FDS as u32).max(slot::SLOT_FD + 8);
    let rlimits = vec![
        Rlimit { resource: libc::RLIMIT_AS, value: memory + (64 << 20) },
        Rlimit { resource: libc::RLIMIT_CORE, value: 0 },
        Rlimit { resource: libc::RLIMIT_NOFILE, value: files },
        Rlimit { resource: libc::RLIMIT_CPU, value: MAX_TIMEOUT + 2 },
        Rlimit { resource: libc::RLIMIT_FSIZE, value: fsize },
    ];
    let spec = SlotSpec {
        image: std::os::fd::AsRawFd::as_raw_fd(&plan.image.fd),
        layout,
        state: template.memory_fd(),
        rlimits,
        namespaces: opts.namespaces,
        share_namespaces: opts.share_namespaces,
        nice,
    };
    Ok(slot::prestart(spec)?)
}
