//! End to end: `zerolab up`/`down` of live nodes beside the boot network's other
//! services: proxyDHCP beside a plain DHCP server, power through an IPMI BMC (OpenIPMI's
//! simulator starting the QEMU machine), and NAT to an uplink (MASQUERADE, rules gone
//! after `down`).
//!
//! Rooms `pxp{n}` (proxy), `pxm{n}` (IPMI): boot network 10.99.18.0/24, server
//! 10.99.18.1; `pxn{n}` (NAT): boot network 10.99.19.0/25, server 10.99.19.1, uplink
//! 10.99.19.252/30.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::bmc::{self, Bmc, BmcConfig};
use crate::e2e::{agent_present, assert_nothing_left, PxeLab};
use crate::harness::{ip, prerequisites, MachineRoom};
use crate::machine::MachineSpec;

/// The cluster file of lab `name`: one live node `n1` (`mac`, `address`) with `power`
/// (flow-style YAML), `pxe:` extra keys in `pxe`.
fn cluster(name: &str, subnet: &str, room: &MachineRoom, pxe: &str, mac: &str, address: &str, power: &str) -> String {
    format!(
        "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: pxe\nnetwork: {{subnet: {subnet}}}\n\
         pxe: {{interface: {}, deadline: 600{pxe}}}\nnodes:\n  - name: n1\n    mac: \"{mac}\"\n    \
         address: {address}\n    boot: live\n    power: {power}\n",
        room.interface()
    )
}

#[test]
fn a_live_node_boots_through_proxy_dhcp_beside_the_networks_own_dhcp_server() {
    let test = "the proxyDHCP end-to-end test";
    let Some(_turn) = prerequisites(test) else { return };
    if !agent_present(test) {
        return;
    }
    let room = MachineRoom::new("pxp").unwrap();
    // The network's own server leases the node the address the cluster file names.
    let node = Ipv4Addr::new(10, 99, 18, 50);
    let mut plain = room.dhcp_server(Ipv4Addr::new(10, 99, 18, 2), 24, node, node).unwrap();
    let mac = "52:54:00:99:18:01";
    let mut spec = MachineSpec::bios("n1", mac);
    spec.paused = true;
    let mut machine = room.machine(spec).unwrap();
    machine.start().unwrap();
    let qmp = machine.qmp_path();
    let power = format!("{{qmp: {}}}", qmp.display());
    let text = cluster("e2e-proxy", "10.99.18.0/24", &room, ", dhcp: proxy", mac, "10.99.18.50", &power);
    let lab = PxeLab::new("e2e-proxy", room.dir(), &text);

    let up = lab.zerolab("up", &[]).ok("up");
    let (_, lease) =
        plain.wait_for(r"DHCPACK\(br0\) 10\.99\.18\.50 52:54:00:99:18:01", Duration::from_secs(5)).unwrap();
    assert!(lab.events("n1", "offered") >= 1, "the proxy answered the node");
    let dnsmasq = std::fs::read_to_string(lab.pxe_dir().join("dnsmasq.log")).unwrap_or_default();
    assert!(!dnsmasq.contains("DHCPACK"), "the proxy leased nothing:\n{dnsmasq}");
    let (hostname, _) = lab.exec_until_ok("hostname", Duration::from_secs(60));
    assert!(hostname.contains("n1: n1"), "{hostname}");
    assert!(!plain.log().contains("option: 67 bootfile-name"), "the plain server offered no boot file");

    let down = lab.zerolab("down", &[]).ok("down");
    assert_nothing_left(&lab, &room.interface(), "10.99.18.1", &[qmp]);
    eprintln!("proxy end to end: up {:.0}s, down {:.0}s ({lease})", up.took.as_secs_f64(), down.took.as_secs_f64());
}

#[test]
fn a_live_node_behind_an_ipmi_bmc_is_switched_by_up_power_and_down() {
    let test = "the IPMI end-to-end test";
    let Some(_turn) = prerequisites(test) else { return };
    if !agent_present(test) || !bmc::programs_present(test) {
        return;
    }
    let room = MachineRoom::new("pxm").unwrap();
    let mac = "52:54:00:99:18:02";
    // The machine is only its QEMU command line: the BMC starts it on power on.
    let machine = room.machine(MachineSpec::bios("n1", mac)).unwrap();
    let addr = Ipv4Addr::new(10, 99, 18, 3);
    ip(&["-n", room.netns(), "addr", "add", "10.99.18.3/24", "dev", "br0"]).unwrap();
    let bmc_dir = room.dir().join("bmc");
    std::fs::create_dir(&bmc_dir).unwrap();
    let config = BmcConfig { netns: Some(room.netns()), addr, port: 623, qemu: machine.arguments() };
    // On the boot network, reached through the boot interface once `up` gave it its address.
    let bmc = Bmc::start(&bmc_dir, config);
    let power = format!(
        "{{ipmi: {{host: 10.99.18.3, port: 623, user: {}, password_file: {}, cipher_suite: 3}}}}",
        bmc::USER,
        bmc.password_file.display()
    );
    let text = cluster("e2e-ipmi", "10.99.18.0/24", &room, "", mac, "10.99.18.12", &power);
    let lab = PxeLab::new("e2e-ipmi", room.dir(), &text);
    assert_eq!(bmc.machine_pid(), None, "off until up");

    let up = lab.zerolab("up", &[]).ok("up");
    let first = bmc.machine_pid().expect("up switched the machine on through the BMC");
    let (hostname, _) = lab.exec_until_ok("hostname", Duration::from_secs(60));
    assert!(hostname.contains("n1: n1"), "{hostname}");
    let status = lab.zerolab("power", &["status", "n1"]).ok("power status");
    assert!(status.stdout.contains("on"), "{}", status.stdout);

    let off = lab.zerolab("power", &["off", "n1"]).ok("power off");
    wait_until(|| !bmc::alive(first), "power off ended the machine");
    let status = lab.zerolab("power", &["status", "n1"]).ok("power status");
    assert!(status.stdout.contains("off"), "{}", status.stdout);
    let on = lab.zerolab("power", &["on", "n1"]).ok("power on");
    wait_until(|| bmc.machine_pid().is_some(), "power on started the machine again");
    let status = lab.zerolab("power", &["status", "n1"]).ok("power status");
    assert!(status.stdout.contains("on"), "{}", status.stdout);

    let down = lab.zerolab("down", &[]).ok("down");
    wait_until(|| bmc.machine_pid().is_none(), "down switched the machine off");
    assert_nothing_left(&lab, &room.interface(), "10.99.18.1", &[]);
    eprintln!(
        "ipmi end to end: up {:.0}s, power off {:.1}s, power on {:.1}s, down {:.0}s",
        up.took.as_secs_f64(),
        off.took.as_secs_f64(),
        on.took.as_secs_f64(),
        down.took.as_secs_f64()
    );
}

#[test]
fn a_live_node_reaches_the_uplink_through_nat_and_down_removes_the_rules() {
    let test = "the NAT end-to-end test";
    let Some(_turn) = prerequisites(test) else { return };
    if !agent_present(test) {
        return;
    }
    let room = MachineRoom::new("pxn").unwrap();
    let uplink = room.uplink(Ipv4Addr::new(10, 99, 19, 253), Ipv4Addr::new(10, 99, 19, 254), 8080).unwrap();
    let mac = "52:54:00:99:19:01";
    let mut spec = MachineSpec::bios("n1", mac);
    spec.paused = true;
    let mut machine = room.machine(spec).unwrap();
    machine.start().unwrap();
    let qmp = machine.qmp_path();
    let power = format!("{{qmp: {}}}", qmp.display());
    let nat = format!(", nat: {}", uplink.interface());
    let text = cluster("e2e-nat", "10.99.19.0/25", &room, &nat, mac, "10.99.19.11", &power);
    let lab = PxeLab::new("e2e-nat", room.dir(), &text);

    let up = lab.zerolab("up", &[]).ok("up");
    let rules = iptables_rules("zerolab:e2e-nat");
    assert_eq!(rules.len(), 3, "MASQUERADE and two FORWARD rules:\n{}", rules.join("\n"));
    let url = format!("http://{}/", uplink.address());
    let (answer, _) = lab.exec_until_ok(&format!("wget -q -O- {url}"), Duration::from_secs(60));
    assert!(answer.contains("n1: uplink"), "{answer}");
    assert_eq!(uplink.sources(), vec![IpAddr::V4(Ipv4Addr::new(10, 99, 19, 253))], "masqueraded to the uplink");

    let down = lab.zerolab("down", &[]).ok("down");
    assert!(iptables_rules("zerolab:e2e-nat").is_empty());
    assert_nothing_left(&lab, &room.interface(), "10.99.19.1", &[qmp]);
    eprintln!("nat end to end: up {:.0}s, down {:.0}s", up.took.as_secs_f64(), down.took.as_secs_f64());
}

/// The iptables rules (all tables) carrying `comment`.
fn iptables_rules(comment: &str) -> Vec<String> {
    let out = std::process::Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(comment)).map(str::to_owned).collect()
}

/// Polls `done` for up to 30 s.
fn wait_until(done: impl Fn() -> bool, what: &str) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}
