//! `zerolab-agent`: the node agent daemon (see the library docs and
//! `docs/agent.md`). Parses flags, sets up logging, serves until SIGINT or
//! SIGTERM.
//!
//! Exit status: 0 after a clean shutdown, 1 when the agent could not start
//! or serve (the cause is logged as one line).

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use zerolab_agent::state::{self, Retention};

/// The zerolab node agent: runs sandboxed guests behind an HTTP API on a Unix socket.
///
/// Reach the API through the node's SSH connection (OpenSSH streamlocal
/// forwarding). Its one TCP port carries channels between guests on different
/// nodes, each authenticated by its job's key. Exit status: 0 after
/// SIGINT/SIGTERM, 1 on failure.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Unix socket to serve on (created 0600; its directory 0700 if created).
    #[arg(long, value_name = "PATH", default_value = "/run/zerolab/agent.sock")]
    socket: PathBuf,
    /// Directory for blobs and session outputs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/zerolab")]
    state_dir: PathBuf,
    /// TCP port for channels from other agents (0 picks a free one; see GET /v1/facts).
    #[arg(long, value_name = "PORT", default_value_t = zerolab_agent::api::DEFAULT_CHANNEL_PORT)]
    channel_port: u16,
    /// Address to listen on for channels (each lab node is its own network namespace).
    #[arg(long, value_name = "IP", default_value = "0.0.0.0")]
    channel_address: IpAddr,
    /// Seconds a finished session (report, outputs, directory) is kept before it is
    /// removed; a request for it then answers 410 Gone.
    #[arg(long, value_name = "SECS", default_value_t = state::DEFAULT_SESSION_TTL.as_secs())]
    session_ttl: u64,
    /// Blob store size past which blobs no session uses are removed, least recently
    /// used first (bytes, or with K, M, G, T).
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = state::parse_size)]
    blob_store_limit: u64,
    /// Seconds since a blob was last stored, looked up or used before it may be removed
    /// (covers the time between an upload and the session that uses it).
    #[arg(long, value_name = "SECS", default_value_t = state::DEFAULT_BLOB_MIN_AGE.as_secs())]
    blob_min_age: u64,
    /// Log JSON lines to stderr instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: on a node, stderr is a log file.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot catch SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down");
        };
        let channels = SocketAddr::new(cli.channel_address, cli.channel_port);
        let retention = Retention {
            session_ttl: Duration::from_secs(cli.session_ttl),
            blob_store_limit: cli.blob_store_limit,
            blob_min_age: Duration::from_secs(cli.blob_min_age),
        };
        zerolab_agent::server::serve(&cli.socket, &cli.state_dir, channels, retention, shutdown).await?;
        Ok(())
    })
}
