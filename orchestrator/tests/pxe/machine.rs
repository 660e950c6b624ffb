//! A QEMU machine in a machine room (`harness.rs`): its hardware ([`MachineSpec`]), the
//! process ([`Machine`]: start, console, QMP, kill), and [`qmp`] for any QMP socket.
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

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{json, Value};

use crate::harness::{last_lines, RoomError, OVMF_CODE};

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

/// A disk's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    /// `disk.qcow2`: grows as it is written.
    Qcow2,
    /// `disk.raw`: sparse, and readable as it is (`losetup -P`, `sfdisk -d`) after an install.
    Raw,
}

impl DiskFormat {
    /// qemu-img's and QEMU's name for it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }

    /// The disk's file name in the machine's directory.
    pub(crate) fn file(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "disk.qcow2",
            DiskFormat::Raw => "disk.raw",
        }
    }
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
    /// A blank disk of this size (a virtio disk: `/dev/vda`), booted after the network.
    pub disk_mb: Option<u32>,
    pub disk_format: DiskFormat,
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
            disk_format: DiskFormat::Qcow2,
            paused: false,
            extra: Vec::new(),
        }
    }

    /// A UEFI machine that boots as real UEFI hardware does: OVMF's PXE on a virtio NIC,
    /// `ipxe.efi` over TFTP. 1 GiB, no disk.
    pub fn uefi(name: &str, mac: &str) -> MachineSpec {
        MachineSpec { firmware: Firmware::Uefi, nic: Nic::Virtio, pxe: Pxe::Firmware, ..MachineSpec::bios(name, mac) }
    }

    /// Refuses hardware that cannot boot from the network (or names QEMU would reject).
    pub(crate) fn check(&self) -> Result<(), RoomError> {
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
    /// A machine not started yet, on tap `tap` in namespace `netns`, its files in `dir`.
    pub(crate) fn new(netns: &str, spec: MachineSpec, tap: &str, dir: PathBuf) -> Machine {
        Machine { netns: netns.to_owned(), spec, tap: tap.to_owned(), dir, child: None, started: None }
    }

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
    pub(crate) fn arguments(&self) -> Vec<String> {
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
            let (file, format) = (s.disk_format.file(), s.disk_format.name());
            arg("-drive", format!("file={dir}/{file},if=none,id=d0,format={format}"));
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
        self.spec.disk_mb.map(|_| self.dir.join(self.spec.disk_format.file()))
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
