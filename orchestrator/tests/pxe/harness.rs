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
//! Machines: `-accel tcg` (the machine's KVM cannot run a stock kernel), a fixed MAC,
//! `-no-shutdown`, a QMP socket, the serial console in a file (SeaBIOS is told to print
//! there with `graphics=off`), an optional blank disk, boot order network then disk
//! (`bootindex`). Two ways to boot from the network, [`Pxe`]:
//! - [`Pxe::IpxeRom`]: QEMU's NIC ROM (Debian's `ipxe-qemu`, `efi-e1000.rom` /
//!   `efi-virtio.rom`, BIOS and UEFI in one file) — the machine is iPXE from the start:
//!   its DHCP request carries user class `iPXE`, no first stage is fetched. With UEFI the
//!   ROM's iPXE is the first boot option too. The only way a BIOS machine boots from the
//!   network (SeaBIOS has no network stack of its own).
//! - [`Pxe::Firmware`] (UEFI only): no ROM on a virtio NIC, so OVMF's own virtio driver
//!   and PXE client boot, as a real UEFI machine does: DHCP with client arch 7, then a
//!   first stage (`ipxe.efi`) over TFTP.
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
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{json, Value};

/// OVMF's code (read-only) and the template of each machine's variable store (Debian's `ovmf`).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The NIC ROMs QEMU 10 loads for e1000 and virtio-net (Debian's `ipxe-qemu`).
pub const IPXE_ROMS: [&str; 2] = ["/usr/lib/ipxe/qemu/efi-e1000.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom"];
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
            let disk = dir.join("disk.qcow2");
            run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&disk).arg(format!("{mb}M")))?;
        }
        let tap = self.port("t");
        let ns = self.netns();
        ip(&["-n", ns, "tuntap", "add", &tap, "mode", "tap"])?;
        let machine = Machine { netns: ns.to_owned(), spec, tap, dir, child: None, started: None };
        ip(&["-n", ns, "link", "set", &machine.tap, "master", "br0"])?;
        ip(&["-n", ns, "link", "set", &machine.tap, "up"])?;
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

/// How a machine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF, with a variable store of the machine's own.
    Uefi,
}

/// The network card QEMU emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    E1000,
    Virtio,
}

/// What boots from the network (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pxe {
    /// QEMU's iPXE NIC ROM: the machine is iPXE from its first DHCP request.
    IpxeRom,
    /// The firmware's own PXE client (UEFI, virtio NIC without a ROM): a first stage over TFTP.
    Firmware,
}

/// A machine's hardware.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub name: String,
    /// `52:54:00:..`, lowercase.
    pub mac: String,
    pub firmware: Firmware,
    pub nic: Nic,
    pub pxe: Pxe,
    pub memory_mb: u32,
    /// A blank qcow2 disk of this size (a virtio disk: `/dev/vda`), booted after the network.
    pub disk_mb: Option<u32>,
    /// Started stopped (`-S`): off until powered on through QMP (`cont`).
    pub paused: bool,
    /// More QEMU arguments.
    pub extra: Vec<String>,
}

impl MachineSpec {
    /// A BIOS machine: e1000 with QEMU's iPXE ROM, 1 GiB, no disk.
    pub fn bios(name: &str, mac: &str) -> MachineSpec {
        MachineSpec {
            name: name.to_owned(),
            mac: mac.to_owned(),
            firmware: Firmware::Bios,
            nic: Nic::E1000,
            pxe: Pxe::IpxeRom,
            memory_mb: 1024,
            disk_mb: None,
            paused: false,
            extra: Vec::new(),
        }
    }

    /// A UEFI machine that boots as real UEFI hardware does: OVMF's PXE on a virtio NIC,
    /// `ipxe.efi` over TFTP. 1 GiB, no disk.
    pub fn uefi(name: &str, mac: &str) -> MachineSpec {
        MachineSpec { firmware: Firmware::Uefi, nic: Nic::Virtio, pxe: Pxe::Firmware, ..MachineSpec::bios(name, mac) }
    }

    fn check(&self) -> Result<(), RoomError> {
        let bad = |reason: &str| Err(RoomError::Spec { name: self.name.clone(), reason: reason.to_owned() });
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return bad("a name is letters, digits and '-'");
        }
        let octets: Vec<&str> = self.mac.split(':').collect();
        let hex = |o: &&str| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        if octets.len() != 6 || !octets.iter().all(hex) {
            return bad("a mac is six lowercase hex octets with colons");
        }
        if self.firmware == Firmware::Bios && self.pxe == Pxe::Firmware {
            return bad("SeaBIOS has no network boot of its own: a BIOS machine boots through the iPXE ROM");
        }
        if self.nic == Nic::E1000 && self.pxe == Pxe::Firmware {
            return bad("OVMF has no e1000 driver: the firmware's PXE needs the virtio NIC");
        }
        Ok(())
    }
}

/// A QEMU machine in a room; killed (and its tap removed) on drop. (Its room's drop
/// kills it too: a machine may be kept beside its room in one struct.)
pub struct Machine {
    netns: String,
    pub spec: MachineSpec,
    tap: String,
    dir: PathBuf,
    child: Option<Child>,
    started: Option<Instant>,
}

impl Machine {
    /// Starts QEMU; returns once its QMP socket is there.
    pub fn start(&mut self) -> Result<(), RoomError> {
        let log = self.dir.join("qemu.log");
        let out = fs::File::create(&log).map_err(|source| RoomError::File { path: log.clone(), source })?;
        let err = out.try_clone().map_err(|source| RoomError::File { path: log.clone(), source })?;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns, "qemu-system-x86_64"]).args(self.arguments());
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child =
            command.spawn().map_err(|source| RoomError::Spawn { program: "qemu-system-x86_64".into(), source })?;
        self.started = Some(Instant::now());
        self.child = Some(child);
        self.wait_until(|m| m.qmp_path().exists(), "its QMP socket", Duration::from_secs(20))
    }

    /// QEMU's arguments.
    fn arguments(&self) -> Vec<String> {
        let s = &self.spec;
        let dir = self.dir.display();
        let mut args: Vec<String> = Vec::new();
        let mut arg = |option: &str, value: String| args.extend([option.to_owned(), value]);
        arg("-name", s.name.clone());
        arg("-accel", "tcg".into());
        arg("-m", s.memory_mb.to_string());
        arg("-display", "none".into());
        // SeaBIOS prints to the serial port when there is no graphics.
        arg("-machine", "pc,graphics=off".into());
        arg("-serial", format!("file:{dir}/console.log"));
        arg("-qmp", format!("unix:{dir}/qmp.sock,server=on,wait=off"));
        arg("-netdev", format!("tap,id=n0,ifname={},script=no,downscript=no", self.tap));
        let model = match s.nic {
            Nic::E1000 => "e1000",
            Nic::Virtio => "virtio-net-pci",
        };
        let rom = if s.pxe == Pxe::Firmware { ",romfile=" } else { "" };
        arg("-device", format!("{model},netdev=n0,mac={},bootindex=1{rom}", s.mac));
        if s.firmware == Firmware::Uefi {
            arg("-drive", format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"));
            arg("-drive", format!("if=pflash,format=raw,unit=1,file={dir}/vars.fd"));
        }
        if s.disk_mb.is_some() {
            arg("-drive", format!("file={dir}/disk.qcow2,if=none,id=d0,format=qcow2"));
            arg("-device", "virtio-blk-pci,drive=d0,bootindex=2".into());
        }
        args.extend(["-nodefaults".to_owned(), "-no-shutdown".to_owned()]);
        if s.paused {
            args.push("-S".into());
        }
        args.extend(s.extra.iter().cloned());
        args
    }

    /// When [`start`](Self::start) started QEMU.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The QMP socket (for `power: {qmp: PATH}`).
    pub fn qmp_path(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    /// The serial console's file.
    pub fn console_path(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// The disk's file, when the machine has one.
    pub fn disk_path(&self) -> Option<PathBuf> {
        self.spec.disk_mb.map(|_| self.dir.join("disk.qcow2"))
    }

    /// The console so far.
    pub fn console(&self) -> String {
        fs::read(self.console_path()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Waits until the console matches `pattern`; how long after the start it did.
    pub fn wait_for_console(&mut self, pattern: &str, deadline: Duration) -> Result<Duration, RoomError> {
        let re =
            Regex::new(pattern).map_err(|e| RoomError::Spec { name: self.spec.name.clone(), reason: e.to_string() })?;
        self.wait_until(|m| re.is_match(&m.console()), &format!("console line /{pattern}/"), deadline)?;
        Ok(self.started.map(|s| s.elapsed()).unwrap_or_default())
    }

    /// Polls `done` every 100 ms until it holds, QEMU exits, or `deadline` passes.
    fn wait_until(&mut self, done: impl Fn(&Self) -> bool, what: &str, deadline: Duration) -> Result<(), RoomError> {
        let until = Instant::now() + deadline;
        loop {
            if done(self) {
                return Ok(());
            }
            let exited = self.child.as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
            let what_machine = format!("machine {}", self.spec.name);
            if exited {
                return Err(RoomError::Exited { what: what_machine, wanted: what.to_owned(), tail: self.tail() });
            }
            if Instant::now() >= until {
                let secs = deadline.as_secs();
                return Err(RoomError::Timeout { what: format!("{what_machine}: {what}"), secs, tail: self.tail() });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of QEMU's own output and of the console.
    fn tail(&self) -> String {
        let qemu = fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default();
        format!("{}{}", last_lines(&qemu, 5), last_lines(&self.console(), 15))
    }

    /// Runs QMP command `execute` (with `arguments`); its `return` value.
    pub fn qmp(&self, execute: &str, arguments: Option<Value>) -> Result<Value, RoomError> {
        qmp(&self.qmp_path(), execute, arguments)
    }

    /// `query-status`'s `status` (`running`, `prelaunch`, `paused`, `shutdown`, ...).
    pub fn status(&self) -> Result<String, RoomError> {
        let status = self.qmp("query-status", None)?;
        Ok(status["status"].as_str().unwrap_or_default().to_owned())
    }

    /// QEMU's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills QEMU (SIGKILL) and reaps it; nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.qmp_path());
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.kill();
        let _ = Command::new("ip").args(["-n", &self.netns, "link", "del", &self.tap]).output();
    }
}

/// Runs QMP command `execute` (with `arguments`) on the socket at `path`: one connection,
/// capabilities negotiated, events skipped; the command's `return` value.
pub fn qmp(path: &Path, execute: &str, arguments: Option<Value>) -> Result<Value, RoomError> {
    let fail = |detail: String| RoomError::Qmp { path: path.to_owned(), detail };
    let stream = UnixStream::connect(path).map_err(|e| fail(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| fail(e.to_string()))?;
    let mut writer = stream.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut reader = BufReader::new(stream);
    let mut answer = |request: Option<Value>| -> Result<Value, RoomError> {
        if let Some(request) = request {
            writeln!(writer, "{request}").map_err(|e| fail(e.to_string()))?;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| fail(e.to_string()))? == 0 {
                return Err(fail("closed the connection".into()));
            }
            let message: Value = serde_json::from_str(&line).map_err(|e| fail(format!("{e}: {line}")))?;
            if let Some(error) = message.get("error") {
                return Err(fail(error.to_string()));
            }
            if let Some(value) = message.get("return").or_else(|| message.get("QMP")) {
                return Ok(value.clone());
            }
        }
    };
    answer(None)?;
    answer(Some(json!({"execute": "qmp_capabilities"})))?;
    let mut request = json!({ "execute": execute });
    if let Some(arguments) = arguments {
        request["arguments"] = arguments;
    }
    answer(Some(request))
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
