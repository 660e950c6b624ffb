//! The SSH module against a real OpenSSH sshd on 127.0.0.1 (one per test, temp config).
//! Needs root and OpenSSH's sshd (found on `PATH` or in an sbin directory); skips with a
//! message otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zerolab::ssh::{run_parallel, ConnectOptions, Error, HostKeys, Session, Target, Upload};

use crate::harness::{is_root, program};

const STEP: Duration = Duration::from_secs(30);

/// The sshd program when the tests can run here; otherwise says why they are skipped.
fn sshd() -> Option<PathBuf> {
    if !is_root() {
        eprintln!("skipped: the ssh tests need root (CI runs them as root)");
        return None;
    }
    program("the ssh tests", "sshd", "openssh-server")
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(path).status().unwrap();
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One sshd in a temp dir, killed on drop.
struct Sshd {
    program: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Sshd {
    fn start(program: PathBuf) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("client"));
        std::fs::copy(dir.path().join("client.pub"), dir.path().join("authorized_keys")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut sshd = Sshd { program, dir, port: free_port(), child: None };
        sshd.restart_with_new_host_key();
        sshd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn restart_with_new_host_key(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(self.path("host_key"));
        let _ = std::fs::remove_file(self.path("host_key.pub"));
        keygen(&self.path("host_key"));
        let d = self.dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             UsePAM no\nStrictModes no\nPidFile {d}/sshd.pid\nPasswordAuthentication no\n\
             KexAlgorithms curve25519-sha256\nMaxStartups 100\nMaxSessions 100\n",
            port = self.port
        );
        std::fs::write(self.path("sshd_config"), config).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        // A private mount namespace with an empty home over /root, so root's .bashrc
        // (which costs ~140 ms per command on these machines) is not measured.
        let script = format!("mount --bind {d}/home /root && exec {} -D -e -f {d}/sshd_config", self.program.display());
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(self.path("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn target(&self, node: &str) -> Target {
        Target {
            node: node.to_string(),
            address: "127.0.0.1".to_string(),
            port: self.port,
            user: "root".to_string(),
            key: self.path("client"),
        }
    }

    fn host_keys(&self) -> HostKeys {
        HostKeys::open(self.path("known_hosts")).unwrap()
    }

    async fn connect(&self) -> Session {
        Session::connect(&self.target("n1"), &self.host_keys(), &ConnectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", std::error::Error::source(&e), self.log()))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn exec_returns_output_and_status() {
    let Some(program) = sshd() else {
        return;
    };
    let sshd = Sshd::start(program);
    let session = sshd.connect().await;
    let out = session.exec("echo out; echo err >&2; exit 7", None, STEP).await.unwrap();
    assert_eq!((out.status, &out.stdout[..], &out.stderr[..]), (Some(7), &b"out\n"[..], &b"err\n"[..]));
    // Far more than one window (2 MiB), and stdin round-tripped.
    let big = session.exec("head -c 5000000 /dev/zero | tr '\\0' a", None, STEP).await.unwrap();
    assert!(big.success());
    assert_eq!(big.stdout.len(), 5_000_000);
    assert!(big.stdout.iter().all(|&b| b == b'a'));
    let input = vec![b'x'; 3_000_000];
    let echoed = session.exec("cat", Some(&input), STEP).await.unwrap();
    assert_eq!(echoed.stdout, input);
    let killed = session.exec("kill -9 $$", None, STEP).await.unwrap();
    assert_eq!(killed.status, None);
    assert!(killed.signal.is_some());
    let err = session.exec("sleep 5", None, Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // Still usable after a timed-out step.
    assert!(session.exec("true", None, STEP).await.unwrap().success());

    let start = Instant::now();
    for _ in 0..50 {
        assert!(session.exec("true", None, STEP).await.unwrap().success());
    }
    let elapsed = start.elapsed();
    eprintln!("50 sequential execs over one connection: {elapsed:?}");
    // About 0.4 s here; without quick ACKs sshd's Nagle stalls made it 2.5 s.
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    session.close().await.unwrap();
}

#[tokio::test]
async fn upload_streams_verifies_and_skips_the_same_file() {
    let Some(program) = sshd() else {
        return;
    };
    let sshd = Sshd::start(program);
    let session = sshd.connect().await;
    let local = sshd.path("agent");
    let content: Vec<u8> = (0..20_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&local, &content).unwrap();
    let remote = sshd.path("remote/bin/agent");
    let remote = remote.to_str().unwrap();
    let start = Instant::now();
    assert_eq!(session.upload(&local, remote, 0o755, STEP).await.unwrap(), Upload::Copied);
    eprintln!("20 MB upload: {:?}", start.elapsed());
    assert!(std::fs::read(remote).unwrap() == content);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(remote).unwrap().permissions().mode() & 0o777, 0o755);
    assert_eq!(session.upload(&local, remote, 0o755, STEP).await.unwrap(), Upload::Skipped);
    let leftovers = std::fs::read_dir(sshd.path("remote/bin")).unwrap().count();
    assert_eq!(leftovers, 1);
}

#[tokio::test]
async fn changed_host_key_is_a_hard_error_with_the_fix() {
    let Some(program) = sshd() else {
        return;
    };
    let mut sshd = Sshd::start(program);
    sshd.connect().await.close().await.unwrap();
    let pinned = sshd.host_keys().pinned("n1").unwrap();
    sshd.restart_with_new_host_key();
    let result = Session::connect(&sshd.target("n1"), &sshd.host_keys(), &ConnectOptions::default()).await;
    let err = result.err().expect("connect must fail");
    let msg = err.to_string();
    assert!(matches!(err, Error::HostKeyChanged { .. }), "{msg}");
    assert!(msg.contains("node n1") && msg.contains("known_hosts") && msg.contains("zerolab down"), "{msg}");
    assert_eq!(sshd.host_keys().pinned("n1").unwrap(), pinned);
}

#[tokio::test]
async fn wrong_client_key_is_an_auth_error() {
    let Some(program) = sshd() else {
        return;
    };
    let sshd = Sshd::start(program);
    keygen(&sshd.path("stranger"));
    let mut target = sshd.target("n1");
    target.key = sshd.path("stranger");
    let err = Session::connect(&target, &sshd.host_keys(), &ConnectOptions::default()).await.err().unwrap();
    assert!(matches!(err, Error::AuthRejected { .. }), "{err}");
    assert!(err.to_string().contains("node n1"), "{err}");
}

#[tokio::test]
async fn closed_port_retries_then_is_unreachable() {
    if sshd().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    keygen(&dir.path().join("client"));
    let target = Target {
        node: "n9".into(),
        address: "127.0.0.1".into(),
        port: free_port(),
        user: "root".into(),
        key: dir.path().join("client"),
    };
    let options = ConnectOptions { retries: 3, backoff: Duration::from_millis(100), ..Default::default() };
    let start = Instant::now();
    let hk = HostKeys::open(dir.path().join("known_hosts")).unwrap();
    let err = Session::connect(&target, &hk, &options).await.err().unwrap();
    let elapsed = start.elapsed();
    assert!(matches!(err, Error::Unreachable { attempts: 4, .. }), "{err}");
    assert!(err.to_string().contains("node n9: unreachable"), "{err}");
    // Backoff 100 + 200 + 400 ms.
    assert!(elapsed >= Duration::from_millis(700) && elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn streamlocal_reaches_a_unix_socket_on_the_node() {
    let Some(program) = sshd() else {
        return;
    };
    let sshd = Sshd::start(program);
    let socket = sshd.path("echo.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0; 1024];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).await.unwrap();
        }
    });
    let session = sshd.connect().await;
    let mut stream = session.open_streamlocal(socket.to_str().unwrap()).await.unwrap();
    stream.write_all(b"ping\n").await.unwrap();
    let mut reply = [0; 5];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"ping\n");
    let err = session.open_streamlocal("/nonexistent.sock").await.err().unwrap();
    assert!(matches!(err, Error::Ssh { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_execs_report_per_node() {
    let Some(program) = sshd() else {
        return;
    };
    let sshd = Sshd::start(program);
    let mut targets: Vec<Target> = (0..20).map(|i| sshd.target(&format!("n{i}"))).collect();
    targets[3].key = sshd.path("missing-key");
    let host_keys = sshd.host_keys();
    let start = Instant::now();
    let results = run_parallel(&targets, 20, move |target| {
        let host_keys = host_keys.clone();
        async move {
            let session = Session::connect(&target, &host_keys, &ConnectOptions::default()).await?;
            let out = session.exec("echo $((6 * 7))", None, STEP).await?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
    })
    .await;
    eprintln!("20 parallel connect + exec: {:?}", start.elapsed());
    assert_eq!(results.len(), 20);
    for (i, (node, result)) in results.iter().enumerate() {
        assert_eq!(node, &format!("n{i}"));
        match result {
            Ok(out) => assert_eq!(out, "42"),
            Err(e) => {
                assert_eq!(i, 3, "{e}");
                assert!(matches!(e, Error::Key { .. }), "{e}");
            }
        }
    }
    // Pinned concurrently: one line per connected node, none lost or doubled.
    let pins = std::fs::read_to_string(sshd.path("known_hosts")).unwrap();
    assert_eq!(pins.lines().count(), 19, "{pins}");
}
