//! A lab is one lab wherever it is used from: its state lives in one directory per user
//! (not in the working directory), the hosts it makes are recorded as its own and never
//! touched by another lab directory, its namespaces and links carry its name, `up`
//! follows a cluster file that gained or lost nodes, and `zerolab labs` lists the labs.
//! The lab tests need root (see `main.rs`); the default-root ones do not.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::harness::{prerequisites, status_rows, LabHarness, Run, Subnet};
use zerolab::provider::netns::{Legacy, Names};

/// `zerolab ARGS...` run in `cwd` with `env` set (and `ZEROLAB_HOME`, `XDG_STATE_HOME`
/// removed unless given), so the default lab root is what the test says.
fn zerolab_with(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zerolab"));
    command.args(args).current_dir(cwd).env_remove("ZEROLAB_HOME").env_remove("XDG_STATE_HOME");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run zerolab");
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn namespaces() -> String {
    String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap()
}

fn link_exists(link: &str) -> bool {
    Path::new("/sys/class/net").join(link).exists()
}

#[test]
fn the_default_lab_root_is_one_per_user_not_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, state, labs) = (tmp.path().join("home"), tmp.path().join("state"), tmp.path().join("labs"));
    let run = zerolab_with(tmp.path(), &[("HOME", &home)], &["labs"]);
    run.expect(0, &format!("no labs under {}/.local/state/zerolab/labs\n", home.display()), "");
    let run = zerolab_with(tmp.path(), &[("HOME", &home), ("XDG_STATE_HOME", &state)], &["labs"]);
    run.expect(0, &format!("no labs under {}/zerolab/labs\n", state.display()), "");
    let run =
        zerolab_with(tmp.path(), &[("HOME", &home), ("XDG_STATE_HOME", &state), ("ZEROLAB_HOME", &labs)], &["labs"]);
    run.expect(0, &format!("no labs under {}\n", labs.display()), "");
    let other = tmp.path().join("other");
    let run = zerolab_with(tmp.path(), &[("ZEROLAB_HOME", &labs)], &["labs", "--lab-root", other.to_str().unwrap()]);
    run.expect(0, &format!("no labs under {}\n", other.display()), "");
}

#[test]
fn a_lab_left_in_the_old_working_directory_root_is_pointed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lab.yaml");
    fs::write(&file, Subnet::LabsLegacy.example()).unwrap();
    let old = tmp.path().join(".zerolab").join(Subnet::LabsLegacy.name());
    fs::create_dir_all(&old).unwrap();
    let labs = tmp.path().join("labs");
    let run = zerolab_with(tmp.path(), &[("ZEROLAB_HOME", &labs)], &["jobs", "lab.yaml"]);
    let hint = format!(
        "zerolab: note: lab {} is in {} (where labs were kept before); labs now live in {}: pass \
         `--lab-root .zerolab` to work on it there",
        Subnet::LabsLegacy.name(),
        old.display(),
        labs.display()
    );
    assert_eq!(run.stderr.lines().next(), Some(hint.as_str()), "{run:#?}");
    // Said only where it helps: not with --lab-root .zerolab.
    let run = zerolab_with(tmp.path(), &[("ZEROLAB_HOME", &labs)], &["jobs", "lab.yaml", "--lab-root", ".zerolab"]);
    assert!(!run.stderr.contains("note:"), "{run:#?}");
}

#[test]
fn one_lab_from_any_directory_and_no_other_lab_root_touches_it() {
    let Some(agent) = prerequisites("labs from two directories") else { return };
    let lab = LabHarness::new(Subnet::LabsAnywhere, agent);
    let name = Subnet::LabsAnywhere.name();
    let home: &Path = &lab.root();
    let (first, second) = (lab.dir().join("first"), lab.dir().join("second"));
    fs::create_dir_all(&first).unwrap();
    fs::create_dir_all(&second).unwrap();
    let file = lab.file.to_str().unwrap();
    let env = [("ZEROLAB_HOME", home)];

    // Up from one directory, with the file given relative to it.
    let run = zerolab_with(lab.dir(), &env, &["up", "lab.yaml", "--agent", lab.agent().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");
    let identity = lab.lab().identity().unwrap().expect("lab.json written by up");
    assert_eq!(identity.cluster_file.as_deref(), Some(lab.file.as_path()));
    assert_eq!((identity.name.as_str(), identity.provider.as_str(), identity.id.len()), (name.as_str(), "netns", 16));

    // Names carry the lab's name; links its full name as their alias.
    let names = Names::new(&name);
    assert!(namespaces().lines().any(|l| l.starts_with(&format!("zl-{name}-node-1"))), "{}", namespaces());
    assert!(names.bridge().starts_with(&format!("zl-{name}-")));
    let alias = fs::read_to_string(Path::new("/sys/class/net").join(names.bridge()).join("ifalias")).unwrap();
    assert_eq!(alias.trim(), format!("zerolab lab {name}"));
    let alias = fs::read_to_string(Path::new("/sys/class/net").join(names.veth("node-2")).join("ifalias")).unwrap();
    assert_eq!(alias.trim(), format!("zerolab lab {name} node node-2"));

    // From other directories it is the same lab: status, exec.
    for cwd in [&first, &second] {
        let rows = status_rows(&zerolab_with(cwd, &env, &["status", file]));
        assert_eq!(rows.iter().filter(|(_, state, _)| state == "ready").count(), 3, "{rows:?}");
    }
    let run = zerolab_with(&second, &env, &["exec", file, "--", "hostname"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("node-3: node-3"), "{run:#?}");

    // `labs` lists it, with its file and keeper, from anywhere.
    let run = zerolab_with(&first, &env, &["labs"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let row: Vec<&str> = run.stdout.lines().nth(1).expect("a row").split_whitespace().collect();
    assert_eq!(row, [name.as_str(), "netns", "3/3", "up", "running", "0", file], "{run:#?}");

    // Another cluster file with the same lab name: refused at once, naming the first.
    let copy = second.join("lab.yaml");
    fs::copy(&lab.file, &copy).unwrap();
    let started = Instant::now();
    let run = zerolab_with(&second, &env, &["up", "lab.yaml", "--agent", lab.agent().to_str().unwrap()]);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    run.expect(
        2,
        "",
        &format!(
            "zerolab: lab {name} is up from {file}; run `zerolab down {file}` first, or give this lab another name\n"
        ),
    );

    // `down` with a second lab root never touches the lab's hosts, and names their owner.
    let other_root = lab.dir().join("elsewhere");
    let run = zerolab_with(&second, &env, &["down", file, "--lab-root", other_root.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:#?}");
    let owner = lab.lab().dir().display().to_string();
    assert!(run.stderr.contains(&format!("belongs to lab {name} in {owner}, not to ")), "{run:#?}");
    let take_down = format!("(take it down with `zerolab down {file} --lab-root {}`)", home.display());
    assert!(run.stderr.contains(&take_down), "{run:#?}");
    // `up` there too.
    let agent = lab.agent().to_str().unwrap();
    let run = zerolab_with(&second, &env, &["up", file, "--lab-root", other_root.to_str().unwrap(), "--agent", agent]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains(&format!("belongs to lab {name} in {owner}")), "{run:#?}");
    assert!(!other_root.join(&name).exists(), "nothing made for the refused up");
    // `status` there says whose the hosts are, instead of a lab that is down.
    let run = zerolab_with(&second, &env, &["status", file, "--lab-root", other_root.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains(&format!("belongs to lab {name} in {owner}")), "{run:#?}");
    let rows = status_rows(&zerolab_with(&first, &env, &["status", file]));
    assert_eq!(rows.iter().filter(|(_, state, _)| state == "ready").count(), 3, "{rows:?}");

    // `down` from another directory takes the real lab down: hosts and directory.
    let run = zerolab_with(&second, &env, &["down", file]);
    assert_eq!((run.code, run.stdout.as_str()), (0, format!("lab {name}: down\n").as_str()), "{run:#?}");
    assert!(!namespaces().contains(&format!("zl-{name}-")), "{}", namespaces());
    assert!(!link_exists(&names.bridge()));
    assert!(!lab.lab().exists());
    assert!(zerolab::lab::Owners::machine().owned_by("netns", lab.lab().dir()).is_empty());
}

#[test]
fn up_follows_a_cluster_file_that_gained_and_lost_a_node() {
    let Some(agent) = prerequisites("reconcile") else { return };
    let lab = LabHarness::new(Subnet::LabsReconcile, agent);
    let name = Subnet::LabsReconcile.name();
    let text = fs::read_to_string(&lab.file).unwrap();
    fs::write(&lab.file, text.replace("count: 3", "count: 2")).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(status_rows(&lab.zerolab(&["status"], &[])).len(), 2);

    // A node added: made and provisioned, not waited for as a host that never comes.
    fs::write(&lab.file, &text).unwrap();
    let started = Instant::now();
    let run = lab.zerolab(&["up"], &[]);
    let took = started.elapsed();
    eprintln!("up adding a node: {took:?}");
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().next(), Some(format!("lab {name}: adding node-3").as_str()), "{run:#?}");
    assert!(took.as_secs() < 10, "{took:?}");
    let rows = status_rows(&lab.zerolab(&["status"], &[]));
    assert_eq!(rows.iter().filter(|(_, state, _)| state == "ready").count(), 3, "{rows:?}");
    // The lab's keeper (running since the first up) reaches the new node too.
    let run = lab.zerolab(&["exec"], &["--", "hostname"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("node-3: node-3"), "{run:#?}");

    // A node removed: its namespace, link, records and files go; the others stay.
    let names = Names::new(&name);
    let kept = fs::metadata(Path::new("/run/netns").join(names.namespace("node-1"))).unwrap();
    fs::write(&lab.file, text.replace("count: 3", "count: 2")).unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().next(), Some(format!("lab {name}: removing node-3").as_str()), "{run:#?}");
    assert!(!Path::new("/run/netns").join(names.namespace("node-3")).exists());
    assert!(!link_exists(&names.veth("node-3")));
    assert!(!lab.lab().nodes_dir().join("node-3").exists());
    assert!(!lab.lab().load_state().unwrap().nodes.contains_key("node-3"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(Path::new("/run/netns").join(names.namespace("node-1"))).unwrap().ino(), kept.ino());
    assert_eq!(status_rows(&lab.zerolab(&["status"], &[])).len(), 2);

    // A node's address changed (another subnet): refused before anything changes.
    let (was, now) = (format!("10.77.{}.", Subnet::LabsReconcile.x()), "10.77.159.");
    fs::write(&lab.file, text.replace("count: 3", "count: 2").replace(&format!("{was}0/24"), &format!("{now}0/24")))
        .unwrap();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("node node-1: its address is {now}2 in the cluster file but {was}2 in the lab")),
        "{run:#?}"
    );
    assert_eq!(fs::metadata(Path::new("/run/netns").join(names.namespace("node-1"))).unwrap().ino(), kept.ino());
    fs::write(&lab.file, text.replace("count: 3", "count: 2")).unwrap();

    // The hosts gone but the records kept (a reboot): `labs` says stale.
    assert!(Command::new("ip").args(["link", "del", &names.bridge()]).status().unwrap().success());
    let root = lab.root();
    let run = crate::harness::zerolab_in(lab.dir(), &["labs", "--lab-root", root.to_str().unwrap()]);
    let row: Vec<&str> = run.stdout.lines().nth(1).expect("a row").split_whitespace().collect();
    assert_eq!(&row[..4], [name.as_str(), "netns", "2/2", "stale"], "{run:#?}");
}

#[test]
fn a_lab_with_the_previous_builds_names_is_taken_down_and_up_says_what_to_run() {
    let Some(agent) = prerequisites("legacy names") else { return };
    let lab = LabHarness::new(Subnet::LabsLegacy, agent);
    let name = Subnet::LabsLegacy.name();
    let old = Legacy::new(&name);
    let (bridge, namespace) = (old.bridge(), format!("{}-node-1", &old.bridge()[..8]));
    assert!(old.is_namespace(&namespace));
    // What the previous build left: its lab directory (no lab.json), bridge and namespace.
    fs::create_dir_all(lab.lab().dir()).unwrap();
    let ok = |args: &[&str]| assert!(Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
    ok(&["link", "add", &bridge, "type", "bridge"]);
    ok(&["netns", "add", &namespace]);

    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(&format!("lab `{name}` was made by an older zerolab (bridge {bridge}); take it down")),
        "{run:#?}"
    );
    let run = lab.zerolab(&["down"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(!link_exists(&bridge));
    assert!(!namespaces().contains(&namespace), "{}", namespaces());
}
