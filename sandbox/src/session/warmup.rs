//! A serving daemon's warm-up: which pages its copies touch, learned once
//! from a copy of the daemon, so that each pool slot maps them (and copies
//! ahead the ones a copy writes) before its job arrives, off the job's path.
//!
//! Why: a copy maps the daemon's memory copy-on-write, and on these machines
//! a copy-on-write fault costs microseconds (a Python job writes some fifty
//! of the daemon's pages just by running: reference counts). Mapping every
//! page the daemon's memory holds in each slot instead costs thousands of
//! page-table entries per slot that no job reads, and their teardown.
//!
//! How, in order:
//! 1. The warm-up copy gets the daemon's own channels as its job: the
//!    readable regular files opened again from the daemon's manifest (files
//!    the daemon could already read), every other one (writable, a pipe, a
//!    terminal, a device) replaced by `/dev/null`, no network channel at all. It is a copy like any other (own process,
//!    filter, limits) with a short `Timeout`; nothing it does reaches a file.
//! 2. When it calls `zvm_exit` (held there by the supervisor), its page map
//!    (`/proc/PID/pagemap`) over the program's segments and the daemon's
//!    memory says which pages it touched and which of those it wrote
//!    (anonymous now: copied on write).
//! 3. Those runs go into each slot's layout (`WarmRun`); the loader maps them
//!    before the job (`loader.c`, step 4c). A warm-up that fails (the copy
//!    faults, times out, or never calls `zvm_exit`) leaves the table empty:
//!    slots then map what the daemon's memory holds, as before.
//!
//! What a job can learn from it: nothing of another job. The table comes
//! from the daemon and its own inputs only, before any job runs, and is the
//! same for every slot; which pages are already copied says how the
//! daemon's code ran on its own inputs, which its jobs run anyway.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::daemon::Daemon;
use super::Options;
use crate::abi::PAGE_SIZE as PAGE;
use crate::channel::Channel;
use crate::jail::layout::{WarmRun, MAX_WARM};
use crate::manifest::{ChannelSource, ChannelSpec};

/// How long the warm-up copy may run.
const TIMEOUT: Duration = Duration::from_secs(2);
/// `pagemap` bits: the page is present; it is a file page (or shared).
const PRESENT: u64 = 1 << 63;
const FILE_PAGE: u64 = 1 << 61;
/// Page-map entries read at once.
const CHUNK: usize = 8192;

/// The warm-up copy's channels from the daemon's (step 1): a readable
/// channel keeps its file only if that is a regular file (reading one at an
/// offset changes nothing; a pipe, terminal or device would give its bytes to
/// the warm-up instead of to whoever else reads it); every other one reads
/// and writes `/dev/null`.
pub(super) fn channels(daemon_channels: &[ChannelSpec]) -> Vec<ChannelSpec> {
    daemon_channels
        .iter()
        .filter_map(|c| {
            let ChannelSource::Path(path) = &c.source else { return None };
            let mut c = c.clone();
            let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
            if c.limits.writable() || !regular {
                c.source = ChannelSource::Path(PathBuf::from("/dev/null"));
            }
            Some(c)
        })
        .collect()
}

/// Runs the warm-up copy of `daemon` on `specs` and returns the pages to
/// map in each slot (steps 1-2); empty if it could not be learned.
pub(super) fn learn(daemon: &Daemon, specs: &[ChannelSpec], opts: &Options) -> Vec<WarmRun> {
    if specs.is_empty() {
        return Vec::new();
    }
    let deadline = Instant::now() + TIMEOUT;
    let opened: Result<Vec<Channel>, _> = specs.iter().map(|c| Channel::open(c, deadline)).collect();
    let channels = match opened {
        Ok(channels) => channels,
        Err(e) => {
            tracing::debug!("daemon warm-up skipped: {e}");
            return Vec::new();
        }
    };
    let session = match daemon.spawn_job(channels, TIMEOUT, opts) {
        Ok(session) => session,
        Err(e) => {
            tracing::debug!("daemon warm-up skipped: {e}");
            return Vec::new();
        }
    };
    let pid = session.pid();
    let ranges = daemon.address_ranges();
    let mut learned = None;
    let report = session.wait_early(|_| learned = Some(touched(pid, &ranges)));
    match learned {
        Some(Ok(runs)) if runs.len() <= MAX_WARM => {
            let pages = |write| runs.iter().filter(|r| r.write == write).map(|r| u64::from(r.pages)).sum::<u64>();
            tracing::debug!("daemon warm-up: {} pages mapped and {} copied ahead per slot", pages(false), pages(true));
            runs
        }
        Some(Ok(runs)) => {
            tracing::debug!("daemon warm-up: {} runs of pages, more than a slot takes; slots map it all", runs.len());
            Vec::new()
        }
        Some(Err(e)) => {
            tracing::debug!("daemon warm-up: cannot read the copy's page map: {e}");
            Vec::new()
        }
        None => {
            tracing::debug!("daemon warm-up copy ended without zvm_exit ({})", report.exit_state);
            Vec::new()
        }
    }
}

/// The pages of `ranges` (page aligned, sorted, not overlapping) that the
/// stopped process `pid` has touched, in runs, written ones marked (step 2).
fn touched(pid: libc::pid_t, ranges: &[(u64, u64)]) -> std::io::Result<Vec<WarmRun>> {
    let pagemap = File::open(format!("/proc/{pid}/pagemap"))?;
    let mut runs: Vec<WarmRun> = Vec::new();
    let mut entries = vec![0u8; CHUNK * 8];
    for &(start, len) in ranges {
        let mut page = start;
        while page < start + len {
            let n = (((start + len - page) / PAGE) as usize).min(CHUNK);
            let got = pagemap.read_at(&mut entries[..n * 8], page / PAGE * 8)?;
            if got < n * 8 {
                return Err(std::io::Error::other("short read of the page map"));
            }
            for e in entries[..n * 8].chunks_exact(8) {
                let word = u64::from_le_bytes(e.try_into().expect("8 bytes"));
                if word & PRESENT != 0 {
                    add(&mut runs, page, word & FILE_PAGE == 0);
                }
                page += PAGE;
            }
        }
    }
    Ok(runs)
}

/// Appends `page` to the last run if it continues it, else starts one.
fn add(runs: &mut Vec<WarmRun>, page: u64, write: bool) {
    match runs.last_mut() {
        Some(r) if r.write == write && r.addr + u64::from(r.pages) * PAGE == page && r.pages < u32::MAX => r.pages += 1,
        _ => runs.push(WarmRun { addr: page, pages: 1, write }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Limits;

    #[test]
    fn runs_join_neighbours_of_one_kind() {
        let mut runs = Vec::new();
        for (page, write) in [(0x1000, false), (0x2000, false), (0x3000, true), (0x5000, true), (0x6000, true)] {
            add(&mut runs, page, write);
        }
        assert_eq!(
            runs,
            [
                WarmRun { addr: 0x1000, pages: 2, write: false },
                WarmRun { addr: 0x3000, pages: 1, write: true },
                WarmRun { addr: 0x5000, pages: 2, write: true },
            ]
        );
    }

    #[test]
    fn the_page_map_tells_pages_read_from_pages_written() {
        use nix::sys::signal::{kill, raise, Signal};
        use nix::sys::wait::{waitpid, WaitPidFlag};
        use std::io::Write;
        use std::os::fd::AsFd;

        // A private mapping of a file, as a copy maps the daemon's memory.
        let mut file =
            File::from(nix::sys::memfd::memfd_create(c"warmup-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap());
        file.write_all(&[7u8; 8 * PAGE as usize]).unwrap();
        let len = std::num::NonZeroUsize::new(8 * PAGE as usize).unwrap();
        let prot = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE;
        // SAFETY: a new mapping of our own file; the child alone touches it.
        let map =
            unsafe { nix::sys::mman::mmap(None, len, prot, nix::sys::mman::MapFlags::MAP_PRIVATE, file.as_fd(), 0) }
                .unwrap();
        let base = map.as_ptr() as u64;
        // SAFETY: the child only reads and writes this mapping and stops itself
        // (async-signal-safe calls), then is killed.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: inside the 8-page mapping above.
                unsafe {
                    std::ptr::read_volatile((base + PAGE) as *const u8);
                    std::ptr::write_volatile((base + 3 * PAGE) as *mut u8, 1);
                }
                let _ = raise(Signal::SIGSTOP);
                // SAFETY: leaving the forked child without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                waitpid(child, Some(WaitPidFlag::WUNTRACED)).unwrap();
                let runs = touched(child.as_raw(), &[(base, 8 * PAGE)]);
                kill(child, Signal::SIGKILL).unwrap();
                waitpid(child, None).unwrap();
                // A read maps its neighbours too (the kernel's fault-around):
                // page 1 is among the pages read, page 3 the one written.
                let runs = runs.unwrap();
                let has = |page: u64, write: bool| {
                    runs.iter().any(|r| r.write == write && r.addr <= page && page < r.addr + u64::from(r.pages) * PAGE)
                };
                assert!(has(base + PAGE, false) && has(base + 3 * PAGE, true), "{runs:?}");
                assert_eq!(runs.iter().filter(|r| r.write).map(|r| r.pages).sum::<u32>(), 1, "{runs:?}");
            }
        }
    }

    #[test]
    fn the_warm_up_copy_reads_only_regular_files_writes_nowhere_and_reaches_no_network() {
        let spec = |source: ChannelSource, alias: &str, puts: u64| ChannelSpec {
            source,
            alias: alias.into(),
            access: crate::manifest::AccessType::SeqGetSeqPut,
            etag: false,
            limits: Limits { gets: 1 << 30, get_size: 1 << 30, puts, put_size: puts },
            line: 0,
        };
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        std::fs::write(&input, "data").unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let specs = [
            spec(ChannelSource::Path(input.clone()), "/dev/stdin", 0),
            spec(ChannelSource::Path(dir.path().join("out")), "/dev/stdout", 1 << 30),
            spec(ChannelSource::Network(Vec::new()), "/dev/net", 1 << 30),
            spec(ChannelSource::Path(fifo), "/dev/pipe", 0),
            spec(ChannelSource::Path("/dev/stdin".into()), "/dev/terminal", 0),
        ];
        let got = channels(&specs);
        let sources: Vec<_> = got.iter().map(|c| (c.alias.as_str(), c.source.clone())).collect();
        let null = || ChannelSource::Path("/dev/null".into());
        assert_eq!(
            sources,
            [
                ("/dev/stdin", ChannelSource::Path(input)),
                ("/dev/stdout", null()),
                ("/dev/pipe", null()),
                (
                    "/dev/terminal",
                    if std::fs::metadata("/dev/stdin").is_ok_and(|m| m.is_file()) {
                        ChannelSource::Path("/dev/stdin".into())
                    } else {
                        null()
                    }
                ),
            ],
            "no network channel; only regular files read"
        );
    }
}
