//! `workshop plan`: how many labs this machine holds. It measures the machine (memory
//! available, cores) and the memory of one idle lab of the workshop's template — the
//! proportional set size (PSS) of every process in its nodes' network namespaces and
//! of its keeper, so other programs' memory does not count — made once as lab `000`
//! with its warm terminal (`warm.rs`: the sshd session and login shell on its node, as
//! every ready lab of the pool has), measured and taken down, and cached in
//! `DIR/plan.json`. The warm terminal's connection in the `serve` process is not in the
//! figure (tens of KiB: `cargo bench -p zerolab --bench terminal_cost`). `workshop up` measures a lab
//! of its warm pool the same way when no measurement is cached.
//!
//! Labs that fit: 90% of the memory available now, divided by one idle lab's.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::lab::Lab;

/// The cached measurement, in the workshop directory.
pub const PLAN_FILE: &str = "plan.json";

/// One idle lab's memory, as measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabMemory {
    /// Bytes (PSS) of the lab's processes.
    pub bytes: u64,
    /// How many nodes the lab had.
    pub nodes: usize,
}

/// This machine, now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine {
    /// `MemAvailable`, bytes.
    pub available: u64,
    /// CPUs this process may use.
    pub cores: usize,
}

/// The plan: the machine, one lab, and how many fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The machine.
    pub machine: Machine,
    /// One idle lab.
    pub lab: LabMemory,
    /// Labs that fit.
    pub fits: u64,
}

/// Measures this machine.
pub fn machine() -> Machine {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Machine { available, cores }
}

/// The plan for labs of `lab` bytes on `machine`.
pub fn plan(machine: Machine, lab: LabMemory) -> Plan {
    let fits = (machine.available / 10 * 9) / lab.bytes.max(1);
    Plan { machine, lab, fits }
}

/// The cached measurement of `dir`, if any.
pub fn cached(dir: &Path) -> Option<LabMemory> {
    serde_json::from_slice(&std::fs::read(dir.join(PLAN_FILE)).ok()?).ok()
}

/// Caches `memory` in `dir`.
pub fn save(dir: &Path, memory: LabMemory) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(&memory).expect("a measurement serializes");
    crate::lab::write_private(&dir.join(PLAN_FILE), &bytes).map_err(|e| std::io::Error::other(e.to_string()))
}

/// The memory of lab `cluster` (up, under `root`): the PSS of every process in its
/// nodes' network namespaces, and of its keeper.
pub fn measure(root: &Path, cluster: &Cluster) -> LabMemory {
    let names = crate::provider::netns::Names::new(cluster.name());
    let namespaces: Vec<(u64, u64)> = cluster
        .nodes()
        .iter()
        .filter_map(|node| std::fs::metadata(Path::new("/run/netns").join(names.namespace(&node.name))).ok())
        .map(|meta| (meta.dev(), meta.ino()))
        .collect();
    let keeper = Lab::at(root, cluster.name()).ok().map(|lab| lab.dir().display().to_string());
    let mut bytes = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.path();
        let in_lab = std::fs::metadata(pid.join("ns/net")).is_ok_and(|m| namespaces.contains(&(m.dev(), m.ino())));
        let is_keeper = keeper.as_ref().is_some_and(|dir| {
            std::fs::read(pid.join("cmdline")).is_ok_and(|c| {
                let words: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                words.len() >= 3 && words[1] == b"keeper" && words[2] == dir.as_bytes()
            })
        });
        if in_lab || is_keeper {
            bytes += pss(&pid);
        }
    }
    LabMemory { bytes, nodes: cluster.nodes().len() }
}

/// A process's PSS, bytes (0 when it is gone).
fn pss(pid: &Path) -> u64 {
    let Ok(text) = std::fs::read_to_string(pid.join("smaps_rollup")) else { return 0 };
    text.lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// How long an idle lab is left to settle before it is measured.
pub const SETTLE: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_nine_tenths_of_what_is_available() {
        let machine = Machine { available: 10 << 30, cores: 2 };
        assert_eq!(plan(machine, LabMemory { bytes: 9 << 20, nodes: 3 }).fits, 1024);
    }
}
