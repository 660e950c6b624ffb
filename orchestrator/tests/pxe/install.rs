//! End to end: a BIOS machine with a blank disk installed by `zerolab up` from the disk
//! image (`boot: install`), rebooted three times without installing again, installed
//! once more by `zerolab reinstall` + `zerolab up`, and `zerolab down` leaving nothing.
//!
//! Room `pxi{n}`, boot network 10.99.17.0/24, server 10.99.17.1 (added by `up`).
//! Under TCG the image write takes minutes (orchestrator/pxe/README.md), and a cold
//! image cache makes the first `up` build it (~9 min): the deadlines allow for both.

use std::time::{Duration, Instant};

use crate::e2e::{agent_present, assert_nothing_left, PxeLab};
use crate::harness::{prerequisites, MachineRoom};
use crate::machine::{MachineSpec, Nic};

const MAC: &str = "52:54:00:99:17:01";
const SERVER: &str = "10.99.17.1";

#[test]
fn an_install_node_is_installed_once_boots_from_its_disk_after_and_installs_again_only_when_asked() {
    let test = "the install end-to-end test";
    let Some(_turn) = prerequisites(test) else { return };
    if !agent_present(test) {
        return;
    }
    let room = MachineRoom::new("pxi").unwrap();
    let mut spec = MachineSpec::bios("n1", MAC);
    spec.nic = Nic::Virtio;
    spec.disk_mb = Some(2560);
    spec.paused = true;
    let mut machine = room.machine(spec).unwrap();
    machine.start().unwrap();
    let qmp = machine.qmp_path();
    let text = format!(
        "apiVersion: zerolab/v1\nkind: Cluster\nname: e2e-install\nprovider: pxe\nnetwork: {{subnet: 10.99.17.0/24}}\n\
         pxe: {{interface: {}, deadline: 1500}}\nnodes:\n  - name: n1\n    mac: \"{MAC}\"\n    address: 10.99.17.11\n    \
         boot: install\n    disk: /dev/vda\n    power: {{qmp: {}}}\n",
        room.interface(),
        qmp.display()
    );
    let lab = PxeLab::new("e2e-install", room.dir(), &text);

    let up = lab.zerolab("up", &[]).ok("the first up");
    let answered = now_ms();
    assert_eq!(lab.events("n1", "installing"), 1, "installed once:\n{}", up.stdout);
    assert_eq!(lab.events("n1", "installed"), 1);
    let (hostname, _) = lab.exec_until_ok("hostname", Duration::from_secs(60));
    assert!(hostname.contains("n1: n1"), "{hostname}");
    let mut phases =
        vec![format!("first up (install) {:.0}s ({})", up.took.as_secs_f64(), lab.install_phases("n1", 0, answered))];

    for n in 1..=3 {
        let offers = lab.events("n1", "offered");
        let kernels = lab.events("n1", "kernel");
        let cycle = Instant::now();
        lab.zerolab("power", &["cycle", "n1"]).ok("power cycle");
        // Its network boot is told to boot from the disk...
        lab.wait_event("n1", "offered", offers, Duration::from_secs(300));
        // ... and the installed system answers SSH with the pinned host key.
        let (hostname, _) = lab.exec_until_ok("hostname", Duration::from_secs(600));
        assert!(hostname.contains("n1: n1"), "{hostname}");
        phases.push(format!("reboot {n} to SSH {:.0}s", cycle.elapsed().as_secs_f64()));
        assert_eq!(lab.events("n1", "installing"), 1, "reboot {n} ran the installer");
        assert_eq!(lab.events("n1", "kernel"), kernels, "reboot {n} fetched the live kernel");
    }

    let reinstall = lab.zerolab("reinstall", &["n1"]).ok("reinstall");
    let up = lab.zerolab("up", &[]).ok("up after reinstall");
    let answered = now_ms();
    assert_eq!(lab.events("n1", "installing"), 2, "installed exactly once more:\n{}", up.stdout);
    let (hostname, _) = lab.exec_until_ok("hostname", Duration::from_secs(60));
    assert!(hostname.contains("n1: n1"), "{hostname}");
    let install = lab.install_phases("n1", 1, answered);
    phases.push(format!(
        "reinstall {:.0}s + up (install) {:.0}s ({install})",
        reinstall.took.as_secs_f64(),
        up.took.as_secs_f64()
    ));

    let down = lab.zerolab("down", &[]).ok("down");
    phases.push(format!("down {:.0}s", down.took.as_secs_f64()));
    assert_nothing_left(&lab, &room.interface(), SERVER, &[qmp]);
    eprintln!("install end to end: {}", phases.join(", "));
}

/// Now, in ms since the epoch (as the boot server's events are).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
