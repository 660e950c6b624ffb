//! `provision:` steps run by `zerolab up` on a real 3-node `netns` lab: `after` ordering
//! (the joins read node-1's bootstrap marker over the network, no sleep), files uploaded
//! with their mode, idempotence (a second `up` runs nothing but `always`, a changed step
//! runs again, `--reprovision STEP`), the records and logs, `status`'s counts, a failing
//! step's message and exit code, and `ready` retried until it passes or its deadline.
//! Files go under `/var/lib`, which is private per netns node (an overlay).

use std::fs;

use crate::harness::{prerequisites, LabHarness, Run, Subnet};

/// The lab's example file with `steps` as its `provision:` list.
fn write_steps(lab: &LabHarness, steps: &str) {
    let text = format!("{}provision:\n{steps}", Subnet::example(lab_subnet(lab)));
    fs::write(&lab.file, text).unwrap();
}

fn lab_subnet(lab: &LabHarness) -> Subnet {
    *Subnet::ALL.iter().find(|s| s.name() == lab.cluster.name()).unwrap()
}

fn lines(run: &Run, prefix: &str) -> usize {
    run.stdout.lines().filter(|l| l.starts_with(prefix)).count()
}

fn ordered_steps(subnet: Subnet, join_version: &str) -> String {
    let server = subnet.address(2);
    format!(
        r#"  - name: bootstrap
    nodes: node-1
    script: |
      mkdir -p /var/lib/pv
      echo bootstrapped > /var/lib/pv/marker
      setsid -f timeout 300 /usr/bin/python3 -m http.server 8199 --bind {server} --directory /var/lib/pv </dev/null >/dev/null 2>&1
    ready: /usr/bin/python3 -c "import urllib.request; urllib.request.urlopen('http://{server}:8199/marker')"
    timeout: 30
  - name: conf
    files:
      - {{src: app.conf, dest: /var/lib/pv/conf/app.conf, mode: 0640}}
  - name: join
    nodes: node-2,node-3
    after: [bootstrap]
    script: |
      # {join_version}
      mkdir -p /var/lib/pv
      /usr/bin/python3 -c "import urllib.request; print(urllib.request.urlopen('http://{server}:8199/marker').read().decode().strip())" > /var/lib/pv/joined
  - name: stamp
    always: true
    script: mkdir -p /var/lib/pv && echo x >> /var/lib/pv/stamps
"#
    )
}

#[test]
fn steps_run_in_order_once_and_again_when_changed() {
    let Some(agent) = prerequisites("provision") else {
        return;
    };
    let subnet = Subnet::ProvisionOrder;
    let lab = LabHarness::new(subnet, agent);
    fs::write(lab.path("app.conf"), "answer=42\n").unwrap();
    write_steps(&lab, &ordered_steps(subnet, "v1"));

    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(lines(&run, "step bootstrap on node-1: ran"), 1, "{run:#?}");
    for node in ["node-1", "node-2", "node-3"] {
        assert_eq!(lines(&run, &format!("step conf on {node}: ran")), 1, "{run:#?}");
    }
    assert_eq!(lines(&run, "step join on node-"), 2, "{run:#?}");
    // The joins ran after the bootstrap had finished and was ready: they read its marker.
    let seen = lab.zerolab(&["exec"], &["--nodes", "node-2,node-3", "--", "cat /var/lib/pv/joined"]);
    assert_eq!(seen.code, 0, "{seen:#?}");
    assert_eq!(seen.stdout.matches(": bootstrapped").count(), 2, "{seen:#?}");
    let mode = lab.zerolab(&["exec"], &["--", "stat -c %a /var/lib/pv/conf/app.conf; cat /var/lib/pv/conf/app.conf"]);
    assert_eq!(mode.stdout.matches(": 640").count(), 3, "{mode:#?}");
    assert_eq!(mode.stdout.matches(": answer=42").count(), 3, "{mode:#?}");
    let dir = lab.lab().dir().join("provision");
    assert!(dir.join("node-2/join.json").is_file() && dir.join("node-1/bootstrap.log").is_file());
    assert!(!dir.join("node-1/join.json").exists(), "join is not node-1's");

    // Again: nothing changed, only `always` runs.
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(lines(&run, "step bootstrap on node-1: unchanged"), 1, "{run:#?}");
    assert_eq!(run.stdout.matches(": unchanged").count(), 6, "{run:#?}");
    assert_eq!(run.stdout.matches("step stamp on ").count(), 3, "{run:#?}");
    assert_eq!(lines(&run, "step stamp on node-1: ran"), 1, "{run:#?}");
    let stamps = lab.zerolab(&["exec"], &["--nodes", "node-3", "--", "wc -l < /var/lib/pv/stamps"]);
    assert_eq!(stamps.stdout.lines().next(), Some("node-3: 2"), "{stamps:#?}");

    // The join changed: it runs again, on its nodes only.
    write_steps(&lab, &ordered_steps(subnet, "v2"));
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(lines(&run, "step join on node-2: ran"), 1, "{run:#?}");
    assert_eq!(lines(&run, "step join on node-3: ran"), 1, "{run:#?}");
    assert_eq!(lines(&run, "step bootstrap on node-1: unchanged"), 1, "{run:#?}");

    // Asked for: one step again everywhere, the others left alone.
    let run = lab.zerolab(&["up"], &["--reprovision", "conf"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("step conf on ").count(), 3, "{run:#?}");
    assert_eq!(lines(&run, "step conf on node-2: ran"), 1, "{run:#?}");
    assert_eq!(lines(&run, "step join on node-2: unchanged"), 1, "{run:#?}");
    let run = lab.zerolab(&["up"], &["--reprovision", "nope"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains("no provisioning step named `nope`; expected one of: bootstrap, conf, join, stamp"),
        "{run:#?}"
    );

    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.code, 0, "{status:#?}");
    let row = |step: &str| {
        status
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(step))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("bootstrap"), ["bootstrap", "1", "0", "0"], "{status:#?}");
    assert_eq!(row("join"), ["join", "2", "0", "0"], "{status:#?}");
    let json = lab.zerolab(&["status"], &["-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["steps"][2], serde_json::json!({"step": "join", "done": 2, "failed": 0, "pending": 0}), "{json:#?}");
}

#[test]
fn a_failed_step_stops_up_and_ready_is_retried_to_its_deadline() {
    let Some(agent) = prerequisites("provision") else {
        return;
    };
    let lab = LabHarness::new(Subnet::ProvisionFail, agent);
    write_steps(
        &lab,
        "  - {name: first, script: 'echo one'}\n  \
         - {name: broken, nodes: node-2, script: 'echo starting; echo the-last-words >&2; exit 3'}\n  \
         - {name: never, script: 'touch /var/lib/never'}\n",
    );
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("step broken on node-2: failed: exit status 3"), "{run:#?}");
    assert!(
        run.stderr.contains("zerolab: step `broken` failed on node-2: exit status 3; later steps did not run"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("  | starting\n  | the-last-words\n"), "{run:#?}");
    assert!(!run.stdout.contains("step never"), "{run:#?}");
    let dir = lab.lab().dir().join("provision");
    assert_eq!(fs::read_to_string(dir.join("node-2/broken.log")).unwrap(), "starting\nthe-last-words\n");
    assert!(!dir.join("node-1/never.json").exists());
    // The nodes stay ready; status counts the step failed and the next pending.
    let status = lab.zerolab(&["status"], &[]);
    assert_eq!(status.code, 0, "{status:#?}");
    assert!(
        status.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["broken", "0", "1", "0"]),
        "{status:#?}"
    );
    assert!(
        status.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["never", "0", "0", "3"]),
        "{status:#?}"
    );

    // A readiness check that passes on a later try, then one that never does.
    write_steps(
        &lab,
        "  - name: slow\n    nodes: node-1\n    script: date +%s%N > /var/lib/t0\n    \
         ready: '[ $(( $(date +%s%N) - $(cat /var/lib/t0) )) -gt 700000000 ]'\n    timeout: 20\n  \
         - {name: deadline, nodes: node-3, script: 'true', ready: 'test -e /var/lib/nope', timeout: 2}\n",
    );
    let started = std::time::Instant::now();
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("step slow on node-1: ran"), "{run:#?}");
    assert!(
        run.stderr
            .contains("step `deadline` failed on node-3: ready check `test -e /var/lib/nope` did not pass within 2s"),
        "{run:#?}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let log = fs::read_to_string(dir.join("node-1/slow.log")).unwrap();
    assert!(log.contains("ready check: exit status 1"), "retried: {log}");
}

#[test]
fn the_galera_example_reads_with_its_files() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/galera/cluster.yaml");
    let cluster = zerolab::cluster::from_path(file).unwrap();
    let steps: Vec<(&str, usize)> = cluster.provision().iter().map(|s| (s.name.as_str(), s.nodes.len())).collect();
    assert_eq!(steps, [("galera-config", 3), ("bootstrap", 1), ("join", 2), ("cluster-size", 1)]);
    let zerolab::cluster::provision::Action::Script(script) = &cluster.provision()[1].action else { panic!() };
    assert!(script.contains("galera_new_cluster"));
}
