//! Warm terminals over the real portal: a terminal opened right after joining is the
//! lab's warm one (the service's counts say so) and reaches that attendee's own node,
//! never another's; a second tab connects afresh; after a reset the terminal reaches the
//! new lab; a warm terminal whose connection died is not handed out; a shelved lab's
//! terminal works after unshelve; after `down` no connection or sshd is left.

use std::time::{Duration, Instant};

use zerolab::workshop::warm::TerminalCounts;

use crate::harness::{prerequisites, Http, Term, WorkshopHarness};

/// The address the shell of `term` reports (the node's first global IPv4 address).
async fn address_of(term: &mut Term) -> String {
    // The answer's `end2` is not in the typed line the terminal echoes.
    term.send("echo addr=$(ip -4 -o addr show scope global | awk '{print $4}' | head -n1) end$((1+1))\r").await;
    assert!(term.until("end2", Duration::from_secs(20)).await, "no answer: {}", term.screen);
    let line =
        term.screen.lines().filter_map(|l| l.find("addr=").map(|at| l[at..].trim_end())).find(|l| l.ends_with("end2"));
    let line = line.expect("the answer line");
    line.trim_start_matches("addr=").split('/').next().unwrap().to_owned()
}

/// Opens the terminal of `token` and waits for its prompt.
async fn open(workshop: &WorkshopHarness, token: &str) -> Term {
    let mut term =
        Term::open(workshop.address(), &format!("zl_attendee={token}"), &workshop.url).await.expect("terminal");
    assert!(term.until("#", Duration::from_secs(20)).await, "no prompt: {:?}", term.screen);
    term
}

/// The pids of the processes in network namespace `ns`.
fn pids_in(ns: &str) -> Vec<u32> {
    let out = std::process::Command::new("ip").args(["netns", "pids", ns]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// Whether process `pid` exists and is not a zombie.
fn running(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

/// This process's established TCP connections to port 22 in 10.230.0.0/16 (the labs'
/// keepers, other processes, hold their own).
fn ssh_connections() -> usize {
    let ours: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // rem_address is little-endian hex: 10.230.x.y is ..E60A, port 22 is 0016; 01 = ESTABLISHED.
            fields.get(2).is_some_and(|remote| remote.ends_with("E60A:0016"))
                && fields.get(3) == Some(&"01")
                && fields.get(9).is_some_and(|inode| ours.contains(*inode))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminals_are_warm_per_lab_and_never_another_attendees() {
    let Some(agent) = prerequisites("portal warm terminals") else { return };
    let started = Instant::now();
    let workshop = WorkshopHarness::up(agent, "wjoin1", "10.230.0.0/17", 18399, "24900-24909", 2).await;
    let ws = workshop.workshop.clone();
    let http = Http::new(&workshop.url);
    // Each warm lab holds one connection, made with the lab.
    assert_eq!(ssh_connections(), 2);

    // Two attendees, each with a lab and its warm terminal.
    let a = http.join(&workshop.code, "Ada").await.expect("Ada joins");
    let b = http.join(&workshop.code, "Bob").await.expect("Bob joins");
    let node_a = ws.terminal(&a, None).await.unwrap();
    let node_b = ws.terminal(&b, None).await.unwrap();
    assert_ne!(node_a.address, node_b.address);

    // Bob's warm terminal killed on his node (its sshd session and shell) while Ada's is
    // still there to take: his is noticed, not handed out, Ada's not given to him; his
    // terminal reaches his node, warm again (replaced) or made when asked.
    let ns_b = format!("zl-{}-{}", http.lab(&b).await, node_b.node);
    for pid in pids_in(&ns_b) {
        let line = cmdline(pid);
        // Only his warm terminal has a pty (the keeper's connection has none).
        if line.starts_with("sshd: root@pts") || line.starts_with("-bash") {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut term_b = open(&workshop, &b).await;
    assert_eq!(address_of(&mut term_b).await, node_b.address, "Bob's terminal reached another node");
    let after_b = ws.terminal_counts();
    assert_eq!(after_b.warm + after_b.cold, 1, "{after_b:?}");

    // Ada's terminal, right after joining: her lab's warm one, to her node.
    let mut term_a = open(&workshop, &a).await;
    assert_eq!(address_of(&mut term_a).await, node_a.address);
    assert_eq!(ws.terminal_counts(), TerminalCounts { warm: after_b.warm + 1, ..after_b });
    let after_a = ws.terminal_counts();

    // A second tab of Ada's connects afresh, to her node.
    let mut second = open(&workshop, &a).await;
    assert_eq!(address_of(&mut second).await, node_a.address);
    assert_eq!(ws.terminal_counts(), TerminalCounts { cold: after_a.cold + 1, ..after_a });
    drop(second);

    // Reset: her open terminal is closed, the next one is the new lab's warm terminal.
    let id_a = ws.view(&a).await.unwrap().id;
    let old_lab = http.lab(&a).await;
    ws.reset(id_a).await.unwrap();
    // Its old terminal ends: told so, or closed as the old node goes.
    let waited = Instant::now();
    let told = term_a.until("no longer yours", Duration::from_secs(10)).await;
    assert!(told || waited.elapsed() < Duration::from_secs(10), "the old terminal still open: {}", term_a.screen);
    let deadline = Instant::now() + Duration::from_secs(90);
    let new_node = loop {
        if let Ok(node) = ws.terminal(&a, None).await {
            break node;
        }
        assert!(Instant::now() < deadline, "no new lab for Ada after 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(http.lab(&a).await, old_lab);
    assert_ne!(new_node.address, node_a.address);
    let before = ws.terminal_counts();
    let mut term_a = open(&workshop, &a).await;
    assert_eq!(address_of(&mut term_a).await, new_node.address, "the terminal after a reset reached the old lab");
    assert_eq!(ws.terminal_counts(), TerminalCounts { warm: before.warm + 1, ..before });
    drop(term_a);

    // Shelved (its node frozen): the warm terminal is gone with it; after unshelve (the
    // terminal asks for it) the terminal works.
    let id_b = ws.view(&b).await.unwrap().id;
    drop(term_b);
    ws.shelve(id_b).await.unwrap();
    let before = ws.terminal_counts();
    let mut term_b = open(&workshop, &b).await;
    assert_eq!(address_of(&mut term_b).await, node_b.address);
    assert_eq!(ws.terminal_counts(), TerminalCounts { cold: before.cold + 1, ..before });
    drop(term_b);

    // Down: no connection from this process and no sshd of the labs left.
    let sshds: Vec<u32> = [ns_b, format!("zl-{}-{}", http.lab(&a).await, new_node.node)]
        .iter()
        .flat_map(|ns| pids_in(ns))
        .filter(|pid| cmdline(*pid).starts_with("sshd"))
        .collect();
    assert!(!sshds.is_empty());
    drop(workshop);
    assert_eq!(ssh_connections(), 0, "connections left after down");
    // `down` signals them; they take a moment to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sshds.iter().any(|pid| running(*pid)) {
        assert!(Instant::now() < deadline, "sshd processes left after down: {sshds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("portal warm terminals test: {:.1} s", started.elapsed().as_secs_f64());
}
