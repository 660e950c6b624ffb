//! The wordcount benchmark: `examples/wordcount` on 1 GiB of text over a 4-node netns
//! lab, against the native single-machine `tr -s ' ' '\n' | sort | uniq -c` on the same
//! input, interleaved in one run, with where zerolab's time goes (root only;
//! `scripts/bench wordcount` builds what it needs and runs it).
//!
//! The input is generated once into `target/bench-wordcount/` and reused while it has the
//! expected size: lines of 10 to 15 words separated by single spaces, the words drawn
//! from a Zipf distribution (s = 1) over 100,000 generated words, frequent words short,
//! as in text. It is also split at line ends into parts, `data/part-*.txt`, one map
//! instance each; 4 reducers, one per node; each reducer's output to `out/reduce-N.txt`.
//!
//! Each round runs, in this order: the native pipeline; `zerolab run` with the inputs
//! removed from the nodes first (they are uploaded); `zerolab run` again (inputs already
//! stored: the runner skips them after a `HEAD`); the guests alone on this machine, `zvsh
//! map < input | zvsh reduce` (the same algorithm, one map, no lab); and the maps alone,
//! one `zvsh map < part` per part, as many at once as there are cores. Every result is
//! checked against the native one, byte for byte. Where the time goes comes from the
//! runner's own `elapsed=` lines (`ZEROLAB_LOG=zerolab::run=debug`: planned, uploaded,
//! all sessions started, progress, all ended), the guests' reports (their CPU seconds)
//! and the CPU seconds the lab's long-lived processes (keeper, sshd, agents) used.
//!
//! Knobs: `BENCH_RUNS` (rounds, default 3), `BENCH_WORDCOUNT_MB` (input size, default
//! 1024), `BENCH_WORDCOUNT_PARTS` (maps, default 8), `BENCH_WORDCOUNT_REDUCERS`
//! (default 4).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{elapsed_in, env_usize, median, run, secs, Lab};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/wordcount");
const SCRATCH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-wordcount");
const NODES: usize = 4;
/// Distinct words in the generated input's vocabulary.
const VOCABULARY: usize = 100_000;
/// Changes whenever the generator does, so an old input is not reused.
const GENERATOR: &str = "wordcount-bench input v1";

fn main() {
    if !common::is_root() {
        println!("wordcount benchmark skipped: namespace hosts need root");
        return;
    }
    let runs = env_usize("BENCH_RUNS", 3).max(1);
    let bytes = env_usize("BENCH_WORDCOUNT_MB", 1024) as u64 * (1 << 20);
    let parts = env_usize("BENCH_WORDCOUNT_PARTS", 8).max(1);
    let reducers = env_usize("BENCH_WORDCOUNT_REDUCERS", NODES).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (map, reduce) = (Path::new(EXAMPLES).join("map"), Path::new(EXAMPLES).join("reduce"));
    assert!(map.is_file() && reduce.is_file(), "build the example guests first: examples/build-guests");
    let zvsh = Path::new(common::ZEROLAB).with_file_name("zvsh");
    assert!(zvsh.is_file(), "build zvsh first: cargo build --release -p zerolab-sandbox");
    let agent = common::agent();

    fs::create_dir_all(SCRATCH).unwrap();
    let scratch = fs::canonicalize(SCRATCH).unwrap();
    let input = Input::ensure(&scratch, bytes, parts);
    println!(
        "input: {} ({:.2} GiB, {} words, {} lines), {parts} parts",
        input.path.display(),
        input.bytes as f64 / (1u64 << 30) as f64,
        input.words,
        input.lines
    );

    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::new(dir.path(), "benchwc", NODES, 78);
    let _down = lab.down_on_drop();
    lab.up(&agent);
    let job = write_job(&scratch, &map, &reduce, parts, reducers);
    let native_out = scratch.join("native.txt");
    let zerolab_out = scratch.join("zerolab.txt");

    let procs = LabProcesses::of(&lab);
    let mut rounds = Rounds::default();
    let mut expected: Option<Vec<u8>> = None;
    for round in 1..=runs {
        println!("round {round} of {runs}");
        let timed = procs.measure(|| {
            shell(&format!(
                "LC_ALL=C tr -s ' ' '\\n' < {} | LC_ALL=C sort | uniq -c > {}",
                input.path.display(),
                native_out.display()
            ))
        });
        let result = fs::read(&native_out).unwrap();
        match &expected {
            None => expected = Some(result),
            Some(first) => assert!(*first == result, "the native pipeline gave two different results"),
        }
        let expected = expected.as_deref().unwrap();
        println!("   native                 {:>7.2} s", secs(timed.wall));
        rounds.native.push(timed);

        // Cold: the inputs are not on the nodes (the guests' programs go too; they are small).
        lab.exec("rm -f /var/lib/zerolab/blobs/*");
        for (into, label) in [(&mut rounds.cold, "zerolab, upload"), (&mut rounds.warm, "zerolab, cached")] {
            let timed = zerolab_run(&lab, &procs, &job, &scratch, parts);
            shell(&format!("cat {}/out/*.txt | LC_ALL=C sort -k2 > {}", scratch.display(), zerolab_out.display()));
            same(expected, &fs::read(&zerolab_out).unwrap(), "zerolab run (outputs sorted on the word)");
            println!("   {label:22} {:>7.2} s", secs(timed.wall));
            into.push(timed);
        }

        let timed = procs.measure(|| {
            shell(&format!(
                "{zvsh} {map} < {input} | {zvsh} {reduce} > {out}",
                zvsh = zvsh.display(),
                map = map.display(),
                input = input.path.display(),
                reduce = reduce.display(),
                out = zerolab_out.display()
            ))
        });
        same(expected, &fs::read(&zerolab_out).unwrap(), "zvsh map | zvsh reduce");
        println!("   guests, one machine    {:>7.2} s", secs(timed.wall));
        rounds.guests.push(timed);

        let timed = procs.measure(|| maps_alone(&zvsh, &map, &input.parts, cores));
        println!("   maps alone             {:>7.2} s", secs(timed.wall));
        rounds.maps.push(timed);
    }

    rounds.report(&input, parts, reducers, cores);
}

/// Panics with the first differing line unless `ours` is `expected`.
fn same(expected: &[u8], ours: &[u8], what: &str) {
    if expected == ours {
        return;
    }
    let (e, o) = (String::from_utf8_lossy(expected), String::from_utf8_lossy(ours));
    let line = e.lines().zip(o.lines()).position(|(a, b)| a != b).unwrap_or(e.lines().count().min(o.lines().count()));
    panic!(
        "{what} differs from the native pipeline at line {}: native {:?}, {what} {:?} ({} and {} lines)",
        line + 1,
        e.lines().nth(line),
        o.lines().nth(line),
        e.lines().count(),
        o.lines().count()
    );
}

/// Runs the POSIX shell command `script`, which must succeed.
fn shell(script: &str) {
    run(Command::new("sh").arg("-c").arg(script));
}

// ---------------------------------------------------------------------------------
// The input.

/// The generated input: the whole text and its parts.
struct Input {
    path: PathBuf,
    parts: Vec<PathBuf>,
    bytes: u64,
    words: u64,
    lines: u64,
}

impl Input {
    /// The input of at most `target` bytes in `scratch`, split into `parts` at line ends:
    /// the one already there if it was made the same way, else a new one.
    fn ensure(scratch: &Path, target: u64, parts: usize) -> Input {
        let data = scratch.join("data");
        let path = scratch.join("input.txt");
        let meta = scratch.join("input.meta");
        let part_paths: Vec<PathBuf> = (1..=parts).map(|i| data.join(format!("part-{i:03}.txt"))).collect();
        let header = format!("{GENERATOR} target {target} parts {parts} vocabulary {VOCABULARY}");
        if let Ok(text) = fs::read_to_string(&meta) {
            let mut fields = text.split_whitespace().rev();
            let (lines, words, bytes) = (fields.next(), fields.next(), fields.next());
            let parsed = |f: Option<&str>| f.and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
            let (lines, words, bytes) = (parsed(lines), parsed(words), parsed(bytes));
            let size = |p: &Path| fs::metadata(p).map_or(u64::MAX, |m| m.len());
            let part_bytes: u64 = part_paths.iter().map(|p| size(p)).fold(0, u64::saturating_add);
            let listed = fs::read_dir(&data).map_or(0, |d| d.count());
            if text.starts_with(&header) && size(&path) == bytes && part_bytes == bytes && listed == parts {
                println!("input: reusing {}", path.display());
                return Input { path, parts: part_paths, bytes, words, lines };
            }
        }
        println!("input: generating {} MiB in {}", target >> 20, scratch.display());
        let started = Instant::now();
        let _ = fs::remove_dir_all(&data);
        let _ = fs::remove_file(&meta);
        fs::create_dir_all(&data).unwrap();
        let (bytes, words, lines) = generate(&path, &part_paths, target);
        fs::write(&meta, format!("{header} bytes words lines {bytes} {words} {lines}\n")).unwrap();
        println!("input: generated in {:.1} s", secs(started.elapsed()));
        Input { path, parts: part_paths, bytes, words, lines }
    }
}

/// splitmix64: a small, fast, deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n below 2^32).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// The vocabulary, by rank: a word of rank r has about 1 + log2(r) / 2 letters (plus 0
/// to 2), drawn with English letter frequencies, every word distinct.
fn vocabulary(rng: &mut Rng) -> Vec<Vec<u8>> {
    // Letter frequencies in English text, per 10,000.
    const FREQUENCIES: [(u8, u64); 26] = [
        (b'e', 1270),
        (b't', 906),
        (b'a', 817),
        (b'o', 751),
        (b'i', 697),
        (b'n', 675),
        (b's', 633),
        (b'h', 609),
        (b'r', 599),
        (b'd', 425),
        (b'l', 403),
        (b'c', 278),
        (b'u', 276),
        (b'm', 241),
        (b'w', 236),
        (b'f', 223),
        (b'g', 202),
        (b'y', 197),
        (b'p', 193),
        (b'b', 149),
        (b'v', 98),
        (b'k', 77),
        (b'j', 15),
        (b'x', 15),
        (b'q', 10),
        (b'z', 7),
    ];
    let total: u64 = FREQUENCIES.iter().map(|f| f.1).sum();
    let letter = |rng: &mut Rng| {
        let mut pick = rng.below(total);
        for (letter, weight) in FREQUENCIES {
            if pick < weight {
                return letter;
            }
            pick -= weight;
        }
        b'e'
    };
    let mut seen = HashSet::new();
    let mut words = Vec::with_capacity(VOCABULARY);
    for rank in 0..VOCABULARY {
        let mut len = 1 + (63 - (rank as u64 + 2).leading_zeros() as usize) / 2 + rng.below(3) as usize;
        let mut tries = 0;
        let word = loop {
            let word: Vec<u8> = (0..len).map(|_| letter(rng)).collect();
            if seen.insert(word.clone()) {
                break word;
            }
            tries += 1;
            if tries % 20 == 0 {
                len += 1;
            }
        };
        words.push(word);
    }
    words
}

/// Walker's alias table for ranks 0..n with Zipf weights 1 / (rank + 1): one draw is
/// one random number, a table lookup and a comparison.
struct Zipf {
    threshold: Vec<u32>,
    alias: Vec<u32>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let sum: f64 = (1..=n).map(|r| 1.0 / r as f64).sum();
        let mut scaled: Vec<f64> = (1..=n).map(|r| n as f64 / r as f64 / sum).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| scaled[i] < 1.0);
        let mut threshold = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = (scaled[s] * 4_294_967_296.0) as u32;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Zipf { threshold, alias }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let r = rng.next();
        let i = (((r >> 32) * self.threshold.len() as u64) >> 32) as usize;
        if (r as u32) < self.threshold[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// Writes lines of words to `path` and, split at line ends into about equal parts, to
/// `parts`, stopping before `target` bytes. Returns (bytes, words, lines).
fn generate(path: &Path, parts: &[PathBuf], target: u64) -> (u64, u64, u64) {
    let mut rng = Rng(0x5eed_0fc0de);
    let words = vocabulary(&mut rng);
    let zipf = Zipf::new(words.len());
    let create = |p: &Path| BufWriter::with_capacity(1 << 20, fs::File::create(p).unwrap());
    let mut whole = create(path);
    let mut part = 0;
    let mut out = create(&parts[0]);
    let (mut bytes, mut count, mut lines) = (0u64, 0u64, 0u64);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        let n = 10 + rng.below(6);
        for k in 0..n {
            if k > 0 {
                line.push(b' ');
            }
            line.extend_from_slice(&words[zipf.draw(&mut rng)]);
        }
        line.push(b'\n');
        if bytes + line.len() as u64 > target {
            break;
        }
        whole.write_all(&line).unwrap();
        out.write_all(&line).unwrap();
        bytes += line.len() as u64;
        count += n;
        lines += 1;
        if part + 1 < parts.len() && bytes >= target * (part as u64 + 1) / parts.len() as u64 {
            out.flush().unwrap();
            part += 1;
            out = create(&parts[part]);
        }
    }
    whole.flush().unwrap();
    out.flush().unwrap();
    assert_eq!(part + 1, parts.len(), "the input is too small for {} parts", parts.len());
    (bytes, count, lines)
}

// ---------------------------------------------------------------------------------
// Runs and what they cost.

/// The job: `parts` maps (one per input part) connected to `reducers` reducers.
fn write_job(scratch: &Path, map: &Path, reduce: &Path, parts: usize, reducers: usize) -> PathBuf {
    let job = scratch.join("job.yaml");
    let text = format!(
        "apiVersion: zerolab/v1\nkind: Job\nname: wordcount\ngroups:\n\
         \x20 - name: map\n    count: {parts}\n    program: {map}\n    memory: 256MiB\n    timeout: 10m\n\
         \x20   devices: {{stdin: data/part-*.txt}}\n    connect: [reduce]\n\
         \x20 - name: reduce\n    count: {reducers}\n    program: {reduce}\n    memory: 1GiB\n    timeout: 10m\n\
         \x20   devices: {{stdout: out/*.txt}}\n",
        map = map.display(),
        reduce = reduce.display()
    );
    fs::write(&job, text).unwrap();
    job
}

/// One timed command: its wall time, the CPU seconds of it and its children, and the
/// CPU seconds of the lab's long-lived processes meanwhile, by kind.
#[derive(Default)]
struct Timed {
    wall: Duration,
    cpu: f64,
    lab_cpu: BTreeMap<&'static str, f64>,
    /// The runner's phases (zerolab runs only).
    phases: Option<Phases>,
    /// The guests' CPU seconds (user + sys) from their reports: maps, reducers.
    guest_cpu: (f64, f64),
}

/// CPU seconds (user + system) of this process's waited-for children so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The processes a lab keeps running: its connection keeper, and the nodes' sshd and
/// agents (those in the lab's network namespaces; other labs may run meanwhile).
struct LabProcesses {
    namespaces: HashSet<u64>,
    lab_dir: PathBuf,
}

impl LabProcesses {
    fn of(lab: &Lab) -> LabProcesses {
        let names = zerolab::provider::netns::Names::new(&lab.name);
        let namespaces = (1..=lab.nodes)
            .map(|i| fs::metadata(Path::new("/run/netns").join(names.namespace(&format!("n-{i}")))).unwrap().ino())
            .collect();
        LabProcesses { namespaces, lab_dir: lab.dir() }
    }

    /// Runs `f`, timing it and the CPU it, its children and the lab's processes use.
    fn measure(&self, f: impl FnOnce()) -> Timed {
        let (cpu, before) = (children_cpu(), self.cpu());
        let started = Instant::now();
        f();
        let wall = started.elapsed();
        let mut lab_cpu = BTreeMap::new();
        for (pid, (kind, after)) in self.cpu() {
            *lab_cpu.entry(kind).or_insert(0.0) += after - before.get(&pid).map_or(0.0, |b| b.1);
        }
        Timed { wall, cpu: children_cpu() - cpu, lab_cpu, ..Timed::default() }
    }

    /// CPU seconds (user + system) so far of each of the lab's processes (the agents'
    /// without their guests), by pid.
    fn cpu(&self) -> BTreeMap<u32, (&'static str, f64)> {
        // SAFETY: sysconf has no preconditions.
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut found = BTreeMap::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
            let in_lab = || fs::metadata(entry.path().join("ns/net")).is_ok_and(|m| self.namespaces.contains(&m.ino()));
            let kind = match &stat[open + 1..close] {
                "sshd" if in_lab() => "sshd",
                "zerolab-agent" if in_lab() => "agents",
                "zerolab" => {
                    let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                    match args.get(1..3) {
                        Some([b"keeper", dir]) if Path::new(&*String::from_utf8_lossy(dir)) == self.lab_dir => "keeper",
                        _ => continue,
                    }
                }
                _ => continue,
            };
            // Fields after the command: state is field 3, utime and stime fields 14 and 15.
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            found.insert(pid, (kind, (ticks(14) + ticks(15)) / tick));
        }
        found
    }
}

/// Where a `zerolab run` was when, from its `elapsed=` lines.
#[derive(Clone, Copy, Default)]
struct Phases {
    planned: Duration,
    uploaded: Duration,
    started: Duration,
    maps_done: Duration,
    ended: Duration,
}

/// `zerolab run` of `job`, checked, timed and taken apart; its outputs in `scratch/out/`.
fn zerolab_run(lab: &Lab, procs: &LabProcesses, job: &Path, scratch: &Path, maps: usize) -> Timed {
    let out = scratch.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let mut output = None;
    let mut timed = procs.measure(|| {
        output = Some(
            lab.zerolab("run")
                .arg(job)
                .env("ZEROLAB_LOG", "zerolab::run=debug")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    });
    let output = output.unwrap();
    let (stdout, log) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "zerolab run failed: {}\n{stdout}{log}", output.status);
    let mark = |what: &str| {
        let line = log.lines().find(|l| l.contains(&format!("zerolab::run: {what}"))).unwrap_or_else(|| {
            panic!("no `{what}` line from the runner (was it built with its timings?):\n{log}");
        });
        elapsed_in(line)
    };
    let maps_done = log
        .lines()
        .filter(|l| l.contains("zerolab::run: progress"))
        .find(|l| field(l, "done") >= maps)
        .map_or(Duration::ZERO, elapsed_in);
    timed.phases = Some(Phases {
        planned: mark("planned"),
        uploaded: mark("uploaded"),
        started: mark("all sessions started"),
        maps_done,
        ended: mark("all instances ended"),
    });
    // The lab root is absolute, and so is the results directory the run names.
    let results = stdout.lines().find_map(|l| l.strip_prefix("results in ")).expect("the run's results directory");
    for entry in fs::read_dir(results).unwrap().flatten() {
        let Ok(report) = fs::read_to_string(entry.path().join("report")) else { continue };
        // The fifth line: sys and user seconds, then the channel counts.
        let line = report.lines().nth(4).unwrap_or_default();
        let used: f64 = line.split_whitespace().take(2).filter_map(|v| v.parse::<f64>().ok()).sum();
        match entry.file_name().to_string_lossy().starts_with("map") {
            true => timed.guest_cpu.0 += used,
            false => timed.guest_cpu.1 += used,
        }
    }
    timed
}

/// The number in `NAME=N` of a tracing line.
fn field(line: &str, name: &str) -> usize {
    let pattern = format!(" {name}=");
    line.split(&pattern).nth(1).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Every part through `zvsh map`, its counts to /dev/null, `at_once` at a time.
fn maps_alone(zvsh: &Path, map: &Path, parts: &[PathBuf], at_once: usize) {
    for batch in parts.chunks(at_once) {
        let children: Vec<_> = batch
            .iter()
            .map(|part| {
                Command::new(zvsh)
                    .arg(map)
                    .stdin(fs::File::open(part).unwrap())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("zvsh runs")
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success(), "zvsh map failed");
        }
    }
}

// ---------------------------------------------------------------------------------
// The table.

/// Every round's measurements, by what was measured.
#[derive(Default)]
struct Rounds {
    native: Vec<Timed>,
    /// `zerolab run`, the inputs uploaded.
    cold: Vec<Timed>,
    /// `zerolab run`, the inputs already on the nodes.
    warm: Vec<Timed>,
    /// `zvsh map < input | zvsh reduce`.
    guests: Vec<Timed>,
    /// `zvsh map < part`, as many at once as there are cores.
    maps: Vec<Timed>,
}

impl Rounds {
    /// Prints the medians, side by side with the native pipeline, and where the time went.
    fn report(&self, input: &Input, parts: usize, reducers: usize, cores: usize) {
        let Rounds { native, cold, warm, guests, maps } = self;
        let med = |runs: &[Timed]| median(runs.iter().map(|t| t.wall).collect());
        let med_f = |runs: &[Timed], f: &dyn Fn(&Timed) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let n = secs(med(native));
        let gib = input.bytes as f64 / (1u64 << 30) as f64;
        println!(
            "\nwordcount on {gib:.2} GiB ({} words), {NODES} nodes, {parts} maps, {reducers} reducers, {cores} cores; \
             median of {} rounds",
            input.words,
            native.len()
        );
        let row = |label: &str, runs: &[Timed]| {
            let t = secs(med(runs));
            println!(
                "   {label:52} {t:>7.2} s   {:>5.2}x native   CPU {:>6.1} s",
                n / t,
                med_f(runs, &|r| r.cpu + r.guest_cpu.0 + r.guest_cpu.1 + r.lab_cpu.values().sum::<f64>())
            );
        };
        row("native: tr -s | sort | uniq -c", native);
        row("zerolab run, inputs uploaded", cold);
        row("zerolab run, inputs already on the nodes", warm);
        row("guests alone: zvsh map < input | zvsh reduce", guests);
        row(&format!("maps alone: zvsh map < part, {cores} at a time"), maps);

        println!("\nwhere the time goes in `zerolab run` (median of each step; uploaded | cached):");
        let step = |label: &str, f: &dyn Fn(&Phases) -> Duration| {
            let of = |runs: &[Timed]| secs(median(runs.iter().map(|t| f(&t.phases.unwrap())).collect()));
            println!("   {label:52} {:>7.2} s | {:>6.2} s", of(cold), of(warm));
        };
        step("place, connect, hash every input (planned)", &|p| p.planned);
        step("store missing blobs on the nodes (HEAD, PUT)", &|p| p.uploaded.saturating_sub(p.planned));
        step("start every session", &|p| p.started.saturating_sub(p.uploaded));
        step("until every map has ended and been collected", &|p| p.maps_done.saturating_sub(p.started));
        step("until every reducer has ended, outputs collected", &|p| p.ended.saturating_sub(p.maps_done));
        let rest = |t: &Timed| t.wall.saturating_sub(t.phases.unwrap().ended);
        println!(
            "   {:52} {:>7.2} s | {:>6.2} s",
            "process start and exit",
            secs(median(cold.iter().map(rest).collect())),
            secs(median(warm.iter().map(rest).collect()))
        );
        let upload =
            secs(median(cold.iter().map(|t| t.phases.unwrap().uploaded - t.phases.unwrap().planned).collect()));
        println!("   upload rate: {:.0} MB/s ({:.2} GiB to {NODES} nodes)", input.bytes as f64 / upload / 1e6, gib);
        println!("\nCPU seconds in `zerolab run` (median; uploaded | cached):");
        let cpu = |label: &str, f: &dyn Fn(&Timed) -> f64| {
            println!("   {label:52} {:>7.1} s | {:>6.1} s", med_f(cold, f), med_f(warm, f));
        };
        cpu("the guests: maps (from their reports)", &|t| t.guest_cpu.0);
        cpu("the guests: reducers", &|t| t.guest_cpu.1);
        cpu("`zerolab run` itself (hashing, reading, sending)", &|t| t.cpu);
        for kind in ["keeper", "sshd", "agents"] {
            cpu(&format!("the lab's {kind}"), &|t| t.lab_cpu.get(kind).copied().unwrap_or(0.0));
        }
    }
}
