//! `zerolab`: the orchestrator's command line. Thin: parse the arguments, call the
//! library, print one report, map the result to the exit code documented in `--help`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zerolab::cluster::{Cluster, LoadError};

/// Labs of many machines that run untrusted code in millisecond sandboxes.
#[derive(Debug, Parser)]
#[command(
    name = "zerolab",
    version,
    disable_help_subcommand = true,
    after_help = "Exit status: 0 success (the file is valid), 1 the cluster file is invalid, \
                  2 usage error or a file that cannot be read."
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
}

/// The file is valid / the command did what was asked.
const EXIT_OK: u8 = 0;
/// The cluster file is invalid.
const EXIT_INVALID: u8 = 1;
/// Usage error (clap exits with 2 itself) or a file that cannot be read.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { file } => validate(&file),
    }
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
        Err(LoadError::Invalid(diagnostics)) => {
            print_line(&mut io::stderr().lock(), &diagnostics.to_string());
            ExitCode::from(EXIT_INVALID)
        }
        Err(err @ LoadError::Read { .. }) => {
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
