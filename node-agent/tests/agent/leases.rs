//! Session leases: a leased session that nobody renews is killed (`lease expired`)
//! within its lease and the agent's check period, running or still waiting for its
//! channels; one that is renewed keeps running; sessions without a lease are not
//! touched; renewals say which leases they renewed; a bad `lease_secs` is a 400.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use zerolab_agent::api::{self, ChannelPeer, SessionState};

use crate::channels::{ends, job, key, Guests};
use crate::harness::{guest, Agent};

/// The spinning guest (prints `started=1`, then never ends by itself), uploaded.
async fn spinner(agent: &Agent) -> api::Sha256 {
    agent.upload(guest("sandbox/tests/guests/loop.c")).await
}

fn leased(program: api::Sha256, secs: u64) -> api::SessionRequest {
    api::SessionRequest { lease_secs: Some(secs), timeout: 60, ..api::SessionRequest::new(program) }
}

async fn renew(agent: &Agent, ids: &[&str]) -> api::LeasesRenewed {
    let (status, v) = agent.json(Method::POST, "/v1/leases", Some(json!({ "sessions": ids }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    serde_json::from_value(v).unwrap()
}

async fn wait_started(agent: &Agent, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.stdout(id).await != "started=1\n" {
        assert!(Instant::now() < deadline, "the loop guest never started; agent log:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_not_renewed_kills_its_session_in_time_and_spares_one_without_a_lease() {
    let agent = Agent::start().await;
    let program = spinner(&agent).await;
    let free = agent.start_session(&api::SessionRequest { timeout: 60, ..api::SessionRequest::new(program) }).await;
    let started = Instant::now();
    let id = agent.start_session(&leased(program, 1)).await;
    wait_started(&agent, &id).await;
    let report = agent.wait_polling(&id, Duration::from_millis(10), Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "killed {took:?} after the start; a 1 s lease allows 2 s");
    assert!(took >= Duration::from_millis(900), "killed {took:?} after the start, before its 1 s lease ran out");
    assert_eq!((report.exit_state.as_str(), report.return_code), ("lease expired", 4), "{report:?}");
    assert!(report.text.contains("lease expired"), "{}", report.text);
    assert_eq!(agent.health().await.leases_expired, 1);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = agent.status(&free).await;
    assert_eq!(s.state, SessionState::Running, "a session without a lease runs on: {s:?}");
    let (status, v) = agent.json(Method::DELETE, &format!("/v1/sessions/{free}"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(agent.wait(&free).await.exit_state, "killed");
    assert_eq!(agent.health().await.leases_expired, 1, "a DELETE is not a lease expiring");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_keeps_its_session_running_past_several_lease_lengths() {
    let agent = Agent::start().await;
    let program = spinner(&agent).await;
    let id = agent.start_session(&leased(program, 1)).await;
    wait_started(&agent, &id).await;
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert_eq!(renew(&agent, &[&id]).await.renewed, [id.as_str()]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let s = agent.status(&id).await;
    assert_eq!(s.state, SessionState::Running, "renewed every 0.3 s for 3.5 s: {s:?}");
    let stopped = Instant::now();
    let report = agent.wait_polling(&id, Duration::from_millis(10), Duration::from_secs(10)).await;
    assert!(stopped.elapsed() < Duration::from_secs(2), "killed {:?} after the last renewal", stopped.elapsed());
    assert_eq!(report.exit_state, "lease expired", "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_say_which_leases_they_renewed() {
    let agent = Agent::start().await;
    let program = spinner(&agent).await;
    let hello = agent.upload(guest("sandbox/guest/examples/hello.c")).await;
    let live = agent.start_session(&leased(program, 30)).await;
    let unleased = agent.start_session(&api::SessionRequest { timeout: 60, ..api::SessionRequest::new(program) }).await;
    let done = agent.start_session(&leased(hello, 30)).await;
    assert_eq!(agent.wait(&done).await.exit_state, "ok");
    let lapsed = agent.start_session(&leased(program, 1)).await;
    agent.wait(&lapsed).await;

    let answer = renew(&agent, &[&live, &unleased, &done, &lapsed, "0000000000-000099"]).await;
    assert_eq!(answer.renewed, [live.as_str()]);
    assert_eq!(answer.not_renewed, [unleased.clone(), done, lapsed, "0000000000-000099".into()]);

    let (status, v) = agent.json(Method::POST, "/v1/leases", Some(json!({"session": [live]}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().starts_with("bad lease renewal: unknown field `session`"), "{v}");
    for id in [live, unleased] {
        agent.json(Method::DELETE, &format!("/v1/sessions/{id}"), None).await;
        assert_eq!(agent.wait(&id).await.exit_state, "killed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_kills_a_session_still_waiting_for_its_channels() {
    let agent = Agent::start().await;
    let g = Guests::upload(&[&agent]).await;
    let (_, reader) = ends(&job("lease"), &key(), ChannelPeer::Local, ChannelPeer::Listen);
    let req = api::SessionRequest { lease_secs: Some(1), ..g.consumer("", reader, 30) };
    let started = Instant::now();
    let id = agent.start_session(&req).await;
    assert_eq!(agent.status(&id).await.state, SessionState::Waiting);
    let report = agent.wait_polling(&id, Duration::from_millis(10), Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(2), "killed {:?} after the start", started.elapsed());
    assert_eq!((report.exit_state.as_str(), report.return_code), ("lease expired", 4), "{report:?}");
}

#[tokio::test]
async fn a_lease_out_of_range_is_refused_in_one_line_and_leaves_nothing() {
    let agent = Agent::start().await;
    let program = spinner(&agent).await;
    for secs in [0, 3601] {
        let (status, v) = agent.post_session(&leased(program, secs)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["error"],
            Value::from(format!(
                "lease_secs {secs} is out of range; give 1 to 3600 seconds, or leave it out for no lease"
            ))
        );
    }
    let (_, v) = agent.json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(v["sessions"], json!([]));
    assert_eq!(std::fs::read_dir(agent.state_dir().join("sessions")).unwrap().count(), 0);
}
