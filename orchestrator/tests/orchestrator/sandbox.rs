//! `zerolab sandbox run` for real on a 3-node `netns` lab: a guest built with
//! `zvm-gcc` uploaded to node-2's agent, run there, its output streamed back and its
//! exit code (or ZeroVM's return code) returned. Needs root, gcc and a built
//! `zerolab-agent` (as `up`); without them the test says it was skipped.

use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::harness::{prerequisites, zvm_gcc, LabHarness, Subnet};

#[test]
fn sandbox_run_streams_a_guest_from_node_2_and_returns_its_code() {
    let Some(agent) = prerequisites("zerolab sandbox run") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Sandbox, agent.clone());
    let hello = lab.path("hello");
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples/hello.c")), &hello);
    let args = lab.path("args.c");
    fs::write(
        &args,
        "#include <zvm.h>\nint main(int argc, char **argv) {\n\
         for (int i = 0; i < argc; i++) { zvm_puts(1, argv[i]); zvm_puts(1, \"\\n\"); }\n\
         zvm_puts(2, \"bye\\n\");\nreturn argc;\n}\n",
    )
    .unwrap();
    let args_guest = lab.path("args");
    zvm_gcc(&args, &args_guest);
    let hello = hello.to_str().unwrap();

    // Before `up`: the lab is not up, said in one line.
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", hello]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
    assert_eq!(run.stderr, format!("zerolab: lab {} is not up; run `zerolab up` first\n", lab.cluster.name()));

    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");

    let started = Instant::now();
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", hello]);
    eprintln!("sandbox run hello on node-2: {:?}", started.elapsed());
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "Hello, World!\n", ""), "{run:#?}");

    // Arguments (also ones that look like options) reach the guest after its name; its
    // exit code is ours, with the report on stderr since it is not 0.
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", args_guest.to_str().unwrap(), "-x", "two words"]);
    assert_eq!(run.code, 3, "{run:#?}");
    assert_eq!(run.stdout, "args\n-x\ntwo words\n");
    assert!(run.stderr.starts_with("bye\n"), "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 7, "bye and the six-line report: {run:#?}");
    assert_eq!(run.stderr.lines().nth(3), Some("3"), "user return code: {run:#?}");

    // Not a guest (the agent's own binary, a native program): ZeroVM's return code for an
    // invalid program, with the report.
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", agent.to_str().unwrap()]);
    assert_eq!(run.code, 8, "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 6, "{run:#?}");

    // A node that does not exist names the ones that do.
    let run = lab.zerolab(&["sandbox", "run"], &["node-9", hello]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(
        run.stderr,
        "zerolab: no node named `node-9`; expected one of `node-1`, `node-2`, `node-3` (did you mean `node-1`?)\n"
    );
}

#[test]
fn sandbox_run_gives_the_guest_its_stdin() {
    let Some(agent) = prerequisites("zerolab sandbox run with stdin") else {
        return;
    };
    let lab = LabHarness::new(Subnet::SandboxStdin, agent);
    let cat = lab.path("cat");
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples/cat.c")), &cat);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");

    let piped = |input: &[u8]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_zerolab"))
            .args(["sandbox", "run"])
            .arg(&lab.file)
            .arg("--lab-root")
            .arg(lab.root())
            .args(["node-1", cat.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out
    };
    // `echo hi | zerolab sandbox run FILE node-1 cat`
    let out = piped(b"hi\n");
    assert_eq!(
        (out.status.code(), out.stdout.as_slice(), String::from_utf8_lossy(&out.stderr).as_ref()),
        (Some(0), b"hi\n".as_slice(), ""),
        "{out:?}"
    );
    // A few MiB of binary arrive unchanged; nothing is left in the lab's directory.
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let out = piped(&data);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == data, "cat changed the data: {} bytes in, {} out", data.len(), out.stdout.len());
    let lab_dir = lab.root().join(lab.cluster.name());
    let spools: Vec<_> = fs::read_dir(&lab_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".spool"))
        .collect();
    assert!(spools.is_empty(), "spools left in {}: {spools:?}", lab_dir.display());
    // An empty stdin (not a terminal) is an empty /dev/stdin.
    let out = piped(b"");
    assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(0), b"".as_slice()), "{out:?}");
}
