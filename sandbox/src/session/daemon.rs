//! Daemon mode (`Job = SOCKET`), as ZeroVM had it: a guest initialises once
//! (Python imports its modules, say) and calls `zvm_fork`; from then on each
//! job manifest that arrives on the socket runs in a copy of the initialised
//! guest wired to that job's channels, and `zvm_fork` returns 0 there.
//!
//! How a copy is made, and why it is as isolated as a fresh guest:
//!
//! 1. `zvm_fork`'s gate saves the registers a function call must keep on
//!    the guest's stack and asks the supervisor with `fork(rsp)`, a call the
//!    filter never allows ([`Verdict::Fork`](crate::jail::seccomp::Verdict)).
//! 2. The supervisor reads every page the guest can write (writable
//!    segments, heap, stack: `Template::take`; heap and stack pages never
//!    touched are skipped, from `/proc/PID/pagemap`) into one sealed memfd, and ends the
//!    daemon's process. The daemon's memory is now data, nothing runs it.
//! 3. Each job is a new guest launched exactly as a fresh one (its own
//!    process, pid namespace, filter, channels, `Timeout`, limits), except
//!    that the loader maps the template over the writable parts,
//!    copy-on-write (private), and enters at the trampoline's resume point
//!    with the saved stack ([`Daemon::run_job`]). A copy can change only its
//!    own pages; the template is sealed, so no copy's writes reach another.
//!
//! The copy's program and `Memory` are the daemon's (its address space is the
//! daemon's); a job manifest gives the channels and `Timeout` (its `Program`
//! and `Memory` are checked like any manifest's and otherwise not used). The
//! reports of the daemon and of every copy say `1` on the daemon line.
//!
//! The socket protocol: a client connects, sends a manifest and shuts down
//! its writing side; the daemon answers with the copy's report and a seventh
//! line, its ZeroVM return code, and closes ([`submit`]). Jobs run
//! concurrently, one thread each. While it serves, copies wait launched
//! ahead of their jobs in a pool (`pool`, `jail::slot`): a job takes one,
//! and its path is the channels, the layout and the filter, not the launch.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::pool::Pool;
use super::supervise::GuestMemory;
use super::warmup;
use super::{launch, program_plan, Guest, Options, ProgramPlan, Role, Session, SessionError};
use crate::channel::Channel;
use crate::codes::ReturnCode;
use crate::image::Member;
use crate::jail::layout::{Resume, WarmRun};
use crate::jail::slot::Slot;
use crate::jail::{memfd, notify};
use crate::manifest::{self, ChannelSpec, Manifest};
use crate::report::{Report, ValidatorState};

const PAGE: u64 = crate::abi::PAGE_SIZE;
/// Largest piece read from the daemon at once.
const PIECE: usize = 1 << 20;

/// A daemon's memory at its `zvm_fork`: the template of its copies.
#[derive(Debug)]
pub struct Template {
    memory: OwnedFd,
    resume: Resume,
}

impl Template {
    /// Reads the writable memory of the stopped guest `pid` into a sealed
    /// memfd; `sp` is the stack pointer `zvm_fork`'s gate passed.
    pub(super) fn take(pid: libc::pid_t, memory: &GuestMemory, sp: u64) -> std::io::Result<Template> {
        let file = File::from(nix::sys::memfd::memfd_create(
            c"zerolab-daemon",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
        )?);
        let pagemap = File::open(format!("/proc/{pid}/pagemap")).ok();
        let mut regions = Vec::with_capacity(memory.writable.len());
        let mut off = 0;
        let mut buf = vec![0u8; PIECE];
        for &(addr, len, anonymous) in &memory.writable {
            regions.push((addr, len, off));
            let runs = if anonymous { present_runs(pagemap.as_ref(), addr, len) } else { vec![(addr, len)] };
            for (start, run) in runs {
                let mut at = 0;
                while at < run {
                    let n = (run - at).min(PIECE as u64) as usize;
                    let got = notify::read_guest(pid, start + at, &mut buf[..n])?;
                    if got != n {
                        return Err(std::io::Error::other("short read of the daemon's memory"));
                    }
                    file.write_all_at(&buf[..n], off + (start - addr) + at)?;
                    at += n as u64;
                }
            }
            off += len;
        }
        file.set_len(off)?;
        let fd = OwnedFd::from(file);
        memfd::seal(&fd)?;
        Ok(Template { memory: fd, resume: Resume { sp, regions } })
    }

    /// Where a copy's memory goes and where it resumes.
    pub(super) fn resume(&self) -> &Resume {
        &self.resume
    }

    /// The sealed memory file, for a copy's loader.
    pub(super) fn memory_fd(&self) -> RawFd {
        self.memory.as_raw_fd()
    }
}

/// The runs of pages in `[addr, addr + len)` that the guest has touched
/// (present or swapped, from `pagemap`); all of it when `pagemap` is unreadable.
fn present_runs(pagemap: Option<&File>, addr: u64, len: u64) -> Vec<(u64, u64)> {
    let pages = (len / PAGE) as usize;
    let mut entries = vec![0u8; pages * 8];
    let Some(Ok(())) = pagemap.map(|p| p.read_exact_at(&mut entries, addr / PAGE * 8)) else {
        return vec![(addr, len)];
    };
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for (i, e) in entries.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(e.try_into().expect("8 bytes"));
        if word & (3 << 62) == 0 {
            continue;
        }
        let page = addr + i as u64 * PAGE;
        match runs.last_mut() {
            Some((start, n)) if *start + *n == page => *n += PAGE,
            _ => runs.push((page, PAGE)),
        }
    }
    runs
}

/// An initialised daemon, ready to run jobs.
#[derive(Debug)]
pub struct Daemon {
    template: Template,
    /// The program as the daemon loaded it: its copies map the same image.
    plan: ProgramPlan,
    program: PathBuf,
    program_member: Option<Member>,
    memory: u64,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The warm-up copy's channels, when it serves with a pool (`warmup`).
    warmup: Vec<ChannelSpec>,
}

impl Daemon {
    /// Starts `guest` as a daemon and waits for its `zvm_fork` (within its
    /// `Timeout`). A guest that ends without calling it, or a failure, is
    /// the report.
    #[allow(clippy::result_large_err)] // the report, as a session gives it
    pub fn start(guest: Guest, opts: &Options) -> Result<Daemon, Report> {
        let (program, program_member) = (guest.program.clone(), guest.program_member);
        let (memory, args, env) = (guest.memory, guest.args.clone(), guest.env.clone());
        let plan = program_plan(&program, program_member, memory, opts).map_err(|e| daemon_report(e.into_report()))?;
        let session = launch(guest, opts, Role::Daemon(&plan)).map_err(|e| daemon_report(e.into_report()))?;
        let template = session.wait_fork()?;
        Ok(Daemon { template, plan, program, program_member, memory, args, env, warmup: Vec::new() })
    }

    /// Starts one job: a copy of the daemon on `channels`, for at most
    /// `timeout`. The calling thread must outlive the copy.
    pub fn spawn_job(
        &self,
        channels: Vec<Channel>,
        timeout: Duration,
        opts: &Options,
    ) -> Result<Session, SessionError> {
        self.spawn_job_in(channels, timeout, opts, None)
    }

    /// [`Daemon::spawn_job`] in a pool slot (see `pool`), or afresh without one.
    fn spawn_job_in(
        &self,
        channels: Vec<Channel>,
        timeout: Duration,
        opts: &Options,
        slot: Option<Slot>,
    ) -> Result<Session, SessionError> {
        let guest = Guest {
            program: self.program.clone(),
            program_member: self.program_member,
            memory: self.memory,
            timeout,
            channels,
            args: self.args.clone(),
            env: self.env.clone(),
        };
        launch(guest, opts, Role::Copy(&self.template, &self.plan, slot))
    }

    /// The pages of a copy worth mapping ahead: the program's segments and
    /// the daemon's memory, page aligned, sorted, overlaps joined.
    pub(super) fn address_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = self
            .plan
            .segments
            .iter()
            .map(|s| {
                let start = s.vaddr & !(PAGE - 1);
                (start, (s.vaddr + s.memsz).div_ceil(PAGE) * PAGE)
            })
            .chain(self.template.resume.regions.iter().map(|&(addr, len, _)| (addr, addr + len)))
            .collect();
        ranges.sort_unstable();
        let mut joined: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match joined.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => joined.push((start, end)),
            }
        }
        joined.into_iter().map(|(start, end)| (start, end - start)).collect()
    }

    /// The pages each pool slot maps before its job, from the warm-up copy
    /// (empty when there is none or it failed).
    pub(super) fn learn_warm(&self, opts: &Options) -> Vec<WarmRun> {
        warmup::learn(self, &self.warmup, opts)
    }

    /// The daemon's program as loaded, `Memory`, arguments and environment: its copies'.
    pub(super) fn parts(&self) -> (&ProgramPlan, u64, &[String], &[(String, String)]) {
        (&self.plan, self.memory, &self.args, &self.env)
    }

    /// The daemon's memory at its `zvm_fork`.
    pub(super) fn template(&self) -> &Template {
        &self.template
    }

    /// Runs one job to its end (see [`Daemon::spawn_job`]).
    pub fn run_job(&self, channels: Vec<Channel>, timeout: Duration, opts: &Options) -> Report {
        self.run_job_in(channels, timeout, opts, None, None)
    }

    /// [`Daemon::run_job`], in `slot` if given; with `early`, the report
    /// goes to it as soon as the copy calls `zvm_exit` ([`Session::wait_early`]).
    fn run_job_in(
        &self,
        channels: Vec<Channel>,
        timeout: Duration,
        opts: &Options,
        slot: Option<Slot>,
        early: Option<&mut dyn FnMut(&Report)>,
    ) -> Report {
        match self.spawn_job_in(channels, timeout, opts, slot) {
            Ok(session) => match early {
                Some(early) => session.wait_early(|report| early(report)),
                None => session.wait(),
            },
            Err(e) => daemon_report(e.into_report()),
        }
    }

    /// Runs one job manifest's text: its channels opened, then [`Daemon::run_job`].
    pub fn run_manifest_text(&self, text: &[u8], opts: &Options) -> Report {
        self.run_manifest_in(text, opts, None, None)
    }

    /// [`Daemon::run_manifest_text`], in `pool`'s oldest slot if one waits
    /// (taken once the manifest is parsed and its channels open), the report
    /// given to `early` as soon as there is one (see [`Daemon::run_job_in`]).
    fn run_manifest_in(
        &self,
        text: &[u8],
        opts: &Options,
        pool: Option<&Pool>,
        early: Option<&mut dyn FnMut(&Report)>,
    ) -> Report {
        let m = match manifest::parse(text) {
            Ok(m) => m,
            Err(e) => return daemon_report(Report::failed(e.code, ValidatorState::NotRun, e.to_string())),
        };
        match Guest::from_manifest(&m) {
            Ok(g) => self.run_job_in(g.channels, g.timeout, opts, pool.and_then(Pool::take), early),
            Err(e) => daemon_report(SessionError::into_report(e)),
        }
    }

    /// Serves jobs on the Unix socket `path` (made here, mode 0600; a stale
    /// socket file there is replaced) until `until`, each in its own thread; then removes
    /// the socket, waits for the jobs still running and returns the daemon's
    /// report.
    pub fn serve(self, path: &Path, until: Instant, opts: &Options) -> Report {
        if std::fs::symlink_metadata(path).is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())) {
            let _ = std::fs::remove_file(path);
        }
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) => {
                let why = format!("cannot listen on the Job socket {}: {e}", path.display());
                return daemon_report(Report::failed(ReturnCode::Malformed, ValidatorState::Passed, why));
            }
        };
        // A job's channels are host paths the daemon opens as its own user: only
        // that user may send one (connecting needs write permission on the socket).
        if let Err(e) = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600)) {
            let _ = std::fs::remove_file(path);
            let why = format!("cannot make the Job socket {} private: {e}", path.display());
            return daemon_report(Report::failed(ReturnCode::Malformed, ValidatorState::Passed, why));
        }
        let daemon = Arc::new(self);
        let pool = Arc::new(Pool::start(Arc::clone(&daemon), opts.clone()));
        let mut jobs = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&listener), PollFlags::POLLIN)];
            if !matches!(nix::poll::poll(&mut fds, ms), Ok(n) if n > 0) {
                continue;
            }
            let Ok((stream, _)) = listener.accept() else { continue };
            let (daemon, pool, opts) = (Arc::clone(&daemon), Arc::clone(&pool), opts.clone());
            jobs.push(std::thread::spawn(move || serve_one(&daemon, &pool, stream, &opts)));
            jobs.retain(|j| !j.is_finished());
        }
        let _ = std::fs::remove_file(path);
        for job in jobs {
            let _ = job.join();
        }
        // Every guest a slot became has ended: the pool's thread may go.
        drop(pool);
        daemon_report(Report {
            validator: ValidatorState::Passed,
            daemon: 1,
            user_code: 0,
            etags: None,
            accounting: Default::default(),
            exit_state: "ok".into(),
            return_code: ReturnCode::Ok,
        })
    }
}

/// One connection: the manifest until the client's end of writing, the report
/// back as soon as there is one (the copy's teardown and reaping follow it).
fn serve_one(daemon: &Daemon, pool: &Pool, mut stream: UnixStream, opts: &Options) {
    let mut text = Vec::new();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(manifest::MAX_TIMEOUT)));
    if let Err(e) = (&mut stream).take(1 << 20).read_to_end(&mut text) {
        return tracing::debug!("job connection dropped: {e}");
    }
    let mut stream = Some(stream);
    let mut answer = |report: &Report| {
        if let Some(mut stream) = stream.take() {
            let _ = stream.write_all(format!("{report}{}\n", report.return_code.code()).as_bytes());
        }
    };
    let report = daemon.run_manifest_in(&text, opts, Some(pool), Some(&mut answer));
    answer(&report);
}

/// `report` with its daemon line set.
fn daemon_report(mut report: Report) -> Report {
    report.daemon = 1;
    report
}

/// Runs a manifest in daemon mode (its `Job` socket) until its `Timeout`:
/// starts the daemon, serves jobs, returns the daemon's report.
pub fn run(m: &Manifest, socket: &Path, opts: &Options) -> Report {
    // A daemon starts many guests: sharing the mount, ipc and uts namespaces
    // among them (root only; each still gets its own pid namespace) pays.
    let opts = &Options { share_namespaces: true, ..opts.clone() };
    let until = Instant::now() + Duration::from_secs(m.timeout);
    let guest = match Guest::from_manifest(m) {
        Ok(g) => g,
        Err(e) => return daemon_report(e.into_report()),
    };
    match Daemon::start(guest, opts) {
        Ok(daemon) => Daemon { warmup: warmup::channels(&m.channels), ..daemon }.serve(socket, until, opts),
        Err(report) => report,
    }
}

/// Sends a job manifest to the daemon listening on `socket`; returns the
/// report it answers with and the job's ZeroVM return code.
pub fn submit(socket: &Path, manifest: &[u8]) -> std::io::Result<(String, i32)> {
    let mut stream = UnixStream::connect(socket)?;
    stream.write_all(manifest)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let bad = || std::io::Error::other(format!("the daemon's answer is not a report: {answer:?}"));
    let body = answer.strip_suffix('\n').ok_or_else(bad)?;
    let (report, code) = body.rsplit_once('\n').ok_or_else(bad)?;
    let code = code.parse().map_err(|_| bad())?;
    Ok((format!("{report}\n"), code))
}
