//! Channels between guests: a producer guest writing to its `/dev/out/`
//! channel and a consumer guest reading its `/dev/in/` channel to end of
//! stream, on two agents (TCP between them) or on one (a pipe), in either
//! start order, with the channel's bytes in the reports' `net` or `local`
//! traffic; peers that never come; kills while waiting; backpressure; and no
//! descriptor left behind.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use zerolab_agent::api::{self, ChannelDirection, ChannelPeer, ChannelSpec, SessionState};

use crate::harness::{guest, Agent};

/// A fresh channel key: 32 random bytes as hex.
pub fn key() -> String {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A job id no other test uses.
pub fn job(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The channel `producer>consumer` of `job`: the writer's end and the reader's.
pub fn ends(job: &str, key: &str, writer: ChannelPeer, reader: ChannelPeer) -> (ChannelSpec, ChannelSpec) {
    let spec = |alias: &str, direction, peer| ChannelSpec {
        alias: alias.into(),
        direction,
        job: job.into(),
        channel: "producer>consumer".into(),
        key: key.into(),
        peer,
    };
    (spec("/dev/out/consumer", ChannelDirection::Out, writer), spec("/dev/in/producer", ChannelDirection::In, reader))
}

/// The guests, uploaded to every agent given.
pub struct Guests {
    pub produce: api::Sha256,
    pub consume: api::Sha256,
}

impl Guests {
    pub async fn upload(agents: &[&Agent]) -> Guests {
        let (p, c) = (guest("node-agent/tests/guests/produce.c"), guest("node-agent/tests/guests/consume.c"));
        let names = (api::Sha256::of_bytes(&p), api::Sha256::of_bytes(&c));
        for a in agents {
            assert_eq!(names, (a.upload(p.clone()).await, a.upload(c.clone()).await));
        }
        Guests { produce: names.0, consume: names.1 }
    }

    /// A producer of `bytes` on `end`.
    pub fn producer(&self, bytes: u64, end: ChannelSpec, wait_secs: u64) -> api::SessionRequest {
        api::SessionRequest {
            args: vec!["produce".into(), bytes.to_string()],
            channels: vec![end],
            channel_wait_secs: wait_secs,
            ..api::SessionRequest::new(self.produce)
        }
    }

    /// A consumer on `end`; `mode` is `""`, `count` or `slow`.
    pub fn consumer(&self, mode: &str, end: ChannelSpec, wait_secs: u64) -> api::SessionRequest {
        let mut args = vec!["consume".to_string()];
        args.extend((!mode.is_empty()).then(|| mode.to_string()));
        api::SessionRequest {
            args,
            channels: vec![end],
            channel_wait_secs: wait_secs,
            ..api::SessionRequest::new(self.consume)
        }
    }
}

/// What `consume` prints for `bytes` bytes of `produce`'s stream.
pub fn expected(bytes: u64) -> String {
    let mut block = [0u8; 65536];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..bytes {
        h = (h ^ u64::from(block[(i % 65536) as usize])).wrapping_mul(0x100_0000_01b3);
    }
    format!("bytes={bytes} fnv={h:016x}\n")
}

/// Waits for the session to say it is waiting for `alias`.
async fn assert_waiting(agent: &Agent, id: &str, alias: &str) {
    let s = agent.status(id).await;
    assert_eq!((s.state, s.waiting_for.as_slice()), (SessionState::Waiting, [alias.to_string()].as_slice()), "{s:?}");
}

async fn assert_ok(agent: &Agent, id: &str) -> String {
    let report = agent.wait(id).await;
    let stderr = agent.stderr(id).await;
    assert_eq!((report.exit_state.as_str(), report.user_code), ("ok", 0), "{report:?}\nstderr: {stderr}");
    agent.stdout(id).await
}

/// Checks a finished session's network traffic: gets, get bytes, puts, put bytes.
async fn assert_net(agent: &Agent, id: &str, net: [u64; 4]) {
    let report = agent.wait(id).await;
    assert_eq!(report.net, net, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_feeds_a_consumer_on_another_agent_in_either_start_order() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    let bytes = (8 << 20) + 12345;
    for consumer_first in [true, false] {
        let job = job("cross");
        let k = key();
        let (w, r) = ends(&job, &k, ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
        let (producer, consumer) = (g.producer(bytes, w, 20), g.consumer("", r, 20));
        let (p, c) = if consumer_first {
            let c = b.start_session(&consumer).await;
            assert_waiting(&b, &c, "/dev/in/producer").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            (a.start_session(&producer).await, c)
        } else {
            // The producer retries until the consumer's agent knows the channel.
            let p = a.start_session(&producer).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_waiting(&a, &p, "/dev/out/consumer").await;
            (p, b.start_session(&consumer).await)
        };
        assert_eq!(assert_ok(&b, &c).await, expected(bytes), "consumer first: {consumer_first}");
        assert_eq!(assert_ok(&a, &p).await, format!("wrote={bytes}\n"));
        // A TCP channel's bytes are network traffic; its calls are direct, so local.
        assert_net(&b, &c, [0, bytes, 0, 0]).await;
        assert_net(&a, &p, [0, 0, 0, bytes]).await;
        assert_eq!(b.wait(&c).await.local[1], 0, "the consumer reads nothing else");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_channel_joins_two_sessions_of_one_agent_in_either_order() {
    let a = Agent::start().await;
    let g = Guests::upload(&[&a]).await;
    let bytes = (3 << 20) + 7;
    for consumer_first in [true, false] {
        let (w, r) = ends(&job("local"), &key(), ChannelPeer::Local, ChannelPeer::Local);
        let (producer, consumer) = (g.producer(bytes, w, 20), g.consumer("", r, 20));
        let (p, c) = if consumer_first {
            let c = a.start_session(&consumer).await;
            assert_waiting(&a, &c, "/dev/in/producer").await;
            (a.start_session(&producer).await, c)
        } else {
            let p = a.start_session(&producer).await;
            assert_waiting(&a, &p, "/dev/out/consumer").await;
            (p, a.start_session(&consumer).await)
        };
        assert_eq!(assert_ok(&a, &c).await, expected(bytes), "consumer first: {consumer_first}");
        assert_eq!(assert_ok(&a, &p).await, format!("wrote={bytes}\n"));
        // A pipe is local traffic.
        assert_net(&a, &c, [0; 4]).await;
        assert_net(&a, &p, [0; 4]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_comes_fails_the_session_naming_both_ends() {
    let a = Agent::start().await;
    let g = Guests::upload(&[&a]).await;
    // Nothing listens on this port: bound, then closed.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (w, _) =
        ends(&job("never"), &key(), ChannelPeer::Connect { address: nowhere.to_string() }, ChannelPeer::Listen);
    let (_, r) = ends(&job("never"), &key(), ChannelPeer::Local, ChannelPeer::Listen);
    let (_, local) = ends(&job("never"), &key(), ChannelPeer::Local, ChannelPeer::Local);
    let started = Instant::now();
    let ids = [
        a.start_session(&g.producer(10, w, 2)).await,
        a.start_session(&g.consumer("", r, 1)).await,
        a.start_session(&g.consumer("", local, 1)).await,
    ];
    let mut states = Vec::new();
    for id in &ids {
        let report = a.wait(id).await;
        assert_eq!((report.return_code, report.user_code), (4, 0), "{report:?}");
        states.push(report.exit_state);
    }
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    let want = [
        format!(
            "channel producer>consumer (/dev/out/consumer): no connection to {nowhere} within 2 s (last try: connect: "
        ),
        format!(
            "channel producer>consumer (/dev/in/producer): no connection from the writer's agent to this agent's \
             channel port {} within 1 s",
            a.channel_port
        ),
        "channel producer>consumer (/dev/in/producer): no session on this node took the other end within 1 s".into(),
    ];
    for (state, want) in states.iter().zip(want) {
        assert!(state.starts_with(&want), "{state:?}\ndoes not start with\n{want:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_a_wait_at_once_and_frees_the_channel() {
    let a = Agent::start().await;
    let g = Guests::upload(&[&a]).await;
    let job = job("kill");
    let k = key();
    let (_, r) = ends(&job, &k, ChannelPeer::Local, ChannelPeer::Listen);
    let unreachable = ChannelPeer::Connect { address: "127.0.0.1:9".into() };
    let (w, _) = ends(&job, &k, unreachable, ChannelPeer::Listen);
    let reader = a.start_session(&g.consumer("", r.clone(), 30)).await;
    let writer = a.start_session(&g.producer(1, w, 30)).await;
    // A second reader for the same channel is a conflict, answered at once.
    let (status, v) = a.post_session(&g.consumer("", r.clone(), 30)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("already has a reader waiting"), "{v}");
    for id in [&reader, &writer] {
        let started = Instant::now();
        let (status, _) = a.json(Method::DELETE, &format!("/v1/sessions/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        let report = a.wait_polling(id, Duration::from_millis(5), Duration::from_secs(5)).await;
        assert_eq!(report.exit_state, "killed", "{report:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }
    // The killed reader's registration is gone: the channel can be asked for again.
    let again = a.start_session(&g.consumer("", r, 30)).await;
    a.json(Method::DELETE, &format!("/v1/sessions/{again}"), None).await;
    assert_eq!(a.wait(&again).await.exit_state, "killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_channel_requests_are_refused_with_the_fix() {
    let a = Agent::start().await;
    let g = Guests::upload(&[&a]).await;
    let (w, r) = ends(&job("bad"), &key(), ChannelPeer::Listen, ChannelPeer::Listen);
    for (req, status, want) in [
        (g.producer(1, w, 30), StatusCode::BAD_REQUEST, "a writing end cannot listen"),
        (g.consumer("", ChannelSpec { key: "00".into(), ..r.clone() }, 30), StatusCode::BAD_REQUEST, "64 hex digits"),
        (g.consumer("", r, 0), StatusCode::BAD_REQUEST, "channel_wait_secs 0 is out of range"),
    ] {
        let (got, v) = a.post_session(&req).await;
        assert_eq!(got, status, "{v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{v}");
    }
    let (_, list) = a.json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0, "refused sessions leave no entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_writer_waits_for_a_slow_reader_and_agent_memory_stays_flat() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    let bytes = 256 << 20;
    let (w, r) = ends(&job("slow"), &key(), ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
    let before = (a.rss(), b.rss());
    let c = b.start_session(&g.consumer("slow", r, 20)).await;
    let p = a.start_session(&g.producer(bytes, w, 20)).await;
    let mut peak = before;
    let started = Instant::now();
    while b.status(&c).await.report.is_none() {
        peak = (peak.0.max(a.rss()), peak.1.max(b.rss()));
        assert!(started.elapsed() < Duration::from_secs(60), "the slow consumer never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(assert_ok(&b, &c).await, expected(bytes));
    assert_eq!(assert_ok(&a, &p).await, format!("wrote={bytes}\n"));
    // The data never passes through the agents: their memory does not follow it.
    let grew = (peak.0.saturating_sub(before.0), peak.1.saturating_sub(before.1));
    assert!(grew.0 < 16 << 20 && grew.1 < 16 << 20, "agents grew by {grew:?} bytes while {bytes} bytes flowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_sessions_leave_no_descriptor_in_the_agents() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    // Warm up: the sandbox keeps each program's sealed image and the shared
    // namespaces open from the first session on.
    for agent in [&a, &b] {
        let (w, r) = ends(&job("warm"), &key(), ChannelPeer::Local, ChannelPeer::Local);
        let c = agent.start_session(&g.consumer("", r, 20)).await;
        let p = agent.start_session(&g.producer(1, w, 20)).await;
        assert_ok(agent, &c).await;
        assert_ok(agent, &p).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = (a.open_fds(), b.open_fds());
    // A channel across agents, a local one, one that times out and one killed while waiting.
    let (w, r) = ends(&job("fds"), &key(), ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
    let (lw, lr) = ends(&job("fds"), &key(), ChannelPeer::Local, ChannelPeer::Local);
    let (_, lonely) = ends(&job("fds"), &key(), ChannelPeer::Local, ChannelPeer::Listen);
    let (_, killed) = ends(&job("fds"), &key(), ChannelPeer::Local, ChannelPeer::Local);
    let runs = [
        (&b, b.start_session(&g.consumer("", r, 20)).await),
        (&a, a.start_session(&g.producer(1 << 20, w, 20)).await),
        (&a, a.start_session(&g.consumer("", lr, 20)).await),
        (&a, a.start_session(&g.producer(1 << 20, lw, 20)).await),
        (&b, b.start_session(&g.consumer("", lonely, 1)).await),
        (&b, b.start_session(&g.consumer("", killed, 20)).await),
    ];
    b.json(Method::DELETE, &format!("/v1/sessions/{}", runs[5].1), None).await;
    // A stranger who connects to the channel port and goes away.
    drop(tokio::net::TcpStream::connect(b.channel_address()).await.unwrap());
    for (agent, id) in &runs {
        agent.wait(id).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while (a.open_fds(), b.open_fds()) != baseline {
        assert!(
            Instant::now() < deadline,
            "descriptors {:?}, before {baseline:?}; agent b holds {:?}",
            (a.open_fds(), b.open_fds()),
            std::fs::read_dir(format!("/proc/{}/fd", b.pid()))
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
