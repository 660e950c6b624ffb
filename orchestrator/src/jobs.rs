//! The job commands: `run`, `jobs`, `logs` and `cancel` (see `zerolab::run`).

use std::io::{self, Write};

use zerolab::cluster::Cluster;

use crate::cli::OutputFormat;
use crate::{current_exe, json, print_line, runtime, ui, EXIT_INVALID, EXIT_OK};

pub fn run(
    cluster: &Cluster,
    lab_root: &std::path::Path,
    job: &std::path::Path,
    output: OutputFormat,
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
    let options = zerolab::run::RunOptions { program: current_exe()? };
    // JSON: stdout holds the one document, so no progress at all.
    let progress = (output == OutputFormat::Text).then(|| ui::JobProgress::new(job.instances().len(), job.name()));
    let shown = progress.clone();
    let run = runtime()?.block_on(zerolab::run::run(lab_root, cluster, &job, &options, move |counts| {
        if let Some(shown) = &shown {
            shown.update(counts);
        }
    }));
    if let Some(progress) = &progress {
        progress.finish();
    }
    let run = run?;
    match output {
        OutputFormat::Json => json::print(&json::Run::new(job.name(), &run)),
        OutputFormat::Text => {
            let _ = write!(io::stdout().lock(), "{}", ui::job_summary(&run));
        }
    }
    Ok(if run.success() { EXIT_OK } else { EXIT_INVALID })
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

pub fn logs(cluster: &Cluster, lab_root: &std::path::Path, job: &str, instance: Option<&str>) -> anyhow::Result<u8> {
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
