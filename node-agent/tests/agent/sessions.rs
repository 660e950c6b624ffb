//! Sessions without channels: the API, uploads, running, killing, and
//! bad or abandoned connections on the socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use zerolab_agent::api;

use crate::harness::{guest, Agent};

#[tokio::test]
async fn answers_health_version_and_facts_on_a_private_socket() {
    let agent = Agent::start().await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.socket), 0o600);
    assert_eq!(mode(agent.socket.parent().unwrap()), 0o700);

    let (_, v) = agent.json(Method::GET, "/v1/health", None).await;
    assert_eq!((&v["status"], &v["refused_channel_connections"]), (&json!("ok"), &json!(0)));
    assert_eq!((&v["store"]["blobs"], &v["store"]["sessions_live"]), (&json!(0), &json!(0)), "{v}");
    let (_, v) = agent.json(Method::GET, "/v1/version", None).await;
    let version: api::Version = serde_json::from_value(v).unwrap();
    let exe = std::fs::read(env!("CARGO_BIN_EXE_zerolab-agent")).unwrap();
    assert_eq!(version.build, zerolab_agent::api::Sha256::of_bytes(&exe).to_string());
    assert_eq!(version.version, env!("CARGO_PKG_VERSION"));
    let (_, v) = agent.json(Method::GET, "/v1/facts", None).await;
    let facts: api::Facts = serde_json::from_value(v).unwrap();
    assert!(facts.cpus >= 1 && facts.memory_bytes > 0 && !facts.kernel.is_empty(), "{facts:?}");
    assert!(facts.channel_port.is_some_and(|p| p != 0 && p == agent.channel_port), "{facts:?}");
}

#[tokio::test]
async fn runs_hello_and_reports_ok() {
    let agent = Agent::start().await;
    let program = agent.upload(guest("sandbox/guest/examples/hello.c")).await;
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
    let missing = zerolab_agent::api::Sha256::of_bytes(b"some bytes");
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{missing}"), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "HEAD says what the node lacks");
    let name = agent.upload(b"some bytes".to_vec()).await;
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{name}"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "and what it has");
    let (status, _) = agent.call(Method::HEAD, "/v1/blobs/not-a-hash", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
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
    let program = agent.upload(guest("sandbox/tests/guests/loop.c")).await;
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
    let program = agent.upload(guest("sandbox/guest/examples/hello.c")).await;
    let runs = (0..10).map(|_| {
        let agent = std::sync::Arc::clone(&agent);
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
    let program = agent.upload(guest("sandbox/guest/examples/hello.c")).await;
    // Connections that never send a byte, held open the whole time.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::UnixStream::connect(&agent.socket).await.unwrap());
    }
    let lost = zerolab_agent::api::Sha256::of_bytes(b"never sent in full");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let agent = std::sync::Arc::clone(&agent);
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
