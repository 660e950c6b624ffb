//! Collected outputs stream to disk (issue 9): `zerolab run` saves a guest's 256 MiB
//! stdout into the run's directory and where the job copies it, while its own peak RSS
//! (and the lab keeper's, which carries the bytes from the node) stays far below the
//! output's size. Before, the orchestrator read each collected body whole into memory.
//! Needs root, gcc and a built `zerolab-agent` (as `run`).

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};

use crate::harness::{guest, job, prerequisites, LabHarness, Subnet};

/// The output's size: 256 MiB.
const BIG: u64 = 256 << 20;
/// What the orchestrator's processes may peak at, in KiB (a tenth of the output).
const PEAK_KIB: u64 = (BIG / 10) >> 10;

/// `VmHWM` (peak resident set) of process `pid`, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches(" kB").trim().parse().ok()
}

/// The lab's keeper process (`zerolab keeper LAB_DIR`), found by its command line.
fn keeper_pid(lab_dir: &str) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        (args.contains(&&b"keeper"[..]) && args.contains(&lab_dir.as_bytes())).then_some(pid)
    })
}

#[test]
fn a_256_mib_output_is_collected_with_flat_memory() {
    let Some(agent) = prerequisites("collecting a large output") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Collect, agent);
    guest(
        &lab,
        "big",
        "#include <zvm.h>\nstatic char buf[1 << 20];\nint main(void) {\n\
         for (int i = 0; i < (int)sizeof buf; i++) buf[i] = 'a' + i % 26;\n\
         for (int i = 0; i < 256; i++)\n\
         \x20 if (zvm_write_all(1, buf, sizeof buf) != (int64_t)sizeof buf) return 1;\n\
         return 0;\n}\n",
    );
    let copy = lab.path("big.out");
    let file = job(
        &lab,
        "big",
        &format!(
            "apiVersion: zerolab/v1\nkind: Job\nname: big\ngroups:\n\
             \x20 - {{name: big, program: big, devices: {{stdout: {}}}}}\n",
            copy.display()
        ),
    );
    let up = lab.zerolab(&["up"], &[]);
    assert_eq!(up.code, 0, "{up:#?}");

    // Reaped by wait4 below (which clippy does not see), for its rusage.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["run"])
        .arg(&lab.file)
        .arg(&file)
        .arg("--lab-root")
        .arg(lab.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    // wait4 rather than wait: the child's own peak RSS comes with its exit status.
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not yet reaped; both pointers are to live locals.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(reaped, child.id() as i32, "wait4");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "zerolab run: {stdout}\n{stderr}");

    let results = stdout.lines().find_map(|l| l.strip_prefix("results in ")).expect("a results line");
    let saved = std::path::Path::new(results).join("big/stdout");
    for path in [&saved, &copy] {
        let len = fs::metadata(path).unwrap().len();
        assert_eq!(len, BIG, "{} holds {len} bytes", path.display());
        let mut head = [0u8; 26];
        fs::File::open(path).unwrap().read_exact(&mut head).unwrap();
        assert_eq!(&head, b"abcdefghijklmnopqrstuvwxyz", "{}", path.display());
    }

    let peak = usage.ru_maxrss as u64;
    eprintln!("zerolab run collected {} MiB with a peak RSS of {} MiB", BIG >> 20, peak >> 10);
    assert!(peak < PEAK_KIB, "zerolab run peaked at {peak} KiB collecting a {} MiB output", BIG >> 20);
    let lab_dir = lab.lab().dir().display().to_string();
    if let Some(keeper) = keeper_pid(&lab_dir).and_then(peak_kib) {
        eprintln!("the keeper peaked at {} MiB", keeper >> 10);
        assert!(keeper < PEAK_KIB, "the keeper peaked at {keeper} KiB carrying a {} MiB output", BIG >> 20);
    } else {
        eprintln!("no keeper process found for {lab_dir}; its peak is not checked");
    }
}
