//! The channel port under attack: raw TCP clients with garbage, silence,
//! the wrong key, a replayed handshake or a handshake left unconfirmed, and a
//! fake listener without the key. Each is refused and closed, none delays the
//! others, and the guest behind the channel sees only its real writer's bytes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use zerolab_agent::api::ChannelPeer;
use zerolab_agent::channels::wire::{self, ChannelKey, Message, Refusal, Role, Transcript};

use crate::channels::{ends, expected, job, key, Guests};
use crate::harness::Agent;

const CHANNEL: &str = "producer>consumer";

/// Reads until the agent closes the connection; what it sent. Fails the test
/// if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the agent kept the connection open for {within:?}");
    got
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(3)
}

/// Hello and challenge; returns the stream, our hello's nonce and theirs.
async fn hello(address: &str, job: &str, nonce: wire::Nonce) -> (TcpStream, Message, wire::Nonce) {
    let mut s = TcpStream::connect(address).await.unwrap();
    let hello = Message::Hello { nonce, job: job.into(), channel: CHANNEL.into() };
    wire::write(&mut s, &hello, soon()).await.unwrap();
    let Message::Challenge(theirs) = wire::read(&mut s, soon()).await.unwrap() else { panic!("no challenge") };
    (s, hello, theirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_port_refuses_garbage_silence_wrong_keys_and_replays() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    let (job, k) = (job("attack"), key());
    let right = ChannelKey::from_hex(&k).unwrap();
    let wrong = ChannelKey::from_hex(&key()).unwrap();
    let (w, r) = ends(&job, &k, ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
    let consumer = b.start_session(&g.consumer("", r, 30)).await;
    let address = b.channel_address();

    // Connections that never speak, held open throughout.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(&address).await.unwrap());
    }
    let started = Instant::now();
    let quick = Duration::from_secs(1);

    // Garbage: an HTTP request, and a frame longer than any message.
    for junk in [&b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"[..], &[0xff, 0xff, 1, 2, 3][..], &[0, 3, 9, 9, 9][..]] {
        let mut s = TcpStream::connect(&address).await.unwrap();
        s.write_all(junk).await.unwrap();
        assert_eq!(closed_within(&mut s, quick).await, b"", "{junk:?} got an answer");
    }

    // The wrong key, with data to inject right behind the proof.
    let ours = wire::nonce().unwrap();
    let (mut s, _, theirs) = hello(&address, &job, ours).await;
    let t = Transcript { job: &job, channel: CHANNEL, connector: &ours, listener: &theirs };
    let mut proof = Message::Proof(t.proof(&wrong, Role::Connect)).encode();
    proof.extend_from_slice(b"INJECTED BY A STRANGER");
    s.write_all(&proof).await.unwrap();
    let answer = closed_within(&mut s, quick).await;
    assert_eq!(answer, Message::Refused(Refusal::Key).encode(), "wrong key");

    // The right key (an insider's recorded handshake), never confirmed: no hand-over.
    let ours = wire::nonce().unwrap();
    let (mut s, recorded_hello, theirs) = hello(&address, &job, ours).await;
    let t = Transcript { job: &job, channel: CHANNEL, connector: &ours, listener: &theirs };
    let recorded_proof = Message::Proof(t.proof(&right, Role::Connect));
    wire::write(&mut s, &recorded_proof, soon()).await.unwrap();
    let Message::Accept(mac) = wire::read(&mut s, soon()).await.unwrap() else { panic!("the right key was refused") };
    assert!(t.verify(&right, Role::Accept, &mac), "the listener's proof does not verify");
    s.write_all(b"SENT BEFORE ANY CONFIRMATION").await.unwrap();
    drop(s);

    // Replaying that hello and proof: the listener's nonce is new, so the proof is stale.
    let mut s = TcpStream::connect(&address).await.unwrap();
    wire::write(&mut s, &recorded_hello, soon()).await.unwrap();
    assert!(matches!(wire::read(&mut s, soon()).await.unwrap(), Message::Challenge(n) if n != theirs));
    s.write_all(&recorded_proof.encode()).await.unwrap();
    assert_eq!(closed_within(&mut s, quick).await, Message::Refused(Refusal::Key).encode(), "replay");

    // None of that waited for the silent connections.
    assert!(started.elapsed() < Duration::from_secs(3), "attacks took {:?}", started.elapsed());

    // The real writer still gets through, and only its bytes reach the guest.
    let bytes = 1 << 20;
    let producer = a.start_session(&g.producer(bytes, w, 30)).await;
    assert_eq!(a.wait(&producer).await.exit_state, "ok");
    let report = b.wait(&consumer).await;
    assert_eq!(report.exit_state, "ok", "{report:?}");
    assert_eq!(b.stdout(&consumer).await, expected(bytes));

    // The silent ones were closed at the handshake deadline.
    for mut s in silent {
        let left = Duration::from_secs(8).saturating_sub(started.elapsed());
        assert_eq!(closed_within(&mut s, left).await, b"");
    }
    let log = b.log();
    assert!(log.contains("had the wrong key") || log.contains("wrong key"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "refusals name the peer:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_with_another_key_is_refused_at_once_and_the_reader_says_why() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    let job = job("keys");
    let (_, r) = ends(&job, &key(), ChannelPeer::Local, ChannelPeer::Listen);
    let (w, _) = ends(&job, &key(), ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
    let consumer = b.start_session(&g.consumer("", r, 2)).await;
    let started = Instant::now();
    let producer = a.start_session(&g.producer(10, w, 30)).await;
    let report = a.wait(&producer).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_eq!(report.return_code, 4);
    let want = format!(
        "channel {CHANNEL} (/dev/out/consumer): {} refused the connection: it refused our key: the two ends were \
         given different keys",
        b.channel_address()
    );
    assert_eq!(report.exit_state, want);
    let report = b.wait(&consumer).await;
    assert!(report.exit_state.contains("(a connection from 127.0.0.1:"), "{report:?}");
    assert!(report.exit_state.ends_with("had the wrong key)"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_without_the_key_gets_nothing_from_the_writer() {
    let a = Agent::start().await;
    let g = Guests::upload(&[&a]).await;
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = fake.local_addr().unwrap().to_string();
    let impostor = tokio::spawn(async move {
        let (mut s, _) = fake.accept().await.unwrap();
        let Message::Hello { .. } = wire::read(&mut s, soon()).await.unwrap() else { panic!("no hello") };
        wire::write(&mut s, &Message::Challenge(wire::nonce().unwrap()), soon()).await.unwrap();
        let Message::Proof(_) = wire::read(&mut s, soon()).await.unwrap() else { panic!("no proof") };
        wire::write(&mut s, &Message::Accept([7; 32]), soon()).await.unwrap();
        closed_within(&mut s, Duration::from_secs(3)).await
    });
    let (w, _) = ends(&job("impostor"), &key(), ChannelPeer::Connect { address: address.clone() }, ChannelPeer::Listen);
    let producer = a.start_session(&g.producer(1 << 20, w, 30)).await;
    let report = a.wait(&producer).await;
    assert_eq!(impostor.await.unwrap(), b"", "the writer sent data to an impostor");
    assert_eq!(report.return_code, 4);
    assert!(report
        .exit_state
        .ends_with("did not prove it holds the channel's key (another key, or not this job's agent)"));
    assert!(report.exit_state.contains(&address), "{report:?}");
}

/// Issue 9: each refused connection logged a warning, so a stranger's flood
/// of bad handshakes wrote the agent's log as fast as it could connect. Now
/// 1000 of them leave a bounded number of lines, every one is counted in
/// `GET /v1/health`, and a real channel still gets through afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_connections_is_counted_not_logged_one_by_one() {
    let (a, b) = (Agent::start().await, Agent::start().await);
    let address = b.channel_address();
    let lines_before = b.log().lines().count();
    let floods = 1000;
    let mut waves = tokio::task::JoinSet::new();
    for wave in 0..10 {
        let address = address.clone();
        waves.spawn(async move {
            for i in 0..floods / 10 {
                let mut s = TcpStream::connect(&address).await.unwrap();
                // Garbage (an oversized frame), or a hello of a wrong version.
                let junk: &[u8] = if (wave + i) % 2 == 0 { &[0xff, 0xff, 1, 2, 3] } else { b"GET / HTTP/1.1\r\n\r\n" };
                let _ = s.write_all(junk).await;
                closed_within(&mut s, Duration::from_secs(5)).await;
            }
        });
    }
    while let Some(done) = waves.join_next().await {
        done.unwrap();
    }

    let (_, health) = b.json(hyper::Method::GET, "/v1/health", None).await;
    let refused = health["refused_channel_connections"].as_u64().unwrap_or(0);
    assert!(refused >= floods, "health counts {refused} refused connections of {floods}: {health}");
    let log = b.log();
    let new: Vec<&str> = log.lines().skip(lines_before).filter(|l| l.contains("channel connection")).collect();
    // One full line per kind of refusal per minute at most (the summary comes a minute later).
    assert!(!new.is_empty(), "the first refusal is logged:\n{log}");
    assert!(new.len() <= 7, "{} lines about {floods} bad connections:\n{}", new.len(), new.join("\n"));
    assert!(new[0].contains("peer=127.0.0.1:"), "the line names the peer: {}", new[0]);

    // The channel port still serves a real channel.
    let g = Guests::upload(&[&a, &b]).await;
    let (job, k) = (job("after-flood"), key());
    let (w, r) = ends(&job, &k, ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
    let consumer = b.start_session(&g.consumer("", r, 30)).await;
    let producer = a.start_session(&g.producer(4096, w, 30)).await;
    assert_eq!(a.wait(&producer).await.exit_state, "ok");
    let report = b.wait(&consumer).await;
    assert_eq!(report.exit_state, "ok", "{report:?}");
    assert_eq!(b.stdout(&consumer).await, expected(4096));
}
