//! `zerolab workshop up|status|down|plan|serve`: the library's
//! [`zerolab::workshop::commands`] with one report printed, and the exit code `--help`
//! documents.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use zerolab::workshop::commands::{self, CommandError};
use zerolab::workshop::plan::Plan;
use zerolab::workshop::{format_duration, Overview, WorkshopFile};
use zerolab_sandbox::session::error_chain;

use crate::cli::WorkshopCommand;
use crate::{current_exe, print_line, runtime, EXIT_INVALID, EXIT_OK, EXIT_USAGE};

/// Runs one workshop command.
pub fn run(command: WorkshopCommand) -> ExitCode {
    let result = match command {
        WorkshopCommand::Serve { dir } => serve(&dir),
        WorkshopCommand::Up { file, lab_root, agent, force } => {
            with_file(&file, |ws| up(&file, ws, &lab_root, agent, force))
        }
        WorkshopCommand::Status { file, lab_root } => with_file(&file, |ws| status(ws, &lab_root)),
        WorkshopCommand::Down { file, lab_root } => with_file(&file, |ws| down(ws, &lab_root)),
        WorkshopCommand::Plan { file, lab_root, agent } => with_file(&file, |ws| plan(ws, &lab_root, agent)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            print_line(&mut io::stderr().lock(), &format!("zerolab: {}", error_chain(error.as_ref())));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Loads the workshop file; its problems are printed one a line (exit 1).
fn with_file(file: &Path, command: impl FnOnce(&WorkshopFile) -> anyhow::Result<u8>) -> anyhow::Result<u8> {
    match zerolab::workshop::from_path(file) {
        Ok(workshop) => command(&workshop),
        Err(zerolab::workshop::LoadError::Read { path, source }) => {
            Err(anyhow::anyhow!("cannot read {}: {source}", path.display()))
        }
        Err(problems) => {
            print_line(&mut io::stderr().lock(), &problems.to_string());
            Ok(EXIT_INVALID)
        }
    }
}

fn agent_path(agent: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    agent
        .or_else(zerolab::up::default_agent_path)
        .ok_or_else(|| anyhow::anyhow!("cannot find the zerolab executable's directory; pass --agent PATH"))
}

fn serve(dir: &Path) -> anyhow::Result<u8> {
    runtime()?.block_on(zerolab::workshop::serve::serve(dir, current_exe()?))?;
    Ok(EXIT_OK)
}

fn up(file: &Path, ws: &WorkshopFile, root: &Path, agent: Option<PathBuf>, force: bool) -> anyhow::Result<u8> {
    let agent = agent_path(agent)?;
    let program = current_exe()?;
    let progress = |line: &str| print_line(&mut io::stdout().lock(), line);
    let report = runtime()?.block_on(commands::up(file, ws, root, agent, &program, force, progress));
    let report = match report {
        Err(refused @ CommandError::Capacity { .. }) => {
            print_line(&mut io::stderr().lock(), &format!("zerolab: {refused}"));
            return Ok(EXIT_INVALID);
        }
        report => report?,
    };
    let mut out = io::stdout().lock();
    print_line(&mut out, &format!("portal: {}", report.url));
    print_line(&mut out, &format!("instructor password: {}", report.password.display()));
    if let Some(plan) = report.plan {
        print_line(&mut out, &plan_line(ws, &plan));
    }
    let serve = if report.started { "portal started" } else { "portal already running" };
    print_line(
        &mut out,
        &format!(
            "workshop {}: {} labs ready in {:.1} s (capacity {}); {serve}",
            ws.name,
            report.ready,
            report.elapsed.as_secs_f64(),
            ws.capacity
        ),
    );
    Ok(EXIT_OK)
}

fn status(ws: &WorkshopFile, root: &Path) -> anyhow::Result<u8> {
    let Some((overview, serving)) = commands::status(ws, root)? else {
        anyhow::bail!("workshop {} is not up; run `zerolab workshop up FILE` first", ws.name);
    };
    let mut out = io::stdout().lock();
    let _ = out.write_all(table(&overview).as_bytes());
    let pool = overview.pool;
    print_line(
        &mut out,
        &format!(
            "pool: {} free, {} warming, {} claimed, {} shelved, {} leaving, {} queued; capacity {}; portal {}",
            pool.free,
            pool.warming,
            pool.claimed,
            pool.shelved,
            pool.leaving,
            pool.queued,
            pool.capacity,
            if serving { "running" } else { "not running (run `zerolab workshop up FILE`)" }
        ),
    );
    Ok(EXIT_OK)
}

/// The attendees' table.
fn table(overview: &Overview) -> String {
    let mut rows = vec![["ATTENDEE", "LAB", "STATE", "STEP", "IDLE", "TIME LEFT"].map(String::from).to_vec()];
    for row in &overview.rows {
        rows.push(vec![
            format!("{} {}", row.id, row.name),
            row.lab.clone().unwrap_or_else(|| "-".into()),
            match (row.state, row.queued) {
                (Some(state), _) => state.as_str().to_owned(),
                (None, Some(position)) => format!("queued #{position}"),
                (None, None) => "-".to_owned(),
            },
            format!("{}/{}", row.step.min(row.steps) + usize::from(row.step < row.steps), row.steps),
            format_duration(row.idle_for),
            row.time_left.map_or("-".to_owned(), format_duration),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

fn down(ws: &WorkshopFile, root: &Path) -> anyhow::Result<u8> {
    let report = runtime()?.block_on(commands::down(ws, root))?;
    for left in &report.left {
        print_line(&mut io::stderr().lock(), &format!("warning: {left}"));
    }
    print_line(&mut io::stdout().lock(), &format!("workshop {}: down ({} labs taken down)", ws.name, report.labs));
    Ok(if report.left.is_empty() { EXIT_OK } else { EXIT_INVALID })
}

fn plan(ws: &WorkshopFile, root: &Path, agent: Option<PathBuf>) -> anyhow::Result<u8> {
    let plan = runtime()?.block_on(commands::plan_for(ws, root, agent_path(agent)?, current_exe()?))?;
    let mut out = io::stdout().lock();
    print_line(&mut out, &plan_line(ws, &plan));
    if u64::from(ws.capacity) > plan.fits {
        print_line(
            &mut io::stderr().lock(),
            &format!("zerolab: capacity {} is above the {} labs that fit", ws.capacity, plan.fits),
        );
        return Ok(EXIT_INVALID);
    }
    print_line(&mut out, &format!("capacity {} fits", ws.capacity));
    Ok(EXIT_OK)
}

fn plan_line(ws: &WorkshopFile, plan: &Plan) -> String {
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    format!(
        "this machine: {:.0} MiB available, {} cores; one idle lab of {} nodes: {:.1} MiB; labs that fit: {} (capacity {})",
        mib(plan.machine.available),
        plan.machine.cores,
        plan.lab.nodes,
        mib(plan.lab.bytes),
        plan.fits,
        ws.capacity
    )
}
