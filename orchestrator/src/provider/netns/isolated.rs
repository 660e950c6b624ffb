//! Isolated (`rootfs: debian`) netns nodes: the root file system they share, each
//! node's own files, cgroups, and starting its sshd (the steps are in `spawn.rs`).
//!
//! The root file system is built by `orchestrator/netns/build-rootfs` (embedded here)
//! into `${ZEROLAB_CACHE:-$HOME/.cache/zerolab}/rootfs/debian-KEY`, once per script and
//! apt source; its files belong to uids shifted by [`ID_BASE`], so root of a node's user
//! namespace owns them. Each node has, under `LAB/nodes/<node>/`:
//! - `upper/`, `work/`: the overlay's upper layer (everything the node changes) and
//!   work directory; `upper/var/lib/zerolab/` holds the agent's owner file (the lab's,
//!   so `up` takes the agent as its own) and the mount point of the agent binary;
//!   `upper/usr/local/bin/zvsh` is the mount point of `zvsh` (bound when it is beside
//!   the agent binary, so the node's users can run guests);
//! - `root/`: where the overlay is mounted (in the node's mount namespace only);
//! - `run/`: its `/run` (sshd's pid file, the agent's socket);
//! - `etc-ssh/`: its `/etc/ssh` (`sshd_config`, its own host key, the lab's public key).
//!
//! Files the node must own are chowned to [`ID_BASE`] (root inside). Everything stays
//! when the node's processes go (shelving offloads a node that way), and goes with
//! the lab's directory.
//!
//! Cgroups (v1): `zerolab/<ns-name>` in each of `memory`, `pids`, `cpu` and `freezer`
//! that is mounted, with the node's limits; a controller that is missing is skipped
//! (its limit is then not enforced, and `up` logs so).

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::host::{io_err, run, NetnsError};
use super::settings::{Limits, Settings};
use super::spawn::{self, NodeStart};
use crate::lab::Lab;

pub use super::spawn::{ID_BASE, ID_COUNT};

/// The build script, part of the binary.
const BUILD_ROOTFS: &str = include_str!("../../../netns/build-rootfs");
/// Where cgroup v1 controllers are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The controllers a node is placed in, when mounted.
pub const CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "freezer"];
/// The file under the lab directory naming the agent binary its nodes get.
pub const AGENT_LINK: &str = "agent";

/// The cache directory of root file systems.
fn cache_dir() -> PathBuf {
    let base = match std::env::var_os("ZEROLAB_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into()).join(".cache/zerolab"),
    };
    base.join("rootfs")
}

/// The built root file system, building it now when the cache has none for the
/// script's key (about two minutes, once; the build log goes to `LAB/logs/`).
pub(super) fn rootfs(lab: &Lab) -> Result<PathBuf, NetnsError> {
    let cache = cache_dir();
    fs::create_dir_all(&cache).map_err(io_err(&cache))?;
    let digest = zerolab_agent_api::Sha256::of_bytes(BUILD_ROOTFS.as_bytes()).to_string();
    let script = cache.join(format!("build-rootfs-{}", &digest[..16]));
    if !script.exists() {
        // Labs made at once (threads of one process, or processes) each write their own.
        let tmp = cache.join(format!("build-rootfs.tmp-{}-{:?}", std::process::id(), std::thread::current().id()));
        fs::write(&tmp, BUILD_ROOTFS).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &script).map_err(io_err(&script))?;
    }
    let key = run(Command::new("bash").arg(&script).arg("--key"))?;
    let out = cache.join(format!("debian-{}", key.trim()));
    if out.with_extension("versions").exists() && out.is_dir() {
        return Ok(out);
    }
    let log_path = lab.logs_dir().join("build-rootfs.log");
    let log = fs::File::create(&log_path).map_err(io_err(&log_path))?;
    let err = log.try_clone().map_err(io_err(&log_path))?;
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .status()
        .map_err(io_err(&script))?;
    if !status.success() || !out.with_extension("versions").exists() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
        return Err(NetnsError::Command {
            command: format!("build-rootfs (log: {})", log_path.display()),
            detail: last,
        });
    }
    Ok(out)
}

/// Records the agent binary `up` installs, for the lab's isolated nodes to bind.
pub fn record_agent(lab: &Lab, agent: &Path) -> Result<(), NetnsError> {
    let agent = fs::canonicalize(agent).map_err(io_err(agent))?;
    let link = lab.dir().join(AGENT_LINK);
    let tmp = lab.dir().join(format!("{AGENT_LINK}.tmp"));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&agent, &tmp).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &link).map_err(io_err(&link))
}

/// The agent binary the lab's isolated nodes get.
fn agent(lab: &Lab) -> Result<PathBuf, NetnsError> {
    let link = lab.dir().join(AGENT_LINK);
    fs::canonicalize(&link).map_err(|_| NetnsError::Node {
        node: lab.name().to_owned(),
        detail: format!("no agent binary recorded at {} (run `zerolab up`, which records it)", link.display()),
    })
}

fn owned_dir(path: &Path, mode: u32) -> Result<(), NetnsError> {
    fs::create_dir_all(path).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))?;
    lchown(path, Some(ID_BASE), Some(ID_BASE)).map_err(io_err(path))
}

fn owned_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NetnsError> {
    fs::write(path, bytes).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))?;
    lchown(path, Some(ID_BASE), Some(ID_BASE)).map_err(io_err(path))
}

/// Makes an isolated node's files (see the module docs); `etc-ssh/` holds the host key
/// made by the caller already.
pub(super) fn prepare(lab: &Lab, dir: &Path) -> Result<(), NetnsError> {
    for (sub, mode) in [("work", 0o700), ("root", 0o755)] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(io_err(&path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err(&path))?;
    }
    for (sub, mode) in [
        ("upper", 0o755),
        ("upper/var", 0o755),
        ("upper/var/lib", 0o755),
        ("upper/var/lib/zerolab", 0o700),
        ("upper/var/lib/zerolab/bin", 0o755),
        ("upper/usr", 0o755),
        ("upper/usr/local", 0o755),
        ("upper/usr/local/bin", 0o755),
        ("run", 0o755),
        ("run/sshd", 0o755),
        ("run/zerolab", 0o700),
        ("etc-ssh", 0o755),
    ] {
        owned_dir(&dir.join(sub), mode)?;
    }
    let state = dir.join("upper/var/lib/zerolab");
    let owner = crate::install::Owner::of(lab.name(), lab.dir()).to_file();
    owned_file(&state.join(crate::install::owner::FILE), owner.as_bytes(), 0o644)?;
    owned_file(&state.join("bin/zerolab-agent"), b"", 0o755)?;
    owned_file(&dir.join("upper").join(spawn::ZVSH_PATH.trim_start_matches('/')), b"", 0o755)?;
    for entry in fs::read_dir(dir.join("etc-ssh")).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        lchown(&path, Some(ID_BASE), Some(ID_BASE)).map_err(io_err(&path))?;
    }
    Ok(())
}

/// The mounted v1 controllers among [`CONTROLLERS`].
fn controllers() -> Vec<&'static str> {
    CONTROLLERS.into_iter().filter(|c| Path::new(CGROUP_ROOT).join(c).join("cgroup.procs").exists()).collect()
}

/// The node's cgroup directory in `controller`.
pub(super) fn cgroup(controller: &str, namespace: &str) -> PathBuf {
    Path::new(CGROUP_ROOT).join(controller).join("zerolab").join(namespace)
}

/// Makes the node's cgroups with its limits; returns their `cgroup.procs` files.
fn make_cgroups(namespace: &str, limits: &Limits) -> Result<Vec<PathBuf>, NetnsError> {
    let mounted = controllers();
    let mut procs = Vec::new();
    for controller in &mounted {
        let dir = cgroup(controller, namespace);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let set = |file: &str, value: String| -> Result<(), NetnsError> {
            let path = dir.join(file);
            fs::write(&path, value).map_err(io_err(&path))
        };
        match *controller {
            "memory" => {
                if let Some(bytes) = limits.memory {
                    set("memory.limit_in_bytes", bytes.to_string())?;
                    if dir.join("memory.memsw.limit_in_bytes").exists() {
                        set("memory.memsw.limit_in_bytes", bytes.to_string())?;
                    }
                }
            }
            "pids" => {
                if let Some(pids) = limits.pids {
                    set("pids.max", pids.to_string())?;
                }
            }
            "cpu" => {
                if let Some(millicpus) = limits.millicpus {
                    set("cpu.cfs_period_us", "100000".into())?;
                    set("cpu.cfs_quota_us", (u64::from(millicpus) * 100).to_string())?;
                }
            }
            _ => {}
        }
        procs.push(dir.join("cgroup.procs"));
    }
    for (controller, set) in [("memory", limits.memory.is_some()), ("pids", limits.pids.is_some())] {
        if set && !mounted.contains(&controller) {
            tracing::warn!("cgroup v1 controller {controller} is not mounted: {namespace}'s limit is not enforced");
        }
    }
    if limits.millicpus.is_some() && !mounted.contains(&"cpu") {
        tracing::warn!("cgroup v1 controller cpu is not mounted: {namespace}'s limit is not enforced");
    }
    Ok(procs)
}

/// Removes the node's cgroups (their processes are gone); the shared `zerolab`
/// parents too when no other node uses them.
pub(super) fn remove_cgroups(namespace: &str) {
    for controller in CONTROLLERS {
        let dir = cgroup(controller, namespace);
        if dir.exists() {
            let _ = fs::remove_dir(&dir);
            let _ = fs::remove_dir(dir.parent().unwrap_or(&dir));
        }
    }
}

/// Starts an isolated node's sshd (its cgroups made first); returns the host pid of
/// its PID 1.
pub(super) fn start(
    lab: &Lab,
    rootfs: &Path,
    dir: &Path,
    namespace: &str,
    node: &str,
    settings: &Settings,
) -> Result<u32, NetnsError> {
    let agent = agent(lab)?;
    let zvsh = agent.with_file_name("zvsh");
    let zvsh = zvsh.is_file().then_some(zvsh.as_path());
    let cgroups = make_cgroups(namespace, &settings.limits)?;
    let log_path = lab.logs_dir().join(format!("{node}.sshd.log"));
    let log =
        fs::OpenOptions::new().create(true).write(true).truncate(true).open(&log_path).map_err(io_err(&log_path))?;
    let netns = Path::new(super::host::NETNS_DIR).join(namespace);
    spawn::start(NodeStart { dir, rootfs, agent: &agent, zvsh, name: node, netns: &netns, cgroups: &cgroups, log })
}
