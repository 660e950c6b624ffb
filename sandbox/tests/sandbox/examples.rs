//! The example jobs' guests (`examples/wordcount`: map and reduce; `examples/pipeline`:
//! producer, filter and sink) wired the way their jobs wire them, on one machine and
//! without the network: every guest is a concurrent `zvsh --manifest` run, every channel
//! between two guests a FIFO under the alias a job gives it (`/dev/out/reduce`,
//! `/dev/in/map-2`, ...). Wordcount's output is compared with the host's
//! `tr -s ' ' '\n' | sort | uniq -c` under `LC_ALL=C`; the pipeline's checksum with the
//! stream computed here.
//!
//! FIFOs and start-up order: zvsh opens a write-only FIFO channel only once a reader has
//! it open (it waits for one until `Timeout`), and a guest that opens a FIFO before any
//! writer reads end of data at once. So the test holds every FIFO open at both ends
//! itself ([`Fifo`]): the guests open theirs in any order, and the test closes its write
//! end once the guest writing that FIFO has exited, so the reader sees end of data
//! exactly when its writer is done.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::stat::Mode;

use crate::harness::{guest, python_tar, Lab, Limits, Manifest, Outcome};

/// Memory for the guests, as in `examples/wordcount/job.yaml`.
const MEMORY: u64 = 64 << 20;
/// Map memory small enough that the map's word table fills up and is sent in parts.
const SMALL_MAP_MEMORY: u64 = 4 << 20;

/// A FIFO in the lab that the test holds open at both ends (see the module doc).
struct Fifo {
    path: PathBuf,
    _reading: File,
    writing: Option<File>,
}

fn fifo(lab: &Lab, name: &str) -> Fifo {
    let path = lab.path(name);
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // Non-blocking, so the open does not wait for a writer; then the write end opens at once.
    let reading = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).expect("open FIFO to read");
    let writing = OpenOptions::new().write(true).open(&path).expect("open FIFO to write");
    Fifo { path, _reading: reading, writing: Some(writing) }
}

/// One guest of a wiring: its manifest and the FIFOs it writes (indices into the wiring's).
struct Run {
    name: String,
    manifest: Manifest,
    writes: Vec<usize>,
}

/// Runs every guest at once and waits for all; the test's write end of each FIFO is
/// closed when the guest that writes it exits. Panics, showing the guest's stderr,
/// unless each exited by itself with 0.
fn run_wired(lab: &Lab, mut fifos: Vec<Fifo>, runs: Vec<Run>) {
    let outcomes: Vec<(String, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| {
                let held: Vec<File> =
                    run.writes.iter().map(|&i| fifos[i].writing.take().expect("one writer per FIFO")).collect();
                s.spawn(move || {
                    let out = lab.run(&run.manifest);
                    drop(held);
                    (run.name, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("zvsh thread")).collect()
    });
    for (name, out) in &outcomes {
        expect_ok(lab, name, out);
    }
}

#[track_caller]
fn expect_ok(lab: &Lab, name: &str, out: &Outcome) {
    let stderr = std::fs::read(lab.path(&format!("{name}.err"))).unwrap_or_default();
    let report = (out.code == 0).then(|| out.report());
    assert!(
        report.as_ref().is_some_and(|r| r.exit_state == "ok" && r.user_code == 0),
        "{name} failed\n{out}\n--- its /dev/stderr\n{}",
        String::from_utf8_lossy(&stderr)
    );
}

/// A manifest for guest `program` run as `name`: `/dev/stdin` reads `stdin` (or
/// `/dev/null`), `/dev/stdout` and `/dev/stderr` write `NAME.out` and `NAME.err` here.
fn manifest(lab: &Lab, program: &str, name: &str, memory: u64, stdin: Option<&Path>) -> Manifest {
    Manifest::new(guest(program))
        .memory(memory)
        .timeout(20)
        .channel(stdin.unwrap_or(Path::new("/dev/null")), "/dev/stdin", 0, Limits::READ_ONLY)
        .channel(lab.path(&format!("{name}.out")), "/dev/stdout", 0, Limits::WRITE_ONLY)
        .channel(lab.path(&format!("{name}.err")), "/dev/stderr", 0, Limits::WRITE_ONLY)
}

/// ZeroCloud's instance names: the bare group name for one instance, else `NAME-1` ... `NAME-N`.
fn instances(group: &str, count: usize) -> Vec<String> {
    if count == 1 {
        vec![group.to_string()]
    } else {
        (1..=count).map(|i| format!("{group}-{i}")).collect()
    }
}

/// Runs the wordcount job over FIFOs: one map per part (reading it on stdin), `reducers`
/// reducers, every map connected to every reducer. Returns each reducer's stdout.
fn wordcount(lab: &Lab, parts: &[PathBuf], reducers: usize, map_memory: u64) -> Vec<Vec<u8>> {
    let maps = instances("map", parts.len());
    let reduces = instances("reduce", reducers);
    let mut fifos = Vec::new();
    let mut map_runs: Vec<Run> = maps
        .iter()
        .zip(parts)
        .map(|(m, part)| Run {
            name: m.clone(),
            manifest: manifest(lab, "map", m, map_memory, Some(part)),
            writes: vec![],
        })
        .collect();
    let mut reduce_runs: Vec<Run> = reduces
        .iter()
        .map(|r| Run { name: r.clone(), manifest: manifest(lab, "reduce", r, MEMORY, None), writes: vec![] })
        .collect();
    for (mi, m) in maps.iter().enumerate() {
        for (ri, r) in reduces.iter().enumerate() {
            let f = fifo(lab, &format!("{m}-to-{r}.fifo"));
            let map = &mut map_runs[mi];
            map.manifest = map.manifest.clone().channel(&f.path, &format!("/dev/out/{r}"), 0, Limits::WRITE_ONLY);
            map.writes.push(fifos.len());
            let red = &mut reduce_runs[ri];
            red.manifest = red.manifest.clone().channel(&f.path, &format!("/dev/in/{m}"), 0, Limits::READ_ONLY);
            fifos.push(f);
        }
    }
    map_runs.extend(reduce_runs);
    run_wired(lab, fifos, map_runs);
    reduces.iter().map(|r| lab.read(&format!("{r}.out"))).collect()
}

/// What the host's `tr -s ' ' '\n' < FILE | sort | uniq -c` prints under `LC_ALL=C`.
fn tr_sort_uniq(file: &Path) -> Vec<u8> {
    host_sh(r#"tr -s ' ' '\n' < "$1" | sort | uniq -c"#, file)
}

/// Runs a shell command with `LC_ALL=C` and `$1` = `file`; returns its stdout.
fn host_sh(script: &str, file: &Path) -> Vec<u8> {
    let out = Command::new("sh").args(["-c", script, "sh"]).arg(file).env("LC_ALL", "C").output().expect("run sh");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[track_caller]
fn assert_same_text(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let (g, w) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
        let first =
            g.lines().zip(w.lines()).position(|(a, b)| a != b).unwrap_or(g.lines().count().min(w.lines().count()));
        panic!(
            "{what}: {} bytes, {} lines; expected {} bytes, {} lines; first difference at line {}:\n  got      {:?}\n  expected {:?}",
            got.len(),
            g.lines().count(),
            want.len(),
            w.lines().count(),
            first + 1,
            g.lines().nth(first),
            w.lines().nth(first)
        );
    }
}

/// xorshift64*, for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Word number `i` of the test vocabulary: 1 to 12 bytes, mostly lower-case letters,
/// sometimes a tab, CR, NUL or a byte above 0x7f.
fn word(i: u64) -> Vec<u8> {
    let mut r = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let len = 1 + r.below(12);
    (0..len)
        .map(|_| if r.below(16) == 0 { b"\t\r\0\xff\xc3Z9"[r.below(7) as usize] } else { b'a' + r.below(26) as u8 })
        .collect()
}

/// About `bytes` of text: lines of 1 to 15 words drawn from a vocabulary of `vocabulary`
/// words (skewed towards the first), one to three spaces apart, with trailing spaces and
/// runs of empty lines here and there. Starts with a word, ends with a newline.
fn text(bytes: usize, vocabulary: u64, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut out = Vec::with_capacity(bytes + 200);
    while out.len() < bytes {
        for k in 0..1 + r.below(15) {
            if k > 0 {
                out.resize(out.len() + 1 + r.below(3) as usize, b' ');
            }
            let skew = 1 + r.below(vocabulary);
            out.extend(word(r.below(skew)));
        }
        match r.below(20) {
            0 => out.extend(b"  \n"),
            1 => out.extend(b"\n\n\n"),
            _ => out.push(b'\n'),
        }
    }
    out
}

/// Input that covers what `tr -s ' ' '\n'` does at the edges: leading spaces (an empty
/// first line), empty lines, lines of spaces, trailing spaces, tabs, CRs, NULs, bytes
/// above 0x7f, a word longer than any read or write buffer (3 MiB, twice), and a last
/// line without a newline.
fn edge_cases() -> Vec<u8> {
    let mut t = b"  leading spaces\n\n\nempty lines above\n   \n\n".to_vec();
    t.extend(b"trailing spaces   \n tab\there cr\r\n nul\0byte high\xff\xc3\xa9 \n a a a b  b\n");
    let long: Vec<u8> = (0..3u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    t.extend(&long);
    t.push(b' ');
    t.extend(&long);
    t.push(b'\n');
    t.extend(text(300_000, 2_000, 3));
    t.extend(b"the last line has no newline");
    t
}

/// Splits text into `n` parts at line ends where the next line starts with a word, so
/// that counting the parts' words one by one counts the words of the whole.
fn split(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for k in 1..n {
        let mut cut = text.len() * k / n;
        while text[cut - 1] != b'\n' || matches!(text[cut], b' ' | b'\n') {
            cut += 1;
        }
        parts.push(&text[start..cut]);
        start = cut;
    }
    parts.push(&text[start..]);
    parts
}

#[test]
fn wordcount_one_map_one_reduce_over_a_fifo_equals_tr_sort_uniq_at_the_edges() {
    let lab = Lab::new();
    let input = lab.write("input", edge_cases());
    let out = wordcount(&lab, std::slice::from_ref(&input), 1, MEMORY);
    assert_same_text(&out[0], &tr_sort_uniq(&input), "reduce's output");
}

#[test]
fn wordcount_three_maps_one_reduce_over_fifos_equals_tr_sort_uniq() {
    let lab = Lab::new();
    let all = text(6 << 20, 60_000, 11);
    let input = lab.write("input", &all);
    let parts: Vec<PathBuf> =
        split(&all, 3).iter().enumerate().map(|(i, p)| lab.write(&format!("part-{}", i + 1), p)).collect();
    // Little map memory: every map sends its counts in several rounds, blocking on the
    // FIFO while the reducer reads another map's, as it must without deadlocking.
    let out = wordcount(&lab, &parts, 1, SMALL_MAP_MEMORY);
    assert_same_text(&out[0], &tr_sort_uniq(&input), "reduce's output");
}

#[test]
fn wordcount_two_reducers_own_disjoint_words_and_sort_k2_of_both_equals_tr_sort_uniq() {
    let lab = Lab::new();
    let all = text(4 << 20, 60_000, 12);
    let input = lab.write("input", &all);
    let parts: Vec<PathBuf> =
        split(&all, 3).iter().enumerate().map(|(i, p)| lab.write(&format!("part-{}", i + 1), p)).collect();
    let outs = wordcount(&lab, &parts, 2, SMALL_MAP_MEMORY);

    let words = |out: &[u8]| -> Vec<Vec<u8>> {
        out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| l[8..].to_vec()).collect()
    };
    let (one, two) = (words(&outs[0]), words(&outs[1]));
    assert!(one.len() > 1000 && two.len() > 1000, "an uneven split: {} and {} words", one.len(), two.len());
    for w in [&one, &two] {
        assert!(w.windows(2).all(|p| p[0] < p[1]), "a reducer's words are not in byte order");
    }
    let two: std::collections::BTreeSet<_> = two.into_iter().collect();
    assert!(one.iter().all(|w| !two.contains(w)), "a word went to both reducers");

    // docs/job.md: the outputs concatenated, then `sort -k2`.
    let both = lab.write("both", [outs[0].as_slice(), outs[1].as_slice()].concat());
    assert_same_text(&host_sh(r#"sort -k2 "$1""#, &both), &tr_sort_uniq(&input), "sort -k2 of both reducers");
}

#[test]
fn map_with_little_memory_sends_partial_counts_that_reduce_adds_up() {
    let lab = Lab::new();
    let input = lab.write("input", text(2 << 20, 60_000, 13));
    let out = lab.run(&manifest(&lab, "map", "map", SMALL_MAP_MEMORY, Some(&input)));
    expect_ok(&lab, "map", &out);
    let sent = lab.read("map.out");
    let lines: Vec<&[u8]> = sent.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let distinct: std::collections::BTreeSet<&[u8]> =
        lines.iter().map(|l| &l[l.iter().position(|&b| b == b' ').expect("COUNT WORD") + 1..]).collect();
    assert!(
        lines.len() > distinct.len(),
        "{} lines for {} words: the table never filled up",
        lines.len(),
        distinct.len()
    );

    let reduced = lab.zvsh().arg(guest("reduce")).stdin(sent).run().expect_code(0);
    assert_same_text(&reduced.stdout, &tr_sort_uniq(&input), "reduce's output");
}

#[test]
fn map_piped_into_reduce_under_zvsh_uses_stdin_and_stdout() {
    let lab = Lab::new();
    let input = lab.write("input", b" the quick brown fox\njumps over the lazy dog\n\nthe end");
    let mapped = lab.zvsh().arg(guest("map")).stdin(lab.read("input")).run().expect_code(0);
    let reduced = lab.zvsh().arg(guest("reduce")).stdin(mapped.stdout).run().expect_code(0);
    assert_same_text(&reduced.stdout, &tr_sort_uniq(&input), "reduce's output");
    assert_eq!(reduced.stdout().lines().next(), Some("      1 "), "the empty line tr makes of the leading space");
}

#[test]
fn map_fails_clearly_on_a_word_longer_than_its_memory() {
    let lab = Lab::new();
    let input = lab.write("input", vec![b'x'; 5 << 20]);
    let out = lab.run(&manifest(&lab, "map", "map", SMALL_MAP_MEMORY, Some(&input))).expect_code(0);
    assert_eq!(out.report().user_code, 3);
    let err = lab.read_string("map.err");
    assert!(
        err.starts_with("map: a word is longer than the ") && err.contains("give the map group more memory"),
        "{err}"
    );
}

#[test]
fn reduce_fails_clearly_when_its_words_do_not_fit() {
    let lab = Lab::new();
    let counts: String = (0..200_000).map(|i| format!("1 word{i}\n")).collect();
    let input = lab.write("counts", counts);
    let out = lab.run(&manifest(&lab, "reduce", "reduce", 2 << 20, Some(&input))).expect_code(0);
    assert_eq!(out.report().user_code, 3);
    let err = lab.read_string("reduce.err");
    assert!(err.starts_with("reduce: more distinct words than fit in memory"), "{err}");
}

#[test]
fn reduce_refuses_input_that_is_not_count_lines() {
    let lab = Lab::new();
    for (input, why) in [
        ("2 ok\nnot a count\n", "a line that does not start with a count"),
        ("0 zero\n", "a line that does not start with a count above 0"),
        ("3 cut", "the data ends inside a line"),
        ("99999999999999999999 big\n", "a count too large"),
    ] {
        let out = lab.zvsh().arg(guest("reduce")).stdin(input).run().expect_code(4);
        assert!(out.stderr().starts_with(&format!("reduce: /dev/stdin: {why}")), "{input:?}: {}", out.stderr());
    }
}

/// The first `n` bytes of the pipeline's stream (examples/pipeline/stream.h).
fn stream(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend(x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The filter's transformation.
fn xor(data: &[u8]) -> Vec<u8> {
    data.iter().map(|b| b ^ 0x5a).collect()
}

/// The sink's line for `data`: "BYTES CHECKSUM\n" (examples/pipeline/stream.h).
fn sink_line(data: &[u8]) -> String {
    const PRIME: u64 = 0x100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in data.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(PRIME);
    }
    h = (h ^ data.len() as u64).wrapping_mul(PRIME);
    format!("{} {h:016x}\n", data.len())
}

#[test]
fn pipeline_streams_64_mib_over_fifos_to_the_expected_checksum() {
    let lab = Lab::new();
    let bytes = (64 << 20) + 5; // not a whole number of 64-bit words
    let fifos = vec![fifo(&lab, "producer-to-filter.fifo"), fifo(&lab, "filter-to-sink.fifo")];
    let producer = manifest(&lab, "producer", "producer", MEMORY, None)
        .channel(&fifos[0].path, "/dev/out/filter", 0, Limits::WRITE_ONLY)
        .args(["producer", "--bytes", &bytes.to_string()]);
    let filter = manifest(&lab, "filter", "filter", MEMORY, None)
        .channel(&fifos[0].path, "/dev/in/producer", 0, Limits::READ_ONLY)
        .channel(&fifos[1].path, "/dev/out/sink", 0, Limits::WRITE_ONLY);
    let sink =
        manifest(&lab, "sink", "sink", MEMORY, None).channel(&fifos[1].path, "/dev/in/filter", 0, Limits::READ_ONLY);
    let run = |name: &str, manifest, writes| Run { name: name.to_string(), manifest, writes };
    run_wired(
        &lab,
        fifos,
        vec![run("producer", producer, vec![0]), run("filter", filter, vec![1]), run("sink", sink, vec![])],
    );
    assert_eq!(lab.read_string("sink.out"), sink_line(&xor(&stream(bytes))));
}

#[test]
fn pipeline_stages_alone_under_zvsh_make_the_documented_stream_xor_and_checksum() {
    let lab = Lab::new();
    // BYTES from the environment; the stream's definition, byte for byte.
    let m = manifest(&lab, "producer", "producer", MEMORY, None).env("BYTES", "1003");
    expect_ok(&lab, "producer", &lab.run(&m));
    let produced = lab.read("producer.out");
    assert!(produced == stream(1003), "producer's 1003 bytes differ from stream.h's definition");

    let filtered = lab.zvsh().arg(guest("filter")).stdin(produced.clone()).run().expect_code(0);
    assert!(filtered.stdout == xor(&produced), "filter did not XOR every byte with 0x5a");
    let summed = lab.zvsh().arg(guest("sink")).stdin(filtered.stdout.clone()).run().expect_code(0);
    assert_eq!(summed.stdout(), sink_line(&filtered.stdout));
    assert_eq!(lab.zvsh().arg(guest("sink")).run().expect_code(0).stdout(), sink_line(b""));

    let bad = lab.zvsh().args([guest("producer").to_str().unwrap(), "--bytes", "lots"]).run().expect_code(2);
    assert!(bad.stderr().starts_with("producer: --bytes takes a number of bytes\nusage: "), "{}", bad.stderr());
}

/// `examples/wordcount-python`'s map.py on each part and reduce.py on their
/// output, through zvsh with CPython's image (the job's `/dev/out` and `/dev/in`
/// absent: stdout to stdin), give what the C map and reduce give over FIFOs.
#[test]
fn wordcount_python_equals_the_c_wordcount() {
    let lab = Lab::new();
    let mut all = edge_cases();
    all.extend(text(1 << 20, 20_000, 5));
    let parts: Vec<PathBuf> =
        split(&all, 3).iter().enumerate().map(|(i, p)| lab.write(&format!("part-{}", i + 1), p)).collect();
    let script = |name: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wordcount-python").join(name);
    let python = |script: PathBuf, stdin: Vec<u8>| {
        let out = lab.zvsh().arg("--zvm-image").arg(python_tar()).arg("python").arg(format!("@{}", script.display()));
        let out = out.stdin(stdin).run();
        assert_eq!(out.code, 0, "{}", out.stderr());
        out.stdout
    };
    let mapped: Vec<u8> = parts.iter().flat_map(|p| python(script("map.py"), std::fs::read(p).unwrap())).collect();
    let reduced = python(script("reduce.py"), mapped);
    assert_same_text(&reduced, &wordcount(&lab, &parts, 1, MEMORY)[0], "reduce.py's output");
}
