//! `zerolab-agent`: the node agent daemon (see the library docs and
//! `docs/agent.md`). Parses flags, sets up logging, serves until SIGINT or
//! SIGTERM.
//!
//! Exit status: 0 after a clean shutdown, 1 when the agent could not start
//! or serve (the cause is logged as one line).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The zerolab node agent: runs sandboxed guests behind an HTTP API on a Unix socket.
///
/// Reach it through the node's SSH connection (OpenSSH streamlocal forwarding);
/// it opens no TCP port. Exit status: 0 after SIGINT/SIGTERM, 1 on failure.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Unix socket to serve on (created 0600; its directory 0700 if created).
    #[arg(long, value_name = "PATH", default_value = "/run/zerolab/agent.sock")]
    socket: PathBuf,
    /// Directory for blobs and session outputs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/zerolab")]
    state_dir: PathBuf,
    /// Log JSON lines to stderr instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
        zerolab_agent::server::serve(&cli.socket, &cli.state_dir, shutdown).await?;
        Ok(())
    })
}
