//! The lab benchmark: zerolab next to Ansible and OpenSSH on the same namespace hosts,
//! in one run (root only; `scripts/bench` installs Ansible and runs it).
//!
//! Machines here are noisy, so every comparison runs interleaved and is printed as a
//! ratio. All hosts are real: `zerolab up` makes them (netns nodes with OpenSSH sshd),
//! and every tool reaches them over SSH with the lab's key and pinned host keys (Ansible
//! through `zerolab inventory --format ansible`, OpenSSH through `--format ssh-config`).
//!
//! 1. making a 100-node lab (`zerolab up`: hosts, sshd, agent) and taking it down;
//! 2. provisioning 50 nodes: connect, upload the agent, start it, check its health.
//!    Cold (nodes wiped, no open connections) and again with nothing to change, against
//!    an Ansible playbook doing the same four steps at its best settings (pipelining,
//!    forks = 50, no fact gathering, ControlPersist);
//! 3. `exec -- true` on 100 nodes against OpenSSH over open connections (ControlMaster,
//!    one `ssh` per node, all at once) and Ansible's `raw` module over open connections;
//! 4. jobs: a channel between guests on two nodes (4 GiB, producer to consumer) against
//!    iperf3 between the same two namespace hosts, and 100 guests over 10 nodes, from
//!    `zerolab run` to all started (its own debug timing), programs already cached.
//!
//! Knobs: `BENCH_ANSIBLE_BIN` (directory holding `ansible` and `ansible-playbook`; else
//! PATH), `BENCH_COLD` and `BENCH_RUNS` (rounds; default 2 and 7).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{elapsed_in, env_usize, median, run, secs, Lab};

/// The Ansible playbook: the steps `zerolab up` takes on a node, written as an Ansible
/// user would. The start step is idempotent (a running agent is left alone), so a run on
/// provisioned nodes changes nothing, as `zerolab up` does.
const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: agent directory
      ansible.builtin.file: {path: /var/lib/zerolab/bin, state: directory, mode: "0700"}
    - name: agent binary
      ansible.builtin.copy: {src: "{{ agent }}", dest: /var/lib/zerolab/bin/zerolab-agent, mode: "0755"}
    - name: start the agent unless it runs
      ansible.builtin.shell: |
        mkdir -p -m 0700 /run/zerolab
        pid=$(cat /run/zerolab/agent.pid 2>/dev/null || true)
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo running; exit 0; fi
        setsid -f sh -c 'echo $$ > /run/zerolab/agent.pid; exec /var/lib/zerolab/bin/zerolab-agent \
          --socket /run/zerolab/agent.sock --state-dir /var/lib/zerolab >>/var/lib/zerolab/agent.log 2>&1' </dev/null
        echo started
      register: start
      changed_when: start.stdout == "started"
    - name: agent health
      ansible.builtin.uri: {url: "http://agent/v1/health", unix_socket: /run/zerolab/agent.sock}
      register: health
      retries: 100
      delay: 0.1
      until: health.status == 200
"#;

fn which(dir: Option<&Path>, name: &str) -> Option<PathBuf> {
    if let Some(dir) = dir {
        return Some(dir.join(name)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

/// What only this benchmark does with a lab.
impl Lab {
    fn inventory(&self, format: &str) -> PathBuf {
        let (text, _) = run(self.zerolab("inventory").args(["--format", format]));
        let path = self.root.join(format!("{}.{format}", self.name));
        fs::write(&path, text).unwrap();
        path
    }

    /// Stops the agents and wipes what provisioning made on every node, then stops the
    /// lab's connection keeper: the next provisioning starts from nothing.
    fn wipe(&self) {
        self.exec(
            "for f in /run/zerolab/supervisor.pid /run/zerolab/agent.pid; do \
               [ -f $f ] && kill $(cat $f) 2>/dev/null; done; \
             rm -rf /var/lib/zerolab/* /run/zerolab/*",
        );
        stop_keeper(&self.dir());
    }
}

/// Stops the keeper of `lab_dir` (it holds open connections: a cold run has none).
fn stop_keeper(lab_dir: &Path) {
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.len() >= 3 && args[1] == b"keeper" && Path::new(std::str::from_utf8(args[2]).unwrap()) == lab_dir {
            let pid: i32 = entry.file_name().to_string_lossy().parse().unwrap();
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            while entry.path().exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Ansible at its best settings for these hosts, with its own control sockets.
struct Ansible {
    bin: PathBuf,
    cfg: PathBuf,
    control: PathBuf,
}

impl Ansible {
    fn new(dir: &Path, bin: PathBuf, forks: usize) -> Ansible {
        let control = dir.join("cp");
        let cfg = dir.join("ansible.cfg");
        fs::write(
            &cfg,
            format!(
                "[defaults]\nforks = {forks}\ngathering = explicit\ninterpreter_python = /usr/bin/python3\n\
                 stdout_callback = ansible.builtin.minimal\nretry_files_enabled = false\n\
                 [ssh_connection]\npipelining = true\ncontrol_path_dir = {}\n\
                 ssh_args = -o ControlMaster=auto -o ControlPersist=600s\n",
                control.display()
            ),
        )
        .unwrap();
        Ansible { bin, cfg, control }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("ANSIBLE_CONFIG", &self.cfg).env("ANSIBLE_LOCAL_TEMP", self.control.with_file_name("ansible-tmp"));
        cmd
    }

    /// Closes the control masters: the next run connects from scratch.
    fn disconnect(&self) {
        let _ = Command::new("pkill").arg("-f").arg(self.control.to_str().unwrap()).status();
        let _ = fs::remove_dir_all(&self.control);
    }
}

/// OpenSSH's client, one process per node, all at once, over control masters.
fn openssh_all(config: &Path, control: &Path, nodes: usize) -> Duration {
    let started = Instant::now();
    let children: Vec<_> = (1..=nodes)
        .map(|i| {
            Command::new("ssh")
                .arg("-F")
                .arg(config)
                .args(["-o", "ControlMaster=auto", "-o", "ControlPersist=600s", "-o", "BatchMode=yes"])
                .arg("-o")
                .arg(format!("ControlPath={}/%C", control.display()))
                .arg(format!("n-{i}"))
                .arg("true")
                .stdin(Stdio::null())
                .spawn()
                .expect("ssh runs")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "ssh failed");
    }
    started.elapsed()
}

fn main() {
    // `cargo bench` passes --bench; this harness takes no arguments.
    if !common::is_root() {
        println!("lab benchmark skipped: namespace hosts need root");
        return;
    }
    let ansible_dir = std::env::var_os("BENCH_ANSIBLE_BIN").map(PathBuf::from);
    let ansible_bin = which(ansible_dir.as_deref(), "ansible-playbook").and_then(|p| p.parent().map(Path::to_path_buf));
    let cold_rounds = env_usize("BENCH_COLD", 2);
    let runs = env_usize("BENCH_RUNS", 7);

    let dir = tempfile::tempdir().unwrap();
    let agent = common::agent();
    let agent_mb = fs::metadata(&agent).unwrap().len() as f64 / 1e6;
    println!("agent: {} ({agent_mb:.1} MB)", agent.display());

    let big = Lab::new(dir.path(), "bench100", 100, BIG_OCTET);
    let small = Lab::new(dir.path(), "bench50", 50, 81);
    let (_big_down, _small_down) = (big.down_on_drop(), small.down_on_drop());

    println!("\n1. a 100-node netns lab");
    let made = big.up(&agent);
    println!("   {:44} {:>7.2} s", "zerolab up (hosts, sshd, agent), cold", secs(made));

    println!("\n2. provisioning 50 nodes: connect, upload the agent, start it, health check");
    small.up(&agent);
    let ansible = ansible_bin.map(|bin| Ansible::new(dir.path(), bin, 50));
    let inventory = small.inventory("ansible");
    let playbook = dir.path().join("provision.yml");
    fs::write(&playbook, PLAYBOOK).unwrap();
    let play = |ansible: &Ansible| {
        run(ansible
            .command("ansible-playbook")
            .arg("-i")
            .arg(&inventory)
            .arg(&playbook)
            .arg("-e")
            .arg(format!("agent={}", agent.display())))
        .1
    };
    let (mut ours_cold, mut theirs_cold, mut ours_warm, mut theirs_warm) = (vec![], vec![], vec![], vec![]);
    for _ in 0..cold_rounds {
        small.wipe();
        ours_cold.push(small.up(&agent));
        ours_warm.push(small.up(&agent));
        if let Some(ansible) = &ansible {
            small.wipe();
            ansible.disconnect();
            theirs_cold.push(play(ansible));
            theirs_warm.push(play(ansible));
        }
    }
    for _ in 1..runs.div_ceil(2) {
        ours_warm.push(small.up(&agent));
        if let Some(ansible) = &ansible {
            theirs_warm.push(play(ansible));
        }
    }
    let row = |label: &str, ours: &[Duration], theirs: &[Duration]| {
        let ours = median(ours.to_vec());
        match theirs.is_empty() {
            true => println!("   {label:44} {:>7.2} s   (no Ansible to compare)", secs(ours)),
            false => {
                let theirs = median(theirs.to_vec());
                println!(
                    "   {label:44} {:>7.2} s   Ansible {:>6.2} s   {:>5.1}x faster",
                    secs(ours),
                    secs(theirs),
                    secs(theirs) / secs(ours)
                );
            }
        }
    };
    row("zerolab up, cold (wiped nodes, no connections)", &ours_cold, &theirs_cold);
    row("zerolab up, nothing to change", &ours_warm, &theirs_warm);
    if let Some(ansible) = &ansible {
        ansible.disconnect();
    }

    println!("\n3. `exec -- true` on 100 nodes, median of {runs}, all over open connections");
    let ssh_config = big.inventory("ssh-config");
    let big_inventory = big.inventory("ansible");
    let control = dir.path().join("ssh-cp");
    fs::create_dir_all(&control).unwrap();
    let dir100 = dir.path().join("ansible100");
    fs::create_dir_all(&dir100).unwrap();
    let ansible100 = ansible.as_ref().map(|a| Ansible::new(&dir100, a.bin.clone(), 100));
    // Warm-up: the keeper and every control master connect once.
    big.exec("true");
    openssh_all(&ssh_config, &control, big.nodes);
    let raw = |ansible: &Ansible| {
        run(ansible.command("ansible").arg("-i").arg(&big_inventory).args(["all", "-m", "raw", "-a", "true"])).1
    };
    if let Some(ansible) = &ansible100 {
        raw(ansible);
    }
    let (mut ours, mut openssh, mut theirs) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        ours.push(big.exec("true"));
        openssh.push(openssh_all(&ssh_config, &control, big.nodes));
        if let Some(ansible) = &ansible100 {
            theirs.push(raw(ansible));
        }
    }
    let ours = median(ours);
    println!("   {:44} {:>7.3} s", "zerolab exec (through the lab's keeper)", secs(ours));
    let openssh = median(openssh);
    println!(
        "   {:44} {:>7.3} s   {:>5.1}x zerolab",
        "OpenSSH, ControlMaster, 100 at once",
        secs(openssh),
        secs(openssh) / secs(ours)
    );
    if !theirs.is_empty() {
        let theirs = median(theirs);
        println!(
            "   {:44} {:>7.3} s   {:>5.1}x zerolab",
            "Ansible raw, forks = 100, ControlPersist",
            secs(theirs),
            secs(theirs) / secs(ours)
        );
    }
    let _ = Command::new("pkill").arg("-f").arg(control.to_str().unwrap()).status();
    if let Some(ansible) = &ansible100 {
        ansible.disconnect();
    }

    jobs(dir.path(), &big, runs);

    println!("\n1. (continued)");
    let (_, down) = run(&mut big.zerolab("down"));
    println!("   {:44} {:>7.2} s", "zerolab down (100 nodes: nothing left)", secs(down));
    run(&mut small.zerolab("down"));
}

/// Builds a guest with the SDK's zvm-gcc.
fn zvm_gcc(source: &Path, out: &Path) {
    let zvm_gcc = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/zvm-gcc");
    run(Command::new(zvm_gcc).arg("-O2").arg(source).arg("-o").arg(out));
}

/// The 100-node lab's subnet: 10.BIG_OCTET.0.0/24.
const BIG_OCTET: u8 = 82;

/// Section 4: jobs on the 100-node lab `lab`.
fn jobs(dir: &Path, lab: &Lab, runs: usize) {
    let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../node-agent/tests/guests");
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples/hello.c");
    zvm_gcc(&Path::new(guests).join("produce.c"), &dir.join("produce"));
    zvm_gcc(&Path::new(guests).join("consume.c"), &dir.join("consume"));
    zvm_gcc(Path::new(hello), &dir.join("hello"));
    let bytes: u64 = 4 << 30;
    let channel = |bytes: u64| {
        let file = dir.join(format!("channel-{bytes}.yaml"));
        let text = format!(
            "apiVersion: zerolab/v1\nkind: Job\nname: channel\ngroups:\n\
             \x20 - {{name: producer, program: produce, args: ['{bytes}'], timeout: 5m, connect: [consumer], \
             placement: {{nodes: n-1}}}}\n\
             \x20 - {{name: consumer, program: consume, args: [count], timeout: 5m, placement: {{nodes: n-2}}}}\n"
        );
        fs::write(&file, text).unwrap();
        file
    };
    let (full, empty) = (channel(bytes), channel(1));
    let run_job = |job: &Path| run(lab.zerolab("run").arg(job)).1;
    let names = zerolab::provider::netns::Names::new(&lab.name);
    let (server_ns, client_ns) = (names.namespace("n-2"), names.namespace("n-1"));
    let iperf = which(None, "iperf3");
    let mut server = iperf.as_ref().map(|iperf| {
        Command::new("ip")
            .args(["netns", "exec", &server_ns])
            .arg(iperf)
            .args(["-s", "-1", "-p", "5999"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    // The channel's rate: a 4 GiB run minus a 1-byte run (placement, start, handshake).
    let (mut ours, mut overhead) = (vec![], vec![]);
    for _ in 0..3 {
        overhead.push(run_job(&empty));
        ours.push(run_job(&full));
    }
    let ours = median(ours).saturating_sub(median(overhead));
    let ours_gbit = bytes as f64 * 8.0 / secs(ours) / 1e9;
    let theirs_gbit = iperf.as_ref().map(|iperf| {
        let (json, _) = run(Command::new("ip").args(["netns", "exec", &client_ns]).arg(iperf).args([
            "-c",
            &format!("10.{BIG_OCTET}.0.3"),
            "-p",
            "5999",
            "-n",
            &bytes.to_string(),
            "-J",
        ]));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["end"]["sum_received"]["bits_per_second"].as_f64().unwrap() / 1e9
    });
    if let Some(server) = server.as_mut() {
        let _ = server.wait();
    }
    println!("\n4. jobs on the 100-node lab");
    match theirs_gbit {
        Some(theirs) => println!(
            "   {:44} {:>6.1} Gbit/s   iperf3 {:>5.1} Gbit/s   {:>5.2}x",
            "channel n-1 -> n-2, 4 GiB, guest to guest",
            ours_gbit,
            theirs,
            ours_gbit / theirs
        ),
        None => println!("   {:44} {:>6.1} Gbit/s   (no iperf3 to compare)", "channel n-1 -> n-2, 4 GiB", ours_gbit),
    }

    // 100 guests over the first 10 nodes: the runner's own "all sessions started" time.
    let hundred = dir.join("hundred.yaml");
    fs::write(
        &hundred,
        "apiVersion: zerolab/v1\nkind: Job\nname: hundred\ngroups:\n\
         \x20 - {name: hello, count: 100, program: hello, placement: {nodes: 'n-1,n-2,n-3,n-4,n-5,n-6,n-7,n-8,n-9,n-10'}}\n",
    )
    .unwrap();
    run_job(&hundred);
    let (mut started, mut whole) = (vec![], vec![]);
    for _ in 0..runs {
        let output = lab
            .zerolab("run")
            .arg(&hundred)
            .env("ZEROLAB_LOG", "zerolab::run=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let log = String::from_utf8_lossy(&output.stderr);
        let line = log.lines().find(|l| l.contains("all sessions started")).expect("the runner's timing line");
        started.push(elapsed_in(line));
        let line = log.lines().find(|l| l.contains("all instances ended")).expect("the runner's timing line");
        whole.push(elapsed_in(line));
    }
    println!(
        "   {:44} {:>7.3} s   (whole run, outputs collected: {:.3} s)",
        "100 guests on 10 nodes: run to all started",
        secs(median(started)),
        secs(median(whole))
    );
}
