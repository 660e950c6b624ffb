//! Channel throughput against a plain TCP stream, side by side in one run
//! (ignored by default: it moves several GiB). Run it with
//! `cargo test --release -p zerolab-agent --test agent throughput -- --ignored --nocapture`.
//!
//! Channel: a producer guest on agent A writes `CHANNEL_BENCH_BYTES` (default
//! 1 GiB) in 1 MiB writes to a consumer guest on agent B that reads 1 MiB at a
//! time and only counts, over the agents' channel on 127.0.0.1; timed from the
//! producer's `POST` (the consumer already waits) until the consumer's report.
//! Raw: `tcp_native send` to `tcp_native recv`, two native processes with the
//! same write and read sizes, timed from starting the sender until the
//! receiver exits. Rounds alternate; medians are compared.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zerolab_agent::api::ChannelPeer;

use crate::channels::{ends, job, key, Guests};
use crate::harness::{native, Agent};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn raw_tcp(program: &std::path::Path, bytes: u64) -> Duration {
    let mut recv = Command::new(program).arg("recv").stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(recv.stdout.take().unwrap());
    let mut port = String::new();
    out.read_line(&mut port).unwrap();
    let started = Instant::now();
    let send = Command::new(program).args(["send", port.trim(), &bytes.to_string()]).status().unwrap();
    let mut done = String::new();
    out.read_line(&mut done).unwrap();
    assert!(recv.wait().unwrap().success() && send.success(), "tcp_native failed");
    let elapsed = started.elapsed();
    assert_eq!(done.trim(), format!("bytes={bytes}"));
    elapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: moves several GiB"]
async fn throughput_of_a_channel_between_agents_against_raw_tcp() {
    let bytes: u64 = std::env::var("CHANNEL_BENCH_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let rounds: usize = std::env::var("CHANNEL_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let (a, b) = (Agent::start().await, Agent::start().await);
    let g = Guests::upload(&[&a, &b]).await;
    let tcp = native("node-agent/tests/guests/tcp_native.c");
    let (mut channel, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        raw.push(raw_tcp(&tcp, bytes));
        let (w, r) =
            ends(&job("bench"), &key(), ChannelPeer::Connect { address: b.channel_address() }, ChannelPeer::Listen);
        let consumer = b.start_session(&g.consumer("count", r, 20)).await;
        let started = Instant::now();
        let producer = a.start_session(&g.producer(bytes, w, 20)).await;
        let report = b.wait_polling(&consumer, Duration::from_millis(2), Duration::from_secs(120)).await;
        channel.push(started.elapsed());
        assert_eq!(report.exit_state, "ok", "{report:?}");
        assert_eq!(b.stdout(&consumer).await, format!("bytes={bytes}\n"));
        assert_eq!(a.wait(&producer).await.exit_state, "ok");
    }
    let rate = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e9;
    let (c, r) = (median(channel.clone()), median(raw.clone()));
    println!("channel between agents: {:.2} GB/s (median of {rounds}: {channel:.2?})", rate(c));
    println!("raw TCP, two processes: {:.2} GB/s (median of {rounds}: {raw:.2?})", rate(r));
    println!("ratio channel / raw: {:.2}x", rate(c) / rate(r));
}
