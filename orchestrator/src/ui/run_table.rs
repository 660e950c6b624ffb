//! The table that ends `zerolab run`: a row per instance, its causes under the table.

use zerolab::run::{InstanceResult, JobRun, RunState};

use super::table;

/// The end of `zerolab run`: one aligned line per instance (instance, node, exit state,
/// ZeroVM return code, guest exit code, accounting; for an instance placed again, its
/// last attempt's), then one line per instance that has more to say (its cause, a
/// failure's full exit state, its earlier attempts), then the results directory and a
/// one-line verdict. Causes are under the table, not in it, so a long one never pushes
/// the columns of the other rows apart or wraps into them.
pub fn job_summary(run: &JobRun) -> String {
    let mut rows = vec![["INSTANCE", "NODE", "EXIT", "RC", "CODE", "ACCOUNTING"].map(String::from)];
    let mut notes = String::new();
    for instance in &run.instances {
        let mut note = Vec::new();
        if !instance.attempts.is_empty() {
            note.push(attempts_note(instance));
        }
        let (exit, rc, code, accounting) = match &instance.report {
            Some(report) => {
                let exit = match is_short_state(&report.exit_state) {
                    true => report.exit_state.clone(),
                    false => {
                        note.push(one_line(&report.exit_state));
                        "failed".to_owned()
                    }
                };
                let accounting = report.text.lines().nth(4).filter(|line| !line.is_empty()).unwrap_or("-");
                (exit, report.return_code.to_string(), report.user_code.to_string(), accounting.to_owned())
            }
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        if let Some(cause) = &instance.cause {
            note.push(one_line(cause));
        }
        if !note.is_empty() {
            notes.push_str(&format!("{}: {}\n", instance.name, note.join("; ")));
        }
        rows.push([instance.name.clone(), instance.node.clone(), exit, rc, code, accounting]);
    }
    let mut text = table(&rows);
    text.push_str(&notes);
    let failed = run.instances.iter().filter(|i| !i.success()).count();
    let total = run.instances.len();
    let verdict = match (run.state, failed) {
        (RunState::Cancelled | RunState::Interrupted, _) => {
            format!("job {}: {}, {} of {total} instances exited 0", run.id, run.state.name(), total - failed)
        }
        (_, 0) => format!("job {}: all {total} instances exited 0", run.id),
        (_, n) => format!("job {}: {n} of {total} instances failed", run.id),
    };
    text.push_str(&format!("results in {}\n{verdict}\n", run.dir.display()));
    text
}

/// Whether an exit state fits the EXIT column as it is (`ok`, `killed`, `session
/// timeout`); a session's failure (`validation failed: ...`) is a sentence, shown as
/// `failed` there and in full under the table.
fn is_short_state(state: &str) -> bool {
    const WIDEST: usize = 16;
    state.chars().count() <= WIDEST && !state.contains(':') && !state.chars().any(char::is_control)
}

/// `text` on one line: its lines joined with ` / `, control characters dropped (a cause
/// can quote a program's output).
fn one_line(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| line.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect();
    lines.join(" / ")
}

/// `ok after 2 attempts (node-2: exited 3)`: how an instance placed again ended, and how
/// each earlier attempt did.
fn attempts_note(instance: &InstanceResult) -> String {
    let earlier: Vec<String> = instance.attempts.iter().map(|a| format!("{}: {}", a.node, a.how())).collect();
    let verdict = if instance.success() { "ok" } else { "failed" };
    format!("{verdict} after {} attempts ({})", instance.attempts.len() + 1, earlier.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_summary_notes_the_attempts_of_an_instance_placed_again() {
        use zerolab::run::Attempt;
        use zerolab_agent_api::Report;
        let report = |user_code| Report {
            text: "0\n0\n/dev/self\nok\n0.00 0.01 0 0 0 0 0 0 0 0\n0\n".into(),
            validator: 0,
            user_code,
            exit_state: "ok".into(),
            return_code: 0,
            sys_s: 0.0,
            user_s: 0.01,
            local: [0; 4],
            net: [0; 4],
        };
        let attempt = |node: &str, user_code, cause: Option<&str>| Attempt {
            node: node.into(),
            session: None,
            exit_state: cause.is_none().then(|| "ok".into()),
            return_code: cause.is_none().then_some(0),
            user_code: cause.is_none().then_some(user_code),
            cause: cause.map(String::from),
        };
        let instance = |name: &str, user_code, attempts| InstanceResult {
            name: name.into(),
            node: "node-3".into(),
            report: Some(report(user_code)),
            cause: None,
            attempts,
        };
        let run = JobRun {
            id: "j-1".into(),
            dir: "/r".into(),
            state: RunState::Failed,
            instances: vec![
                instance("plain", 0, vec![]),
                instance("flaky", 0, vec![attempt("node-2", 3, None)]),
                instance(
                    "bad",
                    3,
                    vec![attempt("node-1", 3, None), attempt("node-2", 0, Some("node node-2 lost: gone"))],
                ),
            ],
        };
        assert_eq!(
            job_summary(&run),
            "INSTANCE  NODE    EXIT  RC  CODE  ACCOUNTING\n\
             plain     node-3  ok    0   0     0.00 0.01 0 0 0 0 0 0 0 0\n\
             flaky     node-3  ok    0   0     0.00 0.01 0 0 0 0 0 0 0 0\n\
             bad       node-3  ok    0   3     0.00 0.01 0 0 0 0 0 0 0 0\n\
             flaky: ok after 2 attempts (node-2: exited 3)\n\
             bad: failed after 3 attempts (node-1: exited 3, node-2: node node-2 lost: gone)\n\
             results in /r\njob j-1: 1 of 3 instances failed\n"
        );
    }

    #[test]
    fn long_causes_and_failures_go_under_the_table_and_columns_stay_aligned() {
        use zerolab_agent_api::Report;
        let failure = format!("validation failed: {} (build it with zvm-gcc)", "forbidden instruction ".repeat(7));
        let report = Report {
            text: format!("2\n0\n/dev/self\n{failure}\n0.00 0.00 0 0 0 0 0 0 0 0\n0\n"),
            validator: 1,
            user_code: 0,
            exit_state: failure.clone(),
            return_code: 8,
            sys_s: 0.0,
            user_s: 0.0,
            local: [0; 4],
            net: [0; 4],
        };
        let cause = format!("stopped: {}", "x".repeat(170));
        let instance = |name: &str, report: Option<Report>, cause: Option<String>| InstanceResult {
            name: name.into(),
            node: "node-1".into(),
            report,
            cause,
            attempts: vec![],
        };
        let run = JobRun {
            id: "j-2".into(),
            dir: "/r".into(),
            state: RunState::Failed,
            instances: vec![
                instance("invalid", Some(report), None),
                instance("stopped", None, Some(format!("{cause}\nsecond line"))),
            ],
        };
        let text = job_summary(&run);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "INSTANCE  NODE    EXIT    RC  CODE  ACCOUNTING",
                "invalid   node-1  failed  8   0     0.00 0.00 0 0 0 0 0 0 0 0",
                "stopped   node-1  -       -   -     -",
            ]
        );
        assert_eq!(lines[3], format!("invalid: {failure}"));
        assert_eq!(lines[4], format!("stopped: {cause} / second line"));
        assert!(lines[..3].iter().all(|line| line.chars().count() < 80), "{text}");
    }
}
