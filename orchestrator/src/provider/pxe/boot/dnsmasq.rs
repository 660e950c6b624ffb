//! dnsmasq as the boot server's child: started in the foreground with its log on stderr
//! (`--keep-in-foreground --log-facility=-`), its lines copied to `LAB/pxe/dnsmasq.log`
//! and read for the events only dnsmasq sees ([`parse`]): a DHCP answer to a listed MAC
//! (`offered`) and a first stage sent by TFTP (`first-stage`). It dies with the server
//! (`PR_SET_PDEATHSIG`), and the server kills and reaps it when it stops.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use zerolab_config::cluster::net::MacAddr;

use super::events::{self, step};
use super::plan::BootPlan;

/// dnsmasq's log, in `LAB/pxe/`.
pub const LOG_FILE: &str = "dnsmasq.log";

/// The files whose TFTP transfer is a `first-stage` event (the menus and modules
/// pxelinux loads after its own start are not).
const FIRST_STAGES: &[&str] = &["undionly.kpxe", "ipxe.efi", "snponly.efi", "lpxelinux.0"];

/// dnsmasq could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DnsmasqError {
    /// The program could not be run.
    #[error("cannot run dnsmasq ({program}); install Debian package dnsmasq-base")]
    Spawn {
        /// What was run.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited at start.
    #[error("dnsmasq exited at start: {last_line}")]
    Exited {
        /// Its last log line (the reason, e.g. a port in use).
        last_line: String,
    },
}

/// Who a log line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// A machine by its MAC (DHCP lines).
    Mac(MacAddr),
    /// A machine by its address (TFTP lines).
    Address(Ipv4Addr),
}

/// The event a dnsmasq log line stands for: who, the step, a detail.
pub fn parse(line: &str) -> Option<(Who, &'static str, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if let Some(at) = words.iter().position(|w| w.starts_with("DHCPACK(")) {
        // `DHCPACK(IFACE) ADDRESS MAC [NAME]`
        let address = words.get(at + 1)?;
        let mac = words.get(at + 2)?.parse().ok()?;
        return Some((Who::Mac(mac), step::OFFERED, (*address).to_owned()));
    }
    if let Some(at) = words.iter().position(|w| w.starts_with("PXE(")) {
        // `PXE(IFACE) MAC proxy`: the proxy answer to a machine's discover.
        if words.get(at + 2) == Some(&"proxy") {
            let mac = words.get(at + 1)?.parse().ok()?;
            return Some((Who::Mac(mac), step::OFFERED, "proxy".to_owned()));
        }
        return None;
    }
    // `sent /.../tftp/FILE to ADDRESS`
    let at = words.iter().position(|w| *w == "sent")?;
    let file = Path::new(words.get(at + 1)?).file_name()?.to_str()?;
    if words.get(at + 2) != Some(&"to") || !FIRST_STAGES.contains(&file) {
        return None;
    }
    let address = words.get(at + 3)?.parse().ok()?;
    Some((Who::Address(address), step::FIRST_STAGE, file.to_owned()))
}

/// The dnsmasq to run: Debian's (`/usr/sbin` is not on a user's PATH), else from PATH.
fn program() -> PathBuf {
    let debian = Path::new("/usr/sbin/dnsmasq");
    if debian.is_file() {
        debian.to_owned()
    } else {
        PathBuf::from("dnsmasq")
    }
}

/// Starts dnsmasq with `plan.dir/dnsmasq.conf` and a task that logs and parses its lines;
/// returns once it said it started (or fails with its last line when it exited).
pub async fn start(plan: &BootPlan) -> Result<Child, DnsmasqError> {
    let program = program();
    let mut conf = std::ffi::OsString::from("--conf-file=");
    conf.push(plan.dir.join("dnsmasq.conf"));
    let mut command = Command::new(&program);
    command
        .args(["--keep-in-foreground", "--log-facility=-"])
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            // Dies with the server, however the server dies.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| DnsmasqError::Spawn { program: program.clone(), source })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<String>(64);
    let plan = plan.clone();
    tokio::spawn(async move {
        let mut log = std::fs::OpenOptions::new().create(true).append(true).open(plan.dir.join(LOG_FILE)).ok();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
            let _ = started_tx.try_send(line.clone());
            record(&plan, &line);
        }
    });
    let mut last_line = String::from("(no output)");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            line = started_rx.recv() => match line {
                Some(line) if line.contains("started, version") => return Ok(child),
                Some(line) => last_line = line,
                None => {
                    let _ = child.wait().await;
                    return Err(DnsmasqError::Exited { last_line });
                }
            },
            () = tokio::time::sleep_until(deadline) => return Ok(child),
        }
    }
}

/// Records the event `line` stands for, if it is about a node of `plan`.
fn record(plan: &BootPlan, line: &str) {
    let Some((who, step, detail)) = parse(line) else { return };
    let node = match who {
        Who::Mac(mac) => plan.node_with_mac(mac),
        Who::Address(address) => plan.node_at(address),
    };
    if let Some(node) = node {
        if let Err(e) = events::record(&plan.dir, &node.name, step, Some(detail)) {
            tracing::warn!(node = %node.name, "cannot record event {step}: {e}");
        }
    }
}

/// Stops dnsmasq: SIGTERM, then SIGKILL after a second; reaped either way.
pub async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(1), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lines_that_are_events() {
        let mac: MacAddr = "52:54:00:99:13:01".parse().unwrap();
        type Expected = Option<(Who, &'static str, &'static str)>;
        let cases: &[(&str, Expected)] = &[
            (
                "dnsmasq-dhcp[812]: 1838 DHCPACK(p3br0) 10.99.13.11 52:54:00:99:13:01 n1",
                Some((Who::Mac(mac), "offered", "10.99.13.11")),
            ),
            ("dnsmasq-dhcp[812]: 1838 DHCPOFFER(p3br0) 10.99.13.11 52:54:00:99:13:01", None),
            ("dnsmasq-dhcp[812]: 99 PXE(p3br0) 52:54:00:99:13:01 proxy", Some((Who::Mac(mac), "offered", "proxy"))),
            ("dnsmasq-dhcp[812]: 99 PXE(p3br0) 10.99.13.11 52:54:00:99:13:01 undionly.kpxe", None),
            (
                "dnsmasq-tftp[812]: sent /labs/p3lab/pxe/tftp/undionly.kpxe to 10.99.13.11",
                Some((Who::Address(Ipv4Addr::new(10, 99, 13, 11)), "first-stage", "undionly.kpxe")),
            ),
            ("dnsmasq-tftp[812]: sent /labs/p3lab/pxe/tftp/ldlinux.c32 to 10.99.13.11", None),
            ("dnsmasq-tftp[812]: error 0 Early terminate received from 10.99.13.11", None),
            ("dnsmasq[812]: started, version 2.90 DNS disabled", None),
        ];
        for (line, expected) in cases {
            let got = parse(line);
            let got = got.as_ref().map(|(who, step, detail)| (*who, *step, detail.as_str()));
            assert_eq!(got, *expected, "{line}");
        }
    }
}
