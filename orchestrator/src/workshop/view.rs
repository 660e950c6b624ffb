//! What the portal shows: an attendee's view of their lab and steps, the instructor's
//! overview, the CSV export, and the events live pages follow. Plain data (serde), made
//! from the [`State`] by the service; steps' Markdown is rendered here once.

use std::time::Duration;

use pulldown_cmark::{html, Event, Options, Parser};
use serde::Serialize;

use super::state::{AttendeeId, Phase};

/// What an attendee sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttendeeView {
    /// Their number.
    pub id: AttendeeId,
    /// The name they gave.
    pub name: String,
    /// Their lab, once they have one.
    pub lab: Option<LabInfo>,
    /// Their place in the queue (1 = next) and an estimate of the wait, while they have no lab.
    pub queue: Option<(usize, Duration)>,
    /// The current step: the first not done (`steps.len()` when all are).
    pub step: usize,
    /// Every step.
    pub steps: Vec<StepView>,
    /// Their lab's time left.
    pub time_left: Option<Duration>,
    /// How to reach their first node with their own key, once they gave one.
    pub ssh: Option<SshAccess>,
    /// What they are told about their lab (replaced, expired, reset).
    pub notice: Option<String>,
}

/// An attendee's lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabInfo {
    /// The lab's name (`<workshop>-NNN`).
    pub name: String,
    /// Its nodes, in file order.
    pub nodes: Vec<String>,
    /// What it is doing.
    pub state: LabStateLabel,
}

/// A lab's state as attendees and the instructor see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LabStateLabel {
    /// Being made.
    Warming,
    /// Up.
    Ready,
    /// Frozen (idle); back when its attendee returns.
    Shelved,
    /// Stopped (idle for long); back in about a second when its attendee returns.
    ShelvedOffloaded,
    /// Being replaced by a fresh lab.
    Replacing,
    /// Its time is up (the instructor can extend it).
    Expired,
}

impl LabStateLabel {
    /// The label of a lab in `phase`.
    pub fn of(phase: Phase) -> LabStateLabel {
        match phase {
            Phase::Warming => LabStateLabel::Warming,
            Phase::Ready => LabStateLabel::Ready,
            Phase::Shelved => LabStateLabel::Shelved,
            Phase::ShelvedOffloaded => LabStateLabel::ShelvedOffloaded,
            Phase::Expired => LabStateLabel::Expired,
            Phase::Broken | Phase::Destroying => LabStateLabel::Replacing,
        }
    }

    /// As the status table and the CSV write it.
    pub fn as_str(self) -> &'static str {
        match self {
            LabStateLabel::Warming => "warming",
            LabStateLabel::Ready => "ready",
            LabStateLabel::Shelved => "shelved",
            LabStateLabel::ShelvedOffloaded => "shelved_offloaded",
            LabStateLabel::Replacing => "replacing",
            LabStateLabel::Expired => "expired",
        }
    }
}

/// One step as an attendee sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepView {
    /// Its title.
    pub title: String,
    /// Its instructions, as HTML.
    pub html: String,
    /// Whether its check passed (false for a step without a check until a later one passes).
    pub done: bool,
}

/// How an attendee reaches their first node with their own key: `ssh -p PORT USER@HOST`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SshAccess {
    /// This machine, as attendees reach it.
    pub host: String,
    /// The port forwarded to their node.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
}

/// The instructor's page: every attendee and the pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// The workshop's name.
    pub workshop: String,
    /// One row per attendee, in join order.
    pub rows: Vec<OverviewRow>,
    /// The labs, counted.
    pub pool: PoolCounts,
}

/// One attendee on the instructor's page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OverviewRow {
    /// Their number.
    pub id: AttendeeId,
    /// The name they gave.
    pub name: String,
    /// Their lab's name.
    pub lab: Option<String>,
    /// Their lab's state.
    pub state: Option<LabStateLabel>,
    /// Their place in the queue, while they have no lab.
    pub queued: Option<usize>,
    /// Their current step (0-based; `steps` when all are done).
    pub step: usize,
    /// How many steps there are.
    pub steps: usize,
    /// Seconds since their last activity.
    pub idle_for: Duration,
    /// Their lab's time left.
    pub time_left: Option<Duration>,
    /// What they were told last.
    pub notice: Option<String>,
}

/// The labs of the workshop, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolCounts {
    /// Being made.
    pub warming: usize,
    /// Up and free.
    pub free: usize,
    /// Held by an attendee.
    pub claimed: usize,
    /// Shelved (frozen or offloaded), expired included.
    pub shelved: usize,
    /// Being taken down or replaced.
    pub leaving: usize,
    /// Attendees waiting for a lab.
    pub queued: usize,
    /// Labs at most.
    pub capacity: u32,
}

/// What changed, for live pages (they fetch what they show again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum WorkshopEvent {
    /// Something of this attendee's (lab, step, timer, notice).
    Attendee(AttendeeId),
    /// The pool's counts.
    Pool,
}

/// The instructor's Markdown as HTML; raw HTML in it is shown as text, so every page
/// stays well-formed.
pub fn markdown(text: &str) -> String {
    let parser =
        Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|event| match event {
            Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
            other => other,
        });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// The overview as CSV: a header, then one line per attendee.
pub fn csv(overview: &Overview) -> String {
    let mut out = String::from("id,name,lab,state,queued,step,steps,idle_seconds,time_left_seconds,notice\n");
    for row in &overview.rows {
        let fields = [
            row.id.to_string(),
            row.name.clone(),
            row.lab.clone().unwrap_or_default(),
            row.state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            row.queued.map(|q| q.to_string()).unwrap_or_default(),
            row.step.to_string(),
            row.steps.to_string(),
            row.idle_for.as_secs().to_string(),
            row.time_left.map(|t| t.as_secs().to_string()).unwrap_or_default(),
            row.notice.clone().unwrap_or_default(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// One CSV field (RFC 4180), a leading formula character defused for spreadsheets.
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@']) { format!("'{field}") } else { field.to_owned() };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_raw_html() {
        assert_eq!(markdown("Run `zvsh`\n"), "<p>Run <code>zvsh</code></p>\n");
        assert_eq!(markdown("<script>x</script>\n"), "&lt;script&gt;x&lt;/script&gt;\n");
        assert_eq!(markdown("a <b>b</b>"), "<p>a &lt;b&gt;b&lt;/b&gt;</p>\n");
    }

    #[test]
    fn csv_quotes_and_defuses_fields() {
        assert_eq!(csv_field("Ann"), "Ann");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }
}
