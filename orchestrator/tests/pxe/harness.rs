//! The PXE tests' test hardware: a machine room of QEMU machines on a boot network that
//! zerolab serves from this host, with nothing left behind when a test ends or panics.
//!
//! A [`MachineRoom`] is a network namespace holding a Linux bridge (`br0`) and a veth pair
//! whose host end ([`MachineRoom::interface`], `{room}h`) is the boot interface zerolab
//! serves on (the cluster file's `pxe.interface`); the namespace's end (`up0`) is a bridge
//! port. Each [`Machine`] is a QEMU process run inside the namespace on a tap device that
//! is a bridge port too, so its frames reach the host only through that veth, as a
//! physical machine's reach a server's NIC through a switch. Other things on the boot
//! network (a plain DHCP server, namespace hosts, a packet capture, the uplink) are in
//! `services.rs`.
//!
//! Machines ([`Machine`], how they boot from the network) are in `machine.rs`.
//!
//! iPXE waits about 16 s for IPv6 router advertisements unless one arrives. A router
//! advertisement must come from the host end of the veth (where dnsmasq runs, with
//! `--enable-ra --dhcp-range=PREFIX,ra-only`): [`MachineRoom::add_ipv6`] puts the prefix
//! there. The bridge needs no address of its own.
//!
//! Names: the room's namespace is `{prefix}{n}`, claimed atomically (`ip netns add`
//! fails when taken) so parallel tests and processes never share one; a room whose
//! owner process is gone (a test run killed with SIGKILL) is torn down by the next one
//! that wants its name. Inside the namespace names are private (`br0`, `up0`, `t0`, ...).

use std::cell::Cell;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use crate::machine::{Firmware, Machine, MachineSpec};

/// OVMF's code (read-only) and the template of each machine's variable store (Debian's `ovmf`).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The NIC ROMs QEMU 10 loads for e1000 and virtio-net (Debian's `ipxe-qemu`).
const IPXE_ROMS: [&str; 2] = ["/usr/lib/ipxe/qemu/efi-e1000.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom"];
/// Where rooms record their owner's pid, to tell a live room from a stale one.
const OWNERS: &str = "/run/zerolab-machine-rooms";

/// One machine-room test at a time: two cores boot few machines at once.
static MACHINE_TESTS: Mutex<()> = Mutex::new(());

/// What went wrong building or using the machine room.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot run {program}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("no free machine-room name with prefix {0}: remove stale namespaces (ip netns list)")]
    NoName(String),
    #[error("bad machine {name}: {reason}")]
    Spec { name: String, reason: String },
    #[error("{what}: not seen within {secs}s; it printed:\n{tail}")]
    Timeout { what: String, secs: u64, tail: String },
    #[error("{what} exited before {wanted}; it printed:\n{tail}")]
    Exited { what: String, wanted: String, tail: String },
    #[error("qmp {path}: {detail}")]
    Qmp { path: PathBuf, detail: String },
}

/// The turn of `test` when machine rooms can be built here (root, QEMU, dnsmasq and the
/// firmware files); otherwise prints why it is skipped and returns `None`.
pub fn prerequisites(test: &str) -> Option<MutexGuard<'static, ()>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {test} builds a machine room (namespaces, taps, QEMU): run as root");
        return None;
    }
    let programs = [
        ("qemu-system-x86_64", "qemu-system-x86 (vagrant/setup)"),
        ("qemu-img", "qemu-utils"),
        ("dnsmasq", "dnsmasq-base"),
    ];
    for (program, package) in programs {
        if which(program).is_none() {
            eprintln!("skipped: {test} needs {program}: install {package}");
            return None;
        }
    }
    let files = [
        (OVMF_CODE, "ovmf"),
        (OVMF_VARS, "ovmf"),
        (IPXE_ROMS[0], "ipxe-qemu"),
        (IPXE_ROMS[1], "ipxe-qemu"),
        // First stages served to firmware that is not iPXE yet.
        ("/usr/lib/ipxe/ipxe.efi", "ipxe"),
        ("/usr/lib/ipxe/undionly.kpxe", "ipxe"),
    ];
    for (file, package) in files {
        if !Path::new(file).exists() {
            eprintln!("skipped: {test} needs {file}: install {package}");
            return None;
        }
    }
    Some(MACHINE_TESTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// A network namespace with a bridge, a veth to the host, and the machines on it.
pub struct MachineRoom {
    name: String,
    dir: tempfile::TempDir,
    ports: Cell<u32>,
}

impl MachineRoom {
    /// A new room named `{prefix}{n}` (`prefix`: at most 8 letters or digits).
    pub fn new(prefix: &str) -> Result<MachineRoom, RoomError> {
        if prefix.is_empty() || prefix.len() > 8 || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            let reason = "a room's prefix is 1 to 8 letters or digits".to_owned();
            return Err(RoomError::Spec { name: prefix.to_owned(), reason });
        }
        let name = claim(prefix)?;
        let dir = match room_dir(&name) {
            Ok(dir) => dir,
            Err(e) => {
                teardown(&name);
                return Err(e);
            }
        };
        // From here on Drop tears down whatever the setup made, also when it fails half-way.
        let room = MachineRoom { name, dir, ports: Cell::new(0) };
        let (ns, host) = (room.name.as_str(), room.interface());
        ip(&["link", "add", &host, "type", "veth", "peer", "name", "up0", "netns", ns])?;
        ip(&["-n", ns, "link", "add", "br0", "type", "bridge", "forward_delay", "0"])?;
        ip(&["-n", ns, "link", "set", "up0", "master", "br0"])?;
        for link in ["lo", "br0", "up0"] {
            ip(&["-n", ns, "link", "set", link, "up"])?;
        }
        ip(&["link", "set", &host, "up"])?;
        Ok(room)
    }

    /// The namespace's name (and the prefix of every host-side name of this room).
    pub fn netns(&self) -> &str {
        &self.name
    }

    /// The host end of the veth: the boot interface zerolab serves on.
    pub fn interface(&self) -> String {
        format!("{}h", self.name)
    }

    /// The room's directory: consoles, QMP sockets, disks, logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Puts `address/prefix` on the host end (what `zerolab up` does for `pxe.server`).
    pub fn add_address(&self, address: Ipv4Addr, prefix: u8) -> Result<(), RoomError> {
        ip(&["addr", "add", &format!("{address}/{prefix}"), "dev", &self.interface()])
    }

    /// Puts an IPv6 address (`fd99:14::1/64`) on the host end, so a dnsmasq there can send
    /// the router advertisements iPXE otherwise waits 16 s for.
    pub fn add_ipv6(&self, address: &str) -> Result<(), RoomError> {
        ip(&["addr", "add", address, "dev", &self.interface(), "nodad"])
    }

    /// A new bridge port in the namespace: `{kind}{n}` (a tap, or a veth to a namespace host).
    pub(crate) fn port(&self, kind: &str) -> String {
        let n = self.ports.get();
        self.ports.set(n + 1);
        format!("{kind}{n}")
    }

    /// A machine (not started: [`Machine::start`]).
    pub fn machine(&self, spec: MachineSpec) -> Result<Machine, RoomError> {
        spec.check()?;
        let dir = self.dir().join(&spec.name);
        fs::create_dir(&dir).map_err(|source| RoomError::File { path: dir.clone(), source })?;
        if spec.firmware == Firmware::Uefi {
            let vars = dir.join("vars.fd");
            fs::copy(OVMF_VARS, &vars).map_err(|source| RoomError::File { path: vars, source })?;
        }
        if let Some(mb) = spec.disk_mb {
            let (disk, format) = (dir.join(spec.disk_format.file()), spec.disk_format.name());
            run(Command::new("qemu-img").args(["create", "-q", "-f", format]).arg(&disk).arg(format!("{mb}M")))?;
        }
        let tap = self.port("t");
        let ns = self.netns();
        ip(&["-n", ns, "tuntap", "add", &tap, "mode", "tap"])?;
        let machine = Machine::new(ns, spec, &tap, dir);
        ip(&["-n", ns, "link", "set", &tap, "master", "br0"])?;
        ip(&["-n", ns, "link", "set", &tap, "up"])?;
        Ok(machine)
    }
}

impl Drop for MachineRoom {
    fn drop(&mut self) {
        teardown(&self.name);
    }
}

/// The room's directory, `zerolab-room-{name}-XXXX` in the temp dir.
fn room_dir(name: &str) -> Result<tempfile::TempDir, RoomError> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("zerolab-room-{name}-"))
        .tempdir()
        .map_err(|source| RoomError::File { path: std::env::temp_dir(), source })?;
    // dnsmasq serves TFTP as user nobody: it refuses a root below a directory it cannot enter.
    let path = dir.path().to_owned();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(|source| RoomError::File { path, source })?;
    Ok(dir)
}

/// Claims the first free name `{prefix}{n}`, tearing down stale rooms on the way.
fn claim(prefix: &str) -> Result<String, RoomError> {
    fs::create_dir_all(OWNERS).map_err(|source| RoomError::File { path: OWNERS.into(), source })?;
    for n in 0..50 {
        let name = format!("{prefix}{n}");
        let owner = Path::new(OWNERS).join(&name);
        if Path::new("/run/netns").join(&name).exists() {
            let pid = fs::read_to_string(&owner).ok().and_then(|p| p.trim().parse::<i32>().ok());
            // A room whose owner is alive (or one not made by a room at all) is left alone.
            if pid.is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists()) {
                continue;
            }
            teardown(&name);
        }
        if ip(&["netns", "add", &name]).is_ok() {
            fs::write(&owner, std::process::id().to_string())
                .map_err(|source| RoomError::File { path: owner, source })?;
            return Ok(name);
        }
    }
    Err(RoomError::NoName(prefix.to_owned()))
}

/// Removes room `name` and everything of it: processes in its namespaces (killed),
/// the namespaces (their bridges, taps and veths go with them), its host-side links, its
/// owner file. Quiet: what is already gone is fine.
pub fn teardown(name: &str) {
    let namespaces = Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
    let namespaces: Vec<String> = String::from_utf8_lossy(&namespaces)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest == "u" || rest.starts_with('p')))
        .map(str::to_owned)
        .collect();
    for ns in &namespaces {
        let pids = Command::new("ip").args(["netns", "pids", ns]).output().map(|o| o.stdout).unwrap_or_default();
        for pid in String::from_utf8_lossy(&pids).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill has no memory-safety preconditions; a pid gone meanwhile gives ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    for ns in &namespaces {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
    }
    for link in [format!("{name}h"), format!("{name}u")] {
        let _ = Command::new("ip").args(["link", "del", &link]).stderr(Stdio::null()).output();
    }
    let _ = fs::remove_file(Path::new(OWNERS).join(name));
}

/// `ip ARGS`, failing with its stderr.
pub fn ip(args: &[&str]) -> Result<(), RoomError> {
    run(Command::new("ip").args(args))
}

/// Runs `command` to its end, failing with its stderr.
pub fn run(command: &mut Command) -> Result<(), RoomError> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|source| RoomError::Spawn { program: shown.clone(), source })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(RoomError::Command { command: shown, stderr });
    }
    Ok(())
}

/// The last `n` lines of `text`, each ending in a newline.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
}

/// The first `program` on `PATH` (or in `/usr/sbin`, where dnsmasq is).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|file| file.is_file())
}
