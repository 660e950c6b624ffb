//! What `zerolab` shows the user: progress lines, summaries and tables. Plain lines,
//! one per event, so the output reads the same on a terminal, in a pipe and in CI logs;
//! on a terminal, long work ([`Progress`]) also shows a live bar under those lines.
//! The table that ends `zerolab run` is in `run_table` ([`job_summary`]).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use zerolab::exec::{NodeRun, Outcome};
use zerolab::keeper::{ServiceState, ServiceStatus};
use zerolab::lab::index::LabSummary;
use zerolab::lab::{Holder, NodeState};
use zerolab::provider::CreateStep;
use zerolab::provision::record::StepCounts;
use zerolab::provision::{StepOutcome, StepReport};
use zerolab::run::history::RunSummary;
use zerolab::run::Counts;
use zerolab::status::NodeStatus;
use zerolab::up::NodeReport;

mod run_table;

pub use self::run_table::job_summary;

/// Progress of work done node by node: each finished node's line is printed at once;
/// on a terminal a bar below them counts nodes done and time spent. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress over `total` nodes, the bar labelled `what`.
    pub fn new(total: usize, what: &str) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let style = ProgressStyle::with_template("{spinner} {msg}: {pos}/{len} nodes [{bar:30}] {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(total as u64).with_style(style).with_message(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress { bar }
    }

    /// One node is done: its line.
    pub fn node_done(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// A line printed above the bar, counting nothing (a provisioning step's).
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// A node's step in its making (`create`): shown on the bar only, so the lines
    /// printed (and what a pipe or CI log gets) stay one per finished node.
    pub fn node_step(&self, node: &str, step: &CreateStep) {
        if let Some(bar) = &self.bar {
            bar.set_message(create_step_line(node, step));
        }
    }

    /// The work is over: the bar goes, the lines stay.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `node-2: booting`: a node's step in its making, as the bar shows it.
pub fn create_step_line(node: &str, step: &CreateStep) -> String {
    let step = match step {
        CreateStep::Making => "making",
        CreateStep::Booting => "booting",
        CreateStep::Step(step) => step,
        CreateStep::Made => "made",
    };
    format!("{node}: {step}")
}

/// What a command says once when another one holds the lab: who, and that it waits.
pub fn lock_waiting(lab: &str, holder: &Holder) -> String {
    format!("zerolab: lab {lab} is being changed by {holder}; waiting for it to finish")
}

/// Progress of a job run: on a terminal a line that counts instances pending, running,
/// done and failed (and how many times instances were placed again, once any was);
/// elsewhere a plain line each time the counts change.
#[derive(Clone)]
pub struct JobProgress {
    bar: Option<ProgressBar>,
}

impl JobProgress {
    /// Progress over `total` instances of job `name`.
    pub fn new(total: usize, name: &str) -> JobProgress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let style = ProgressStyle::with_template("{spinner} job {prefix}: {msg} [{bar:30}] {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(total as u64).with_style(style).with_prefix(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        JobProgress { bar }
    }

    /// The counts changed.
    pub fn update(&self, counts: &Counts) {
        let mut line = format!(
            "{} pending, {} running, {} done, {} failed",
            counts.pending, counts.running, counts.done, counts.failed
        );
        if counts.retried > 0 {
            line.push_str(&format!(", {} retried", counts.retried));
        }
        match &self.bar {
            Some(bar) => {
                // `wait` learns the total from the first counts.
                bar.set_length((counts.pending + counts.running + counts.done + counts.failed) as u64);
                bar.set_position((counts.done + counts.failed) as u64);
                bar.set_message(line);
            }
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// The run is over: the bar goes.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `zerolab jobs`: one line per run, oldest first.
pub fn runs_table(runs: &[RunSummary]) -> String {
    let mut rows = vec![["RUN", "JOB", "STARTED", "STATE", "ENDED"].map(String::from)];
    for run in runs {
        let started = std::time::UNIX_EPOCH + Duration::from_secs(run.record.started);
        let ago = std::time::SystemTime::now().duration_since(started).unwrap_or_default().as_secs();
        rows.push([
            run.record.id.clone(),
            run.record.job.clone(),
            format!("{ago}s ago"),
            run.state.name().to_owned(),
            format!("{}/{}", run.finished, run.record.instances.len()),
        ]);
    }
    table(&rows)
}

/// `zerolab labs`: one line per lab, by name.
pub fn labs_table(labs: &[LabSummary]) -> String {
    let mut rows = vec![["LAB", "PROVIDER", "NODES", "STATE", "KEEPER", "RUNS", "CLUSTER FILE"].map(String::from)];
    for lab in labs {
        rows.push([
            lab.name.clone(),
            lab.provider.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{}/{}", lab.ready, lab.total),
            lab.condition.as_str().to_owned(),
            if lab.keeper { "running" } else { "-" }.to_owned(),
            lab.runs.to_string(),
            lab.cluster_file.as_ref().map_or_else(|| "-".to_owned(), |file| file.display().to_string()),
        ]);
    }
    table(&rows)
}

/// Rows as left-aligned columns, two spaces apart, the last column unpadded (every row
/// as long as the first).
fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let columns = rows.first().map_or(0, |row| row.as_ref().len());
    let mut widths = vec![0; columns];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.as_ref().iter().enumerate() {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A state as one word.
pub fn state_name(state: &NodeState) -> &'static str {
    state.name()
}

/// `cause` without its leading `node NODE: ` when shown on a line or row that already
/// starts with the node (errors name their node so they stand alone elsewhere).
fn about<'a>(node: &str, cause: &'a str) -> &'a str {
    cause.strip_prefix("node ").and_then(|c| c.strip_prefix(node)).and_then(|c| c.strip_prefix(": ")).unwrap_or(cause)
}

/// One node finished by `up`: `node-1: ready (agent unchanged, already running, healthy)`
/// or `node-2: failed: CAUSE`.
pub fn node_line(report: &NodeReport) -> String {
    match report.state {
        NodeState::Ready => format!("{}: ready ({})", report.node, report.detail),
        ref state => format!("{}: {}: {}", report.node, state_name(state), about(&report.node, &report.detail)),
    }
}

/// One provisioning step finished on one node: `step join on node-2: ran (1.20s)`,
/// `... unchanged`, or `... failed: CAUSE`.
pub fn step_line(report: &StepReport) -> String {
    let what = format!("step {} on {}", report.step, report.node);
    match &report.outcome {
        StepOutcome::Ran => format!("{what}: ran ({:.2}s)", report.elapsed.as_secs_f64()),
        StepOutcome::Unchanged => format!("{what}: unchanged"),
        StepOutcome::Failed { cause, .. } => format!("{what}: failed: {cause}"),
    }
}

/// The provisioning table of `status`: step, and on how many of its nodes it is done,
/// failed and pending.
pub fn steps_table(steps: &[StepCounts]) -> String {
    let mut cells = vec![["STEP", "DONE", "FAILED", "PENDING"].map(String::from)];
    for step in steps {
        cells.push([step.step.clone(), step.done.to_string(), step.failed.to_string(), step.pending.to_string()]);
    }
    table(&cells)
}

/// The last line of `up`: how many nodes are ready, and in how long.
pub fn up_summary(lab: &str, reports: &[NodeReport], elapsed: Duration) -> String {
    let ready = reports.iter().filter(|r| r.state == NodeState::Ready).count();
    let not_ready = reports.len() - ready;
    let mut line = format!("lab {lab}: {ready} of {} nodes ready", reports.len());
    if not_ready > 0 {
        line.push_str(&format!(", {not_ready} not ready"));
    }
    line.push_str(&format!(" in {:.2}s", elapsed.as_secs_f64()));
    line
}

/// The last line of `down`: `lab demo: down`, and the runs it kept, if any.
pub fn down_summary(lab: &str, report: &zerolab::down::DownReport) -> String {
    match report.runs_kept {
        0 => format!("lab {lab}: down"),
        n => format!(
            "lab {lab}: down ({n} run{} kept in {}; `zerolab down --purge` removes them)",
            if n == 1 { "" } else { "s" },
            report.jobs.display()
        ),
    }
}

/// The `status` table: node, provider, (the machine's state, where the provider runs
/// machines), address, state, agent version, the size of its blob store, cause.
pub fn status_table(rows: &[NodeStatus]) -> String {
    let machines = rows.iter().any(|row| row.machine.is_some());
    let mut header = vec!["NODE", "PROVIDER"];
    if machines {
        header.push("MACHINE");
    }
    header.extend(["ADDRESS", "STATE", "AGENT", "STORE", "CAUSE"]);
    let mut cells = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for row in rows {
        let mut cell = vec![row.node.clone(), row.provider.clone()];
        if machines {
            cell.push(row.machine.clone().unwrap_or_else(|| "-".to_owned()));
        }
        cell.extend([
            row.address.clone(),
            state_name(&row.state).to_owned(),
            row.agent_version.clone().unwrap_or_else(|| "-".to_owned()),
            row.store.as_ref().map_or_else(|| "-".to_owned(), |store| size(store.blob_bytes)),
            row.cause.as_deref().map_or_else(|| "-".to_owned(), |cause| about(&row.node, cause).to_owned()),
        ]);
        cells.push(cell);
    }
    table(&cells)
}

/// The services table of `status`: service, state, pid, restarts, log (or the cause of
/// a failed service).
pub fn services_table(services: &[ServiceStatus]) -> String {
    let mut cells = vec![["SERVICE", "STATE", "PID", "RESTARTS", "LOG / CAUSE"].map(String::from)];
    for service in services {
        let last = match &service.state {
            ServiceState::Failed { cause } => cause.clone(),
            _ => service.log.display().to_string(),
        };
        cells.push([
            service.name.clone(),
            service.state.name().to_owned(),
            service.pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string()),
            service.restarts.to_string(),
            last,
        ]);
    }
    table(&cells)
}

/// A size in bytes as people read it, one word per cell: `0B`, `512B`, `3.0KiB`, `1.5GiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes}B"),
        _ => format!("{value:.1}{}", UNITS[unit]),
    }
}

/// One node's `exec` output: each stdout line as `node-1: LINE` (first), each stderr
/// line as `node-1 (stderr): LINE` (second); a run that could not happen is one stderr
/// line `node-1: failed: CAUSE`.
pub fn exec_output(run: &NodeRun) -> (String, String) {
    let prefix = |bytes: &[u8], tag: &str| {
        String::from_utf8_lossy(bytes).lines().map(|line| format!("{}{tag}: {line}\n", run.node)).collect::<String>()
    };
    match &run.outcome {
        Outcome::Ran(output) => (prefix(&output.stdout, ""), prefix(&output.stderr, " (stderr)")),
        Outcome::Failed(cause) => (String::new(), format!("{}: failed: {}\n", run.node, about(&run.node, cause))),
    }
}

/// The most nodes an `exec` summary lists by name in one group.
const NAMES_SHOWN: usize = 8;

/// How a run ended, as a short word: `0`, `1`, `signal KILL`, `failed`.
fn exec_result(run: &NodeRun) -> String {
    match &run.outcome {
        Outcome::Ran(output) => match (output.status, &output.signal) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "unknown".to_owned(),
        },
        Outcome::Failed(_) => "failed".to_owned(),
    }
}

/// The last line of `exec`: nodes grouped by how they ended, in first-seen order,
/// e.g. `exit 0: node-1, node-3; exit 1: node-2; failed: node-4 (3 nodes in 0.05s)`.
/// A group of more than [`NAMES_SHOWN`] nodes is counted, not listed (`exit 0: 97 nodes`):
/// each node's own lines already say where its output came from.
pub fn exec_summary(runs: &[NodeRun], elapsed: Duration) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for run in runs {
        let result = exec_result(run);
        let label = if matches!(run.outcome, Outcome::Ran(_)) { format!("exit {result}") } else { result };
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, nodes)) => nodes.push(&run.node),
            None => groups.push((label, vec![&run.node])),
        }
    }
    let groups: Vec<String> = groups
        .iter()
        .map(|(label, nodes)| match nodes.len() {
            n if n > NAMES_SHOWN => format!("{label}: {n} nodes"),
            _ => format!("{label}: {}", nodes.join(", ")),
        })
        .collect();
    let plural = if runs.len() == 1 { "" } else { "s" };
    format!("{} ({} node{plural} in {:.2}s)", groups.join("; "), runs.len(), elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!([size(0), size(1023), size(1536), size(5 << 30)], ["0B", "1023B", "1.5KiB", "5.0GiB"]);
    }

    #[test]
    fn status_table_aligns_columns_and_dashes_missing_values() {
        let rows = [
            NodeStatus {
                node: "node-1".into(),
                provider: "netns".into(),
                address: "10.77.0.2".into(),
                state: NodeState::Ready,
                machine: None,
                agent_version: Some("0.1.0".into()),
                store: Some(zerolab_agent_api::StoreStats {
                    blobs: 3,
                    blob_bytes: 3 << 20,
                    blob_limit_bytes: 4 << 30,
                    blobs_collected: 0,
                    sessions_live: 0,
                    sessions_finished: 2,
                    sessions_expired: 0,
                    session_ttl_secs: 3600,
                }),
                cause: None,
            },
            NodeStatus {
                node: "node-10".into(),
                provider: "netns".into(),
                address: "10.77.0.11".into(),
                state: NodeState::Failed { cause: "agent down".into() },
                machine: None,
                agent_version: None,
                store: None,
                cause: Some("agent down".into()),
            },
        ];
        assert_eq!(
            status_table(&rows),
            "NODE     PROVIDER  ADDRESS     STATE   AGENT  STORE   CAUSE\n\
             node-1   netns     10.77.0.2   ready   0.1.0  3.0MiB  -\n\
             node-10  netns     10.77.0.11  failed  -      -       agent down\n"
        );
    }

    #[test]
    fn services_table_shows_the_log_or_the_cause() {
        let service = |name: &str, state, pid| ServiceStatus {
            name: name.into(),
            state,
            pid,
            restarts: 1,
            log: format!("/lab/services/{name}.log").into(),
        };
        let rows = [
            service("dnsmasq", ServiceState::Running, Some(42)),
            service("portal", ServiceState::Failed { cause: "exited with status 1".into() }, None),
        ];
        assert_eq!(
            services_table(&rows),
            "SERVICE  STATE    PID  RESTARTS  LOG / CAUSE\n\
             dnsmasq  running  42   1         /lab/services/dnsmasq.log\n\
             portal   failed   -    1         exited with status 1\n"
        );
        let holder = Holder { pid: Some(7), command: "zerolab up".into() };
        assert_eq!(
            lock_waiting("demo", &holder),
            "zerolab: lab demo is being changed by pid 7 (zerolab up); waiting for it to finish"
        );
        assert_eq!(create_step_line("node-2", &CreateStep::Booting), "node-2: booting");
    }

    #[test]
    fn failed_node_line_names_node_and_cause() {
        let report =
            NodeReport { node: "node-2".into(), state: NodeState::Failed { cause: "x".into() }, detail: "x".into() };
        assert_eq!(node_line(&report), "node-2: failed: x");
        // Said once: the line starts with the node already.
        let cause = "node node-2: unreachable at 10.77.0.3:22";
        let report = NodeReport { node: "node-2".into(), state: NodeState::Unreachable, detail: cause.into() };
        assert_eq!(node_line(&report), "node-2: unreachable: unreachable at 10.77.0.3:22");
        assert_eq!(about("node-20", cause), cause);
        let summary = up_summary("demo", &[report], Duration::from_millis(1500));
        assert_eq!(summary, "lab demo: 0 of 1 nodes ready, 1 not ready in 1.50s");
    }

    #[test]
    fn exec_output_prefixes_each_line_and_summary_groups_by_exit() {
        use zerolab::ssh::Output;
        let ran = |node: &str, status, stdout: &str, stderr: &str| NodeRun {
            node: node.into(),
            outcome: Outcome::Ran(Output { status, signal: None, stdout: stdout.into(), stderr: stderr.into() }),
        };
        let runs = [
            ran("node-1", Some(0), "a\nb", ""),
            ran("node-2", Some(3), "", "oops\n"),
            ran("node-3", Some(0), "", ""),
            NodeRun { node: "node-4".into(), outcome: Outcome::Failed("unreachable".into()) },
        ];
        assert_eq!(exec_output(&runs[0]), ("node-1: a\nnode-1: b\n".into(), String::new()));
        assert_eq!(exec_output(&runs[1]), (String::new(), "node-2 (stderr): oops\n".into()));
        assert_eq!(exec_output(&runs[3]), (String::new(), "node-4: failed: unreachable\n".into()));
        assert_eq!(
            exec_summary(&runs, Duration::from_millis(50)),
            "exit 0: node-1, node-3; exit 3: node-2; failed: node-4 (4 nodes in 0.05s)"
        );
        let many: Vec<NodeRun> = (1..=9).map(|i| ran(&format!("n-{i}"), Some(0), "", "")).collect();
        assert_eq!(exec_summary(&many, Duration::from_millis(50)), "exit 0: 9 nodes (9 nodes in 0.05s)");
    }
}
