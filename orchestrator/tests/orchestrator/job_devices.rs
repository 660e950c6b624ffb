//! `zerolab run` with every kind of device, for real on a 3-node `netns` lab: stdin
//! fetched by each node's agent from an HTTP server on the host's bridge address
//! (checked against its sha256, fetched once per node however often the job runs),
//! `input` from a file already on each node, `output` brought back to a local file per
//! instance, and a program taken out of a local tar `image` with its stdout written to a
//! node file. Checksums that do not match fail: a local one before anything runs, a
//! URL's on the node, naming the device. Needs root, gcc, tar and a built agent.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::harness::{prerequisites, zvm_gcc, LabHarness, Subnet};

/// Serves `body` at any path on `address` (a port of its choosing) until the test ends,
/// a second late for a path under `/slow/`; counts requests.
fn serve(address: &str, body: Vec<u8>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((address, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            counted.fetch_add(1, Ordering::SeqCst);
            if String::from_utf8_lossy(&head).split_whitespace().nth(1).is_some_and(|p| p.starts_with("/slow/")) {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (port, hits)
}

fn sha256(bytes: &[u8]) -> String {
    zerolab_agent_api::Sha256::of_bytes(bytes).to_string()
}

/// The node column of `instance`'s row in `run`'s summary.
fn node_of(stdout: &str, instance: &str) -> String {
    let row = stdout.lines().find(|l| l.starts_with(&format!("{instance} "))).unwrap_or_else(|| panic!("{stdout}"));
    row.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn run_with_url_node_local_and_image_devices() {
    let Some(agent) = prerequisites("zerolab run with devices") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Devices, agent);
    let source = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../node-agent/tests/guests/devices.c"));
    zvm_gcc(source, &lab.path("devices"));
    fs::create_dir_all(lab.path("image/bin")).unwrap();
    fs::copy(lab.path("devices"), lab.path("image/bin/devices")).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("cf")
        .arg(lab.path("image.tar"))
        .arg("-C")
        .arg(lab.path("image"))
        .arg("bin")
        .status();
    assert!(tar.unwrap().success());
    let image_size = fs::metadata(lab.path("image.tar")).unwrap().len();

    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);
    let whoami = lab.zerolab(&["exec"], &["--", "sh", "-c", "hostname > /var/lib/zerolab/whoami"]);
    assert_eq!(whoami.code, 0, "{whoami:#?}");
    let data = b"served by the host\n".repeat(5000);
    let (port, hits) = serve(&Subnet::Devices.address(1), data.clone());
    let url = format!("http://{}:{port}/data.txt", Subnet::Devices.address(1));
    let job = |name: &str, stdin_sha: &str| {
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Job\nname: {name}\ngroups:\n\
             \x20 - name: fetch\n    count: 3\n    program: devices\n    devices:\n\
             \x20     stdin: {{path: '{url}', sha256: {stdin_sha}}}\n\
             \x20     input: node:/var/lib/zerolab/whoami\n\
             \x20     output: out/*.txt\n\
             \x20 - name: boxed\n    program: image:bin/devices\n    placement: {{nodes: node-2}}\n    devices:\n\
             \x20     image: image.tar\n\
             \x20     stdout: node:/var/lib/zerolab/boxed.txt\n"
        );
        let path = lab.path(&format!("{name}.yaml"));
        fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = job("devices", &sha256(&data));
    fs::create_dir_all(lab.path("out")).unwrap();

    for round in 1..=2 {
        let run = lab.zerolab(&["run"], &[&good]);
        assert_eq!(run.code, 0, "{run:#?}");
        for i in 1..=3 {
            let instance = format!("fetch-{i}");
            let node = node_of(&run.stdout, &instance);
            let output = fs::read_to_string(lab.path(&format!("out/{instance}.txt"))).unwrap();
            assert_eq!(output, format!("{node}\n"), "{instance}'s input is its node's file");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3, "round {round}: one fetch per node, then none");
        let boxed = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "cat", "/var/lib/zerolab/boxed.txt"]);
        assert_eq!(boxed.code, 0, "{boxed:#?}");
        assert!(boxed.stdout.contains(&format!("image {image_size}")), "{boxed:#?}");
    }
    let results = lab.lab().dir().join("jobs");
    let latest = fs::read_dir(&results).unwrap().map(|e| e.unwrap().path()).max().unwrap();
    assert_eq!(fs::read(latest.join("fetch-2/stdout")).unwrap(), data, "stdout from the URL, collected");
    assert!(latest.join("fetch-2/output").is_file());
    assert!(!latest.join("boxed/stdout").exists(), "a node stdout is not collected");

    // An instance whose agent is still fetching its input is pending, then runs.
    let slow = lab.path("slow.yaml");
    fs::write(
        &slow,
        format!(
            "apiVersion: zerolab/v1\nkind: Job\nname: slow\ngroups:\n\
             \x20 - {{name: a, program: devices, devices: {{stdin: 'http://{host}:{port}/slow/data.txt'}}}}\n",
            host = Subnet::Devices.address(1)
        ),
    )
    .unwrap();
    let run = lab.zerolab(&["run"], &[slow.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");
    let progress: Vec<&str> = run.stdout.lines().take_while(|l| !l.starts_with("INSTANCE")).collect();
    assert_eq!(progress.first(), Some(&"1 pending, 0 running, 0 done, 0 failed"), "{run:#?}");
    assert_eq!(progress.last(), Some(&"0 pending, 0 running, 1 done, 0 failed"), "{run:#?}");

    // A URL that is not what its checksum says fails on the node, naming the device.
    let wrong = job("wrongsum", &"0".repeat(64));
    let run = lab.zerolab(&["run"], &[&wrong]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains(&format!("device stdin: {url} has sha256")), "{run:#?}");

    // A local input that is not what its checksum says: refused before anything runs.
    fs::write(lab.path("local.txt"), "local\n").unwrap();
    let local = lab.path("local.yaml");
    fs::write(
        &local,
        format!(
            "apiVersion: zerolab/v1\nkind: Job\nname: local\ngroups:\n\
             \x20 - {{name: a, program: devices, devices: {{stdin: {{path: local.txt, sha256: '{}'}}}}}}\n",
            "1".repeat(64)
        ),
    )
    .unwrap();
    let before = fs::read_dir(&results).unwrap().count();
    let run = lab.zerolab(&["run"], &[local.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{run:#?}");
    let expected = format!(
        "zerolab: instance a: device stdin: {} has sha256 {}",
        lab.path("local.txt").display(),
        sha256(b"local\n")
    );
    assert!(run.stderr.starts_with(&expected), "{run:#?}");
    assert_eq!(fs::read_dir(&results).unwrap().count(), before, "no run was recorded");
}
