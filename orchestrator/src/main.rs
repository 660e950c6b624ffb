//! `zerolab`: the orchestrator's command line. Thin: parse the arguments, call the
//! library, print one report, map the result to the exit code documented in `--help`.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zerolab::cluster::{Cluster, LoadError, NodeSelector};
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
                  2 usage error, a file that cannot be read, or a lab that cannot be brought up or down.\n\
                  Environment: ZEROLAB_LOG sets what is logged to stderr (default `warn`; e.g. \
                  `zerolab=debug` for each step with its timing)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a cluster file and print its nodes, or a job file (`kind: Job`, or a ZeroCloud
    /// JSON job description) and print its groups, instances and channels; or print every
    /// problem found as FILE:LINE:COL: what is wrong; what is expected
    #[command(after_help = "Exit status: 0 valid, 1 invalid, or a job that cannot be placed on the --cluster \
                            lab (each problem on its own line on stderr), 2 usage error or unreadable file.")]
    Validate {
        /// The cluster file or job file (YAML with apiVersion zerolab/v1, or ZeroCloud JSON)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// With a job file: also place its instances on this cluster file's nodes
        #[arg(long, value_name = "CLUSTER")]
        cluster: Option<PathBuf>,
    },
    /// Bring the lab up: make its nodes (netns; ssh nodes exist already), install and
    /// start the agent on each (a systemd service where systemd runs, else a supervised
    /// process), wait until it is healthy; one line per node as it finishes, then a summary
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
    /// Remove the lab and its directory (idempotent): netns removes its nodes; ssh stops
    /// and removes what zerolab installed on each node it reached (the agent, its service,
    /// /var/lib/zerolab, /run/zerolab) and nothing else, keeping the lab when a node fails
    #[command(after_help = "Exit status: 0 removed (or nothing to remove), 1 invalid cluster file, \
                            2 usage error, unreadable file, or the lab could not be removed (ssh: a node \
                            zerolab could not be removed from, named with the cause; run down again).")]
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
    /// Run a shell command on every ready node (or those --nodes selects), in parallel over
    /// one SSH connection each; each output line is printed as `NODE: LINE` (stderr lines
    /// as `NODE (stderr): LINE`, on stderr) when the node finishes, then the exit codes
    #[command(after_help = "Exit status: 0 the command exited 0 on every selected node, 1 it exited non-zero \
                            or was killed on a node, or a node was not ready or could not be reached, or the \
                            cluster file is invalid, 2 usage error, unreadable file, unknown node or a lab \
                            that is not up.")]
    Exec {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// Only these nodes: names, globs (node-*) or label=value, comma-separated
        #[arg(long, value_name = "SELECTOR")]
        nodes: Option<NodeSelector>,
        /// The command, run by each node's shell (words joined with spaces, as ssh does)
        #[arg(value_name = "CMD", last = true, required = true)]
        command: Vec<String>,
    },
    /// Run a job on the lab: place its instances, upload programs and inputs once per
    /// node, start every guest through its node's agent, collect reports and outputs
    /// into LAB/jobs/ID/, and print one line per instance: node, exit state, return
    /// code, guest exit code, accounting
    #[command(after_help = "Exit status: 0 every guest exited 0, 1 a guest failed, was stopped or lost with its \
                            node, or the cluster or job file is invalid, 2 usage error, unreadable file, a lab \
                            that is not up, a node that is not ready, or a job that cannot be placed or started.")]
    Run {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The job file (YAML `kind: Job`, or a ZeroCloud JSON job description)
        #[arg(value_name = "JOB")]
        job: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// List the lab's job runs: id, job, when, instances finished
    #[command(after_help = "Exit status: 0 listed, 1 invalid cluster file, 2 usage error or unreadable file.")]
    Jobs {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Print a run's output: every instance's stdout as `INSTANCE: LINE`, or one
    /// instance's stdout as it is (its stderr on stderr); live from its node while it runs
    #[command(after_help = "Exit status: 0 printed, 1 invalid cluster file, 2 usage error, unreadable file, \
                            unknown run or instance, or a node that did not answer.")]
    Logs {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The run: its id, or a job's name for its latest run
        #[arg(value_name = "JOB")]
        job: String,
        /// Only this instance
        #[arg(value_name = "INSTANCE")]
        instance: Option<String>,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Stop every instance of a run that is still running
    #[command(after_help = "Exit status: 0 stopped (or nothing left to stop), 1 a node did not answer or invalid \
                            cluster file, 2 usage error, unreadable file or unknown run.")]
    Cancel {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The run: its id, or a job's name for its latest run
        #[arg(value_name = "JOB")]
        job: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
    },
    /// Run guests in a node's sandbox
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// The lab's connection keeper (started by other commands, not by hand): holds one
    /// SSH connection per node and serves LAB_DIR/keeper.sock until the lab is taken down
    /// or it has been idle for 10 minutes
    #[command(hide = true)]
    Keeper {
        /// The lab directory
        #[arg(value_name = "LAB_DIR")]
        lab_dir: PathBuf,
    },
    /// Log in to a ready node with the system's OpenSSH client, host key checked against
    /// zerolab's pin (the config is written to LAB/ssh_config); with -- CMD, run CMD there
    #[command(after_help = "Exit status: ssh's own: the remote command's, or 255 when ssh failed; 1 invalid \
                            cluster file; 2 usage error, unreadable file, unknown node, a lab that is not up, \
                            a node that is not ready, or no ssh client.")]
    Ssh {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The node to log in to
        #[arg(value_name = "NODE")]
        node: String,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// A command to run instead of an interactive shell (words joined with spaces, as ssh does)
        #[arg(value_name = "CMD", last = true)]
        command: Vec<String>,
    },
    /// Print the lab's nodes for other tools: an Ansible INI inventory or an OpenSSH
    /// config (ssh -F FILE node-1), both checking host keys strictly against the keys
    /// zerolab pinned, which this writes to LAB/ssh_known_hosts in OpenSSH's format
    #[command(after_help = "Exit status: 0 printed, 1 invalid cluster file, 2 usage error, unreadable file, \
                            or a lab that is not up.")]
    Inventory {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Directory holding the labs
        #[arg(long, value_name = "DIR", default_value = DEFAULT_ROOT)]
        lab_root: PathBuf,
        /// What to print
        #[arg(long, value_name = "FORMAT")]
        format: InventoryFormat,
    },
}

/// `inventory --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum InventoryFormat {
    /// Ansible INI inventory, a group per label (KEY_VALUE)
    Ansible,
    /// OpenSSH client config, a Host block per node
    SshConfig,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Upload a guest program (built with sandbox/guest/zvm-gcc) to NODE's agent, run it
    /// there and stream its stdout and stderr back; on failure the six-line ZeroVM report
    /// follows on stderr
    #[command(after_help = "Exit status: the guest's exit code, or ZeroVM's return code when the session \
                            failed (4 killed or timed out, 8 invalid program, ...; see zvsh); 1 invalid \
                            cluster file; 2 usage error, unreadable file or program, a node that is not ready \
                            or cannot be reached, or an agent error. Options go before PROGRAM: everything \
                            after it is the guest's.")]
    Run {
        /// The cluster file
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The node to run on
        #[arg(value_name = "NODE")]
        node: String,
        /// The local guest program (a static zerolab guest)
        #[arg(value_name = "PROGRAM")]
        program: PathBuf,
        /// The guest's arguments
        #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
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
    // Diagnostics on stderr, filtered by ZEROLAB_LOG (e.g. `ZEROLAB_LOG=zerolab=debug`);
    // warnings only by default, and the keeper's own start/stop lines in its log.
    let default = if matches!(cli.command, Command::Keeper { .. }) { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZEROLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Validate { file, cluster } => match zerolab::job::is_job_file(&file) {
            true => validate_job(&file, cluster.as_deref()),
            false => validate(&file, cluster.is_some()),
        },
        Command::Up { file, lab_root, agent } => with_cluster(&file, |cluster| up(cluster, &lab_root, agent)),
        Command::Down { file, lab_root } => with_cluster(&file, |cluster| down(cluster, &lab_root)),
        Command::Status { file, lab_root } => with_cluster(&file, |cluster| status(cluster, &lab_root)),
        Command::Exec { file, lab_root, nodes, command } => {
            with_cluster(&file, |cluster| exec(cluster, &lab_root, nodes.as_ref(), &command.join(" ")))
        }
        Command::Inventory { file, lab_root, format } => with_cluster(&file, |cluster| {
            let format = match format {
                InventoryFormat::Ansible => zerolab::inventory::Format::Ansible,
                InventoryFormat::SshConfig => zerolab::inventory::Format::SshConfig,
            };
            let text = zerolab::inventory::write(&lab_root, cluster, format)?;
            let _ = io::stdout().lock().write_all(text.as_bytes());
            Ok(EXIT_OK)
        }),
        Command::Keeper { lab_dir } => keeper(&lab_dir),
        Command::Run { file, job, lab_root } => with_cluster(&file, |cluster| run_job(cluster, &lab_root, &job)),
        Command::Jobs { file, lab_root } => with_cluster(&file, |cluster| jobs(cluster, &lab_root)),
        Command::Logs { file, job, instance, lab_root } => {
            with_cluster(&file, |cluster| logs(cluster, &lab_root, &job, instance.as_deref()))
        }
        Command::Cancel { file, job, lab_root } => with_cluster(&file, |cluster| cancel(cluster, &lab_root, &job)),
        Command::Sandbox(SandboxCommand::Run { file, node, program, args, lab_root }) => {
            with_cluster(&file, |cluster| sandbox_run(cluster, &lab_root, &node, &program, args))
        }
        Command::Ssh { file, node, lab_root, command } => {
            with_cluster(&file, |cluster| login(cluster, &lab_root, &node, &command))
        }
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

/// This executable: what starts the lab's connection keeper.
fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the zerolab executable: {e}"))
}

fn run_job(cluster: &Cluster, lab_root: &std::path::Path, job: &std::path::Path) -> anyhow::Result<u8> {
    let job = match zerolab::job::Job::from_path(job) {
        Ok(job) => job,
        Err(zerolab::cluster::LoadError::Invalid(diagnostics)) => {
            print_line(&mut io::stderr().lock(), &diagnostics.to_string());
            return Ok(EXIT_INVALID);
        }
        Err(err) => return Err(err.into()),
    };
    let options = zerolab::run::RunOptions { program: current_exe()? };
    let progress = ui::JobProgress::new(job.instances().len(), job.name());
    let shown = progress.clone();
    let run = runtime()?.block_on(zerolab::run::run(lab_root, cluster, &job, &options, move |counts| {
        shown.update(counts);
    }));
    progress.finish();
    let run = run?;
    let _ = write!(io::stdout().lock(), "{}", ui::job_summary(&run));
    Ok(if run.success() { EXIT_OK } else { EXIT_INVALID })
}

fn jobs(cluster: &Cluster, lab_root: &std::path::Path) -> anyhow::Result<u8> {
    let lab = zerolab::lab::Lab::at(lab_root, cluster.name())?;
    let runs = zerolab::run::history::runs(&lab)?;
    let _ = write!(io::stdout().lock(), "{}", ui::runs_table(&runs));
    Ok(EXIT_OK)
}

fn logs(cluster: &Cluster, lab_root: &std::path::Path, job: &str, instance: Option<&str>) -> anyhow::Result<u8> {
    use zerolab::run::history;
    let program = current_exe()?;
    let runtime = runtime()?;
    let output = |instance: &str, stream: &str| {
        runtime.block_on(history::output(lab_root, cluster, &program, job, instance, stream))
    };
    match instance {
        Some(instance) => {
            let stdout = output(instance, "stdout")?;
            let stderr = output(instance, "stderr")?;
            let _ = io::stdout().lock().write_all(&stdout);
            let _ = io::stderr().lock().write_all(&stderr);
        }
        None => {
            let lab = zerolab::lab::Lab::at(lab_root, cluster.name())?;
            let (record, _) = history::find(&lab, job)?;
            for entry in &record.instances {
                let stdout = output(&entry.name, "stdout")?;
                let text: String =
                    String::from_utf8_lossy(&stdout).lines().map(|line| format!("{}: {line}\n", entry.name)).collect();
                let _ = io::stdout().lock().write_all(text.as_bytes());
            }
        }
    }
    Ok(EXIT_OK)
}

fn cancel(cluster: &Cluster, lab_root: &std::path::Path, job: &str) -> anyhow::Result<u8> {
    let stopped = runtime()?.block_on(zerolab::run::history::cancel(lab_root, cluster, &current_exe()?, job))?;
    let mut all = true;
    for (instance, result) in &stopped {
        match result {
            Ok(()) => print_line(&mut io::stdout().lock(), &format!("{instance}: stopped")),
            Err(cause) => {
                all = false;
                print_line(&mut io::stderr().lock(), &format!("{instance}: not stopped: {cause}"));
            }
        }
    }
    if stopped.is_empty() {
        print_line(&mut io::stdout().lock(), &format!("{job}: nothing running"));
    }
    Ok(if all { EXIT_OK } else { EXIT_INVALID })
}

fn keeper(lab_dir: &std::path::Path) -> ExitCode {
    let result = runtime().and_then(|runtime| Ok(runtime.block_on(zerolab::mux::serve(lab_dir))?));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(error) => {
            print_line(&mut io::stderr().lock(), &format!("zerolab keeper: {}", zerolab::up::cause(error.as_ref())));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn up(cluster: &Cluster, lab_root: &std::path::Path, agent: Option<PathBuf>) -> anyhow::Result<u8> {
    let agent = agent
        .or_else(zerolab::up::default_agent_path)
        .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))?;
    let options = UpOptions { agent, parallel: PARALLEL, keeper: Some(current_exe()?) };
    let started = std::time::Instant::now();
    let progress = ui::Progress::new(cluster.nodes().len(), &format!("lab {}", cluster.name()));
    let shown = progress.clone();
    let reports = runtime()?.block_on(zerolab::up::up(lab_root, cluster, &options, move |report| {
        shown.node_done(&ui::node_line(report));
    }));
    progress.finish();
    let reports = reports?;
    print_line(&mut io::stdout().lock(), &ui::up_summary(cluster.name(), &reports, started.elapsed()));
    let all_ready = reports.iter().all(|r| r.state == NodeState::Ready);
    Ok(if all_ready { EXIT_OK } else { EXIT_INVALID })
}

fn down(cluster: &Cluster, lab_root: &std::path::Path) -> anyhow::Result<u8> {
    runtime()?.block_on(zerolab::up::down(lab_root, cluster))?;
    print_line(&mut io::stdout().lock(), &format!("lab {}: down", cluster.name()));
    Ok(EXIT_OK)
}

fn status(cluster: &Cluster, lab_root: &std::path::Path) -> anyhow::Result<u8> {
    let rows = runtime()?.block_on(zerolab::status::status(lab_root, cluster))?;
    let _ = write!(io::stdout().lock(), "{}", ui::status_table(&rows));
    let all_ready = rows.iter().all(|r| r.state == NodeState::Ready);
    Ok(if all_ready { EXIT_OK } else { EXIT_INVALID })
}

fn exec(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    nodes: Option<&NodeSelector>,
    command: &str,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let runs = runtime()?.block_on(zerolab::exec::exec(
        lab_root,
        cluster,
        nodes,
        command,
        &current_exe()?,
        zerolab::exec::PARALLEL,
        |run| {
            let (stdout, stderr) = ui::exec_output(run);
            let _ = io::stdout().lock().write_all(stdout.as_bytes());
            let _ = io::stderr().lock().write_all(stderr.as_bytes());
        },
    ))?;
    print_line(&mut io::stdout().lock(), &ui::exec_summary(&runs, started.elapsed()));
    Ok(if runs.iter().all(|run| run.success()) { EXIT_OK } else { EXIT_INVALID })
}

fn sandbox_run(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    node: &str,
    program: &std::path::Path,
    args: Vec<String>,
) -> anyhow::Result<u8> {
    use zerolab::sandbox_run::{exit_code, run, Stream};
    // The guest's argv[0] is the program's name, as zvsh gives it.
    let name = program.file_name().map_or_else(|| program.to_string_lossy(), |n| n.to_string_lossy()).into_owned();
    let argv = std::iter::once(name).chain(args).collect();
    let report = runtime()?.block_on(run(lab_root, cluster, node, program, argv, |stream, bytes| {
        // Flushed at once: output shows as the guest writes it.
        let _ = match stream {
            Stream::Stdout => io::stdout().lock().write_all(bytes).and_then(|()| io::stdout().flush()),
            Stream::Stderr => io::stderr().lock().write_all(bytes),
        };
    }))?;
    let code = exit_code(&report);
    if code != 0 {
        print_line(&mut io::stderr().lock(), report.text.trim_end_matches('\n'));
    }
    Ok(code)
}

/// Replaces this process with `ssh` logged in to `node`; returns only when ssh could not
/// be started.
fn login(cluster: &Cluster, lab_root: &std::path::Path, node: &str, command: &[String]) -> anyhow::Result<u8> {
    use std::os::unix::process::CommandExt;
    let mut ssh = zerolab::login::command(lab_root, cluster, node, command)?;
    let error = ssh.exec();
    Err(anyhow::Error::new(error).context(format!("cannot run {}", ssh.get_program().to_string_lossy())))
}

fn validate(file: &std::path::Path, with_cluster: bool) -> ExitCode {
    if with_cluster {
        let line = format!("zerolab: --cluster goes with a job file, and {} is not one", file.display());
        print_line(&mut io::stderr().lock(), &line);
        return ExitCode::from(EXIT_USAGE);
    }
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

/// Checks a job file, and with `cluster` places it on that lab: one summary line, or
/// every problem.
fn validate_job(file: &std::path::Path, cluster: Option<&std::path::Path>) -> ExitCode {
    let job = match zerolab::job::Job::from_path(file) {
        Ok(job) => job,
        Err(err) => return load_error(err),
    };
    let mut line = format!("{}: valid: {}", file.display(), job.summary());
    if let Some(cluster) = cluster {
        let cluster = match Cluster::from_path(cluster) {
            Ok(cluster) => cluster,
            Err(err) => return load_error(err),
        };
        let placement = match job.check_placement(&cluster) {
            Ok(placement) => placement,
            Err(diagnostics) => {
                print_line(&mut io::stderr().lock(), &diagnostics.to_string());
                return ExitCode::from(EXIT_INVALID);
            }
        };
        let nodes: Vec<String> =
            placement.nodes().iter().map(|node| format!("{node} ({})", placement.instances_on(node).len())).collect();
        line.push_str(&format!(", placed on lab {}: {}", cluster.name(), nodes.join(", ")));
    }
    print_line(&mut io::stdout().lock(), &line);
    ExitCode::from(EXIT_OK)
}

/// Reports a cluster or job file that could not be loaded: every problem, or why it is
/// unreadable.
fn load_error<P>(err: LoadError<P>) -> ExitCode
where
    P: std::fmt::Debug + std::fmt::Display + Send + Sync + 'static,
{
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
