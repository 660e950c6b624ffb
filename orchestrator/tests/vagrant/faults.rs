//! The known failure modes of multi-machine libvirt labs, each made to happen: two labs
//! brought up at once while their box's base volume is not in the pool yet (Vagrant's
//! libvirt provider uploads it once per process: two processes race), and a lab whose
//! subnet another lab's network holds (refused before anything is made, the other lab
//! untouched). Every lab goes down leaving nothing.

use std::fs;
use std::process::{Command, Stdio};

use crate::harness::{leftovers, prerequisites, virsh, VmLab};

/// A box name only this test uses, so its base volume is uploaded by this test's labs.
const TEST_BOX: &str = "zerolab/debian12-vmtest";

fn cluster(name: &str, subnet: &str) -> String {
    format!(
        "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: vagrant\nnetwork: {{subnet: {subnet}}}\n\
         defaults: {{memory_mb: 512, box: {TEST_BOX}}}\nnodes:\n  - {{name: n1}}\n"
    )
}

/// The pool's volumes of [`TEST_BOX`].
fn box_volumes() -> Vec<String> {
    let volumes = virsh(&["vol-list", "default"]);
    let prefix = format!("{}_vagrant_box_image_", TEST_BOX.replace('/', "-VAGRANTSLASH-"));
    volumes
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| v.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Adds the cached zerolab box as [`TEST_BOX`] with none of its volume in the pool.
fn fresh_test_box() {
    let cache = std::env::var_os("ZEROLAB_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/zerolab"));
    let key = fs::read_to_string(cache.join("boxes/zerolab-debian12.key")).expect("vagrant/build-box ran");
    let file = cache.join(format!("boxes/debian12-{}.box", key.trim()));
    for volume in box_volumes() {
        virsh(&["vol-delete", "--pool", "default", &volume]);
    }
    let added = Command::new("vagrant")
        .args(["box", "add", "--force", "--name", TEST_BOX])
        .arg(&file)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
}

fn remove_test_box() {
    let _ = Command::new("vagrant").args(["box", "remove", "--force", TEST_BOX]).output();
    for volume in box_volumes() {
        virsh(&["vol-delete", "--pool", "default", &volume]);
    }
}

#[test]
fn two_labs_at_once_share_one_box_upload_and_a_taken_subnet_is_refused() {
    let Some(_turn) = prerequisites("two vagrant labs at once") else {
        return;
    };
    fresh_test_box();
    let a = VmLab::new("vga", &cluster("vga", "10.78.32.0/24"));
    let b = VmLab::new("vgb", &cluster("vgb", "10.78.33.0/24"));
    let spawn = |lab: &VmLab| lab.command(&["up"], &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (up_a, up_b) = (spawn(&a), spawn(&b));
    for (lab, child) in [(&a, up_a), (&b, up_b)] {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "lab {}: {stdout}{}", lab.name, String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains(&format!("lab {}: 1 of 1 nodes ready", lab.name)), "{stdout}");
    }
    assert_eq!(box_volumes().len(), 1, "the box's base volume was uploaded once: {:?}", box_volumes());

    // A third lab on vga's subnet: refused before anything is made; vga is untouched.
    let c = VmLab::new("vgc", &cluster("vgc", "10.78.32.0/24"));
    let refused = c.zerolab(&["up"], &[]);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("subnet 10.78.32.0/24 is already used by zv-vga-"), "{refused:#?}");
    assert_eq!(refused.stderr.lines().count(), 1, "one line: {refused:#?}");
    assert_eq!(leftovers("zl-vgc_", "zv-vgc-"), Vec::<String>::new());
    assert_eq!(c.shim_calls(), "", "refused before Vagrant ran");
    let status = a.zerolab(&["status"], &[]);
    assert!(status.stdout.lines().any(|l| l.starts_with("n1") && l.contains(" ready ")), "{status:#?}");

    for lab in [&a, &b] {
        let down = lab.zerolab(&["down"], &[]);
        assert_eq!(down.code, 0, "{down:#?}");
    }
    assert_eq!(leftovers("zl-vga_", "zv-vga-"), Vec::<String>::new());
    assert_eq!(leftovers("zl-vgb_", "zv-vgb-"), Vec::<String>::new());
    remove_test_box();
}
