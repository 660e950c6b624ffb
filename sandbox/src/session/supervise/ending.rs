//! The end of a session: the report, from how the guest ended and what it
//! moved; and, for a daemon's jobs, the report given before the kernel has
//! torn the guest down ([`Session::wait_early`]).

use super::super::describe::signal_name;
use super::{End, Session};
use crate::codes::ReturnCode;
use crate::jail::IoCounters;
use crate::report::{Accounting, Report, Traffic, ValidatorState};

impl Session {
    /// Supervises the guest until it ends, as [`Session::wait`] does; but
    /// when it leaves through `zvm_exit`, gives its report to `early` before
    /// letting the call through. The report is complete then: the exit code
    /// and the I/O counters and CPU times, read while the guest is stopped
    /// at that call; the kernel's teardown of its memory, its reaping and
    /// the closing of its channels follow `early`. Returns the report made
    /// after the reaping (the one given to `early` when there was one).
    pub fn wait_early(mut self, early: impl FnOnce(&Report)) -> Report {
        self.hold_exit = true;
        let mut early = Some(early);
        loop {
            if let Some(end) = self.supervise(None) {
                return self.finish(end);
            }
            if let Some(id) = self.held_exit.take() {
                let io = self.exit.and_then(|(_, io)| io);
                let end = End { status: 0, io, rusage: cpu_times(self.child.pid) };
                if let Some(early) = early.take() {
                    early(&self.report(&end));
                }
                let _ = self.listener.allow(id);
            }
        }
    }

    /// The report's local and network traffic. A mediated channel's calls and
    /// bytes are its own. The guest's direct calls on all channels are counted
    /// together by the kernel (`io`, against the baseline), so a direct network
    /// channel's bytes, from its socket, move from local to network; its calls
    /// stay local, since nothing counts calls per descriptor.
    fn traffic(&self, io: Option<IoCounters>) -> (Traffic, Traffic) {
        let (mut local, mut net) = (Traffic::default(), Traffic::default());
        for (u, c) in self.usage.iter().zip(&self.channels) {
            if c.network {
                net += u.traffic;
            } else {
                local += u.traffic;
            }
        }
        let mut direct = match (self.baseline, io) {
            (Some(b), Some(e)) => Some(Traffic {
                gets: e.syscr.saturating_sub(b.syscr),
                get_bytes: e.rchar.saturating_sub(b.rchar),
                puts: e.syscw.saturating_sub(b.syscw),
                put_bytes: e.wchar.saturating_sub(b.wchar),
            }),
            _ => None,
        };
        for (c, start) in self.channels.iter().zip(&self.net_start) {
            let (Some(start), Some(now)) = (start, c.socket_bytes()) else { continue };
            let (read, written) = (now.read.saturating_sub(start.read), now.written.saturating_sub(start.written));
            net.get_bytes += read;
            net.put_bytes += written;
            if let Some(d) = &mut direct {
                d.get_bytes = d.get_bytes.saturating_sub(read);
                d.put_bytes = d.put_bytes.saturating_sub(written);
            }
        }
        if let Some(d) = direct {
            local += d;
        }
        (local, net)
    }

    /// The report once the guest has ended (the session's last step).
    pub(super) fn finish(self, end: End) -> Report {
        self.report(&end)
    }

    /// The report of a guest that ended as `end` says.
    fn report(&self, end: &End) -> Report {
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let (local, net) = self.traffic(end.io);
        let etags: Vec<String> = self
            .usage
            .iter()
            .zip(&self.channels)
            .filter_map(|(u, c)| u.etag.as_ref().map(|h| format!("{} {}", c.alias, h.finalize().to_hex())))
            .collect();
        let accounting = Accounting { sys_s: secs(end.rusage.ru_stime), user_s: secs(end.rusage.ru_utime), local, net };
        let killed =
            self.killed.clone().or_else(|| self.killed_elsewhere.get().map(|why| (why.clone(), ReturnCode::Killed)));
        let (exit_state, return_code, user_code) = match (&killed, end.status) {
            (Some((why, code)), st) if !libc::WIFEXITED(st) => (why.clone(), *code, 0),
            (None, st) if libc::WIFSIGNALED(st) => {
                let sig = libc::WTERMSIG(st);
                (format!("Signal {sig} from untrusted code ({})", signal_name(sig)), ReturnCode::Killed, 0)
            }
            (_, st) => {
                let code = self.exit.map_or(i64::from(libc::WEXITSTATUS(st)), |(code, _)| code);
                ("ok".to_string(), ReturnCode::Ok, code)
            }
        };
        Report {
            validator: ValidatorState::Passed,
            daemon: u8::from(self.memory.daemon || self.memory.copy),
            user_code,
            etags: (!etags.is_empty()).then_some(etags),
            accounting,
            exit_state,
            return_code,
        }
    }
}

/// The CPU times of live process `pid` (from `/proc/PID/stat`, in clock
/// ticks: the report shows hundredths of a second); zeros if unreadable.
fn cpu_times(pid: libc::pid_t) -> libc::rusage {
    // SAFETY: rusage is plain data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|&hz| hz > 0).unwrap_or(100);
    let time = |i: usize| {
        let ticks: i64 = fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        libc::timeval { tv_sec: ticks / hz, tv_usec: (ticks % hz) * 1_000_000 / hz }
    };
    // After the name: state is field 0, utime 11, stime 12.
    usage.ru_utime = time(11);
    usage.ru_stime = time(12);
    usage
}
