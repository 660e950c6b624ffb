//! Following a session's output: `GET /v1/sessions/{id}/stdout?offset=N` answers the
//! bytes from N on and, in a header, the session's state read before them, so a
//! follower reads each byte once and knows when it has read the last.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use zerolab_agent::api;

use crate::harness::{guest, Agent};

/// `GET path`: the status, the session-state header and the body.
async fn get(agent: &Agent, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let stream = tokio::net::UnixStream::connect(&agent.socket).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request =
        Request::builder().method(Method::GET).uri(path).header("host", "agent").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let state = response.headers().get(api::SESSION_STATE_HEADER).map(|v| v.to_str().unwrap().to_owned());
    (response.status(), state, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn an_output_read_from_an_offset_gives_only_the_bytes_after_it_and_the_sessions_state() {
    let agent = Agent::start().await;
    let program = agent.upload(guest("sandbox/guest/examples/hello.c")).await;
    let id = agent.start_session(&api::SessionRequest::new(program)).await;
    agent.wait(&id).await;

    let stdout = format!("/v1/sessions/{id}/stdout");
    let read = |query: &'static str| {
        let path = format!("{stdout}{query}");
        let agent = &agent;
        async move { get(agent, &path).await }
    };
    let whole = (StatusCode::OK, Some("done".to_owned()), b"Hello, World!\n".to_vec());
    assert_eq!(read("").await, whole, "no offset: the whole output");
    assert_eq!(read("?offset=0").await, whole);
    assert_eq!(read("?offset=7").await, (StatusCode::OK, Some("done".to_owned()), b"World!\n".to_vec()));
    assert_eq!(read("?offset=14").await.2, b"", "at the end: nothing");
    assert_eq!(read("?offset=1000").await.2, b"", "past the end: nothing");

    let (status, state, body) = read("?offset=ten").await;
    assert_eq!((status, state), (StatusCode::BAD_REQUEST, None));
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"], "bad offset `ten`; give a byte count, like ?offset=4096");
}

#[tokio::test]
async fn a_running_sessions_output_says_running_until_the_read_after_it_ended() {
    let agent = Agent::start().await;
    let program = agent.upload(guest("sandbox/tests/guests/loop.c")).await;
    let id = agent.start_session(&api::SessionRequest::new(program)).await;
    let path = format!("/v1/sessions/{id}/stdout");
    let mut seen = Vec::new();
    // Followed from the last offset: the first line arrives, once, while it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let state = loop {
        let (status, state, body) = get(&agent, &format!("{path}?offset={}", seen.len())).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend_from_slice(&body);
        if !seen.is_empty() || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(state.as_deref(), Some("running"));
    assert!(seen.starts_with(b"started=1\n"), "{}", String::from_utf8_lossy(&seen));
    agent.call(Method::DELETE, &format!("/v1/sessions/{id}"), Vec::new()).await;
    agent.wait(&id).await;
    let (_, state, rest) = get(&agent, &format!("{path}?offset={}", seen.len())).await;
    assert_eq!(state.as_deref(), Some("done"));
    seen.extend_from_slice(&rest);
    assert_eq!(seen, get(&agent, &path).await.2, "the pieces make the whole");
}
