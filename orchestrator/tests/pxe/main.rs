//! The PXE test hardware proven on its own, with no zerolab code: QEMU machines in a
//! machine room (`harness.rs`, `machine.rs`) boot from the network against a dnsmasq started here on
//! the host end, as zerolab's boot server will be; QMP powers them; the services beside
//! the boot network (`services.rs`) work; and nothing is left behind, also after a panic.
//!
//! Needs root, QEMU (vagrant/setup), dnsmasq, OVMF and QEMU's iPXE ROMs (scripts/setup);
//! without them each test says why it is skipped. One machine-room test at a time.
//! Names: rooms `p4t{n}`, boot network 10.99.14.0/25, uplink 10.99.14.252/30.
//!
//! `power` drives machines through every power control (a real QEMU over QMP, OpenIPMI's
//! simulated BMC in front of a QEMU, a wake-on-LAN packet captured in a network
//! namespace, shell commands); `bmc` is the simulated BMC, for any test that wants a
//! machine behind IPMI (needs `ipmi_sim` from openipmi and `ipmitool`).
//!
//! All of it: `cargo test --release -p zerolab --test pxe` (as root); one module:
//! `cargo test --release -p zerolab --test pxe -- power::`.

mod bmc;
mod e2e;
mod harness;
mod install;
mod lab;
mod machine;
mod power;
mod services;
mod services_e2e;
mod shelve;

use std::fs::Permissions;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::{prerequisites, MachineRoom};
use machine::{DiskFormat, MachineSpec};
use services::{is_magic_packet, Dnsmasq};

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 14, 1);
const SCRIPT: &str = "#!ipxe\necho zerolab-room-script\n";

/// A room with the host end at 10.99.14.1/25 (and fd99:14::1/64 for router
/// advertisements), and a dnsmasq there that gives out 10.99.14.10-100, hands iPXE a
/// script over TFTP and anything else its first stage (BIOS `undionly.kpxe`, UEFI
/// `ipxe.efi`), all from `tftp/` in the room's directory.
fn served_room() -> (MachineRoom, Dnsmasq) {
    let room = MachineRoom::new("p4t").unwrap();
    room.add_address(SERVER, 25).unwrap();
    room.add_ipv6("fd99:14::1/64").unwrap();
    let tftp = tftp_root(&room);
    let args: Vec<String> = [
        "--dhcp-range=10.99.14.10,10.99.14.100,255.255.255.128,1h",
        "--no-ping",
        "--log-dhcp",
        "--enable-ra",
        "--dhcp-range=fd99:14::,ra-only",
        "--enable-tftp",
        &format!("--tftp-root={}", tftp.display()),
        "--dhcp-userclass=set:ipxe,iPXE",
        "--dhcp-match=set:efi64,option:client-arch,7",
        "--dhcp-boot=tag:efi64,tag:!ipxe,ipxe.efi",
        "--dhcp-boot=tag:!efi64,tag:!ipxe,undionly.kpxe",
        "--dhcp-boot=tag:ipxe,tftp://10.99.14.1/boot.ipxe",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let dnsmasq = room.host_dnsmasq("boot", &args).unwrap();
    (room, dnsmasq)
}

/// `tftp/` in the room's directory with the script and iPXE's first stages, readable by
/// dnsmasq's unprivileged user whatever the umask (it refuses a TFTP root it cannot read).
fn tftp_root(room: &MachineRoom) -> PathBuf {
    let tftp = room.dir().join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    std::fs::write(tftp.join("boot.ipxe"), SCRIPT).unwrap();
    for loader in ["undionly.kpxe", "ipxe.efi"] {
        std::fs::copy(Path::new("/usr/lib/ipxe").join(loader), tftp.join(loader)).unwrap();
    }
    for entry in std::fs::read_dir(&tftp).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(&tftp, Permissions::from_mode(0o755)).unwrap();
    tftp
}

/// Seconds from `from` to `to`.
fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

#[test]
fn a_bios_machine_powered_on_through_qmp_is_ipxe_from_its_first_dhcp_request_and_runs_the_served_script() {
    let Some(_turn) = prerequisites("a BIOS machine's network boot") else {
        return;
    };
    let (room, mut dnsmasq) = served_room();
    let mut spec = MachineSpec::bios("bios", "52:54:00:99:14:01");
    spec.paused = true;
    spec.disk_mb = Some(64);
    let mut machine = room.machine(spec).unwrap();
    machine.start().unwrap();
    assert_eq!(machine.status().unwrap(), "prelaunch", "-S: off until powered on");
    assert!(machine.disk_path().unwrap().is_file());

    machine.qmp("cont", None).unwrap();
    let on = Instant::now();
    assert_eq!(machine.status().unwrap(), "running");
    let (request, line) = dnsmasq.wait_for(r"DHCPDISCOVER\(\S+\) 52:54:00:99:14:01", Duration::from_secs(120)).unwrap();
    assert!(line.contains(&room.interface()), "{line}");
    let log = dnsmasq.log();
    assert!(log.contains("user class: iPXE"), "QEMU's ROM is iPXE from the first request:\n{log}");
    let (script, _) = dnsmasq.wait_for(r"sent \S+/boot\.ipxe to 10\.99\.14\.", Duration::from_secs(120)).unwrap();
    machine.wait_for_console("zerolab-room-script", Duration::from_secs(30)).unwrap();
    // The script ends without booting: SeaBIOS goes on to the blank disk (boot order).
    machine.wait_for_console("Booting from Hard Disk", Duration::from_secs(60)).unwrap();
    let console = machine.console();
    assert!(!console.contains("Configuring (net0 52:54:00:99:14:01)................"), "no IPv6 wait:\n{console}");
    eprintln!(
        "bios (iPXE ROM): power-on to DHCPDISCOVER {:.1}s, to the script over TFTP {:.1}s",
        secs(on, request),
        secs(on, script)
    );
}

#[test]
fn a_uefi_machine_boots_like_real_uefi_hardware_dhcp_then_ipxe_efi_over_tftp_then_the_script() {
    let Some(_turn) = prerequisites("a UEFI machine's network boot") else {
        return;
    };
    let (room, mut dnsmasq) = served_room();
    let mut spec = MachineSpec::uefi("uefi", "52:54:00:99:14:02");
    spec.disk_mb = Some(64);
    spec.disk_format = DiskFormat::Raw;
    let mut machine = room.machine(spec).unwrap();
    assert_eq!(std::fs::metadata(machine.disk_path().unwrap()).unwrap().len(), 64 << 20);
    machine.start().unwrap();
    let on = machine.started().unwrap();
    let wait = Duration::from_secs(180);
    let (request, _) = dnsmasq.wait_for(r"DHCPDISCOVER\(\S+\) 52:54:00:99:14:02", wait).unwrap();
    let log = dnsmasq.log();
    assert!(log.contains("vendor class: PXEClient:Arch:00007"), "OVMF's own PXE asks first:\n{log}");
    let (first, _) = dnsmasq.wait_for(r"sent \S+/ipxe\.efi to 10\.99\.14\.", wait).unwrap();
    let (script, _) = dnsmasq.wait_for(r"sent \S+/boot\.ipxe to 10\.99\.14\.", wait).unwrap();
    machine.wait_for_console("zerolab-room-script", Duration::from_secs(30)).unwrap();
    assert_eq!(machine.status().unwrap(), "running");
    eprintln!(
        "uefi (OVMF PXE): start to DHCPDISCOVER {:.1}s, to ipxe.efi over TFTP {:.1}s, to the script {:.1}s",
        secs(on, request),
        secs(on, first),
        secs(on, script)
    );
}

#[test]
fn a_room_is_gone_after_its_test_panics_with_a_machine_and_dnsmasq_running() {
    let Some(_turn) = prerequisites("a room's cleanup") else {
        return;
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let (room, _dnsmasq) = served_room();
        let _uplink = room.uplink(Ipv4Addr::new(10, 99, 14, 253), Ipv4Addr::new(10, 99, 14, 254), 8080).unwrap();
        let _peer = room.peer("52:54:00:99:14:0a", Ipv4Addr::new(10, 99, 14, 110), 25, None).unwrap();
        let mut machine = room.machine(MachineSpec::bios("doomed", "52:54:00:99:14:03")).unwrap();
        machine.start().unwrap();
        tx.send((room.netns().to_owned(), machine.pid().unwrap())).unwrap();
        panic!("a test failing with everything running");
    })
    .join();
    assert!(panicked.is_err());
    let (name, qemu) = rx.recv().unwrap();
    let namespaces = output("ip", &["netns", "list"]);
    assert!(!namespaces.lines().any(|l| l.starts_with(&name)), "{namespaces}");
    let links = output("ip", &["-br", "link"]);
    assert!(!links.lines().any(|l| l.starts_with(&name)), "{links}");
    assert!(!Path::new(&format!("/proc/{qemu}")).exists(), "QEMU {qemu} still runs");
    let processes = output("ps", &["-eo", "args"]);
    assert!(!processes.lines().any(|l| l.contains(&format!("zerolab-room-{name}-"))), "{processes}");
}

#[test]
fn peers_uplink_capture_and_wake_on_lan_work_beside_the_boot_network() {
    let Some(_turn) = prerequisites("the services beside the boot network") else {
        return;
    };
    let room = MachineRoom::new("p4t").unwrap();
    room.add_address(SERVER, 25).unwrap();
    let capture = room.capture().unwrap();

    // A peer on the bridge reaches the host end: its connection comes from its address.
    let peer = room.peer("52:54:00:99:14:0b", Ipv4Addr::new(10, 99, 14, 111), 25, Some(SERVER)).unwrap();
    let listener = TcpListener::bind((SERVER, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("echo hello > /dev/tcp/{SERVER}/{port}");
    let sent = peer.exec("bash", &["-c", &script]).unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let (mut stream, from) = listener.accept().unwrap();
    assert_eq!(from.ip(), Ipv4Addr::new(10, 99, 14, 111));
    let mut hello = String::new();
    stream.read_to_string(&mut hello).unwrap();
    assert_eq!(hello, "hello\n");

    // The uplink's listener records who connected: here the host, from its uplink address.
    let uplink = room.uplink(Ipv4Addr::new(10, 99, 14, 253), Ipv4Addr::new(10, 99, 14, 254), 8080).unwrap();
    let mut answer = String::new();
    let mut stream = TcpStream::connect(uplink.address()).unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") && answer.ends_with("uplink\n"), "{answer}");
    assert_eq!(uplink.sources(), vec![Ipv4Addr::new(10, 99, 14, 253)]);
    assert!(uplink.interface().starts_with(room.netns()));

    // A wake-on-LAN packet sent out of the host end crosses the bridge, and powers on the
    // machine (started off) that has wake-on-LAN armed.
    let mac = "52:54:00:99:14:0c";
    let mut spec = MachineSpec::bios("sleeper", mac);
    spec.paused = true;
    let mut machine = room.machine(spec).unwrap();
    machine.start().unwrap();
    let wol = room.wake_on_lan(&machine).unwrap();
    assert_eq!(machine.status().unwrap(), "prelaunch");
    let mut magic = vec![0xffu8; 6];
    for _ in 0..16 {
        magic.extend([0x52, 0x54, 0x00, 0x99, 0x14, 0x0c]);
    }
    let socket = UdpSocket::bind((SERVER, 0)).unwrap();
    socket.set_broadcast(true).unwrap();
    nix::sys::socket::setsockopt(&socket.as_fd(), nix::sys::socket::sockopt::BindToDevice, &room.interface().into())
        .unwrap();
    socket.send_to(&magic, "10.99.14.127:9").unwrap();
    let (_, frame) = capture.wait_for(|f| is_magic_packet(f, mac), Duration::from_secs(5)).expect("the magic packet");
    assert_eq!(&frame[..6], &[0xff; 6], "an Ethernet broadcast");
    assert!(!is_magic_packet(&frame, "52:54:00:99:14:0d"));
    assert!(capture.count() >= 1);
    assert!(wol.wait(Duration::from_secs(5)), "woken by its magic packet");
    assert_eq!(machine.status().unwrap(), "running");
    machine.wait_for_console("iPXE", Duration::from_secs(60)).unwrap();
}

/// `program ARGS`'s stdout.
fn output(program: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&Command::new(program).args(args).output().unwrap().stdout).into_owned()
}

#[test]
fn beside_a_plain_dhcp_server_a_proxy_dhcp_on_the_host_end_boots_a_machine() {
    let Some(_turn) = prerequisites("proxy DHCP beside the network's own server") else {
        return;
    };
    let room = MachineRoom::new("p4t").unwrap();
    room.add_address(SERVER, 25).unwrap();
    room.add_ipv6("fd99:14::1/64").unwrap();
    let (from, to) = (Ipv4Addr::new(10, 99, 14, 50), Ipv4Addr::new(10, 99, 14, 60));
    let mut plain = room.dhcp_server(Ipv4Addr::new(10, 99, 14, 2), 25, from, to).unwrap();
    let tftp = tftp_root(&room);
    let args: Vec<String> = [
        "--dhcp-range=10.99.14.0,proxy,255.255.255.128",
        "--log-dhcp",
        "--enable-ra",
        "--dhcp-range=fd99:14::,ra-only",
        "--enable-tftp",
        &format!("--tftp-root={}", tftp.display()),
        "--dhcp-userclass=set:ipxe,iPXE",
        // In proxy mode iPXE gets its script from a PXE service (a `dhcp-boot` alone is
        // not sent: iPXE then says "Nothing to boot").
        "--pxe-service=tag:ipxe,x86PC,zerolab,tftp://10.99.14.1/boot.ipxe",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let mut proxy = room.host_dnsmasq("proxy", &args).unwrap();
    let mut machine = room.machine(MachineSpec::bios("proxied", "52:54:00:99:14:04")).unwrap();
    machine.start().unwrap();

    let wait = Duration::from_secs(120);
    let (_, lease) = plain.wait_for(r"DHCPACK\(br0\) 10\.99\.14\.5\d 52:54:00:99:14:04", wait).unwrap();
    let address = lease.split_whitespace().rev().nth(1).unwrap().to_owned();
    proxy.wait_for(r"PXE\(\S+\) 52:54:00:99:14:04 proxy", wait).unwrap();
    let (_, sent) = proxy.wait_for(r"sent \S+/boot\.ipxe to ", wait).unwrap();
    assert!(sent.ends_with(&format!("to {address}")), "the proxy served the plain server's lease {address}: {sent}");
    machine.wait_for_console("zerolab-room-script", Duration::from_secs(30)).unwrap();
    assert!(
        !plain.log().contains("option: 67 bootfile-name"),
        "the plain server offers no boot file:\n{}",
        plain.log()
    );
    let peer = room.peer("52:54:00:99:14:0e", Ipv4Addr::new(10, 99, 14, 112), 25, None).unwrap();
    let seen = peer.exec("ip", &["-br", "addr", "show", "eth0"]).unwrap();
    assert!(String::from_utf8_lossy(&seen.stdout).contains("10.99.14.112/25"), "{seen:?} in {}", peer.netns());
}

#[test]
fn a_room_left_by_a_killed_test_run_is_torn_down_by_the_next_room_wanting_its_name() {
    let Some(_turn) = prerequisites("a stale room's cleanup") else {
        return;
    };
    // What a test run killed with SIGKILL leaves: a namespace, its host link, the owner
    // file naming a process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let name = (0..50).map(|n| format!("p4s{n}")).find(|n| !Path::new("/run/netns").join(n).exists()).unwrap();
    harness::ip(&["netns", "add", &name]).unwrap();
    harness::ip(&["link", "add", &format!("{name}h"), "type", "veth", "peer", "name", "up0", "netns", &name]).unwrap();
    std::fs::write(Path::new("/run/zerolab-machine-rooms").join(&name), pid.to_string()).unwrap();

    let room = MachineRoom::new("p4s").unwrap();
    assert_eq!(room.netns(), name, "the stale name was taken over");
    let links = output("ip", &["-br", "link"]);
    assert_eq!(links.lines().filter(|l| l.starts_with(&format!("{name}h"))).count(), 1, "{links}");
    drop(room);
    assert!(!Path::new("/run/netns").join(&name).exists());
    assert!(!Path::new("/run/zerolab-machine-rooms").join(&name).exists());
}
