//! The agent cleans up after itself (issue 10, item 8): a finished session expires
//! after `--session-ttl` (its directory and outputs removed, its routes then answer
//! 410 Gone saying so), and past `--blob-store-limit` the least recently used blobs no
//! session uses are collected while the blobs of a live session stay. Small settings,
//! the real daemon.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use zerolab_agent::api::{self, ChannelDirection, ChannelPeer, ChannelSpec, Sha256};

use crate::harness::Agent;

#[tokio::test]
async fn a_finished_session_expires_with_its_outputs_and_then_answers_gone() {
    let agent = Agent::start_with(&["--session-ttl", "2"]).await;
    let program = agent.upload(b"not an elf, so the session ends at once".to_vec()).await;
    let id = agent.start_session(&api::SessionRequest::new(program)).await;
    let dir = agent.state_dir().join("sessions").join(&id);
    assert!(dir.join("stdout").is_file());
    agent.wait(&id).await;
    // Kept for its TTL: the report and the outputs are still there.
    let (status, _) = agent.call(Method::GET, &format!("/v1/sessions/{id}/stderr"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let store = agent.health().await.store.expect("the agent reports its store");
    assert_eq!((store.sessions_finished, store.sessions_expired, store.session_ttl_secs), (1, 0, 2));

    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(Instant::now() < deadline, "session {id} never expired; agent log:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in [format!("/v1/sessions/{id}"), format!("/v1/sessions/{id}/stdout")] {
        let (status, body) = agent.json(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::GONE, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(&format!("session {id} expired")) && error.contains("--session-ttl"), "{error}");
    }
    let (status, _) = agent.json(Method::GET, "/v1/sessions/0000000000-000099", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a session that never was is still unknown, not expired");
    let (_, list) = agent.json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(list["sessions"], serde_json::json!([]));
    let store = agent.health().await.store.unwrap();
    assert_eq!((store.sessions_finished, store.sessions_expired), (0, 1));
}

/// A session that waits (for a channel that never comes) holds its blobs.
fn waiting_session(program: Sha256, stdin: Sha256) -> api::SessionRequest {
    let channel = ChannelSpec {
        alias: "/dev/in/nobody".into(),
        direction: ChannelDirection::In,
        job: "cleanup".into(),
        channel: "nobody>waiter".into(),
        key: "5a".repeat(32),
        peer: ChannelPeer::Local,
    };
    let stdin = api::DeviceSpec { name: api::DeviceName::Stdin, source: api::DeviceSource::Blob { sha256: stdin } };
    api::SessionRequest {
        devices: vec![stdin],
        channels: vec![channel],
        channel_wait_secs: 120,
        ..api::SessionRequest::new(program)
    }
}

#[tokio::test]
async fn past_the_limit_unused_blobs_go_least_recently_used_first_and_a_live_sessions_stay() {
    const MIB: usize = 1 << 20;
    let agent = Agent::start_with(&["--blob-store-limit", "3M", "--blob-min-age", "0"]).await;
    let blob = |byte: u8| vec![byte; MIB];
    let oldest = agent.upload(blob(1)).await;
    let program = agent.upload(blob(2)).await;
    let stdin = agent.upload(blob(3)).await;
    // 3 MiB: at the limit, not past it; nothing goes.
    let id = agent.start_session(&waiting_session(program, stdin)).await;
    assert_eq!(agent.status(&id).await.state, api::SessionState::Waiting);

    // Past it: the least recently used blob goes, the session's two (older than the
    // next) stay.
    let next = agent.upload(blob(4)).await;
    let newest = agent.upload(blob(5)).await;
    let stored = |sha: Sha256| {
        let path = agent.state_dir().join("blobs").join(sha.to_string());
        std::fs::read(path).ok().map(|bytes| Sha256::of_bytes(&bytes))
    };
    assert_eq!(stored(oldest), None, "the oldest unused blob is collected");
    assert_eq!(stored(next), None, "then the next unused one, though the session's are older");
    assert_eq!(stored(program), Some(program), "the live session's program stays, whole");
    assert_eq!(stored(stdin), Some(stdin), "and its stdin");
    assert_eq!(stored(newest), Some(newest));
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{oldest}"), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let store = agent.health().await.store.unwrap();
    assert_eq!((store.blobs, store.blob_bytes, store.blob_limit_bytes), (3, 3 << 20, 3 << 20));
    assert_eq!((store.blobs_collected, store.sessions_live), (2, 1));

    // The session still starts from its blobs once asked again (they were never touched):
    // killing it ends the wait, and a new request for the same blobs is accepted.
    agent.call(Method::DELETE, &format!("/v1/sessions/{id}"), Vec::new()).await;
    agent.wait(&id).await;
    let (status, body) = agent.post_session(&waiting_session(program, stdin)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
