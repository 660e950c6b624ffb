//! Sessions: one guest from manifest (or builder) to report.
//!
//! [`Guest`] is what to run: a program, `Memory`, `Timeout`, channels (opened
//! from manifest lines or given as descriptors), arguments and environment.
//! [`spawn`] checks and launches it; [`Session::wait`] supervises it until it
//! exits, is killed or times out, and returns the [`Report`]. [`run_manifest`]
//! does all three for a parsed manifest, turning every failure into the report
//! and return code ZeroVM would have given.
//!
//! Memory: `Memory` bounds the guest's whole footprint. The image's segments
//! and the stack come out of it and the rest is the preallocated heap, so
//! a program too large for its `Memory` fails with code 12 before it runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, Resource};

use crate::abi;
use crate::channel::{Channel, ChannelError};
use crate::codes::ReturnCode;
use crate::image::{Image, ImageCache, ImageError, Member};
use crate::jail::layout::{Auxv, GuestChannel, Layout, LayoutError, MapSegment};
use crate::jail::seccomp::Policy;
use crate::jail::slot::Slot;
use crate::jail::spawn::Rlimit;
use crate::jail::{self, loader, JailError};
use crate::manifest::{self, Manifest, ManifestError};
use crate::report::{Report, ValidatorState};
use crate::verdict_cache::{ImageHash, VerdictCache};

pub mod daemon;
mod describe;
pub mod pool;
mod supervise;
mod warmup;

use supervise::{AtStart, GuestMemory};
pub use supervise::{KillHandle, Session};

/// How sessions are run (shared by many sessions).
#[derive(Debug, Clone)]
pub struct Options {
    /// Validator verdicts, by image hash.
    pub verdicts: Arc<VerdictCache>,
    /// Sealed images, by file identity.
    pub images: Arc<ImageCache>,
    /// Ask for new namespaces (user, pid, mount, ipc, uts).
    pub namespaces: bool,
    /// For a root supervisor: make the mount, ipc and uts namespaces once and
    /// share them among guests (each still gets its own pid namespace). Saves
    /// ~150 µs per guest; costs ~1 ms once, so a one-shot supervisor such as
    /// `zvsh` leaves it off.
    pub share_namespaces: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            verdicts: Arc::new(VerdictCache::new(None)),
            images: Arc::new(ImageCache::new()),
            namespaces: true,
            share_namespaces: true,
        }
    }
}

/// What to run.
#[derive(Debug)]
pub struct Guest {
    /// The program.
    pub program: PathBuf,
    /// The program's byte range in that file, when it is a member of a tar
    /// image rather than the whole file.
    pub program_member: Option<Member>,
    /// `Memory` in bytes.
    pub memory: u64,
    /// `Timeout`.
    pub timeout: Duration,
    /// Channels, in any order (the guest sees stdin, stdout, stderr, then by alias).
    pub channels: Vec<Channel>,
    /// argv; empty means the program's file name alone.
    pub args: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
}

/// Why a session did not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A channel could not be opened.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The program cannot run.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// `Memory` cannot hold the program and its stack.
    #[error("Memory ({memory} bytes) is smaller than the program ({image} bytes) and its stack ({stack} bytes)")]
    Memory {
        /// `Memory`.
        memory: u64,
        /// Image footprint.
        image: u64,
        /// Stack size.
        stack: u64,
    },
    /// The standard channels are missing.
    #[error("channel {0} is missing: every guest needs /dev/stdin, /dev/stdout and /dev/stderr")]
    MissingStd(&'static str),
    /// Two channels share an alias.
    #[error("two channels are named {0}")]
    DuplicateAlias(String),
    /// Too many channels.
    #[error("{0} channels: at most {max} are supported", max = crate::manifest::MAX_CHANNELS)]
    TooManyChannels(usize),
    /// The guest's memory could not be laid out.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The jail could not start it.
    #[error(transparent)]
    Jail(#[from] JailError),
    /// `Memory`, `Timeout` or a channel limit the runtime cannot represent (a guest
    /// built in code, or a manifest that skipped [`Manifest::validate`]).
    #[error("{}", .0.message)]
    Manifest(#[from] ManifestError),
}

impl SessionError {
    /// The ZeroVM return code.
    pub fn code(&self) -> ReturnCode {
        match self {
            SessionError::Channel(e) => e.code(),
            SessionError::Image(e) => e.code(),
            SessionError::Memory { .. } => ReturnCode::BadMemory,
            SessionError::TooManyChannels(_) => ReturnCode::TooManyChannels,
            SessionError::Layout(LayoutError::ManifestTooLarge { .. }) => ReturnCode::TooManyChannels,
            SessionError::MissingStd(_) | SessionError::DuplicateAlias(_) | SessionError::Layout(_) => {
                ReturnCode::Malformed
            }
            SessionError::Jail(_) => ReturnCode::Killed,
            SessionError::Manifest(e) => e.code,
        }
    }

    /// The report for a session that failed this way.
    pub fn into_report(self) -> Report {
        let validator = match &self {
            SessionError::Image(ImageError::Invalid(_)) => ValidatorState::Failed,
            SessionError::Jail(_) => ValidatorState::Passed,
            _ => ValidatorState::NotRun,
        };
        Report::failed(self.code(), validator, error_chain(&self))
    }
}

/// `error: cause: cause`, on one line: the one error-chain formatter of the workspace
/// (the agent and the orchestrator use it too). A source whose text the line already
/// shows (an error that prints its source in its own message) is not repeated.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = c.source();
    }
    s
}

impl Guest {
    /// The guest a manifest describes, with its channels opened.
    pub fn from_manifest(m: &Manifest) -> Result<Guest, SessionError> {
        // The numbers are checked before the deadline is computed from them.
        m.validate()?;
        let deadline = Instant::now() + Duration::from_secs(m.timeout);
        let channels = m.channels.iter().map(|c| Channel::open(c, deadline)).collect::<Result<Vec<_>, _>>()?;
        Ok(Guest {
            program: m.program.clone(),
            program_member: None,
            memory: m.memory,
            timeout: Duration::from_secs(m.timeout),
            channels,
            args: m.args.clone(),
            env: m.env.clone(),
        })
    }
}

/// `Memory`, `Timeout` and every channel's limits within what the manifest allows.
fn check_numbers(guest: &Guest) -> Result<(), ManifestError> {
    manifest::check_memory(guest.memory.into(), None)?;
    // A fraction of a second past the largest whole second is still too much.
    let secs = guest.timeout.as_secs() + u64::from(guest.timeout.subsec_nanos() > 0);
    manifest::check_timeout(secs.into(), None)?;
    for channel in &guest.channels {
        manifest::check_limits(&channel.limits, &channel.alias, None)?;
    }
    Ok(())
}

/// Runs a manifest to completion; every failure becomes the report. A
/// manifest with `Job` runs as a daemon serving jobs on that socket until its
/// `Timeout` ([`daemon`]).
pub fn run_manifest(m: &Manifest, opts: &Options) -> Report {
    if let Some(socket) = &m.job {
        return daemon::run(m, socket, opts);
    }
    match Guest::from_manifest(m).and_then(|g| spawn(g, opts)) {
        Ok(session) => session.wait(),
        Err(e) => e.into_report(),
    }
}

/// Stack size for a given `Memory`: 1/16 of it, between 64 KiB and 8 MiB.
pub fn stack_size(memory: u64) -> u64 {
    (memory / 16).clamp(64 << 10, 8 << 20) & !(abi::PAGE_SIZE - 1)
}

/// The guest's `RLIMIT_NOFILE`. The guest cannot create descriptors, so the
/// limit guards nothing; but the kernel caps the descriptors a user has in
/// flight over Unix sockets at the sender's `RLIMIT_NOFILE`, counted across
/// all of that user's processes, and every guest of a root supervisor is
/// `nobody` sending its listener at start-up. A tight limit made concurrent
/// start-ups fail, so it is generous (bounded by the supervisor's own).
pub(crate) fn descriptor_limit(channels: u32) -> u64 {
    let hard = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(_, hard)| hard);
    (u64::from(channels) + 8).max(hard.min(1 << 16))
}

/// The descriptor class of a channel: descriptors are laid out in this order
/// (see [`Policy`]).
fn class(c: &Channel) -> u8 {
    if c.mediated() {
        return 6;
    }
    match (c.limits.readable(), c.limits.writable(), c.access.random_get(), c.access.random_put()) {
        (true, false, false, _) => 0,
        (true, false, true, _) => 1,
        (true, true, _, false) => 2,
        (true, true, _, true) => 3,
        (false, _, _, true) => 4,
        (false, _, _, false) => 5,
    }
}

/// How large each channel's file may grow: a writable regular file, its
/// size now plus `put_size` (saturating); anything else, no bound. Taken
/// just before the guest runs.
fn growth_bounds(channels: &[Channel]) -> Vec<u64> {
    channels
        .iter()
        .map(|c| {
            if !(c.regular && c.limits.writable()) {
                return u64::MAX;
            }
            let size = nix::sys::stat::fstat(&c.fd).map_or(0, |st| st.st_size.max(0) as u64);
            size.saturating_add(c.limits.put_size)
        })
        .collect()
}

/// The guest's `RLIMIT_FSIZE`: the kernel refuses a direct write (or one at
/// an offset) that would take a regular file past it. One limit serves all
/// the guest's files, so it is the largest bound of its direct writable
/// regular files (0 when it has none), within the supervisor's own limit.
fn file_size_limit(channels: &[Channel], bounds: &[u64]) -> u64 {
    let largest = channels
        .iter()
        .zip(bounds)
        .filter(|(c, _)| c.regular && c.limits.writable() && !c.mediated())
        .map(|(_, &b)| b)
        .max()
        .unwrap_or(0);
    let hard = getrlimit(Resource::RLIMIT_FSIZE).map_or(u64::MAX, |(_, hard)| hard);
    largest.min(hard)
}

/// Checks and launches a guest. The calling thread must outlive the session
/// (the kernel's parent-death signal follows the thread that forked).
pub fn spawn(guest: Guest, opts: &Options) -> Result<Session, SessionError> {
    launch(guest, opts, Role::Plain)
}

/// What a launched guest is to daemon mode.
enum Role<'a> {
    /// An ordinary guest: `zvm_fork` answers `ENOSYS`.
    Plain,
    /// A daemon (`Job`): its `zvm_fork` makes it the template of its
    /// copies; its program as loaded for them.
    Daemon(&'a ProgramPlan),
    /// A copy of a daemon: its memory, copy-on-write, resumed where the
    /// daemon called `zvm_fork`, and its program as the daemon loaded it;
    /// started in a pool slot if one is given (and the job's descriptors fit
    /// in one message), else afresh.
    Copy(&'a daemon::Template, &'a ProgramPlan, Option<Slot>),
}

fn launch(guest: Guest, opts: &Options, role: Role<'_>) -> Result<Session, SessionError> {
    // The manifest's numeric rules hold for guests built in code too (the agent's):
    // the deadline, RLIMIT_AS and RLIMIT_CPU below are computed from these numbers.
    check_numbers(&guest)?;
    let daemon_role = matches!(role, Role::Daemon(_));
    let start = Instant::now();
    let deadline = start + guest.timeout;
    // The guest's view: stdin, stdout, stderr, then by alias.
    let mut channels = guest.channels;
    if channels.len() > crate::manifest::MAX_CHANNELS {
        return Err(SessionError::TooManyChannels(channels.len()));
    }
    let rank = |a: &str| ["/dev/stdin", "/dev/stdout", "/dev/stderr"].iter().position(|s| *s == a).unwrap_or(3);
    channels.sort_by(|a, b| (rank(&a.alias), &a.alias).cmp(&(rank(&b.alias), &b.alias)));
    for (i, std) in ["/dev/stdin", "/dev/stdout", "/dev/stderr"].into_iter().enumerate() {
        if channels.get(i).map(|c| c.alias.as_str()) != Some(std) {
            return Err(SessionError::MissingStd(std));
        }
    }
    if let Some(w) = channels.windows(2).find(|w| w[0].alias == w[1].alias) {
        return Err(SessionError::DuplicateAlias(w[0].alias.clone()));
    }

    let loaded;
    let plan = match &role {
        Role::Copy(_, plan, _) | Role::Daemon(plan) => *plan,
        Role::Plain => {
            loaded = program_plan(&guest.program, guest.program_member, guest.memory, opts)?;
            &loaded
        }
    };
    let ProgramPlan { image, segments, heap_size, stack } = plan;
    let (heap_size, stack) = (*heap_size, *stack);

    // Guest descriptors by class; the gate table maps guest order to them.
    let mut by_class: Vec<usize> = (0..channels.len()).collect();
    by_class.sort_by_key(|&i| class(&channels[i]));
    let mut fd_of = vec![0u32; channels.len()];
    for (fd, &i) in by_class.iter().enumerate() {
        fd_of[i] = fd as u32;
    }
    let bound = |k: u8| by_class.iter().take_while(|&&i| class(&channels[i]) < k).count() as u32;
    let n = channels.len() as u32;
    let policy = Policy {
        trampoline: abi::TRAMPOLINE_ADDR..abi::TRAMPOLINE_ADDR + abi::PAGE_SIZE,
        readable: 0..bound(4),
        writable: bound(2)..bound(6),
        random_get: bound(1)..bound(4),
        random_put: bound(3)..bound(5),
        mediated: bound(6)..n,
        socket: n,
        loader: loader::WINDOW,
    };
    let guest_channels: Vec<GuestChannel> = channels
        .iter()
        .zip(&fd_of)
        .map(|(ch, &fd)| {
            let l = ch.limits;
            let cap = |v: u64| v.min(i64::MAX as u64) as i64;
            let mut flags = 0;
            for (on, bit) in [
                (l.readable(), abi::gate_flags::READABLE),
                (l.writable(), abi::gate_flags::WRITABLE),
                (ch.access.random_get(), abi::gate_flags::RANDOM_GET),
                (ch.access.random_put(), abi::gate_flags::RANDOM_PUT),
            ] {
                if on {
                    flags |= bit;
                }
            }
            GuestChannel {
                name: ch.alias.clone(),
                access_type: ch.access.code(),
                limits: [cap(l.gets), cap(l.get_size), cap(l.puts), cap(l.put_size)],
                size: ch.size as i64,
                fd,
                flags,
            }
        })
        .collect();
    let args = if guest.args.is_empty() {
        vec![guest.program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "guest".into())]
    } else {
        guest.args
    };
    let filter = policy.filter();
    let (template, slot) = match role {
        Role::Copy(t, _, slot) => (Some(t), slot),
        Role::Plain | Role::Daemon(_) => (None, None),
    };
    let resume = template.map(|t| t.resume());
    let layout = Layout {
        entry: image.elf.entry,
        segments,
        heap: (abi::HEAP_ADDR, heap_size),
        stack_size: stack,
        channels: &guest_channels,
        args: &args,
        env: &guest.env,
        auxv: Auxv {
            phdr: image.elf.phdr,
            phnum: image.elf.phnum,
            entry: image.elf.entry,
            random: at_random(&image.hash),
        },
        filter: &filter,
        resume,
        warm: &[],
    }
    .write()?;

    let mut fds = vec![0; channels.len()];
    for (i, ch) in channels.iter().enumerate() {
        fds[fd_of[i] as usize] = std::os::fd::AsRawFd::as_raw_fd(&ch.fd);
    }
    let cpu_secs = guest.timeout.as_secs() + 2;
    let bounds = growth_bounds(&channels);
    let file_size = file_size_limit(&channels, &bounds);
    let rlimits = vec![
        Rlimit { resource: libc::RLIMIT_AS, value: guest.memory + (64 << 20) },
        Rlimit { resource: libc::RLIMIT_CORE, value: 0 },
        Rlimit { resource: libc::RLIMIT_NOFILE, value: descriptor_limit(n) },
        Rlimit { resource: libc::RLIMIT_CPU, value: cpu_secs },
        Rlimit { resource: libc::RLIMIT_FSIZE, value: file_size },
    ];
    // Direct network channels are counted from their sockets, from just before the guest runs.
    let at_start = channels
        .iter()
        .zip(&bounds)
        .map(|(c, &end)| AtStart { socket: if c.mediated() { None } else { c.socket_bytes() }, end })
        .collect();
    let afresh = |channels: Vec<std::os::fd::RawFd>, layout, rlimits| {
        let spec = jail::Spec {
            channels,
            image: std::os::fd::AsRawFd::as_raw_fd(&image.fd),
            layout,
            rlimits,
            namespaces: opts.namespaces,
            share_namespaces: opts.share_namespaces,
            state: template.map(|t| t.memory_fd()),
        };
        jail::launch(spec, deadline)
    };
    let from_slot = slot.is_some();
    let launched = match slot {
        Some(slot) if Slot::fits(fds.len()) => {
            // What differs from the slot's limits (which are higher).
            match slot.start(&fds, &layout, (cpu_secs, file_size), deadline) {
                Ok(launched) => launched,
                Err(e) => {
                    tracing::debug!("pool slot failed ({e}); the copy starts afresh");
                    afresh(fds, layout, rlimits)?
                }
            }
        }
        _ => afresh(fds, layout, rlimits)?,
    };
    if let Some(note) = &launched.child.isolation_note {
        tracing::warn!("{note}");
    }
    tracing::debug!(
        pid = launched.child.pid,
        cached_verdict = image.cached_verdict,
        from_slot,
        heap = heap_size,
        stack,
        "guest started in {:?}",
        start.elapsed()
    );
    // What a daemon's copies get of its memory: every page it can write.
    // (An image segment's untouched pages are the image's bytes, not zeros:
    // all of it is taken. The heap and stack are anonymous: only touched pages.)
    let mut writable: Vec<(u64, u64, bool)> = segments
        .iter()
        .filter(|s| s.prot & libc::PROT_WRITE as u32 != 0)
        .map(|s| {
            let start = s.vaddr & !(abi::PAGE_SIZE - 1);
            (start, (s.vaddr + s.memsz).div_ceil(abi::PAGE_SIZE) * abi::PAGE_SIZE - start, false)
        })
        .collect();
    writable.extend([(abi::HEAP_ADDR, heap_size, true), (abi::STACK_TOP - stack, stack, true)]);
    let memory =
        GuestMemory { heap: (abi::HEAP_ADDR, heap_size), writable, daemon: daemon_role, copy: template.is_some() };
    Ok(Session::new(launched, channels, at_start, fd_of, policy, memory, deadline))
}

/// A program loaded for a guest of `memory` bytes: its image, segments to
/// map, and the heap and stack sizes that `memory` leaves.
#[derive(Debug)]
pub(crate) struct ProgramPlan {
    /// The checked, sealed (or immutable, from the program cache) image.
    pub image: Arc<Image>,
    /// Its segments, as the loader maps them.
    pub segments: Vec<MapSegment>,
    /// The heap's size.
    pub heap_size: u64,
    /// The stack's size.
    pub stack: u64,
}

/// Loads (or finds cached) the program and lays out a guest of `memory` bytes.
pub(crate) fn program_plan(
    program: &Path,
    member: Option<Member>,
    memory: u64,
    opts: &Options,
) -> Result<ProgramPlan, SessionError> {
    let image = opts.images.load(program, member, &opts.verdicts)?;
    let footprint: u64 = image
        .elf
        .segments
        .iter()
        .map(|s| {
            let start = s.vaddr & !(abi::PAGE_SIZE - 1);
            (s.vaddr + s.memsz).div_ceil(abi::PAGE_SIZE) * abi::PAGE_SIZE - start
        })
        .sum();
    let stack = stack_size(memory);
    let heap_size = memory
        .checked_sub(footprint + stack)
        .map(|h| h & !(abi::JAIL_ALIGN - 1))
        .ok_or(SessionError::Memory { memory, image: footprint, stack })?;
    let segments = image
        .elf
        .segments
        .iter()
        .map(|s| MapSegment {
            vaddr: s.vaddr,
            memsz: s.memsz,
            offset: s.offset,
            filesz: s.filesz,
            prot: [(s.read, libc::PROT_READ), (s.write, libc::PROT_WRITE), (s.exec, libc::PROT_EXEC)]
                .iter()
                .filter(|(on, _)| *on)
                .fold(0, |p, (_, bit)| p | *bit as u32),
        })
        .collect();
    Ok(ProgramPlan { image, segments, heap_size, stack })
}

/// The 16 bytes behind `AT_RANDOM` (a libc's stack-protector canary and the
/// runtime's random seed): the first half of the program's hash, so a guest
/// is as deterministic as ZeroVM's (the same program and inputs give the same
/// run) while different programs get different canaries.
pub(crate) fn at_random(hash: &ImageHash) -> [u8; 16] {
    let mut out = [0; 16];
    out.copy_from_slice(&hash[..16]);
    out
}
