//! The job commands: `run`, `wait`, `jobs`, `logs` and `cancel` (see `zerolab::run`).
//!
//! `run` and `wait` stop the run on the first Ctrl-C or SIGTERM (every guest killed,
//! reports collected, the run recorded `interrupted`, exit [`EXIT_INTERRUPTED`]); a
//! second one exits at once, the guests then stopping by themselves when their leases
//! run out.

use std::io::{self, Write};

use zerolab::cluster::Cluster;
use zerolab::run::{JobRun, RunState};

use crate::cli::OutputFormat;
use crate::{current_exe, json, print_line, runtime, ui, EXIT_INVALID, EXIT_OK};

/// A run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

pub fn run(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    job: &std::path::Path,
    output: OutputFormat,
    detach: bool,
) -> anyhow::Result<u8> {
    let job = match zerolab::job::Job::from_path(job) {
        Ok(job) => job,
        Err(zerolab::cluster::LoadError::Invalid(diagnostics)) => {
            match output {
                OutputFormat::Json => json::print(&json::Invalid::new(&diagnostics)),
                OutputFormat::Text => print_line(&mut io::stderr().lock(), &diagnostics.to_string()),
            }
            return Ok(EXIT_INVALID);
        }
        Err(err) => return Err(err.into()),
    };
    let runtime = runtime()?;
    let mut options = zerolab::run::RunOptions::new(current_exe()?);
    options.detach = detach;
    if !detach {
        options.interrupt = Some(interrupts(&runtime));
    }
    // JSON: stdout holds the one document, so no progress at all.
    let progress = (output == OutputFormat::Text).then(|| ui::JobProgress::new(job.instances().len(), job.name()));
    let shown = progress.clone();
    let run = runtime.block_on(zerolab::run::run(lab_root, cluster, &job, &options, move |counts| {
        if let Some(shown) = &shown {
            shown.update(counts);
        }
    }));
    if let Some(progress) = &progress {
        progress.finish();
    }
    let run = run?;
    if run.state == RunState::Detached {
        let line = format!(
            "run {} started, detached: {} instances run on; `zerolab wait CLUSTER {}` follows it and collects \
             their results",
            run.id,
            job.instances().len(),
            run.id
        );
        match output {
            OutputFormat::Json => json::print(&json::Run::new(job.name(), &run)),
            OutputFormat::Text => print_line(&mut io::stdout().lock(), &line),
        }
        return Ok(EXIT_OK);
    }
    if output == OutputFormat::Json {
        json::print(&json::Run::new(job.name(), &run));
        return Ok(exit_code(&run));
    }
    Ok(summary(&run))
}

/// `zerolab wait`: follows a run left behind to its end, as `run` would have.
pub fn wait(cluster: &Cluster, lab_root: &std::path::Path, name: &str) -> anyhow::Result<u8> {
    let runtime = runtime()?;
    let mut options = zerolab::run::RunOptions::new(current_exe()?);
    options.interrupt = Some(interrupts(&runtime));
    let progress = ui::JobProgress::new(0, name);
    let shown = progress.clone();
    let run = runtime.block_on(zerolab::run::resume::wait(lab_root, cluster, name, &options, move |counts| {
        shown.update(counts);
    }));
    progress.finish();
    Ok(summary(&run?))
}

/// Prints the run's summary; its exit code.
fn summary(run: &JobRun) -> u8 {
    let _ = write!(io::stdout().lock(), "{}", ui::job_summary(run));
    exit_code(run)
}

/// The exit code of a run that ended as `run` says.
fn exit_code(run: &JobRun) -> u8 {
    match run.state {
        RunState::Ok => EXIT_OK,
        RunState::Interrupted => EXIT_INTERRUPTED,
        _ => EXIT_INVALID,
    }
}

/// Becomes true on the first Ctrl-C or SIGTERM; the second exits at once.
fn interrupts(runtime: &tokio::runtime::Runtime) -> tokio::sync::watch::Receiver<bool> {
    let (interrupted, receiver) = tokio::sync::watch::channel(false);
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if interrupted.send_replace(true) {
                std::process::exit(EXIT_INTERRUPTED.into());
            }
            let line = "interrupted: stopping every guest and collecting their reports (again to quit at once; \
                        the guests then stop by themselves within 10 s)";
            print_line(&mut io::stderr().lock(), line);
        }
    });
    receiver
}

pub fn list(cluster: &Cluster, lab_root: &std::path::Path, output: OutputFormat) -> anyhow::Result<u8> {
    let lab = zerolab::lab::Lab::at(lab_root, cluster.name())?;
    let runs = zerolab::run::history::runs(&lab)?;
    match output {
        OutputFormat::Json => json::print(&json::Runs::new(cluster.name(), &runs)),
        OutputFormat::Text => {
            let _ = write!(io::stdout().lock(), "{}", ui::runs_table(&runs));
        }
    }
    Ok(EXIT_OK)
}

pub fn logs(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    job: &str,
    instance: Option<&str>,
    follow: bool,
) -> anyhow::Result<u8> {
    use zerolab::run::history;
    let program = current_exe()?;
    let runtime = runtime()?;
    if follow {
        return follow_logs(&runtime, cluster, lab_root, &program, job, instance);
    }
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

/// `logs -f`: one instance's stdout and stderr as they are, or every instance's stdout
/// as `INSTANCE: LINE`, each line once it is whole, until the instances end.
fn follow_logs(
    runtime: &tokio::runtime::Runtime,
    cluster: &Cluster,
    lab_root: &std::path::Path,
    program: &std::path::Path,
    job: &str,
    instance: Option<&str>,
) -> anyhow::Result<u8> {
    use zerolab::run::follow::Stream;
    let mut partial: std::collections::HashMap<String, Vec<u8>> = Default::default();
    let prefixed = instance.is_none();
    runtime.block_on(zerolab::run::history::follow(
        lab_root,
        cluster,
        program,
        job,
        instance,
        |name, stream, bytes| match (prefixed, stream) {
            (false, Stream::Stdout) => {
                let _ = io::stdout().lock().write_all(bytes).and_then(|()| io::stdout().flush());
            }
            (false, Stream::Stderr) => {
                let _ = io::stderr().lock().write_all(bytes);
            }
            (true, Stream::Stdout) => {
                let buffer = partial.entry(name.to_owned()).or_default();
                buffer.extend_from_slice(bytes);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let text = format!("{name}: {}", String::from_utf8_lossy(&line));
                    let _ = io::stdout().lock().write_all(text.as_bytes()).and_then(|()| io::stdout().flush());
                }
            }
            (true, Stream::Stderr) => {}
        },
    ))?;
    for (name, rest) in partial.into_iter().filter(|(_, rest)| !rest.is_empty()) {
        print_line(&mut io::stdout().lock(), &format!("{name}: {}", String::from_utf8_lossy(&rest)));
    }
    Ok(EXIT_OK)
}

pub fn cancel(cluster: &Cluster, lab_root: &std::path::Path, job: &str) -> anyhow::Result<u8> {
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
