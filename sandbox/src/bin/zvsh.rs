//! `zvsh`: run a ZeroVM guest from a command line or a manifest.
//!
//! Thin by design: parse the arguments, set up logging, call
//! `zerolab_sandbox::zvsh` or `session`, print, and exit with the documented
//! code.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Parser;
use zerolab_sandbox::{manifest, session, zvsh};

const AFTER_HELP: &str = "\
Arguments after PROGRAM that start with @:
  @FILE        attach the host file FILE as a channel named /dev/N.BASENAME (N counts
               the images and files attached, from 1) and pass that name to the guest
               in place of the argument. An existing FILE is a read-only random-access
               channel (type 3): the guest reads any part of it, in any order, with
               zvm_pread(channel, buf, size, offset), and sees its size in its manifest.
               A FILE that does not exist is created as a write-only sequential output
               (type 0). Either way the guest finds the channel by the name it was
               given: zvm_channel(argv[i]).
  @NAME=VALUE  set the guest's environment variable NAME (not passed as an argument).
  FILE         a plain argument naming a regular file under the current directory (a
               relative path without ..) is attached as @FILE is: the guest cannot open
               host files, so `zvsh --zvm-image python.tar python hello.py` passes
               /dev/2.hello.py to Python. Other arguments are passed as they are.
  Example:
    zvsh ./lookup @table.bin @found.txt 42
  runs ./lookup with argv \"./lookup /dev/1.table.bin /dev/2.found.txt 42\": it reads
  table.bin at any offset and writes found.txt.

Exit status:
  with --manifest: the ZeroVM return code (0 ok, 2 program missing, 4 killed
  by a signal, a forbidden call or Timeout, 5 program not a regular file,
  8 not a valid executable or validation failed, 12 bad Memory, 14 malformed
  manifest, 22 channel with no readable or writable side, 23 too many
  channels, 93 unsupported channel source);
  otherwise the guest's exit code, or the ZeroVM return code when the session
  failed (always the ZeroVM return code with --zvm-getrc).";

/// Run a ZeroVM guest: a static program confined to six calls on its channels.
#[derive(Parser, Debug)]
#[command(name = "zvsh", version, after_help = AFTER_HELP)]
struct Cli {
    /// Run this manifest (the classic `zerovm FILE`) and print the report on stdout. A manifest
    /// with `Job = SOCKET` starts a daemon: the guest initialises and calls zvm_fork, and each job
    /// manifest sent to SOCKET (see --job) then runs in a copy of it, until its Timeout.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "images", "save_dir"])]
    manifest: Option<PathBuf>,
    /// With --manifest: send the manifest as a job to the daemon listening on SOCKET and print
    /// the report it answers with (its channels are opened by the daemon).
    #[arg(long = "job", value_name = "SOCKET", requires = "manifest")]
    job: Option<PathBuf>,
    /// Attach a tar as a read-only channel /dev/N.BASENAME, which zvm-cc guests see as a file
    /// system at MOUNTPOINT (default /; listed in the /dev/nvram channel); PROGRAM may be a file
    /// inside it.
    #[arg(long = "zvm-image", value_name = "PATH[,MOUNTPOINT[,ro|rw]]")]
    images: Vec<String>,
    /// Keep the generated manifest and the report in DIR.
    #[arg(long = "zvm-save-dir", value_name = "DIR")]
    save_dir: Option<PathBuf>,
    /// Print the manifest and the report to stderr, and log the runtime's steps (in
    /// colour on a terminal unless NO_COLOR is set).
    #[arg(long = "zvm-debug")]
    debug: bool,
    /// Exit with the ZeroVM return code instead of the guest's exit code.
    #[arg(long = "zvm-getrc")]
    getrc: bool,
    /// The guest program and its arguments (`@FILE` attaches a file as a channel, `@NAME=VALUE` sets
    /// the environment: see below).
    #[arg(value_name = "PROGRAM [ARGS]", trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    let level = if cli.debug { "debug" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ZVSH_LOG").unwrap_or_else(|_| level.into()))
        .with_writer(std::io::stderr)
        .with_ansi(colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR")))
        .init();
    let opts = zvsh::default_options();
    if let (Some(path), Some(socket)) = (&cli.manifest, &cli.job) {
        std::process::exit(submit_job(path, socket));
    }
    if let Some(path) = &cli.manifest {
        std::process::exit(run_manifest(path, &opts));
    }
    let Some((program, args)) = cli.command.split_first() else {
        eprintln!("zvsh: nothing to run; give a PROGRAM (built with sandbox/guest/zvm-gcc) or --manifest FILE");
        std::process::exit(2);
    };
    let command = zvsh::Command { images: cli.images.clone(), program: program.clone(), args: args.to_vec() };
    let prepared = zvsh::Settings::load().and_then(|s| command.prepare(&s));
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            let report = zvsh::error_report(&e);
            eprintln!("zvsh: {}", report.exit_state);
            std::process::exit(report.return_code.code());
        }
    };
    let text = prepared.manifest.render();
    let report = zvsh::run(prepared, &opts);
    if let Some(dir) = &cli.save_dir {
        let saved = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join("manifest"), &text))
            .and_then(|_| std::fs::write(dir.join("report"), report.to_string()));
        if let Err(e) = saved {
            eprintln!("zvsh: cannot save to {}: {e}", dir.display());
        }
    }
    let failed = report.return_code.code() != 0;
    if failed || cli.debug {
        let _ = std::io::stdout().flush();
        if failed {
            eprint!("{}", zvsh::failure_text(&text, &report));
        } else {
            eprint!("{text}\n{report}");
        }
    }
    let code = if cli.getrc || failed { report.return_code.code() } else { report.user_code as i32 };
    std::process::exit(code);
}

/// Whether logs are coloured: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn run_manifest(path: &PathBuf, opts: &session::Options) -> i32 {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("zvsh: cannot read manifest {}: {e}", path.display());
            return 14;
        }
    };
    let report = match manifest::parse(&text) {
        Ok(m) => session::run_manifest(&m, opts),
        Err(e) => zerolab_sandbox::report::Report::failed(
            e.code,
            zerolab_sandbox::report::ValidatorState::NotRun,
            e.to_string(),
        ),
    };
    print!("{report}");
    report.return_code.code()
}

fn submit_job(path: &PathBuf, socket: &std::path::Path) -> i32 {
    let report = std::fs::read(path).and_then(|text| session::daemon::submit(socket, &text));
    match report {
        Ok((text, code)) => {
            print!("{text}");
            code
        }
        Err(e) => {
            eprintln!("zvsh: cannot send {} to the daemon at {}: {e}", path.display(), socket.display());
            14
        }
    }
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())), "an empty NO_COLOR is unset");
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None), "a pipe or file gets no escape codes");
    }
}
