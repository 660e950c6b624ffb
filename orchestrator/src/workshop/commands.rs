//! `zerolab workshop up|status|down|plan`, as library calls (the binary prints).
//!
//! - [`up`]: refuses a capacity above what the plan says fits (unless forced), records
//!   the workshop file for `serve` (`DIR/source.json`), starts `serve` unless it runs,
//!   and follows the warm pool in `workshop.json` until it is ready, telling
//!   `progress` each lab as it comes up; the first time (no plan yet), it measures
//!   one lab before making any (as `plan` does), so the capacity is always checked.
//! - [`status`]: the overview, read from `workshop.json` (no `serve` needed).
//! - [`down`]: stops `serve`, takes every lab down, removes the SSH rules and the
//!   workshop directory; idempotent.
//! - [`plan_for`]: the machine, one idle lab (cached, or made as lab `000` and
//!   measured), and how many labs fit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zerolab_sandbox::session::error_chain;

use super::plan::{self, Plan};
use super::serve::{self, ServeError, Source};
use super::service::{overview_of, STATE_FILE};
use super::state::{Phase, State, StateError};
use super::{Overview, WorkshopFile};
use crate::down::DownOptions;
use crate::lab::NodeState;

/// How long `up` follows the warm pool.
const WARM_WAIT: Duration = Duration::from_secs(900);

/// What can stop a workshop command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// More labs than the machine holds.
    #[error(
        "capacity {capacity} is more labs than this machine holds ({fits} fit, see `zerolab workshop plan`); \
         lower capacity, or pass --force to go ahead"
    )]
    Capacity { capacity: u32, fits: u64 },
    /// The `serve` process.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// The browser terminal's files are not fetched.
    #[error(transparent)]
    Assets(#[from] super::portal::AssetsError),
    /// The workshop directory.
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    /// The warm pool did not come up.
    #[error("the warm pool is not ready after {}s ({ready} of {wanted} labs); see {}", WARM_WAIT.as_secs(), log.display())]
    Warm { ready: usize, wanted: usize, log: PathBuf },
    /// The plan's lab could not be made.
    #[error("measuring one lab: {cause}")]
    Measure { cause: String },
}

/// What `up` did.
#[derive(Debug)]
pub struct UpReport {
    /// Whether `serve` was started now (else it ran).
    pub started: bool,
    /// Labs ready (free or claimed).
    pub ready: usize,
    /// How long the warm pool took.
    pub elapsed: Duration,
    /// The portal's address.
    pub url: String,
    /// The instructor's password file.
    pub password: PathBuf,
    /// The plan, when one is known.
    pub plan: Option<Plan>,
}

/// `workshop up` (see the module doc); `progress` gets a line per lab made.
pub async fn up(
    file_path: &Path,
    file: &WorkshopFile,
    root: &Path,
    agent: PathBuf,
    program: &Path,
    force: bool,
    progress: impl Fn(&str),
) -> Result<UpReport, CommandError> {
    super::portal::Assets::load()?;
    let dir = super::dir(root, &file.name);
    crate::lab::private_dir(&dir)?;
    let known = match plan::cached(&dir) {
        Some(lab) => Some(plan::plan(plan::machine(), lab)),
        // A workshop not yet started is measured first (lab `000`, made and taken down
        // again), so too large a capacity is refused before any lab is made. One that
        // runs, or has labs, is measured from its pool once it is warm (below).
        None if serve::running(&dir).is_none() && !has_labs(&dir) => {
            progress("measuring one lab for the capacity plan (once; `zerolab workshop plan` shows it)");
            Some(plan_for(file, root, agent.clone(), program.to_owned()).await?)
        }
        None => None,
    };
    if let Some(plan) = known {
        if u64::from(file.capacity) > plan.fits && !force {
            return Err(CommandError::Capacity { capacity: file.capacity, fits: plan.fits });
        }
    }
    let source = Source { file: std::path::absolute(file_path).unwrap_or(file_path.to_owned()), agent };
    serve::write_source(&dir, &source)?;
    let started_at = Instant::now();
    let started = serve::start(&dir, program, file.listen).await?;
    let wanted = file.warm.min(file.capacity) as usize;
    let mut seen = std::collections::BTreeSet::new();
    let ready = loop {
        let state = State::load(&dir.join(STATE_FILE))?;
        for (index, lab) in &state.labs {
            if lab.phase == Phase::Ready && seen.insert(*index) {
                progress(&format!("lab {} ready", file.lab_name(*index)));
            }
        }
        let ready = state.labs.values().filter(|l| l.phase == Phase::Ready).count();
        if ready >= wanted {
            break ready;
        }
        if started_at.elapsed() > WARM_WAIT || serve::running(&dir).is_none() {
            return Err(CommandError::Warm { ready, wanted, log: dir.join(serve::LOG) });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started_at.elapsed();
    let plan = match known {
        Some(plan) => Some(plan),
        None => measure_pool(&dir, file).await,
    };
    let password = file.password_file.clone().unwrap_or_else(|| dir.join(super::service::PASSWORD_FILE));
    let host = file.public_host.clone().unwrap_or_else(|| match file.listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        ip => ip.to_string(),
    });
    let url = format!("http://{host}:{}/", file.listen.port());
    Ok(UpReport { started, ready, elapsed, url, password, plan })
}

/// Whether the workshop's state records labs (made by a `serve` that may have died).
fn has_labs(dir: &Path) -> bool {
    State::load(&dir.join(STATE_FILE)).is_ok_and(|state| !state.labs.is_empty())
}

/// Measures a free lab of the pool and caches it, for the plan.
async fn measure_pool(dir: &Path, file: &WorkshopFile) -> Option<Plan> {
    let state = State::load(&dir.join(STATE_FILE)).ok()?;
    let (index, _) = state.labs.iter().find(|(_, l)| l.phase == Phase::Ready && l.attendee.is_none())?;
    let cluster = file.lab(*index, &crate::provider::REGISTRY).ok()?;
    tokio::time::sleep(plan::SETTLE).await;
    let memory = plan::measure(&dir.join("labs"), &cluster);
    (memory.bytes > 0).then(|| {
        let _ = plan::save(dir, memory);
        plan::plan(plan::machine(), memory)
    })
}

/// `workshop plan`: the cached measurement, or lab `000` made, measured and taken down.
pub async fn plan_for(
    file: &WorkshopFile,
    root: &Path,
    agent: PathBuf,
    program: PathBuf,
) -> Result<Plan, CommandError> {
    let dir = super::dir(root, &file.name);
    crate::lab::private_dir(&dir)?;
    if let Some(memory) = plan::cached(&dir) {
        return Ok(plan::plan(plan::machine(), memory));
    }
    let labs = dir.join("labs");
    crate::lab::private_dir(&labs)?;
    let cluster =
        file.lab(0, &crate::provider::REGISTRY).map_err(|e| CommandError::Measure { cause: e.to_string() })?;
    let options = crate::up::UpOptions::quiet(agent, program);
    let made = crate::up::up(&labs, &cluster, &options, |_| {}).await;
    let memory = match &made {
        Ok(reports) if reports.iter().all(|r| r.state == NodeState::Ready) => {
            // With its warm terminal, as the pool keeps every ready lab.
            let terminal = super::warm::open_for_lab(&labs, &cluster).await;
            tokio::time::sleep(plan::SETTLE).await;
            let memory = plan::measure(&labs, &cluster);
            match terminal {
                Ok(terminal) => {
                    terminal.close().await;
                    Ok(memory)
                }
                Err(cause) => Err(cause),
            }
        }
        Ok(reports) => Err(reports.iter().map(|r| format!("{}: {}", r.node, r.detail)).collect::<Vec<_>>().join("; ")),
        Err(e) => Err(error_chain(e)),
    };
    let options = DownOptions { force: true, purge: true, ..DownOptions::default() };
    let _ = crate::down::down(&labs, &cluster, &options).await;
    let memory = memory.map_err(|cause| CommandError::Measure { cause })?;
    plan::save(&dir, memory).map_err(|e| CommandError::Measure { cause: e.to_string() })?;
    Ok(plan::plan(plan::machine(), memory))
}

/// `workshop status`: the overview from `workshop.json`; `None` when the workshop is not up.
pub fn status(file: &WorkshopFile, root: &Path) -> Result<Option<(Overview, bool)>, CommandError> {
    let dir = super::dir(root, &file.name);
    if !dir.join(STATE_FILE).exists() {
        return Ok(None);
    }
    let state = State::load(&dir.join(STATE_FILE))?;
    Ok(Some((overview_of(file, &state), serve::running(&dir).is_some())))
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct DownReport {
    /// Labs taken down.
    pub labs: usize,
    /// What could not be removed, one line each.
    pub left: Vec<String>,
}

/// `workshop down`: everything of the workshop gone (see the module doc).
pub async fn down(file: &WorkshopFile, root: &Path) -> Result<DownReport, CommandError> {
    let dir = super::dir(root, &file.name);
    serve::stop(&dir).await;
    let mut report = DownReport::default();
    let labs = dir.join("labs");
    let prefix = format!("{}-", file.name);
    let indexes: Vec<u32> = std::fs::read_dir(&labs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok())
        .collect();
    for index in indexes {
        let Ok(cluster) = file.lab(index, &crate::provider::REGISTRY) else { continue };
        let options = DownOptions { force: true, purge: true, ..DownOptions::default() };
        match crate::down::down(&labs, &cluster, &options).await {
            Ok(down) => {
                report.labs += 1;
                report.left.extend(down.left.iter().map(ToString::to_string));
            }
            Err(e) => report.left.push(format!("lab {}: {}", cluster.name(), error_chain(&e))),
        }
    }
    report.left.extend(super::sshport::remove_all(&file.name).await);
    if report.left.is_empty() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                report.left.push(format!("{}: {e}", dir.display()));
            }
        }
    }
    Ok(report)
}
