//! The commands: `workshop up` (warm pool, portal), `status`, the `serve` process
//! killed with SIGKILL and `up` again (attendees keep labs and tokens), `down` leaving
//! nothing (namespace, link, owner record, process, rule, file).

use std::process::Command;
use std::time::Duration;

use zerolab::workshop::{Options, Workshop};

use crate::harness::{prerequisites, Case, Harness};

fn zerolab(h: &Harness, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["workshop"])
        .args(args)
        .arg(&h.file)
        .arg("--lab-root")
        .arg(h.root())
        .args(if args == ["up"] { vec!["--agent".to_owned(), h.agent.display().to_string()] } else { vec![] })
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

/// Everything of workshop `name` this machine holds, one line each.
fn leftovers(name: &str, dir: &std::path::Path) -> Vec<String> {
    let mut left = Vec::new();
    let out = |cmd: &[&str]| String::from_utf8(Command::new(cmd[0]).args(&cmd[1..]).output().unwrap().stdout).unwrap();
    let prefix = format!("zl-{name}-");
    left.extend(out(&["ip", "netns", "list"]).lines().filter(|l| l.starts_with(&prefix)).map(String::from));
    let short = format!("zl{name}-");
    left.extend(
        out(&["ip", "-o", "link"]).lines().filter(|l| l.contains(&prefix) || l.contains(&short)).map(String::from),
    );
    for table in ["nat", "filter"] {
        let tag = format!("zerolab:ws:{name}");
        left.extend(out(&["iptables", "-t", table, "-S"]).lines().filter(|l| l.contains(&tag)).map(String::from));
    }
    for kind in ["netns", "link"] {
        for entry in std::fs::read_dir(format!("/run/zerolab/owners/{kind}")).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&prefix) || file.starts_with(&short) {
                left.push(format!("owner record {file}"));
            }
        }
    }
    let dir = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&dir) && !cmdline.contains("cargo") {
                left.push(format!("process {}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    if std::path::Path::new(&dir).exists() {
        left.push(format!("directory {dir}"));
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_survives_a_killed_serve_and_down_leaves_nothing() {
    let Some(agent) = prerequisites("workshop commands") else { return };
    let h = Harness::new(Case::Commands, agent, "capacity: 3\npool: {warm: 2, reserve: 1}\n", "  - {title: One}\n");
    let (code, stdout, stderr) = zerolab(&h, &["up"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("lab wc4-001 ready") && stdout.contains("lab wc4-002 ready"), "{stdout}");
    assert!(stdout.contains(&format!("instructor password: {}", h.workshop_dir().join("instructor.txt").display())));
    assert!(stdout.contains("workshop wc4: 2 labs ready"), "{stdout}");
    let password = std::fs::read_to_string(h.workshop_dir().join("instructor.txt")).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(h.workshop_dir().join("instructor.txt")).unwrap().mode() & 0o777, 0o600);
    }

    // serve killed mid-event; Ann joins meanwhile (through the state it left).
    let pid: i32 = std::fs::read_to_string(h.workshop_dir().join("serve.pid")).unwrap().trim().parse().unwrap();
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    let options = Options::new(h.agent.clone(), env!("CARGO_BIN_EXE_zerolab").into());
    let offline = Workshop::open(h.parsed(), h.workshop_dir(), options.clone()).unwrap();
    let ann = offline.join("sesame", "Ann").await.unwrap();
    let lab = offline.view(&ann.token).await.unwrap().lab.unwrap().name;
    drop(offline);

    let (code, stdout, stderr) = zerolab(&h, &["up"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("portal started"), "{stdout}");
    let (code, status, _) = zerolab(&h, &["status"]);
    assert_eq!(code, 0);
    assert!(status.lines().any(|l| l.starts_with("1 Ann") && l.contains(&lab) && l.contains("ready")), "{status}");
    assert!(status.contains("portal running"), "{status}");
    let again = Workshop::open(h.parsed(), h.workshop_dir(), options).unwrap();
    assert_eq!(again.view(&ann.token).await.unwrap().lab.unwrap().name, lab, "same token, same lab");
    assert!(again.instructor_login(password.trim()) && !again.instructor_login("guess"));
    drop(again);

    let (code, stdout, stderr) = zerolab(&h, &["down"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert_eq!(leftovers("wc4", &h.workshop_dir()), Vec::<String>::new());
    let (code, _, stderr) = zerolab(&h, &["down"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "down again: nothing to do");
}
