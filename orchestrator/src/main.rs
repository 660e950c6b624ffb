//! `zerolab`: the orchestrator's command line. Thin: parse the arguments, call the
//! library, print one report, map the result to the exit code documented in `--help`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zerolab::cluster::{Cluster, LoadError};
use zerolab::lab::{NodeState, DEFAULT_ROOT};
use zerolab::up::{UpOptions, PARALLEL};

mod ui;

/// Labs of many machines that run untrusted code in millisecond sandboxes.
#[derive(Debug, Parser)]
#[command(
    name = "zerolab",
    version,
    disable_help_subcommand = true,
    after_help = "Exit status: 0 success, 1 the cluster file is invalid or a node is not ready, \
                  2 usage error, a file that cannot be read, or a lab that cannot be brought up or down."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a cluster file and print its nodes, or every problem found as
    /// FILE:LINE:COL: what is wrong; what is expected
    #[command(after_help = "Exit status: 0 valid, 1 invalid (each problem on its own line on stderr), \
                            2 usage error or unreadable file.")]
    Validate {
        /// The cluster file (YAML, apiVersion zerolab/v1)
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Bring the lab up: make its nodes (netns), install and start the agent on each,
    /// wait until it is healthy; one line per node as it finishes, then a summary
    #[command(after_help = "Exit status: 0 every node ready, 1 a node failed (one line each) or the cluster \
                            file is invalid, 2 usage error, unreadable file, or the lab could not be made.")]
    Up {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// The agent binary to install [default: zerolab-agent beside zerolab]
        #[arg(long, value_name = "PATH")]
        agent: Option<PathBuf>,
    },
    /// Remove the lab: its nodes and its directory (idempotent)
    #[command(after_help = "Exit status: 0 removed (or nothing to remove), 1 invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be removed.")]
    Down {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Show every node: provider, address, state, agent version, cause of failure
    #[command(after_help = "Exit status: 0 every node ready, 1 a node not ready or invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be inspected.")]
    Status {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
}

/// The file is valid / the command did what was asked.
const EXIT_OK: u8 = 0;
/// The cluster file is invalid, or a node is not ready.
const EXIT_INVALID: u8 = 1;
/// Usage error (clap exits with 2 itself) or a file that cannot be read.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Up { file, lab_root, agent } => with_cluster(&file, |cluster| up(cluster, &lab_root, agent)),
        Command::Down { file, lab_root } => with_cluster(&file, |cluster| down(cluster, &lab_root)),
        Command::Status { file, lab_root } => with_cluster(&file, |cluster| status(cluster, &lab_root)),
    }
}

/// Loads the cluster file and runs `command` on it; an invalid or unreadable file is
/// reported as `validate` reports it.
fn with_cluster(file: &std::path::Path, command: impl FnOnce(&Cluster) -> anyhow::Result<u8>) -> ExitCode {
    let cluster = match Cluster::from_path(file) {
        Ok(cluster) => cluster,
        Err(err) => return load_error(err),
    };
    match command(&cluster) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_line(&mut io::stderr().lock(), &format!("zerolab: {}", zerolab::up::cause(error.as_ref())));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn up(cluster: &Cluster, lab_root: &std::path::Path, agent: Option<PathBuf>) -> anyhow::Result<u8> {
    let agent = agent
        .or_else(zerolab::up::default_agent_path)
        .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))?;
    let options = UpOptions { agent, parallel: PARALLEL };
    let started = std::time::Instant::now();
    let reports = runtime()?.block_on(zerolab::up::up(lab_root, cluster, &options, |report| {
        print_line(&mut io::stdout().lock(), &ui::node_line(report));
    }))?;
    print_line(&mut io::stdout().lock(), &ui::up_summary(cluster.name(), &reports, started.elapsed()));
    let all_ready = reports.iter().all(|r| r.state == NodeState::Ready);
    Ok(if all_ready { EXIT_OK } else { EXIT_INVALID })
}

fn down(cluster: &Cluster, lab_root: &std::path::Path) -> anyhow::Result<u8> {
    zerolab::up::down(lab_root, cluster)?;
    print_line(&mut io::stdout().lock(), &format!("lab {}: down", cluster.name()));
    Ok(EXIT_OK)
}

fn status(cluster: &Cluster, lab_root: &std::path::Path) -> anyhow::Result<u8> {
    let rows = runtime()?.block_on(zerolab::status::status(lab_root, cluster))?;
    let _ = write!(io::stdout().lock(), "{}", ui::status_table(&rows));
    let all_ready = rows.iter().all(|r| r.state == NodeState::Ready);
    Ok(if all_ready { EXIT_OK } else { EXIT_INVALID })
}

fn validate(file: &std::path::Path) -> ExitCode {
    match Cluster::from_path(file) {
        Ok(cluster) => {
            let names: Vec<&str> = cluster.nodes().iter().map(|node| node.name.as_str()).collect();
            let line = format!(
                "{}: valid: lab {}, provider {}, {} node{}: {}",
                file.display(),
                cluster.name(),
                cluster.provider(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            print_line(&mut io::stdout().lock(), &line);
            ExitCode::from(EXIT_OK)
        }
        Err(err) => load_error(err),
    }
}

/// Reports a cluster file that could not be loaded: every problem, or why it is unreadable.
fn load_error(err: LoadError) -> ExitCode {
    match err {
        LoadError::Invalid(diagnostics) => {
            print_line(&mut io::stderr().lock(), &diagnostics.to_string());
            ExitCode::from(EXIT_INVALID)
        }
        err @ LoadError::Read { .. } => {
            let error = anyhow::Error::from(err);
            print_line(&mut io::stderr().lock(), &format!("zerolab: {error:#}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints `text` and a newline; a closed pipe (`zerolab validate f | head -0`) is not
/// an error worth reporting, so write failures are ignored rather than panicking.
fn print_line(out: &mut impl Write, text: &str) {
    let _ = writeln!(out, "{text}");
}
