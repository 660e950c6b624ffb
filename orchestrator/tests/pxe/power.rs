//! Power control against the real thing: QMP against a real QEMU, IPMI against
//! OpenIPMI's simulated BMC powering a QEMU process, wake-on-LAN captured on the other
//! side of a veth in a network namespace, shell commands writing to a temp file.
//!
//! The machines run no OS: their disk's boot sector prints `B` on the serial port (a
//! file, so the test counts boots) and halts; the `poweroff` one then switches the
//! machine off through ACPI, as a guest's `poweroff` does. A boot takes a fraction of a
//! second under software emulation.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zerolab::provider::pxe::power::qmp::{self, Qmp, QmpError};
use zerolab::provider::pxe::power::{apply, state, PowerAction, PowerError, PowerSpec, PowerState};
use zerolab_config::cluster::net::MacAddr;

use crate::bmc::{self, Bmc, BmcConfig};

/// Whether `program` is on `PATH`; otherwise says that `test` is skipped.
fn present(test: &str, program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    if !found {
        eprintln!("skipped: {test} needs {program} (apt-get install -y {package}; scripts/setup does)");
    }
    found
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A boot sector (real mode, at 0x7c00): `B` and a newline to COM1, then, for
/// `poweroff`, ACPI sleep type S5 with SLP_EN (0x2000) written to PM1a_CNT at both
/// places firmware puts it (0xb004 on i440FX with SeaBIOS, 0x604 on Q35), then halt.
fn boot_sector(poweroff: bool) -> Vec<u8> {
    // mov dx, 0x3f8; mov al, 'B'; out dx, al; mov al, 10; out dx, al
    let mut code = vec![0xba, 0xf8, 0x03, 0xb0, b'B', 0xee, 0xb0, 0x0a, 0xee];
    if poweroff {
        // mov dx, 0xb004; mov ax, 0x2000; out dx, ax; mov dx, 0x604; out dx, ax
        code.extend([0xba, 0x04, 0xb0, 0xb8, 0x00, 0x20, 0xef, 0xba, 0x04, 0x06, 0xef]);
    }
    // cli; hlt; jmp back to hlt
    code.extend([0xfa, 0xf4, 0xeb, 0xfd]);
    code.resize(510, 0);
    code.extend([0x55, 0xaa]);
    code
}

/// A machine's files in `dir`: its disk, QMP socket and serial log.
struct Machine {
    qmp: PathBuf,
    serial: PathBuf,
    args: Vec<String>,
}

impl Machine {
    fn new(dir: &Path, name: &str, poweroff: bool) -> Machine {
        let disk = dir.join(format!("{name}.img"));
        std::fs::write(&disk, boot_sector(poweroff)).expect("write the boot sector");
        let qmp = dir.join(format!("{name}.qmp"));
        let serial = dir.join(format!("{name}.serial"));
        let args = [
            "-accel",
            "tcg",
            "-M",
            "pc",
            "-m",
            "64",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-shutdown",
            "-qmp",
            &format!("unix:{},server=on,wait=off", qmp.display()),
            "-drive",
            &format!("file={},format=raw,if=ide", disk.display()),
            // Appended to, so boots are counted across the processes a BMC starts.
            "-chardev",
            &format!("file,id=serial0,path={},append=on", serial.display()),
            "-serial",
            "chardev:serial0",
        ]
        .map(str::to_owned)
        .to_vec();
        Machine { qmp, serial, args }
    }

    /// Starts QEMU with the machine stopped before its firmware (`-S`): off.
    fn start_off(&self) -> Running {
        let child = Command::new("qemu-system-x86_64")
            .args(&self.args)
            .arg("-S")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&self.qmp).is_err() {
            assert!(Instant::now() < deadline, "QEMU's QMP socket {} did not appear", self.qmp.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Running(child)
    }

    fn spec(&self) -> PowerSpec {
        PowerSpec::Qmp { socket: self.qmp.clone() }
    }

    /// How many times the machine has booted (each boot prints one `B`).
    fn boots(&self) -> usize {
        std::fs::read(&self.serial).map(|b| b.iter().filter(|&&c| c == b'B').count()).unwrap_or(0)
    }

    /// Waits until the machine has booted `count` times; fails past 20 s.
    async fn wait_boots(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.boots() < count {
            assert!(Instant::now() < deadline, "the machine booted {} times, not {count}", self.boots());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(self.boots(), count, "the machine booted more often than asked");
    }
}

/// A QEMU process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run_status(machine: &Machine) -> String {
    qmp::status(&machine.qmp).await.expect("query-status").status
}

#[tokio::test]
async fn qmp_switches_a_machine_off_on_and_through_cycles() {
    if !present("qmp_switches_a_machine_off_on_and_through_cycles", "qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::new(dir.path(), "n1", false);
    let _qemu = machine.start_off();
    let spec = machine.spec();

    assert_eq!(state(&spec, "n1").await.unwrap(), PowerState::Off);
    assert_eq!(run_status(&machine).await, "prelaunch");

    let started = Instant::now();
    apply(&spec, "n1", PowerAction::On).await.unwrap();
    eprintln!("qmp power on: {:?}", started.elapsed());
    assert_eq!(state(&spec, "n1").await.unwrap(), PowerState::On);
    machine.wait_boots(1).await;
    eprintln!("qmp power on to the boot sector: {:?}", started.elapsed());

    // On when on: nothing happens (no reset, so no second boot).
    apply(&spec, "n1", PowerAction::On).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(machine.boots(), 1);

    let started = Instant::now();
    apply(&spec, "n1", PowerAction::Off).await.unwrap();
    eprintln!("qmp power off: {:?}", started.elapsed());
    assert_eq!(state(&spec, "n1").await.unwrap(), PowerState::Off);
    assert_eq!(run_status(&machine).await, "prelaunch", "off leaves the machine reset, before its firmware");
    apply(&spec, "n1", PowerAction::Off).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(machine.boots(), 1, "a machine that is off does not run");

    // Cycle from off boots; cycle from on boots again, from scratch.
    apply(&spec, "n1", PowerAction::Cycle).await.unwrap();
    machine.wait_boots(2).await;
    assert_eq!(state(&spec, "n1").await.unwrap(), PowerState::On);
    apply(&spec, "n1", PowerAction::Cycle).await.unwrap();
    machine.wait_boots(3).await;
    assert_eq!(state(&spec, "n1").await.unwrap(), PowerState::On);
}

#[tokio::test]
async fn qmp_reads_a_guest_that_switched_itself_off_as_off_and_boots_it_again() {
    if !present("qmp_reads_a_guest_that_switched_itself_off", "qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::new(dir.path(), "n2", true);
    let _qemu = machine.start_off();
    let spec = machine.spec();

    for boot in 1..=2 {
        apply(&spec, "n2", PowerAction::On).await.unwrap();
        machine.wait_boots(boot).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while run_status(&machine).await != "shutdown" {
            assert!(Instant::now() < deadline, "the guest did not switch itself off");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state(&spec, "n2").await.unwrap(), PowerState::Off);
    }
    // Off on a machine that is off already changes nothing.
    apply(&spec, "n2", PowerAction::Off).await.unwrap();
    assert_eq!(run_status(&machine).await, "shutdown");
}

#[tokio::test]
async fn qmp_without_qemu_or_with_a_busy_socket_is_a_clear_error() {
    if !present("qmp_without_qemu_or_with_a_busy_socket", "qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = PowerSpec::Qmp { socket: dir.path().join("none.qmp") };
    let err = apply(&missing, "n3", PowerAction::On).await.unwrap_err();
    assert!(matches!(err, PowerError::Qmp { source: QmpError::Connect(_), .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("node n3: QMP socket ") && text.contains("is the machine's QEMU running"), "{text}");

    // A busy socket: QEMU serves one client at a time, the call ends at its timeout.
    let machine = Machine::new(dir.path(), "n3", false);
    let mut qemu = machine.start_off();
    let holder = Qmp::connect(&machine.qmp).await.unwrap();
    let started = Instant::now();
    let err = state(&machine.spec(), "n3").await.unwrap_err();
    assert!(matches!(err, PowerError::Qmp { source: QmpError::Timeout(_), .. }), "{err}");
    assert!(started.elapsed() < qmp::TIMEOUT + Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(err.to_string().contains("is another one connected?"), "{err}");
    drop(holder);
    assert_eq!(state(&machine.spec(), "n3").await.unwrap(), PowerState::Off);

    // QEMU killed: its socket file stays and refuses connections.
    qemu.0.kill().unwrap();
    qemu.0.wait().unwrap();
    let err = state(&machine.spec(), "n3").await.unwrap_err();
    assert!(matches!(err, PowerError::Qmp { source: QmpError::Connect(_), .. }), "{err}");
}

/// Waits until `bmc`'s machine process is (`true`) or is not running, and returns its pid.
async fn wait_machine(bmc: &Bmc, running: bool) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let pid = bmc.machine_pid();
        if pid.is_some() == running {
            return pid;
        }
        assert!(Instant::now() < deadline, "the BMC's machine is not {}", if running { "running" } else { "gone" });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn ipmi_switches_a_qemu_machine_through_a_simulated_bmc() {
    if !bmc::programs_present("ipmi_switches_a_qemu_machine_through_a_simulated_bmc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::new(dir.path(), "n4", false);
    let addr = Ipv4Addr::LOCALHOST;
    let bmc =
        Bmc::start(dir.path(), BmcConfig { netns: None, addr, port: bmc::free_port(addr), qemu: machine.args.clone() });
    let spec = bmc.spec();

    assert_eq!(state(&spec, "n4").await.unwrap(), PowerState::Off);
    assert_eq!(bmc.machine_pid(), None);

    let started = Instant::now();
    apply(&spec, "n4", PowerAction::On).await.unwrap();
    eprintln!("ipmi power on: {:?}", started.elapsed());
    let first = bmc.machine_pid().expect("power on started the machine's QEMU");
    assert_eq!(state(&spec, "n4").await.unwrap(), PowerState::On);
    machine.wait_boots(1).await;
    assert_eq!(qmp::status(&machine.qmp).await.unwrap().status, "running");

    let started = Instant::now();
    apply(&spec, "n4", PowerAction::Off).await.unwrap();
    eprintln!("ipmi power off: {:?}", started.elapsed());
    assert_eq!(state(&spec, "n4").await.unwrap(), PowerState::Off);
    assert!(!bmc::alive(first), "power off ended the machine's QEMU");

    // Cycle from off switches on; cycle from on ends the process and starts a new one.
    apply(&spec, "n4", PowerAction::Cycle).await.unwrap();
    let second = wait_machine(&bmc, true).await.unwrap();
    machine.wait_boots(2).await;
    let started = Instant::now();
    apply(&spec, "n4", PowerAction::Cycle).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while bmc::alive(second) || bmc.machine_pid().is_none() {
        assert!(Instant::now() < deadline, "power cycle did not replace the machine's QEMU");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    machine.wait_boots(3).await;
    eprintln!("ipmi power cycle to a new boot: {:?}", started.elapsed());
    assert_eq!(state(&spec, "n4").await.unwrap(), PowerState::On);

    apply(&spec, "n4", PowerAction::Off).await.unwrap();
    assert_eq!(wait_machine(&bmc, false).await, None);
}

#[tokio::test]
async fn ipmi_errors_name_the_node_and_the_fix() {
    if !bmc::programs_present("ipmi_errors_name_the_node_and_the_fix") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::new(dir.path(), "n5", false);
    let addr = Ipv4Addr::LOCALHOST;
    let bmc =
        Bmc::start(dir.path(), BmcConfig { netns: None, addr, port: bmc::free_port(addr), qemu: machine.args.clone() });
    let PowerSpec::Ipmi { host, port, user, password_file, cipher_suite } = bmc.spec() else { unreachable!() };

    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let spec =
        PowerSpec::Ipmi { host: host.clone(), port, user: user.clone(), password_file: wrong.clone(), cipher_suite };
    let err = apply(&spec, "n5", PowerAction::On).await.unwrap_err();
    assert!(matches!(err, PowerError::Ipmi { command: "on", .. }), "{err}");
    assert!(err.to_string().starts_with("node n5: the BMC at 127.0.0.1:"), "{err}");
    assert_eq!(bmc.machine_pid(), None, "a refused login switched nothing on");

    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = state(&spec, "n5").await.unwrap_err();
    assert!(matches!(err, PowerError::PasswordFileOpen { mode: 0o644, .. }), "{err}");

    // Nothing listens on that port: ipmitool gives up after its retries.
    let silent = bmc::free_port(addr);
    let spec = PowerSpec::Ipmi { host, port: silent, user, password_file, cipher_suite };
    let started = Instant::now();
    let err = state(&spec, "n5").await.unwrap_err();
    eprintln!("ipmi to a silent port failed after {:?}", started.elapsed());
    assert!(matches!(err, PowerError::Ipmi { command: "status", .. }), "{err}");
    assert!(err.to_string().contains("answers IPMI over LAN"), "{err}");
}

#[tokio::test]
async fn ipmi_reaches_a_bmc_in_a_namespace_across_a_veth() {
    if !is_root() {
        eprintln!("skipped: ipmi_reaches_a_bmc_in_a_namespace_across_a_veth needs root (a namespace)");
        return;
    }
    if !bmc::programs_present("ipmi_reaches_a_bmc_in_a_namespace_across_a_veth") {
        return;
    }
    let veth = Veth::new('b', 1);
    let dir = tempfile::tempdir().unwrap();
    let machine = Machine::new(dir.path(), "n8", false);
    let config = BmcConfig { netns: Some(&veth.netns), addr: veth.ns_addr, port: 623, qemu: machine.args.clone() };
    let bmc = Bmc::start(dir.path(), config);
    let spec = bmc.spec();
    assert_eq!(state(&spec, "n8").await.unwrap(), PowerState::Off);
    apply(&spec, "n8", PowerAction::On).await.unwrap();
    machine.wait_boots(1).await;
    let pid = bmc.machine_pid().expect("power on started the machine's QEMU");
    let netns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(netns_of(pid), netns_of(std::process::id() as i32), "the machine runs in the BMC's namespace");
    apply(&spec, "n8", PowerAction::Off).await.unwrap();
    assert!(!bmc::alive(pid), "power off ended the machine's QEMU");
    drop(bmc);
    drop(veth);
}

/// A namespace with one end of a veth pair; the other end stays on this host. Each
/// test's pair has its own `tag` in its names and its own /28 of 10.99.12.0/24 (`slice`):
/// this host's end is its first address, the namespace's end the second.
struct Veth {
    netns: String,
    host_end: String,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
}

impl Veth {
    fn new(tag: char, slice: u8) -> Veth {
        let id = std::process::id();
        let base = slice * 16;
        let veth = Veth {
            netns: format!("p2{tag}{id}"),
            host_end: format!("p2{tag}{id}h"),
            host_addr: Ipv4Addr::new(10, 99, 12, base + 1),
            ns_addr: Ipv4Addr::new(10, 99, 12, base + 2),
        };
        let ns_end = format!("p2{tag}{id}n");
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&["netns", "add", &veth.netns]);
        run(&["link", "add", &veth.host_end, "type", "veth", "peer", "name", &ns_end, "netns", &veth.netns]);
        run(&["addr", "add", &format!("{}/28", veth.host_addr), "dev", &veth.host_end]);
        run(&["link", "set", &veth.host_end, "up"]);
        run(&["-n", &veth.netns, "addr", "add", &format!("{}/28", veth.ns_addr), "dev", &ns_end]);
        run(&["-n", &veth.netns, "link", "set", &ns_end, "up"]);
        run(&["-n", &veth.netns, "link", "set", "lo", "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the pair.
        let _ = Command::new("ip").args(["netns", "delete", &self.netns]).status();
        let _ = Command::new("ip").args(["link", "delete", &self.host_end]).stderr(Stdio::null()).status();
    }
}

#[tokio::test]
async fn wol_broadcasts_the_magic_packet_out_of_the_interface() {
    if !is_root() {
        eprintln!(
            "skipped: wol_broadcasts_the_magic_packet_out_of_the_interface needs root (a namespace, SO_BINDTODEVICE)"
        );
        return;
    }
    if !present("wol_broadcasts_the_magic_packet_out_of_the_interface", "ip", "iproute2") {
        return;
    }
    let veth = Veth::new('w', 0);
    // The listener lives in the namespace: a thread of its own switches into it.
    let netns = veth.netns.clone();
    let (ready, listening) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("open the namespace");
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the namespace");
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 9)).expect("listen on UDP port 9");
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ready.send(()).unwrap();
        let mut buf = [0u8; 1500];
        let (len, from) = socket.recv_from(&mut buf).expect("a packet on port 9 within 5 s");
        (buf[..len].to_vec(), from)
    });
    listening.recv().unwrap();

    let mac: MacAddr = "52:54:00:12:34:03".parse().unwrap();
    let spec = PowerSpec::Wol { mac, interface: veth.host_end.clone() };
    apply(&spec, "n6", PowerAction::On).await.unwrap();
    let (packet, from) = listener.join().unwrap();
    let mut want = vec![0xff; 6];
    for _ in 0..16 {
        want.extend(mac.0);
    }
    assert_eq!(packet, want, "the magic packet");
    assert_eq!(from.ip(), std::net::IpAddr::V4(veth.host_addr), "sent from the interface's address");

    assert_eq!(state(&spec, "n6").await.unwrap(), PowerState::Unknown);
    for action in [PowerAction::Off, PowerAction::Cycle] {
        let err = apply(&spec, "n6", action).await.unwrap_err();
        assert!(matches!(err, PowerError::WolUnsupported { .. }), "{err}");
        assert!(err.to_string().contains("wake-on-LAN can only switch a machine on"), "{err}");
    }
    let nowhere = PowerSpec::Wol { mac, interface: "p2nosuch0".to_owned() };
    let err = apply(&nowhere, "n6", PowerAction::On).await.unwrap_err();
    assert!(matches!(err, PowerError::Wol { .. }), "{err}");
}

#[tokio::test]
async fn commands_switch_and_read_with_the_node_in_their_environment() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let power = dir.path().join("power");
    let record = format!("echo \"$ZEROLAB_ACTION $ZEROLAB_NODE $ZEROLAB_MAC\" >> {}", log.display());
    let spec = PowerSpec::Command {
        on: format!("{record}; echo on > {}", power.display()),
        off: format!("{record}; echo OFF > {}", power.display()),
        status: Some(format!("{record} && cat {}", power.display())),
        mac: Some("52:54:00:12:34:04".parse().unwrap()),
    };
    apply(&spec, "n7", PowerAction::On).await.unwrap();
    assert_eq!(state(&spec, "n7").await.unwrap(), PowerState::On);
    apply(&spec, "n7", PowerAction::Cycle).await.unwrap();
    apply(&spec, "n7", PowerAction::Off).await.unwrap();
    assert_eq!(state(&spec, "n7").await.unwrap(), PowerState::Off);
    std::fs::write(&power, "standby\n").unwrap();
    assert_eq!(state(&spec, "n7").await.unwrap(), PowerState::Unknown);
    let mac = "52:54:00:12:34:04";
    let want: Vec<String> = ["on", "status", "off", "on", "off", "status", "status"]
        .iter()
        .map(|action| format!("{action} n7 {mac}"))
        .collect();
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().collect::<Vec<_>>(), want);

    let failing = PowerSpec::Command {
        on: "echo trying >&2; echo 'relay 4 did not answer' >&2; exit 3".to_owned(),
        off: "true".to_owned(),
        status: None,
        mac: None,
    };
    let err = apply(&failing, "n7", PowerAction::On).await.unwrap_err();
    assert!(matches!(err, PowerError::CommandFailed { role: "on", .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "node n7: the power on command failed (exit status: 3): relay 4 did not answer; fix the node's power.command.on"
    );
    assert_eq!(state(&failing, "n7").await.unwrap(), PowerState::Unknown, "no status command");

    // A command that leaves a child holding its output returns when it exits.
    let background =
        PowerSpec::Command { on: "sleep 3 & echo started".to_owned(), off: "true".to_owned(), status: None, mac: None };
    let started = Instant::now();
    apply(&background, "n7", PowerAction::On).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "waited {:?} for a background child", started.elapsed());
}
