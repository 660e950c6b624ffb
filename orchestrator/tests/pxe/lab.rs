//! `provider: pxe` end to end: `zerolab up` serves the boot network, powers two bare QEMU
//! machines on through QMP (one BIOS with QEMU's iPXE ROM, one UEFI booting like real
//! UEFI hardware: firmware PXE, `ipxe.efi` over TFTP), follows them into the live system,
//! logs in with the host keys it made beforehand, installs the agent and runs the
//! wordcount job across both; a stranger on the boot network gets no offer; n1 is shelved
//! (powered off) and unshelved (`shelve.rs`); `down` leaves no process, address, rule or
//! file behind and the machines off.
//!
//! Room `pxl`, boot network 10.99.16.0/24.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::e2e::{agent_present, assert_nothing_left, PxeLab};
use crate::harness::{prerequisites, MachineRoom};
use crate::machine::MachineSpec;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

pub fn qmp_status(socket: &Path) -> String {
    crate::machine::qmp(socket, "query-status", None)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "gone".into())
}

#[test]
fn a_bios_and_a_uefi_machine_boot_live_get_the_agent_and_run_wordcount_and_down_leaves_nothing() {
    let Some(_turn) = prerequisites("a pxe lab of two live machines") else {
        return;
    };
    if !agent_present("a pxe lab of two live machines") {
        return;
    }
    let room = MachineRoom::new("pxl").unwrap();
    let mut bios = MachineSpec::bios("bios", "52:54:00:99:16:01");
    bios.paused = true;
    let mut uefi = MachineSpec::uefi("uefi", "52:54:00:99:16:02");
    uefi.paused = true;
    let mut bios = room.machine(bios).unwrap();
    let mut uefi = room.machine(uefi).unwrap();
    bios.start().unwrap();
    uefi.start().unwrap();
    let text = format!(
        "apiVersion: zerolab/v1\nkind: Cluster\nname: pxl\nprovider: pxe\nnetwork: {{subnet: 10.99.16.0/24}}\n\
         pxe: {{interface: {}, http_port: 18016, deadline: 240}}\nnodes:\n\
         \x20 - {{name: n1, mac: \"52:54:00:99:16:01\", address: 10.99.16.11, power: {{qmp: {}}}}}\n\
         \x20 - {{name: n2, mac: \"52:54:00:99:16:02\", address: 10.99.16.12, power: {{qmp: {}}}}}\n",
        room.interface(),
        bios.qmp_path().display(),
        uefi.qmp_path().display()
    );
    let lab = PxeLab::new("pxl", room.dir(), &text);

    let rendered = lab.zerolab("render", &[]);
    assert_eq!(rendered.code, Some(0), "{rendered:#?}");
    assert!(rendered.stdout.contains("dnsmasq.conf"), "{rendered:#?}");
    assert_eq!(qmp_status(&bios.qmp_path()), "prelaunch", "render starts nothing");

    let started = Instant::now();
    let up = lab.zerolab("up", &[]);
    let took = started.elapsed();
    let consoles = format!("bios console:\n{}\nuefi console:\n{}", bios.console(), uefi.console());
    assert_eq!(up.code, Some(0), "{}\n{consoles}", up.stderr);
    eprintln!("zerolab up of a BIOS and a UEFI live machine: {:.1}s", took.as_secs_f64());

    // The first contact was already pinned: the key each machine serves is the one
    // zerolab made for it before it booted.
    for (node, address) in [("n1", "10.99.16.11"), ("n2", "10.99.16.12")] {
        let made =
            std::fs::read_to_string(lab.pxe_dir().join("keys").join(node).join("ssh_host_ed25519_key.pub")).unwrap();
        let scan = Command::new("ssh-keyscan").args(["-t", "ed25519", address]).output().unwrap();
        let served = String::from_utf8_lossy(&scan.stdout);
        let made_key = made.split_whitespace().nth(1).unwrap();
        assert!(served.contains(made_key), "{node} serves the key made for it: {served}");
    }
    let status = lab.zerolab("status", &[]);
    assert_eq!(status.code, Some(0), "{status:#?}");
    let events = std::fs::read_to_string(lab.pxe_dir().join("events.jsonl")).unwrap();
    eprintln!("{}", up.stdout);
    for step in ["offered", "script", "kernel", "initrd", "live", "ready"] {
        assert!(events.contains(&format!("\"node\":\"n1\",\"step\":\"{step}\"")), "n1 {step}:\n{events}");
    }
    assert!(events.contains("\"node\":\"n2\",\"step\":\"first-stage\""), "UEFI gets ipxe.efi over TFTP:\n{events}");
    let names = lab.zerolab("exec", &["--", "hostname"]);
    assert!(names.stdout.contains("n1: n1") && names.stdout.contains("n2: n2"), "{names:#?}");

    // A stranger on the boot network gets no offer.
    let peer = room.peer("52:54:00:99:16:99", "10.99.16.250".parse().unwrap(), 24, None).unwrap();
    let _ = peer.exec("ip", &["addr", "flush", "dev", "eth0"]);
    let asked = peer
        .exec("busybox", &["udhcpc", "-n", "-q", "-f", "-t", "3", "-T", "1", "-i", "eth0", "-s", "/bin/true"])
        .unwrap();
    assert!(!asked.status.success(), "no offer to an unlisted MAC: {asked:?}");

    let built = Command::new(Path::new(EXAMPLES).join("build-guests")).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let run = lab.zerolab("run", &[&format!("{EXAMPLES}/wordcount/job.yaml")]);
    assert_eq!(run.code, Some(0), "{run:#?}");
    let nodes: BTreeSet<&str> =
        run.stdout.lines().filter(|l| l.starts_with("map-")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(nodes.len(), 2, "the maps ran on both machines: {run:#?}");

    // n1 shelved (powered off) and back (powered on, booted live again).
    crate::shelve::power_off_and_on_come_back(&lab, &bios.qmp_path());

    let again = Instant::now();
    let up = lab.zerolab("up", &[]);
    assert_eq!(up.code, Some(0), "{up:#?}");
    assert!(again.elapsed() < Duration::from_secs(30), "a no-change up boots nothing: {:?}", again.elapsed());

    let down = lab.zerolab("down", &[]);
    assert_eq!(down.code, Some(0), "{down:#?}");
    assert_nothing_left(&lab, &room.interface(), "10.99.16.1", &[bios.qmp_path(), uefi.qmp_path()]);
}
