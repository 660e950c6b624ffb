//! The boot progress log, `LAB/pxe/events.jsonl`: one JSON object per line,
//! `{"ms":EPOCH_MS,"node":"n1","step":"offered"}` (and a `detail` when there is one),
//! appended by the boot server as it sees each step ([`step`]) and read back by `status`
//! through [`progress`]: the last step of each node and when it was reached.
//!
//! Each event is written with one `write(2)` on a file opened with `O_APPEND`, so lines of
//! two writers (the server and the lead's `ready`) never interleave.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The events file, in `LAB/pxe/`.
pub const EVENTS_FILE: &str = "events.jsonl";

/// The steps the boot server records, in boot order.
pub mod step {
    /// dnsmasq answered the machine's DHCP (a lease, or a proxy reply).
    pub const OFFERED: &str = "offered";
    /// TFTP sent it a first-stage loader.
    pub const FIRST_STAGE: &str = "first-stage";
    /// It fetched its iPXE script.
    pub const SCRIPT: &str = "script";
    /// It fetched a kernel.
    pub const KERNEL: &str = "kernel";
    /// It fetched an initrd.
    pub const INITRD: &str = "initrd";
    /// The steps a node reports itself (`GET .../event/STEP`).
    pub const REPORTED: &[&str] = &["init", "live", "installing", "installed", "failed"];
    /// The one of those that marks the node installed.
    pub const INSTALLED: &str = "installed";
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When, in milliseconds since the Unix epoch.
    pub ms: u64,
    /// The node's name.
    pub node: String,
    /// The step (see [`step`]).
    pub step: String,
    /// What else is worth knowing (the file sent, the address given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A node's last step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeProgress {
    /// The node.
    pub node: String,
    /// Its last step, `None` when none was seen.
    pub step: Option<String>,
    /// When it was reached (ms since the epoch), `None` with no step.
    pub since: Option<u64>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends an event for `node` at `step` to `dir/events.jsonl`.
pub fn record(dir: &Path, node: &str, step: &str, detail: Option<String>) -> std::io::Result<()> {
    let event = Event { ms: now_ms(), node: node.to_owned(), step: step.to_owned(), detail };
    let mut line = serde_json::to_vec(&event).map_err(std::io::Error::from)?;
    line.push(b'\n');
    let mut file = fs::OpenOptions::new().create(true).append(true).mode(0o600).open(dir.join(EVENTS_FILE))?;
    file.write_all(&line)
}

/// Every event in `dir/events.jsonl`, oldest first (a missing file has none; a line that
/// is not an event, such as one cut short by a crash, is skipped).
pub fn read(dir: &Path) -> std::io::Result<Vec<Event>> {
    let file = match fs::File::open(dir.join(EVENTS_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(event) = serde_json::from_str(&line?) {
            events.push(event);
        }
    }
    Ok(events)
}

/// The steps after which a DHCP answer belongs to the same boot (iPXE after its first
/// stage, the live system or the installer after their kernel), not to a new one: an
/// `offered` after them does not move a node's progress back.
const SAME_BOOT: &[&str] =
    &[step::OFFERED, step::FIRST_STAGE, step::SCRIPT, step::KERNEL, step::INITRD, "init", "installing"];

/// The last step of each of `nodes` and when it was reached, in `nodes`' order. An
/// `offered` within the same boot (after a first stage, script, kernel, initrd, `init`
/// or `installing`) is not a step: it is in the log, but progress stays where it was.
pub fn progress(dir: &Path, nodes: &[&str]) -> std::io::Result<Vec<NodeProgress>> {
    let events = read(dir)?;
    Ok(nodes
        .iter()
        .map(|&node| {
            let mut last: Option<&Event> = None;
            for event in events.iter().filter(|event| event.node == node) {
                let same_boot = last.is_some_and(|last| SAME_BOOT.contains(&last.step.as_str()));
                if !(event.step == step::OFFERED && same_boot) {
                    last = Some(event);
                }
            }
            NodeProgress {
                node: node.to_owned(),
                step: last.map(|event| event.step.clone()),
                since: last.map(|event| event.ms),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_each_nodes_last_step() {
        let dir = tempfile::tempdir().unwrap();
        record(dir.path(), "n1", step::OFFERED, None).unwrap();
        record(dir.path(), "n2", step::OFFERED, Some("10.99.13.12".into())).unwrap();
        record(dir.path(), "n1", step::SCRIPT, None).unwrap();
        record(dir.path(), "n1", step::OFFERED, None).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(EVENTS_FILE))
            .unwrap()
            .write_all(b"{\"ms\":1,")
            .unwrap();
        let progress = progress(dir.path(), &["n1", "n2", "n3"]).unwrap();
        assert_eq!(progress[0].step.as_deref(), Some("script"), "an offer within the boot is no step");
        assert_eq!(progress[1].step.as_deref(), Some("offered"));
        assert!(progress[1].since.unwrap() >= progress[0].since.unwrap() - 1000);
        assert_eq!(progress[2], NodeProgress { node: "n3".into(), step: None, since: None });
        let text = fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(",\"node\":\"n2\",\"step\":\"offered\",\"detail\":\"10.99.13.12\"}"));
    }
}
