//! A `netns` node's fields: `rootfs:` (a root file system of its own, see `isolated.rs`)
//! and `limits:` (its cgroup limits, only with `rootfs`), checked with their locations.

use zerolab_config::cluster::schema::LimitsSpec;
use zerolab_config::cluster::{Checker, EntryView, Problem};

use super::KIND;
use crate::provider::{NodeSettings, ProviderSettings};

/// The root file systems zerolab builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rootfs {
    /// Debian 12 from Debian's packages (`orchestrator/netns/build-rootfs`).
    Debian,
}

/// A node's cgroup limits; `None` = not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes (`memory.limit_in_bytes`).
    pub memory: Option<u64>,
    /// Processes and threads (`pids.max`).
    pub pids: Option<u32>,
    /// CPU time in thousandths of a CPU (`cpu.cfs_quota_us` per 100 ms period).
    pub millicpus: Option<u32>,
}

/// A `netns` node's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Its own root file system; `None`: it shares this machine's.
    pub rootfs: Option<Rootfs>,
    /// Its limits (only with a root file system).
    pub limits: Limits,
}

impl ProviderSettings for Settings {}

/// The least memory a node with sshd and the agent runs in.
const MIN_MEMORY: u64 = 32 << 20;

/// Reads and checks `rootfs` and `limits` of one entry.
pub(super) fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
    let mut ok = true;
    let rootfs = match entry.rootfs() {
        None => None,
        Some(("debian", _)) => Some(Rootfs::Debian),
        Some((value, path)) => {
            check.report(&path, Problem::Rootfs { value: value.to_owned() });
            ok = false;
            None
        }
    };
    let mut limits = Limits::default();
    if let Some((spec, path)) = entry.limits() {
        if rootfs.is_none() && ok {
            check.report(&path, Problem::LimitsWithoutRootfs);
            ok = false;
        }
        match read_limits(spec) {
            Ok(read) => limits = read,
            Err((field, problem)) => {
                check.report(&path.key(field), problem);
                ok = false;
            }
        }
    }
    ok.then(|| NodeSettings::new(KIND, Settings { rootfs, limits }))
}

fn read_limits(spec: &LimitsSpec) -> Result<Limits, (&'static str, Problem)> {
    let memory = match &spec.memory {
        None => None,
        Some(text) => match parse_size(text) {
            Some(bytes) if bytes >= MIN_MEMORY => Some(bytes),
            _ => {
                let expected = "a size of at least 32M such as 256M or 1G (K, M, G: binary units)";
                return Err(("memory", Problem::Limit { field: "memory", value: text.clone(), expected }));
            }
        },
    };
    let pids = match spec.pids {
        Some(pids) if pids < 16 => {
            let expected = "at least 16 processes (sshd, a login and the agent need some)";
            return Err(("pids", Problem::Limit { field: "pids", value: pids.to_string(), expected }));
        }
        pids => pids,
    };
    let millicpus = match spec.cpu {
        None => None,
        Some(cpu) if cpu.is_finite() && (0.01..=1024.0).contains(&cpu) => Some((cpu * 1000.0).round() as u32),
        Some(cpu) => {
            let expected = "a number of CPUs from 0.01 to 1024, such as 0.5";
            return Err(("cpu", Problem::Limit { field: "cpu", value: cpu.to_string(), expected }));
        }
    };
    Ok(Limits { memory, pids, millicpus })
}

/// `256M`, `1G`, `512K`, `64MiB` or plain bytes; binary units.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let shift = match text[digits..].trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("12MB"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn limits_are_checked() {
        let spec = LimitsSpec { memory: Some("256M".into()), pids: Some(256), cpu: Some(0.5) };
        let limits = read_limits(&spec).unwrap();
        assert_eq!(limits, Limits { memory: Some(256 << 20), pids: Some(256), millicpus: Some(500) });
        for (spec, field) in [
            (LimitsSpec { memory: Some("1M".into()), ..Default::default() }, "memory"),
            (LimitsSpec { pids: Some(3), ..Default::default() }, "pids"),
            (LimitsSpec { cpu: Some(0.0), ..Default::default() }, "cpu"),
        ] {
            assert_eq!(read_limits(&spec).unwrap_err().0, field);
        }
    }
}
