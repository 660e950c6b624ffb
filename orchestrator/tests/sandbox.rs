//! `zerolab sandbox run` for real on a 3-node `netns` lab: a guest built with
//! `zvm-gcc` uploaded to node-2's agent, run there, its output streamed back and its
//! exit code (or ZeroVM's return code) returned. Needs root, gcc and a built
//! `zerolab-agent` (as tests/up.rs); without them the test says it was skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use zerolab::cluster::Cluster;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `target/<profile>/zerolab-agent`, beside this test's `target/<profile>/deps/`.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("zerolab-agent");
    path.is_file().then_some(path)
}

/// Builds the guest `source` (C) with sandbox/guest/zvm-gcc into `out`.
fn zvm_gcc(source: &Path, out: &Path) {
    let zvm_gcc = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/zvm-gcc");
    let status = Command::new(zvm_gcc).arg("-O2").arg(source).arg("-o").arg(out).status().unwrap();
    assert!(status.success(), "zvm-gcc {}", source.display());
}

/// A temp dir holding the cluster file and the lab root; takes the lab down on drop.
struct Harness {
    dir: tempfile::TempDir,
    file: PathBuf,
    cluster: Cluster,
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Harness {
    /// examples/netns-3.yaml as lab `sb<x>` on subnet 10.77.<x>.0/24.
    fn new(x: u8) -> Harness {
        let text = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/netns-3.yaml")).unwrap();
        let text = text
            .replace("name: netns-3\n", &format!("name: sb{x}\n"))
            .replace("10.77.0.0/24", &format!("10.77.{x}.0/24"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.yaml");
        fs::write(&file, &text).unwrap();
        let cluster = Cluster::from_str(&text, "lab.yaml").unwrap();
        Harness { dir, file, cluster }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `zerolab COMMAND... FILE --lab-root ROOT ARGS...`.
    fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
            .args(command)
            .arg(&self.file)
            .arg("--lab-root")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap();
        Run {
            code: output.status.code().expect("an exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Err(e) = zerolab::up::down(&self.root(), &self.cluster) {
            eprintln!("cleanup: {e}");
        }
    }
}

#[test]
fn sandbox_run_streams_a_guest_from_node_2_and_returns_its_code() {
    if !is_root() {
        eprintln!("skipped: zerolab sandbox run on a netns lab needs root (CI runs it as root)");
        return;
    }
    let Some(agent) = agent_binary() else {
        eprintln!("skipped: no zerolab-agent beside the test binaries; run `cargo build --release -p zerolab-agent`");
        return;
    };
    let lab = Harness::new(131);
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

    // Before `up`: the node is not ready, said in one line.
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", hello]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
    assert_eq!(run.stderr, "zerolab: node node-2 is not ready; run `zerolab up` first\n");

    let run = lab.zerolab(&["up"], &["--agent", agent.to_str().unwrap()]);
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

    // Not a guest: ZeroVM's return code for an invalid program, with the report.
    let run = lab.zerolab(&["sandbox", "run"], &["node-2", "/bin/sh"]);
    assert_eq!(run.code, 8, "{run:#?}");
    assert_eq!(run.stderr.lines().count(), 6, "{run:#?}");

    // A node that does not exist names the ones that do.
    let run = lab.zerolab(&["sandbox", "run"], &["node-9", hello]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(run.stderr, "zerolab: no node named `node-9`; expected one of: node-1, node-2, node-3\n");
}
