//! Making and removing a `netns` lab on this machine.
//!
//! Per node, in this order:
//! 1. private files under `<lab>/nodes/<node>/`: `run/` (its `/run`), `var-lib/` (the
//!    upper layer of an overlay on `/var/lib`, holding `/var/lib/zerolab`), `home/` (its
//!    user's home: empty, so bash reads no `.bashrc`), `etc-ssh/` (its `/etc/ssh`:
//!    `sshd_config`, its own ed25519 host key, `authorized_keys` = a copy of the lab's
//!    public key, since the lab directory itself may be hidden under the node's home);
//! 2. owner records of its namespace and veth ([`Owners`]), then a network namespace
//!    `zl-<lab>-<node>` with `eth0` on the lab bridge at its address, and `lo`; no
//!    route, so traffic stays on the bridge;
//! 3. its sshd: `setsid -f ip netns exec NS unshare --mount --uts sh -c SCRIPT`, the
//!    script bind-mounting the private directories (through a descriptor opened first,
//!    so the sources stay reachable whatever the mounts hide), setting the hostname and
//!    exec'ing `sshd -D`. `setsid -f` detaches it, so it outlives `zerolab up` and is
//!    never our zombie; its pid comes from its `PidFile`, which sshd writes once it
//!    listens (so the file is also the readiness signal).
//!
//! An isolated (`rootfs:`) node gets its own files and is started differently
//! (`isolated.rs`, `spawn.rs`), and its lab a firewall made right after the bridge
//! (`firewall.rs`).
//!
//! `/run/zerolab`, `/var/lib/zerolab` and the home are private per node; `/var/lib` is
//! an overlay so the host's `/var/lib` stays visible but nothing is created on the host.
//! The mounts live in the node's mount namespace and vanish with its last process.
//!
//! Removing is in `teardown.rs` (by owner record, never by a name's prefix alone);
//! [`create`] removes whatever it made when a step fails, and tells its progress sink
//! each node's steps (making, booting: sshd started, made: it listens).
//!
//! Everything here blocks (it runs `ip`, `ssh-keygen` and `setsid`, and polls for
//! sshd): the lifecycle ([`super::Netns`]) calls it on tokio's blocking pool, never on
//! an async task.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::{Legacy, Names};
use super::settings::Settings;
use crate::backoff::Backoff;
use crate::lab::{Lab, LabError, LabState, NodeRecord, NodeState, Owner, Owners};
use crate::provider::{CreateStep, ProviderKind};
use zerolab_config::cluster::{Cluster, Node, NodeAddress, Subnet};

/// The sshd every node runs (OpenSSH re-executes itself, so the path is absolute).
pub const SSHD: &str = "/usr/sbin/sshd";
/// Where network namespaces are bound by `ip netns`.
pub(super) const NETNS_DIR: &str = "/run/netns";
/// Nodes made at once.
const WORKERS: usize = 8;

/// What can go wrong making or removing a `netns` lab.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Not running as root.
    #[error("the netns provider needs root: run zerolab as root (sudo)")]
    NotRoot,
    /// A program the lab needs is missing.
    #[error("{program} not found: install {package} (scripts/setup does)")]
    Missing { program: &'static str, package: &'static str },
    /// The cluster file is for another provider.
    #[error("lab `{lab}` uses the {provider} provider, not netns")]
    Provider { lab: String, provider: ProviderKind },
    /// The lab's bridge exists already.
    #[error("lab `{lab}` is already up (bridge {bridge}); destroy it first")]
    AlreadyUp { lab: String, bridge: String },
    /// Another interface has an address in the lab subnet.
    #[error("subnet {subnet} is already used by {link} ({address}); choose another network.subnet")]
    SubnetInUse { subnet: Subnet, link: String, address: String },
    /// A command failed.
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    /// A node could not be made.
    #[error("node {node}: {detail}")]
    Node { node: String, detail: String },
    /// The lab was made by an older zerolab, whose names this one does not use.
    #[error(
        "lab `{lab}` was made by an older zerolab (bridge {bridge}); take it down from where it was brought \
         up: `zerolab down FILE --lab-root .zerolab` in that directory, then run `up` again"
    )]
    OldBuild { lab: String, bridge: String },
    /// A node of a lab that is up changed in the cluster file in a way it cannot follow.
    #[error(
        "node {node}: its address is {now} in the cluster file but {was} in the lab; a node's address cannot \
         change while the lab is up: run `zerolab down` and `zerolab up` to remake the lab, or restore {was}"
    )]
    Changed { node: String, was: String, now: String },
    /// Something of the lab is still there after destroy.
    #[error("lab `{lab}` not fully removed: {left}")]
    Leftover { lab: String, left: String },
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> NetnsError + '_ {
    move |source| NetnsError::Lab(LabError::Io { path: path.to_owned(), source })
}

/// What netns keeps of a node in the lab state: its sshd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sshd {
    /// The node's sshd, the process the node's namespaces live by.
    pub pid: u32,
}

/// Makes every node of `cluster` in `lab`: namespaces on a lab bridge, each with its own
/// sshd, each recorded as this lab directory's ([`Owners`]). Returns (and saves) the node
/// states, each node `provisioning` with its [`Sshd`] record: reachable over SSH, ready
/// for provisioning. On failure nothing is left behind. `progress` gets each node's
/// steps (from several threads).
pub fn create(
    lab: &Lab,
    cluster: &Cluster,
    progress: &(dyn Fn(&str, CreateStep) + Send + Sync),
) -> Result<LabState, NetnsError> {
    preflight(lab, cluster)?;
    let names = Names::new(lab.name());
    let owners = Owners::machine();
    owners.check("link", &names.bridge(), lab.dir())?;
    for node in cluster.nodes() {
        owners.check("netns", &names.namespace(&node.name), lab.dir())?;
    }
    if Path::new("/sys/class/net").join(names.bridge()).exists() {
        return Err(NetnsError::AlreadyUp { lab: lab.name().to_owned(), bridge: names.bridge() });
    }
    let legacy = Legacy::new(lab.name()).bridge();
    if Path::new("/sys/class/net").join(&legacy).exists() {
        return Err(NetnsError::OldBuild { lab: lab.name().to_owned(), bridge: legacy });
    }
    let subnet = cluster.subnet().expect("a netns cluster has a lab subnet");
    check_subnet_free(subnet)?;
    let made = make(lab, cluster, &names, subnet, progress);
    if made.is_err() {
        // Fail closed: no half-made lab. The first error is the one worth reporting.
        let _ = super::teardown::destroy(lab, Some(cluster));
    }
    made
}

pub(super) fn preflight(lab: &Lab, cluster: &Cluster) -> Result<(), NetnsError> {
    if cluster.provider() != super::KIND {
        return Err(NetnsError::Provider { lab: lab.name().to_owned(), provider: cluster.provider() });
    }
    require_root()?;
    for (program, package) in [(SSHD, "openssh-server"), ("/usr/bin/ssh-keygen", "openssh-client")] {
        if !Path::new(program).exists() {
            return Err(NetnsError::Missing { program, package });
        }
    }
    Ok(())
}

pub(super) fn require_root() -> Result<(), NetnsError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(NetnsError::NotRoot)
    }
}

/// Who this lab is, for the owner records of what it makes.
pub(super) fn owner_of(lab: &Lab) -> Owner {
    let id = lab.identity().ok().flatten().map(|identity| identity.id).unwrap_or_default();
    Owner { lab: lab.name().to_owned(), dir: lab.dir().to_owned(), id }
}

fn make(
    lab: &Lab,
    cluster: &Cluster,
    names: &Names,
    subnet: Subnet,
    progress: &(dyn Fn(&str, CreateStep) + Send + Sync),
) -> Result<LabState, NetnsError> {
    let host = subnet.host_address();
    let bridge = names.bridge();
    Owners::machine().set("link", &bridge, &owner_of(lab))?;
    // The bridge carries the host side; no route or forwarding is added anywhere.
    ip_batch(&[
        format!("link add {bridge} type bridge"),
        format!("link set dev {bridge} alias \"{}\"", names.bridge_alias()),
        format!("addr add {host}/{} dev {bridge}", subnet.prefix()),
        format!("link set {bridge} up"),
    ])?;
    if cluster.nodes().iter().any(|node| isolated(node).is_some()) {
        super::firewall::apply(lab, &bridge)?;
    }
    crate::lab::private_dir(&lab.nodes_dir())?;
    let nodes: Vec<&Node> = cluster.nodes().iter().collect();
    let mut state = LabState::default();
    make_nodes(lab, names, &nodes, subnet.prefix(), progress, &mut state)?;
    lab.save_state(&state)?;
    Ok(state)
}

/// Makes `nodes` on the lab's bridge (several at once) and waits for their sshd; each
/// one's record (`provisioning`, its [`Sshd`]) goes into `state`. On failure the nodes
/// made so far are left to the caller to remove.
pub(super) fn make_nodes(
    lab: &Lab,
    names: &Names,
    nodes: &[&Node],
    prefix: u8,
    progress: &(dyn Fn(&str, CreateStep) + Send + Sync),
    state: &mut LabState,
) -> Result<(), NetnsError> {
    let public_key = fs::read(lab.public_key()).map_err(io_err(&lab.public_key()))?;
    let owner = owner_of(lab);
    // Isolated nodes share one root file system: found (or built) once, here.
    let rootfs = nodes.iter().any(|node| isolated(node).is_some()).then(|| super::isolated::rootfs(lab)).transpose()?;
    let pids = Mutex::new(std::collections::HashMap::new());
    // The first `ip netns add` on a machine sets up /run/netns as a shared mount; doing
    // it once before the parallel part keeps concurrent first calls from stacking mounts.
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let work = |i: usize| {
        let node = nodes[i];
        progress(&node.name, CreateStep::Making);
        match make_node(lab, names, &owner, node, prefix, &public_key, rootfs.as_deref()) {
            Ok(pid) => {
                if let Some(pid) = pid {
                    pids.lock().unwrap().insert(node.name.clone(), pid);
                }
                progress(&node.name, CreateStep::Booting)
            }
            Err(e) => {
                first_error.lock().unwrap().get_or_insert(e);
            }
        }
    };
    if !nodes.is_empty() {
        work(0);
        next.store(1, Ordering::SeqCst);
    }
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(nodes.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= nodes.len() || first_error.lock().unwrap().is_some() {
                    break;
                }
                work(i);
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }

    let within = Duration::from_secs(10) + Duration::from_millis(50 * nodes.len() as u64);
    let mut backoff = Backoff::steady(Duration::from_millis(10), within);
    for node in nodes {
        let pid = wait_for_sshd(lab, names, node, &mut backoff)?;
        // An isolated node's pid file holds its pid inside (1): record this machine's.
        let pid = pids.lock().unwrap().get(&node.name).copied().unwrap_or(pid);
        progress(&node.name, CreateStep::Made);
        let mut record = NodeRecord::new(node.address.to_string(), NodeState::Provisioning);
        record.set_provider_record(&Sshd { pid });
        state.nodes.insert(node.name.clone(), record);
    }
    Ok(())
}

/// The node's private directory.
pub(super) fn node_dir(lab: &Lab, node: &str) -> PathBuf {
    lab.nodes_dir().join(node)
}

/// The settings of `node` when it is isolated (`rootfs:`).
pub(super) fn isolated(node: &Node) -> Option<&Settings> {
    node.settings.get::<Settings>().filter(|settings| settings.rootfs.is_some())
}

/// Makes one node and starts its sshd; for an isolated node returns the host pid of
/// its PID 1.
fn make_node(
    lab: &Lab,
    names: &Names,
    owner: &Owner,
    node: &Node,
    prefix: u8,
    key: &[u8],
    rootfs: Option<&Path>,
) -> Result<Option<u32>, NetnsError> {
    let address = match node.address {
        NodeAddress::Ip(std::net::IpAddr::V4(address)) => address,
        ref other => {
            return Err(NetnsError::Node { node: node.name.clone(), detail: format!("address {other} is not IPv4") })
        }
    };
    let dir = node_dir(lab, &node.name);
    let isolated = isolated(node).zip(rootfs);
    write_node_files(&dir, &node.name, address, key)?;
    if isolated.is_some() {
        super::isolated::prepare(lab, &dir)?;
    }
    let ns = names.namespace(&node.name);
    let veth = names.veth(&node.name);
    // Recorded before they are made: a crash in between leaves a record of nothing
    // (harmless), never an object without its owner.
    let owners = Owners::machine();
    owners.set("netns", &ns, owner)?;
    owners.set("link", &veth, owner)?;
    run(Command::new("ip").args(["netns", "add", &ns]))?;
    ip_batch(&[
        format!("link add {veth} master {} up type veth peer name eth0 netns {ns}", names.bridge()),
        format!("link set dev {veth} alias \"{}\"", names.veth_alias(&node.name)),
    ])?;
    ip_batch_in(
        &ns,
        &[format!("addr add {address}/{prefix} dev eth0"), "link set eth0 up".into(), "link set lo up".into()],
    )?;
    match isolated {
        Some((settings, rootfs)) => super::isolated::start(lab, rootfs, &dir, &ns, &node.name, settings).map(Some),
        None => start_sshd(lab, &dir, &ns, node).map(|()| None),
    }
}

fn write_node_files(dir: &Path, node: &str, address: Ipv4Addr, key: &[u8]) -> Result<(), NetnsError> {
    for (sub, mode) in [
        ("", 0o700),
        ("run", 0o755),
        ("run/sshd", 0o755),
        ("run/zerolab", 0o700),
        ("var-lib", 0o755),
        ("var-lib/zerolab", 0o700),
        ("work", 0o700),
        ("home", 0o700),
        ("etc-ssh", 0o755),
    ] {
        let path = dir.join(sub);
        fs::create_dir_all(&path).map_err(io_err(&path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err(&path))?;
    }
    opaque(&dir.join("var-lib/zerolab"))?;
    let etc = dir.join("etc-ssh");
    write_file(&etc.join("sshd_config"), sshd_config(address).as_bytes(), 0o644)?;
    write_file(&etc.join("authorized_keys"), key, 0o600)?;
    let host_key = etc.join("ssh_host_ed25519_key");
    let _ = fs::remove_file(&host_key);
    let _ = fs::remove_file(etc.join("ssh_host_ed25519_key.pub"));
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", node, "-f"]).arg(&host_key))?;
    Ok(())
}

/// Marks an overlay upper directory opaque, so the node's `/var/lib/zerolab` starts
/// empty even when the host has one (whose files would otherwise show through).
fn opaque(dir: &Path) -> Result<(), NetnsError> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io_err(dir)(io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte")))?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the value is 1 byte.
    let rc = unsafe { libc::setxattr(path.as_ptr(), c"trusted.overlay.opaque".as_ptr(), c"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io_err(dir)(io::Error::last_os_error()))
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), NetnsError> {
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))
}

/// A node's sshd configuration; paths are as the node sees them.
pub fn sshd_config(address: Ipv4Addr) -> String {
    format!(
        "# zerolab netns node: its own sshd, key logins only.\n\
         ListenAddress {address}:22\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         AuthorizedKeysFile /etc/ssh/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         PidFile /run/sshd.pid\n\
         # The client picks the first of its own list the server offers, so offering\n\
         # curve25519 first and not sntrup761 is what makes cold logins ~3x faster.\n\
         KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha256\n\
         Subsystem sftp internal-sftp\n\
         MaxStartups 200\n"
    )
}

/// Runs in the node's new mount and UTS namespaces: `$1` node dir, `$2` host name,
/// `$3` home. Sources are reached through descriptor 3, so a mount that hides the lab
/// directory (say the lab lives under /root) cannot hide a later source; `mount -c`
/// keeps mount from resolving them back to their hidden paths.
///
/// sshd runs with `-r` (no re-exec per connection): re-executing sshd for each login
/// re-randomizes its memory layout, and costs a process image load that made up a
/// quarter of a cold 50-node `up` (0.95 s instead of 1.3 s with nothing to change). A
/// lab node's sshd listens only on the lab's private bridge, for the lab's one key.
const NODE_SCRIPT: &str = r#"set -e
exec 3<"$1"
mount -c --bind /proc/self/fd/3/run /run
mount -c -t overlay zerolab -o lowerdir=/var/lib,upperdir=/proc/self/fd/3/var-lib,workdir=/proc/self/fd/3/work /var/lib
mount -c --bind /proc/self/fd/3/etc-ssh /etc/ssh
mount -c --bind /proc/self/fd/3/home "$3"
hostname "$2"
exec 3<&-
exec /usr/sbin/sshd -D -e -r -f /etc/ssh/sshd_config
"#;

pub(super) fn start_sshd(lab: &Lab, dir: &Path, ns: &str, node: &Node) -> Result<(), NetnsError> {
    let log_path = lab.logs_dir().join(format!("{}.sshd.log", node.name));
    // A fresh log per start: `wait_for_sshd` takes a non-empty log with nothing running
    // for a failed start, so a previous run's lines (a lab made again) must not count.
    let log = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(io_err(&log_path))?;
    let err = log.try_clone().map_err(io_err(&log_path))?;
    let home = home_of(&node.user);
    run(Command::new("setsid")
        .args(["-f", "ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private"])
        .args(["sh", "-c", NODE_SCRIPT, "zerolab-node"])
        .arg(dir)
        .arg(&node.name)
        .arg(&home)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err))
    .map(drop)
}

/// The home directory of `user` from /etc/passwd (`/root` when not found).
fn home_of(user: &str) -> String {
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() >= 6 && fields[0] == user).then(|| fields[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/root".to_owned())
}

/// Waits for `node`'s sshd to write its pid file; `backoff` is shared by every node, so
/// its deadline bounds the wait for all of them.
pub(super) fn wait_for_sshd(lab: &Lab, names: &Names, node: &Node, backoff: &mut Backoff) -> Result<u32, NetnsError> {
    let pid_file = node_dir(lab, &node.name).join("run/sshd.pid");
    let log = lab.logs_dir().join(format!("{}.sshd.log", node.name));
    let namespace = [names.namespace(&node.name)];
    loop {
        if let Some(pid) = fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse().ok()) {
            return Ok(pid);
        }
        // sshd writes its pid file once it listens. Something logged and nothing left
        // running in the namespace means the node script or sshd failed: stop waiting.
        let logged = fs::metadata(&log).is_ok_and(|meta| meta.len() > 0);
        let gone = logged && super::teardown::processes_in(&namespace).is_empty() && !pid_file.exists();
        if gone || !backoff.wait_blocking() {
            // The last message, not a continuation line (mount adds an indented hint).
            let last = fs::read_to_string(&log).ok().and_then(|s| {
                s.lines().rfind(|l| !l.is_empty() && !l.starts_with(char::is_whitespace)).map(str::to_owned)
            });
            let detail = match last {
                Some(line) => format!("sshd did not start: {line}"),
                None => format!("sshd did not start (see {})", log.display()),
            };
            return Err(NetnsError::Node { node: node.name.clone(), detail });
        }
    }
}

/// Refuses a subnet that an address on this machine already lies in or covers.
pub fn check_subnet_free(subnet: Subnet) -> Result<(), NetnsError> {
    let out = run(Command::new("ip").args(["-o", "-4", "addr", "show"]))?;
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = fields.iter().position(|f| *f == "inet") else { continue };
        let (Some(link), Some(cidr)) = (fields.get(1), fields.get(i + 1)) else { continue };
        let Some((addr, prefix)) = cidr.split_once('/') else { continue };
        let (Ok(addr), Ok(prefix)) = (addr.parse::<Ipv4Addr>(), prefix.parse::<u32>()) else { continue };
        let theirs = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix.min(32)) };
        let overlaps = subnet.contains(addr) || u32::from(subnet.network()) & theirs == u32::from(addr) & theirs;
        if overlaps && prefix > 0 {
            return Err(NetnsError::SubnetInUse { subnet, link: link.to_string(), address: cidr.to_string() });
        }
    }
    Ok(())
}

pub(super) fn run(command: &mut Command) -> Result<String, NetnsError> {
    let describe = |command: &Command| {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command { command: describe(command), detail: e.to_string() })?;
    if !output.status.success() {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(NetnsError::Command { command: describe(command), detail });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn ip_batch_with(args: &[&str], commands: &[String]) -> Result<(), NetnsError> {
    let mut child = Command::new("ip")
        .args(args)
        .args(["-b", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetnsError::Command { command: "ip -b -".into(), detail: e.to_string() })?;
    let input = commands.join("\n") + "\n";
    let written = child.stdin.take().expect("piped stdin").write_all(input.as_bytes());
    let output = child
        .wait_with_output()
        .map_err(|e| NetnsError::Command { command: "ip -b -".into(), detail: e.to_string() })?;
    if !output.status.success() || written.is_err() {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(NetnsError::Command {
            command: format!("ip {} -b - ({})", args.join(" "), commands.join("; ")),
            detail,
        });
    }
    Ok(())
}

fn ip_batch(commands: &[String]) -> Result<(), NetnsError> {
    ip_batch_with(&[], commands)
}

fn ip_batch_in(ns: &str, commands: &[String]) -> Result<(), NetnsError> {
    ip_batch_with(&["-n", ns], commands)
}

pub(super) fn ip_batch_forced(commands: &[String]) -> Result<(), NetnsError> {
    ip_batch_with(&["-force"], commands)
}
