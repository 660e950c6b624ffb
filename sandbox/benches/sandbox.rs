//! The sandbox benchmark: zerolab next to its comparisons, in one run.
//!
//! Machines here are noisy, so every comparison runs interleaved in the same
//! process and is printed as a ratio. Run it with `scripts/bench`, which builds
//! a static `zvsh`, installs the peers (bubblewrap, firejail) and sets `ZVSH`.
//!
//! 1. start-up: a hello guest through `zvsh --manifest` and through the
//!    library, against a native static hello and against other jails;
//! 2. throughput: a `cat` guest copying stdin to stdout through pipes
//!    against coreutils `cat` (`zvsh` grows its pipes to 1 MiB, as it does
//!    for every user; `cat` runs on default and on 1 MiB pipes);
//! 3. per-call cost of a one-byte `zvm_pwrite` to /dev/null, direct and
//!    mediated, against a native `pwrite`;
//! 4. validator throughput on a large real code segment, and the cost of a
//!    cached verdict.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use zerolab_sandbox::channel::{Channel, PIPE_SIZE};
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::session::{self, Guest, Options};
use zerolab_sandbox::{validator, verdict_cache};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run_quiet(cmd: &[&str]) -> Duration {
    let t = Instant::now();
    let st = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("benchmark command runs");
    let d = t.elapsed();
    assert!(st.success(), "{cmd:?} failed: {st}");
    d
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().expect("sh runs");
    assert!(st.success(), "`{cmd}` failed");
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

fn manifest(dir: &Path, name: &str, program: &Path, out_limits: &str, args: &[&str]) -> PathBuf {
    let mut text = format!(
        "Version = 20130611\nProgram = {}\nMemory = 67108864, 0\nTimeout = 60\n\
         Channel = /dev/null, /dev/stdin, 0, 0, 4294967296, 4294967296, 0, 0\n\
         Channel = /dev/null, /dev/stdout, 0, 0, 0, 0, {out_limits}\n\
         Channel = /dev/null, /dev/stderr, 0, 0, 0, 0, 4294967296, 4294967296\n",
        program.display()
    );
    for a in args {
        text.push_str(&format!("Arg = {a}\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write manifest");
    path
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zvsh = std::env::var("ZVSH").unwrap_or_else(|_| env!("CARGO_BIN_EXE_zvsh").to_string());
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let cat_mb: usize = std::env::var("BENCH_CAT_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let cat_rounds: usize = std::env::var("BENCH_CAT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let zvm_gcc = root.join("guest/zvm-gcc");
    let guest = |src: &str, out: &str| {
        sh(&format!("{} -O2 {} -o {}", zvm_gcc.display(), root.join(src).display(), d.join(out).display()));
        d.join(out)
    };
    let native = |src: &str, out: &str| {
        sh(&format!("gcc -static -O2 {} -o {}", root.join(src).display(), d.join(out).display()));
        d.join(out)
    };
    let hello = guest("guest/examples/hello.c", "hello");
    let cat = guest("guest/examples/cat.c", "cat");
    let pw = guest("benches/guests/pwrite_loop.c", "pwrite_loop");
    let hello_n = native("benches/guests/hello_native.c", "hello_native");
    let pw_n = native("benches/guests/pwrite_native.c", "pwrite_native");
    std::env::set_var("XDG_CACHE_HOME", d);
    let hm = manifest(d, "hello.manifest", &hello, "4294967296, 4294967296", &[]);
    let (hello_s, hello_ns, hm_s) = (hello.to_str().unwrap(), hello_n.to_str().unwrap(), hm.to_str().unwrap());
    println!("zvsh: {zvsh}\n");

    // 1. Start-up.
    let mut cases: Vec<(String, Vec<&str>)> = vec![
        ("native static hello".into(), vec![hello_ns]),
        ("zvsh --manifest hello".into(), vec![&zvsh, "--manifest", hm_s]),
        ("zvsh hello".into(), vec![&zvsh, hello_s]),
    ];
    if which("unshare").is_some() {
        cases.push(("unshare -Urnmpif hello".into(), vec!["unshare", "-Urnmpif", hello_ns]));
    }
    if which("bwrap").is_some() {
        cases.push((
            "bwrap --unshare-all hello".into(),
            vec!["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "--die-with-parent", hello_ns],
        ));
    }
    if which("firejail").is_some() {
        cases.push(("firejail --noprofile hello".into(), vec!["firejail", "--quiet", "--noprofile", hello_ns]));
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for i in 0..runs {
        for (c, t) in cases.iter().zip(times.iter_mut()) {
            if c.0.starts_with("firejail") && i >= runs.div_ceil(10) {
                continue;
            }
            t.push(run_quiet(&c.1));
        }
    }
    let lib = library_spawn(&hello, runs);
    let base = median(times[0].clone());
    println!("1. start-up, median of {runs} interleaved runs (wall time, fork to reaped exit)");
    for (c, t) in cases.iter().zip(times) {
        let m = median(t);
        println!("   {:34} {:>8.3} ms  {:>6.2}x native", c.0, ms(m), ms(m) / ms(base));
    }
    println!("   {:34} {:>8.3} ms  {:>6.2}x native", "library spawn-to-exit (in process)", ms(lib), ms(lib) / ms(base));

    // 2. cat through pipes: rounds of three, each in the other order from the
    // last, so that a neighbour's burst of load lands on every side as often.
    // zvsh grows the pipes it is given to 1 MiB; coreutils `cat` is measured on
    // the default 64 KiB pipes (what the target compares with) and on 1 MiB.
    let n = cat_mb << 20;
    let guest_cmd = [zvsh.as_str(), cat.to_str().unwrap()];
    let mut t: [Vec<Duration>; 3] = Default::default();
    for round in 0..cat_rounds {
        let mut order = [0, 1, 2];
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            t[i].push(match i {
                0 => pipe_through(&["cat"], n, None),
                1 => pipe_through(&guest_cmd, n, None),
                _ => pipe_through(&["cat"], n, Some(PIPE_SIZE)),
            });
        }
    }
    let pairs: Vec<String> =
        t[0].iter().zip(&t[1]).map(|(nt, gt)| format!("{:.2}", nt.as_secs_f64() / gt.as_secs_f64())).collect();
    let [nt, gt, bt] = t.map(median);
    let rate = |t: Duration| n as f64 / t.as_secs_f64() / 1e9;
    println!("\n2. {cat_mb} MiB stdin -> stdout through pipes, median of {cat_rounds} interleaved rounds");
    println!("   {:34} {:>8.3} s   {:>6.2} GB/s", "coreutils cat", nt.as_secs_f64(), rate(nt));
    println!(
        "   {:34} {:>8.3} s   {:>6.2} GB/s  {:.2}x native throughput",
        "zvsh cat guest (grows its pipes)",
        gt.as_secs_f64(),
        rate(gt),
        rate(gt) / rate(nt)
    );
    println!(
        "   {:34} {:>8.3} s   {:>6.2} GB/s  (the guest: {:.2}x of it)",
        "coreutils cat, 1 MiB pipes",
        bt.as_secs_f64(),
        rate(bt),
        rate(gt) / rate(bt)
    );
    println!("   {:34} {}", "each round (cat time / guest time)", pairs.join(" "));

    // 3. Per-call cost.
    let calls = 2_000_000usize;
    let mediated_calls = 200_000usize;
    let per_call = |cmd: &dyn Fn(usize) -> Vec<String>, n: usize| -> f64 {
        let t = |k: usize| {
            let c = cmd(k);
            let c: Vec<&str> = c.iter().map(String::as_str).collect();
            median((0..3).map(|_| run_quiet(&c)).collect())
        };
        (t(n).as_secs_f64() - t(0).as_secs_f64()) / n as f64 * 1e9
    };
    let native_ns = per_call(&|k| vec![pw_n.display().to_string(), k.to_string()], calls);
    let direct = |k: usize| {
        let m =
            manifest(d, &format!("pw{k}.manifest"), &pw, "4294967296, 4294967296", &["pwrite_loop", &k.to_string()]);
        vec![zvsh.clone(), "--manifest".into(), m.display().to_string()]
    };
    let direct_ns = per_call(&direct, calls);
    let mediated = |k: usize| {
        let m =
            manifest(d, &format!("pwm{k}.manifest"), &pw, "4000000000, 4000000000", &["pwrite_loop", &k.to_string()]);
        vec![zvsh.clone(), "--manifest".into(), m.display().to_string()]
    };
    let mediated_ns = per_call(&mediated, mediated_calls);
    println!("\n3. one-byte write to /dev/null, per call (time of N calls minus time of 0)");
    println!("   {:34} {:>8.0} ns", "native pwrite", native_ns);
    println!("   {:34} {:>8.0} ns  {:>6.2}x native", "zvm_pwrite, direct channel", direct_ns, direct_ns / native_ns);
    println!("   {:34} {:>8.0} ns  ({:.1} us)", "zvm_pwrite, mediated channel", mediated_ns, mediated_ns / 1e3);

    // 4. Validator.
    validator_throughput();
}

/// Median spawn-to-exit of the hello guest through the library API.
fn library_spawn(hello: &Path, runs: usize) -> Duration {
    let opts = Options::default();
    let null = || File::options().read(true).write(true).open("/dev/null").expect("/dev/null").into();
    let ro = Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED };
    let wo = Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED };
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let channels = vec![
            Channel::from_fd("/dev/stdin", AccessType::SeqGetSeqPut, ro, null()).unwrap(),
            Channel::from_fd("/dev/stdout", AccessType::SeqGetSeqPut, wo, null()).unwrap(),
            Channel::from_fd("/dev/stderr", AccessType::SeqGetSeqPut, wo, null()).unwrap(),
        ];
        let g = Guest {
            program: hello.to_path_buf(),
            program_member: None,
            memory: 64 << 20,
            timeout: Duration::from_secs(10),
            channels,
            args: Vec::new(),
            env: Vec::new(),
        };
        let start = Instant::now();
        let report = session::spawn(g, &opts).expect("spawn").wait();
        t.push(start.elapsed());
        assert_eq!(report.exit_state, "ok");
    }
    median(t)
}

/// Pushes `n` bytes through `cmd`'s stdin and drains its stdout, with both
/// pipes grown to `pipe_size` first if given.
fn pipe_through(cmd: &[&str], n: usize, pipe_size: Option<i32>) -> Duration {
    let start = Instant::now();
    let mut child =
        Command::new(cmd[0]).args(&cmd[1..]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let mut output = child.stdout.take().expect("stdout");
    if let Some(size) = pipe_size {
        fcntl(&input, FcntlArg::F_SETPIPE_SZ(size)).expect("grow the stdin pipe");
        fcntl(&output, FcntlArg::F_SETPIPE_SZ(size)).expect("grow the stdout pipe");
    }
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'z'; 1 << 18];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            input.write_all(&chunk[..k]).expect("write");
            left -= k;
        }
    });
    let mut buf = vec![0u8; 1 << 18];
    let mut got = 0;
    loop {
        let k = output.read(&mut buf).expect("read");
        if k == 0 {
            break;
        }
        got += k;
    }
    writer.join().expect("writer");
    assert!(child.wait().expect("wait").success());
    assert_eq!(got, n, "{cmd:?} lost data");
    start.elapsed()
}

/// Validates the .text of a large real program (gcc's cc1), stepping past
/// the instructions the policy rejects, and times a cached verdict.
fn validator_throughput() {
    let candidates = ["/usr/lib/gcc/x86_64-linux-gnu/12/cc1", "/usr/bin/gdb", "/usr/bin/python3"];
    let Some((path, bytes)) = candidates.iter().find_map(|p| std::fs::read(p).ok().map(|b| (*p, b))) else {
        println!("\n4. validator: no large binary found to measure");
        return;
    };
    let elf = goblin::elf::Elf::parse(&bytes).expect("ELF");
    let text = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".text")).expect(".text");
    let code = &bytes[text.sh_offset as usize..(text.sh_offset + text.sh_size) as usize];
    let start = Instant::now();
    let (mut pos, mut rejected) = (0usize, 0usize);
    while pos < code.len() {
        match validator::validate_code(&code[pos..], text.sh_addr + pos as u64) {
            Ok(()) => break,
            Err(v) => {
                rejected += 1;
                pos = (v.addr - text.sh_addr) as usize + 1;
            }
        }
    }
    let t = start.elapsed();
    let cache = verdict_cache::VerdictCache::new(None);
    let hash = verdict_cache::hash_image(code);
    let _ = cache.check(&hash, || Ok(()));
    let start = Instant::now();
    let (_, cached) = cache.check(&verdict_cache::hash_image(code), || unreachable!("cached"));
    let c = start.elapsed();
    assert!(cached);
    let mb = code.len() as f64 / 1e6;
    println!("\n4. validator on {path} .text ({mb:.1} MB, {rejected} rejected instructions stepped over)");
    println!("   {:34} {:>8.1} ms  {:>6.0} MB/s", "full validation", ms(t), mb / t.as_secs_f64());
    println!(
        "   {:34} {:>8.2} ms  {:>6.0}x faster (hash + lookup)",
        "cached verdict",
        ms(c),
        t.as_secs_f64() / c.as_secs_f64()
    );
}
