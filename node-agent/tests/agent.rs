//! The `zerolab-agent` binary end to end: each test starts the real daemon on
//! a Unix socket in its own temp dir and talks HTTP/1.1 to it over that
//! socket, the way the orchestrator does through an SSH streamlocal channel.
//!
//! Guests are built once per run with `sandbox/guest/zvm-gcc`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use zerolab_agent::api;

/// A running agent; killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts the binary and waits until it answers a health check.
    async fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/agent.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_zerolab-agent"))
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .unwrap();
        let agent = Agent { child, socket, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::UnixStream::connect(&agent.socket).await.is_ok() {
                let (status, _) = agent.call(Method::GET, "/v1/health", Vec::new()).await;
                assert_eq!(status, StatusCode::OK);
                return agent;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(agent._dir.path().join("agent.log")).unwrap_or_default();
                panic!("agent did not start listening; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One request on a fresh connection.
    async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "agent")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, bytes) = self.call(method, path, body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// Uploads `bytes`; returns their sha256.
    async fn upload(&self, bytes: Vec<u8>) -> String {
        let name = zerolab_agent::blobs::sha256_hex(&bytes);
        let (status, body) = self.call(Method::PUT, &format!("/v1/blobs/{name}"), bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        name
    }

    async fn start_session(&self, req: &api::SessionRequest) -> String {
        let (status, v) = self.json(Method::POST, "/v1/sessions", Some(serde_json::to_value(req).unwrap())).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        serde_json::from_value::<api::SessionCreated>(v).unwrap().id
    }

    /// Polls until the session is done; returns its report.
    async fn wait(&self, id: &str) -> api::Report {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, v) = self.json(Method::GET, &format!("/v1/sessions/{id}"), None).await;
            assert_eq!(status, StatusCode::OK, "{v}");
            let s: api::SessionStatus = serde_json::from_value(v).unwrap();
            if let Some(r) = s.report {
                assert_eq!(s.state, api::SessionState::Done);
                return r;
            }
            assert!(Instant::now() < deadline, "session {id} never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stdout(&self, id: &str) -> String {
        let (status, bytes) = self.call(Method::GET, &format!("/v1/sessions/{id}/stdout"), Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8(bytes).unwrap()
    }
}

fn sandbox_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox")
}

/// The guest built from `src` (relative to `sandbox/`), compiled once per run.
fn guest(src: &str) -> Vec<u8> {
    static BUILT: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    let stem = Path::new(src).file_stem().unwrap().to_string_lossy().into_owned();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("agent-guest-{stem}"));
    if !out.exists() {
        let status = Command::new(sandbox_dir().join("guest/zvm-gcc"))
            .arg("-O2")
            .arg(sandbox_dir().join(src))
            .arg("-o")
            .arg(&out)
            .status()
            .expect("cannot run sandbox/guest/zvm-gcc; install gcc, binutils and libc6-dev");
        assert!(status.success(), "zvm-gcc failed on {src}");
    }
    std::fs::read(&out).unwrap()
}

#[tokio::test]
async fn answers_health_version_and_facts_on_a_private_socket() {
    let agent = Agent::start().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.socket), 0o600);
    assert_eq!(mode(agent.socket.parent().unwrap()), 0o700);

    let (_, v) = agent.json(Method::GET, "/v1/health", None).await;
    assert_eq!(v, json!({"status": "ok"}));
    let (_, v) = agent.json(Method::GET, "/v1/version", None).await;
    let version: api::Version = serde_json::from_value(v).unwrap();
    let exe = std::fs::read(env!("CARGO_BIN_EXE_zerolab-agent")).unwrap();
    assert_eq!(version.build, zerolab_agent::blobs::sha256_hex(&exe));
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
    let (_, v) = agent.json(Method::GET, "/v1/facts", None).await;
    let facts: api::Facts = serde_json::from_value(v).unwrap();
    assert!(facts.cpus >= 1 && facts.memory_bytes > 0 && !facts.kernel.is_empty(), "{facts:?}");
}

#[tokio::test]
async fn runs_hello_and_reports_ok() {
    let agent = Agent::start().await;
    let program = agent.upload(guest("guest/examples/hello.c")).await;
    let id = agent.start_session(&api::SessionRequest::new(program)).await;
    let report = agent.wait(&id).await;
    assert_eq!(report.exit_state, "ok", "{report:?}");
    assert_eq!(report.return_code, 0);
    assert_eq!(report.user_code, 0);
    assert_eq!(report.text.lines().count(), 6, "{}", report.text);
    assert_eq!(agent.stdout(&id).await, "Hello, World!\n");

    let (_, v) = agent.json(Method::GET, "/v1/sessions", None).await;
    let list: api::SessionList = serde_json::from_value(v).unwrap();
    assert_eq!(list.sessions.len(), 1);
    assert_eq!(list.sessions[0].exit_state.as_deref(), Some("ok"));
}

#[tokio::test]
async fn uploads_are_checked_and_idempotent() {
    let agent = Agent::start().await;
    let name = agent.upload(b"some bytes".to_vec()).await;
    agent.upload(b"some bytes".to_vec()).await;
    let (status, v) = agent.json(Method::PUT, &format!("/v1/blobs/{name}"), Some(json!("other bytes"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("hashes to"), "{v}");
    let (status, _) = agent.call(Method::PUT, "/v1/blobs/not-a-hash", b"x".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_the_agent_keeps_serving() {
    let agent = Agent::start().await;
    let (status, bytes) = agent.call(Method::POST, "/v1/sessions", b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("bad session request"), "{v}");

    let (status, v) = agent.json(Method::POST, "/v1/sessions", Some(json!({"program": "a".repeat(64)}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("upload it"), "{v}");

    let (status, _) = agent.json(Method::POST, "/v1/sessions", Some(json!({"program": "../../bin/sh"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, v) = agent.json(Method::GET, "/v1/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    let (status, _) = agent.json(Method::GET, "/v1/health", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_session_is_404() {
    let agent = Agent::start().await;
    for (method, path) in [
        (Method::GET, "/v1/sessions/nope"),
        (Method::GET, "/v1/sessions/nope/stdout"),
        (Method::GET, "/v1/sessions/nope/stderr"),
        (Method::DELETE, "/v1/sessions/nope"),
    ] {
        let (status, v) = agent.json(method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains("no session"), "{v}");
    }
}

#[tokio::test]
async fn delete_kills_a_looping_guest() {
    let agent = Agent::start().await;
    let program = agent.upload(guest("tests/guests/loop.c")).await;
    let id = agent.start_session(&api::SessionRequest::new(program)).await;
    // Output so far is readable while the guest runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.stdout(&id).await != "started=1\n" {
        assert!(Instant::now() < deadline, "the loop guest never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, v) = agent.json(Method::DELETE, &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let report = agent.wait(&id).await;
    assert_eq!(report.exit_state, "killed", "{report:?}");
    assert_eq!(report.return_code, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_sessions_all_succeed() {
    let agent = std::sync::Arc::new(Agent::start().await);
    let program = agent.upload(guest("guest/examples/hello.c")).await;
    let runs = (0..10).map(|_| {
        let agent = std::sync::Arc::clone(&agent);
        let program = program.clone();
        tokio::spawn(async move {
            let id = agent.start_session(&api::SessionRequest::new(program)).await;
            (agent.wait(&id).await, agent.stdout(&id).await)
        })
    });
    let runs: Vec<_> = runs.collect();
    for run in runs {
        let (report, stdout) = run.await.unwrap();
        assert_eq!(report.exit_state, "ok", "{report:?}");
        assert_eq!(stdout, "Hello, World!\n");
    }
    let (_, v) = agent.json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(v["sessions"].as_array().unwrap().len(), 10);
}

/// Writes `bytes` on a fresh connection and reads until the agent closes it (or 10 s).
async fn raw(socket: &Path, bytes: &[u8], then_close: bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if then_close {
        return Vec::new();
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the agent never answered {:?}", String::from_utf8_lossy(bytes));
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_abandoned_and_idle_connections_amid_concurrent_sessions_leave_it_serving() {
    let agent = std::sync::Arc::new(Agent::start().await);
    let program = agent.upload(guest("guest/examples/hello.c")).await;
    // Connections that never send a byte, held open the whole time.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::UnixStream::connect(&agent.socket).await.unwrap());
    }
    let lost = zerolab_agent::blobs::sha256_hex(b"never sent in full");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let agent = std::sync::Arc::clone(&agent);
        let (program, lost) = (program.clone(), lost.clone());
        tasks.spawn(async move {
            // Not HTTP at all: 400, and the connection closed.
            let answer = raw(&agent.socket, b"\x00\xff not http\r\n\r\n", false).await;
            assert!(answer.starts_with(b"HTTP/1.1 400 "), "{}", String::from_utf8_lossy(&answer));
            // Bodies cut short by a client that goes away.
            let head = format!("PUT /v1/blobs/{lost} HTTP/1.1\r\nhost: a\r\ncontent-length: 1000000\r\n\r\nnever");
            raw(&agent.socket, head.as_bytes(), true).await;
            let head = "POST /v1/sessions HTTP/1.1\r\nhost: a\r\ncontent-length: 500\r\n\r\n{\"program\":";
            raw(&agent.socket, head.as_bytes(), true).await;
            // A bad request and a good session, side by side.
            let (status, _) = agent.call(Method::POST, "/v1/sessions", format!("[{i}]").into_bytes()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            let id = agent.start_session(&api::SessionRequest::new(program)).await;
            (agent.wait(&id).await, agent.stdout(&id).await)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (report, stdout) = joined.unwrap();
        assert_eq!((report.exit_state.as_str(), stdout.as_str()), ("ok", "Hello, World!\n"), "{report:?}");
    }
    drop(idle);
    // No half-uploaded blob was kept, and the agent still answers.
    let (status, v) = agent.json(Method::POST, "/v1/sessions", Some(json!({ "program": lost }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = agent.json(Method::GET, "/v1/health", None).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
}
