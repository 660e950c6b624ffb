//! `zerolab`: the orchestrator's command line. Thin: parse the arguments ([`cli`]), call
//! the library, print one report ([`ui`]), map the result to the exit code documented in
//! `--help`. The job commands are in [`jobs`].

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use zerolab::cluster::{Cluster, LoadError, NodeSelector};
use zerolab::lab::{LockWait, NodeState};
use zerolab::provision::{ProvisionError, Reprovision, StepReport};
use zerolab::ssh::PARALLEL;
use zerolab::up::{UpError, UpOptions};

mod cli;
mod jobs;
mod json;
mod machine_cmds;
mod ui;
mod workshops;

use cli::{Cli, Command, GraphFormat, InventoryFormat, OutputFormat, SandboxCommand, WorkshopCommand};

/// The file is valid / the command did what was asked.
pub(crate) const EXIT_OK: u8 = 0;
/// The cluster file is invalid, or a node is not ready.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Usage error (clap exits with 2 itself) or a file that cannot be read.
pub(crate) const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Diagnostics on stderr, filtered by ZEROLAB_LOG (e.g. `ZEROLAB_LOG=zerolab=debug`);
    // warnings only by default, and the keeper's own start/stop lines in its log.
    let default = if matches!(
        cli.command,
        Command::Keeper { .. } | Command::PxeServe { .. } | Command::Workshop(WorkshopCommand::Serve { .. })
    ) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZEROLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Validate { file, cluster, output } => match zerolab::job::is_job_file(&file) {
            true => validate_job(&file, cluster.as_deref(), output),
            false => validate(&file, cluster.is_some(), output),
        },
        Command::Up { file, lab_root, agent, reprovision } => {
            with_lab(&file, &lab_root, |cluster| up(cluster, &file, &lab_root, agent, reprovision))
        }
        Command::Down { file, lab_root, force, purge, strict } => {
            with_lab(&file, &lab_root, |cluster| down(cluster, &file, &lab_root, DownFlags { force, purge, strict }))
        }
        Command::Status { file, lab_root, output } => {
            with_lab_as(&file, &lab_root, output, |cluster| status(cluster, &lab_root, output))
        }
        Command::Exec { file, lab_root, nodes, command } => {
            with_lab(&file, &lab_root, |cluster| exec(cluster, &lab_root, nodes.as_ref(), &command.join(" ")))
        }
        Command::Inventory { file, lab_root, format } => with_lab(&file, &lab_root, |cluster| {
            let format = match format {
                InventoryFormat::Ansible => zerolab::inventory::Format::Ansible,
                InventoryFormat::SshConfig => zerolab::inventory::Format::SshConfig,
            };
            let text = zerolab::inventory::write(&lab_root, cluster, format)?;
            let _ = io::stdout().lock().write_all(text.as_bytes());
            Ok(EXIT_OK)
        }),
        Command::Keeper { lab_dir } => keeper(&lab_dir),
        Command::Workshop(command) => workshops::run(command),
        Command::PxeServe { plan } => pxe_serve(&plan),
        Command::AgentScript { file, lab_root, agent, uploaded } => {
            with_lab(&file, &lab_root, |cluster| agent_script(cluster, &lab_root, agent, uploaded))
        }
        Command::Labs { lab_root } => labs(&lab_root),
        Command::Run { file, job, lab_root, output, detach } => {
            with_lab_as(&file, &lab_root, output, |cluster| jobs::run(cluster, &lab_root, &job, output, detach))
        }
        Command::Wait { file, run, lab_root } => {
            with_lab(&file, &lab_root, |cluster| jobs::wait(cluster, &lab_root, &run))
        }
        Command::Jobs { file, lab_root, output } => {
            with_lab_as(&file, &lab_root, output, |cluster| jobs::list(cluster, &lab_root, output))
        }
        Command::Logs { file, job, instance, follow, lab_root } => {
            with_lab(&file, &lab_root, |cluster| jobs::logs(cluster, &lab_root, &job, instance.as_deref(), follow))
        }
        Command::Cancel { file, job, lab_root } => {
            with_lab(&file, &lab_root, |cluster| jobs::cancel(cluster, &lab_root, &job))
        }
        Command::Sandbox(SandboxCommand::Run { file, node, program, args, lab_root }) => {
            with_lab(&file, &lab_root, |cluster| sandbox_run(cluster, &lab_root, &node, &program, args))
        }
        Command::Ssh { file, node, lab_root, command } => {
            with_lab(&file, &lab_root, |cluster| login(cluster, &lab_root, &node, &command))
        }
        Command::Power { action, file, nodes, lab_root } => {
            with_lab(&file, &lab_root, |cluster| machine_cmds::power(cluster, &lab_root, action, &nodes))
        }
        Command::Shelve { offload, file, nodes, lab_root } => {
            with_lab(&file, &lab_root, |cluster| machine_cmds::shelve(cluster, &lab_root, offload, &nodes))
        }
        Command::Unshelve { file, nodes, lab_root, agent } => {
            with_lab(&file, &lab_root, |cluster| machine_cmds::unshelve(cluster, &lab_root, agent, &nodes))
        }
        Command::Reinstall { file, node, lab_root } => with_lab(&file, &lab_root, |cluster| {
            runtime()?.block_on(zerolab::machines::reinstall(&lab_root, cluster, &node))?;
            print_line(
                &mut io::stdout().lock(),
                &format!("{node}: installs again on this boot (power-cycled); `zerolab up` waits for it"),
            );
            Ok(EXIT_OK)
        }),
        Command::Render { file, out, lab_root } => with_lab(&file, &lab_root, |cluster| {
            for path in zerolab::machines::render(&lab_root, cluster, out.as_deref())? {
                print_line(&mut io::stdout().lock(), &path.display().to_string());
            }
            Ok(EXIT_OK)
        }),
        Command::Graph { file, job, format, lab_root } => graph(&file, job.as_deref(), format, &lab_root),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "zerolab", &mut io::stdout().lock());
            ExitCode::from(EXIT_OK)
        }
    }
}

/// [`with_cluster`] for a command on the lab under `lab_root`: when that lab is not
/// there but an older build's `.zerolab` in the working directory holds it, says so first.
fn with_lab(
    file: &std::path::Path,
    lab_root: &std::path::Path,
    command: impl FnOnce(&Cluster) -> anyhow::Result<u8>,
) -> ExitCode {
    with_lab_as(file, lab_root, OutputFormat::Text, command)
}

/// [`with_lab`] for a command printing `output` (see [`with_cluster_as`]).
fn with_lab_as(
    file: &std::path::Path,
    lab_root: &std::path::Path,
    output: OutputFormat,
    command: impl FnOnce(&Cluster) -> anyhow::Result<u8>,
) -> ExitCode {
    with_cluster_as(file, output, |cluster| {
        if let Some(hint) = zerolab::lab::old_lab_hint(lab_root, cluster.name()) {
            print_line(&mut io::stderr().lock(), &hint);
        }
        command(cluster)
    })
}

/// Loads the cluster file and runs `command` on it; an invalid or unreadable file is
/// reported as `validate` reports it (with `json` output, its problems are the document
/// on stdout).
fn with_cluster_as(
    file: &std::path::Path,
    output: OutputFormat,
    command: impl FnOnce(&Cluster) -> anyhow::Result<u8>,
) -> ExitCode {
    let cluster = match zerolab::cluster::from_path(file) {
        Ok(cluster) => cluster,
        Err(err) => return load_error_as(err, output),
    };
    match command(&cluster) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_line(
                &mut io::stderr().lock(),
                &format!("zerolab: {}", zerolab_sandbox::session::error_chain(error.as_ref())),
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// This executable: what starts the lab's connection keeper.
pub(crate) fn current_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the zerolab executable: {e}"))
}

fn keeper(lab_dir: &std::path::Path) -> ExitCode {
    let result = runtime().and_then(|runtime| Ok(runtime.block_on(zerolab::keeper::serve(lab_dir))?));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(error) => {
            print_line(
                &mut io::stderr().lock(),
                &format!("zerolab keeper: {}", zerolab_sandbox::session::error_chain(error.as_ref())),
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs a pxe lab's boot server until SIGTERM (see `zerolab::provider::pxe::boot::server`).
fn pxe_serve(plan: &std::path::Path) -> ExitCode {
    let result = runtime().and_then(|runtime| Ok(runtime.block_on(zerolab::provider::pxe::boot::server::run(plan))?));
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(error) => {
            print_line(
                &mut io::stderr().lock(),
                &format!("zerolab pxe-serve: {}", zerolab_sandbox::session::error_chain(error.as_ref())),
            );
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints the start script `up` would run on a node of `cluster`'s lab (see
/// `zerolab::install::start_script`): before the upload, it compares the node's binary with
/// `agent`'s sha256; with `uploaded`, it restarts the agent to serve the copied binary.
fn agent_script(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    agent: Option<PathBuf>,
    uploaded: bool,
) -> anyhow::Result<u8> {
    use zerolab::install::{self, Claim, Owner, Paths};
    let lab = zerolab::lab::Lab::at(lab_root, cluster.name())?;
    let owner = Owner::of(lab.name(), lab.dir());
    let script = if uploaded {
        install::start_script(&Paths::NODE, &Claim { owner: &owner, adopt: true }, true, None)?
    } else {
        let agent = agent
            .or_else(zerolab::up::default_agent_path)
            .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))?;
        let sum = std::fs::File::open(&agent)
            .and_then(|mut file| zerolab_agent_api::Sha256::of_reader(&mut file))
            .map_err(|e| anyhow::anyhow!("cannot read agent binary {}: {e}; build it (cargo build --release -p zerolab-agent) or pass --agent PATH", agent.display()))?;
        install::start_script(&Paths::NODE, &Claim { owner: &owner, adopt: false }, false, Some(&sum))?
    };
    let _ = io::stdout().lock().write_all(script.as_bytes());
    Ok(EXIT_OK)
}

fn up(
    cluster: &Cluster,
    file: &std::path::Path,
    lab_root: &std::path::Path,
    agent: Option<PathBuf>,
    reprovision: Option<String>,
) -> anyhow::Result<u8> {
    let reprovision = match reprovision {
        None => Reprovision::Changed,
        Some(step) if step.is_empty() => Reprovision::All,
        Some(step) => Reprovision::Step(step),
    };
    let agent = agent
        .or_else(zerolab::up::default_agent_path)
        .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))?;
    let progress = ui::Progress::new(cluster.nodes().len(), &format!("lab {}", cluster.name()));
    let (steps, lines) = (progress.clone(), progress.clone());
    let options = UpOptions {
        agent,
        parallel: PARALLEL,
        keeper: Some(current_exe()?),
        create_progress: std::sync::Arc::new(move |node: &str, step| steps.node_step(node, &step)),
        lock: lock_wait()?,
        cluster_file: Some(std::path::absolute(file)?),
        notice: std::sync::Arc::new(|line: &str| print_line(&mut io::stdout().lock(), line)),
        reprovision,
        step_progress: std::sync::Arc::new(move |report: &StepReport| lines.line(&ui::step_line(report))),
    };
    let started = std::time::Instant::now();
    let shown = progress.clone();
    let reports = runtime()?.block_on(zerolab::up::up(lab_root, cluster, &options, move |report| {
        shown.node_done(&ui::node_line(report));
    }));
    progress.finish();
    let reports = match reports {
        Err(UpError::Provision(failed @ ProvisionError::Failed { .. })) => {
            let mut err = io::stderr().lock();
            print_line(&mut err, &format!("zerolab: {failed}"));
            if let ProvisionError::Failed { tail, .. } = &failed {
                tail.iter().for_each(|line| print_line(&mut err, &format!("  | {line}")));
            }
            return Ok(EXIT_INVALID);
        }
        reports => reports?,
    };
    print_line(&mut io::stdout().lock(), &ui::up_summary(cluster.name(), &reports, started.elapsed()));
    let all_ready = reports.iter().all(|r| r.state == NodeState::Ready);
    Ok(if all_ready { EXIT_OK } else { EXIT_INVALID })
}

/// How long to wait for another command on the lab: `ZEROLAB_LOCK_WAIT` seconds, or the
/// library's default; the wait is said once on stderr.
fn lock_wait() -> anyhow::Result<LockWait> {
    let within = match std::env::var("ZEROLAB_LOCK_WAIT") {
        Ok(seconds) => std::time::Duration::from_secs_f64(
            seconds.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
                anyhow::anyhow!("ZEROLAB_LOCK_WAIT is `{seconds}`; set it to a number of seconds, or unset it")
            })?,
        ),
        Err(_) => zerolab::lab::lock::DEFAULT_WAIT,
    };
    let waiting: zerolab::lab::Waiting = std::sync::Arc::new(|lab: &str, holder: &zerolab::lab::Holder| {
        print_line(&mut io::stderr().lock(), &ui::lock_waiting(lab, holder));
    });
    Ok(LockWait { within, waiting: Some(waiting) })
}

/// `down`'s flags.
struct DownFlags {
    force: bool,
    purge: bool,
    strict: bool,
}

fn down(cluster: &Cluster, file: &std::path::Path, lab_root: &std::path::Path, flags: DownFlags) -> anyhow::Result<u8> {
    let options = zerolab::down::DownOptions {
        force: flags.force,
        purge: flags.purge,
        lock: lock_wait()?,
        cluster_file: Some(std::path::absolute(file)?),
    };
    let report = runtime()?.block_on(zerolab::down::down(lab_root, cluster, &options))?;
    for run in &report.live {
        print_line(&mut io::stderr().lock(), &format!("warning: {run}; its guests stop with the lab (--force)"));
    }
    for left in &report.left {
        print_line(&mut io::stderr().lock(), &format!("warning: {left}"));
    }
    print_line(&mut io::stdout().lock(), &ui::down_summary(cluster.name(), &report));
    Ok(if flags.strict && report.has_failures() { EXIT_INVALID } else { EXIT_OK })
}

fn labs(lab_root: &std::path::Path) -> ExitCode {
    let listed = runtime().and_then(|runtime| Ok(runtime.block_on(zerolab::lab::index::list(lab_root))?));
    match listed {
        Ok(labs) if labs.is_empty() => {
            print_line(&mut io::stdout().lock(), &format!("no labs under {}", lab_root.display()));
            ExitCode::from(EXIT_OK)
        }
        Ok(labs) => {
            let _ = write!(io::stdout().lock(), "{}", ui::labs_table(&labs));
            ExitCode::from(EXIT_OK)
        }
        Err(error) => {
            let line = format!("zerolab: {}", zerolab_sandbox::session::error_chain(error.as_ref()));
            print_line(&mut io::stderr().lock(), &line);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn status(cluster: &Cluster, lab_root: &std::path::Path, output: OutputFormat) -> anyhow::Result<u8> {
    let status = runtime()?.block_on(zerolab::status::status(lab_root, cluster))?;
    let all_ready = status.nodes.iter().all(|r| r.state == NodeState::Ready);
    if output == OutputFormat::Json {
        json::print(&json::Status::new(cluster.name(), &status));
        return Ok(if all_ready { EXIT_OK } else { EXIT_INVALID });
    }
    let mut text = ui::status_table(&status.nodes);
    if !status.steps.is_empty() {
        text.push('\n');
        text.push_str(&ui::steps_table(&status.steps));
    }
    if !status.services.is_empty() {
        text.push('\n');
        text.push_str(&ui::services_table(&status.services));
    }
    let _ = write!(io::stdout().lock(), "{text}");
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
    let options = zerolab::run::RunOptions::new(current_exe()?);
    // The guest reads our stdin, unless it is a terminal (nobody would know to type).
    let stdin = (!io::stdin().is_terminal()).then(|| Box::new(io::stdin()) as Box<dyn io::Read + Send>);
    let report =
        runtime()?.block_on(run(lab_root, cluster, node, program, argv, stdin, &options, |stream, bytes| {
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

/// `zerolab graph`: the lab, and the job placed on it, drawn from the files; each node's
/// state is what the lab records when it is up (nothing is contacted).
fn graph(
    file: &std::path::Path,
    job: Option<&std::path::Path>,
    format: GraphFormat,
    lab_root: &std::path::Path,
) -> ExitCode {
    let text = OutputFormat::Text;
    let cluster = match zerolab::cluster::from_path(file) {
        Ok(cluster) => cluster,
        Err(err) => return load_error_as(err, text),
    };
    let job = match job.map(zerolab::job::Job::from_path).transpose() {
        Ok(job) => job,
        Err(err) => return load_error_as(err, text),
    };
    let placement = match job.as_ref().map(|job| job.check_placement(&cluster)).transpose() {
        Ok(placement) => placement,
        Err(diagnostics) => return invalid(&diagnostics, text),
    };
    // A lab that is not up, or whose files cannot be read, is drawn without states.
    let states = zerolab::lab::Lab::open_any(lab_root, &cluster)
        .ok()
        .filter(|lab| lab.is_up())
        .map(|lab| lab.state().clone())
        .unwrap_or_default();
    let drawing = zerolab::graph::Drawing::new(&cluster, job.as_ref().zip(placement.as_ref()), |node| {
        states.nodes.get(node).map(|record| ui::state_name(&record.state).to_owned())
    });
    let page = match format {
        GraphFormat::Mermaid => zerolab::graph::mermaid(&drawing),
        GraphFormat::Dot => zerolab::graph::dot(&drawing),
        GraphFormat::Html => zerolab::graph::html(&drawing),
    };
    let _ = io::stdout().lock().write_all(page.as_bytes());
    ExitCode::from(EXIT_OK)
}

fn validate(file: &std::path::Path, with_cluster: bool, output: OutputFormat) -> ExitCode {
    if with_cluster {
        let line = format!("zerolab: --cluster goes with a job file, and {} is not one", file.display());
        print_line(&mut io::stderr().lock(), &line);
        return ExitCode::from(EXIT_USAGE);
    }
    match zerolab::cluster::from_path(file) {
        Ok(cluster) if output == OutputFormat::Json => {
            json::print(&json::ValidCluster::new(file, &cluster));
            ExitCode::from(EXIT_OK)
        }
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
        Err(err) => load_error_as(err, output),
    }
}

/// Checks a job file, and with `cluster` places it on that lab: one summary line, or
/// every problem.
fn validate_job(file: &std::path::Path, cluster: Option<&std::path::Path>, output: OutputFormat) -> ExitCode {
    let job = match zerolab::job::Job::from_path(file) {
        Ok(job) => job,
        Err(err) => return load_error_as(err, output),
    };
    let mut line = format!("{}: valid: {}", file.display(), job.summary());
    let mut placed = None;
    if let Some(cluster) = cluster {
        let cluster = match zerolab::cluster::from_path(cluster) {
            Ok(cluster) => cluster,
            Err(err) => return load_error_as(err, output),
        };
        let placement = match job.check_placement(&cluster) {
            Ok(placement) => placement,
            Err(diagnostics) => return invalid(&diagnostics, output),
        };
        let nodes: Vec<String> =
            placement.nodes().iter().map(|node| format!("{node} ({})", placement.instances_on(node).len())).collect();
        line.push_str(&format!(", placed on lab {}: {}", cluster.name(), nodes.join(", ")));
        placed = Some(placement);
    }
    match output {
        OutputFormat::Json => json::print(&json::ValidJob::new(file, &job, placed.as_ref())),
        OutputFormat::Text => print_line(&mut io::stdout().lock(), &line),
    }
    ExitCode::from(EXIT_OK)
}

/// Reports every problem of an invalid file: on stderr, or as the JSON document.
fn invalid<P: std::fmt::Display>(diagnostics: &zerolab::cluster::Diagnostics<P>, output: OutputFormat) -> ExitCode {
    match output {
        OutputFormat::Json => json::print(&json::Invalid::new(diagnostics)),
        OutputFormat::Text => print_line(&mut io::stderr().lock(), &diagnostics.to_string()),
    }
    ExitCode::from(EXIT_INVALID)
}

/// Reports a cluster or job file that could not be loaded: every problem (on stderr, or
/// with `json` as the document on stdout), or why it is unreadable (one line on stderr).
pub(crate) fn load_error_as<P>(err: LoadError<P>, output: OutputFormat) -> ExitCode
where
    P: std::fmt::Debug + std::fmt::Display + Send + Sync + 'static,
{
    match err {
        LoadError::Invalid(diagnostics) => invalid(&diagnostics, output),
        err @ LoadError::Read { .. } => {
            let error = anyhow::Error::from(err);
            print_line(&mut io::stderr().lock(), &format!("zerolab: {error:#}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Prints `text` and a newline; a closed pipe (`zerolab validate f | head -0`) is not
/// an error worth reporting, so write failures are ignored rather than panicking.
pub(crate) fn print_line(out: &mut impl Write, text: &str) {
    let _ = writeln!(out, "{text}");
}
