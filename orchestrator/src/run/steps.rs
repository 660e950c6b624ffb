//! The run's requests to the agents, one function per step of an instance's life:
//! upload its blobs, start its session, kill it, collect its report and outputs (or
//! save a failed attempt's), and place it on another node (upload, then start, as one
//! task beside the driver). None of them decides anything: the driver
//! ([`super::driver`]) calls them and moves the instance's state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch::Receiver;
use tokio::task::JoinSet;
use zerolab_agent_api::{Report, SessionRequest};

use super::plan::{Blob, Collected, PlanError, PlannedInstance};
use super::{RunError, LIST_TIMEOUT, REQUEST_TIMEOUT, UPLOAD_TIMEOUT};
use crate::agent_client::{self, AgentError, Link};
use crate::keeper::Keeper;
use crate::ssh::Target;
use zerolab_sandbox::session::error_chain as cause;

/// The lab's nodes the run reaches, by name.
pub type Targets = Arc<HashMap<String, Target>>;

/// Where each of `nodes` accepts channel connections (`IP:PORT`), asked of their agents
/// at once; a node whose agent has no channel port is left out (the plan says so).
pub async fn channel_addresses(
    mux: &Keeper,
    targets: &Targets,
    nodes: BTreeSet<String>,
) -> Result<BTreeMap<String, String>, RunError> {
    let mut asks = JoinSet::new();
    for node in nodes {
        let (mux, targets) = (mux.clone(), targets.clone());
        asks.spawn(async move {
            let target = &targets[&node];
            let facts =
                agent_client::get::<zerolab_agent_api::Facts>(Link::Keeper(&mux, target), "/v1/facts", REQUEST_TIMEOUT)
                    .await
                    .map_err(|e| RunError::Start {
                        instance: format!("(channels to {node})"),
                        node: node.clone(),
                        cause: cause(&e),
                    })?;
            let address = facts.channel_port.map(|port| match target.address.parse::<std::net::Ipv6Addr>() {
                Ok(_) => format!("[{}]:{port}", target.address),
                Err(_) => format!("{}:{port}", target.address),
            });
            Ok::<_, RunError>((node, address))
        });
    }
    let mut addresses = BTreeMap::new();
    while let Some(joined) = asks.join_next().await {
        if let Ok(result) = joined {
            let (node, address) = result?;
            if let Some(address) = address {
                addresses.insert(node, address);
            }
        }
    }
    Ok(addresses)
}

/// Stores on every node of `blobs` the blobs it lacks, all nodes at once.
pub async fn upload(mux: &Keeper, targets: &Targets, blobs: &BTreeMap<String, Vec<Blob>>) -> Result<(), RunError> {
    let mut uploads: JoinSet<Result<(), RunError>> = JoinSet::new();
    for (node, blobs) in blobs.clone() {
        let (mux, targets) = (mux.clone(), targets.clone());
        uploads.spawn(async move { upload_to(&mux, &targets[&node], &blobs).await });
    }
    while let Some(result) = uploads.join_next().await {
        result.unwrap_or(Ok(()))?;
    }
    Ok(())
}

/// Stores on `target`'s node those of `blobs` it lacks (`HEAD`, then `PUT`).
async fn upload_to(mux: &Keeper, target: &Target, blobs: &[Blob]) -> Result<(), RunError> {
    for blob in blobs {
        let failed =
            |source| RunError::Upload { node: target.node.clone(), path: blob.path.clone(), source: Box::new(source) };
        let link = Link::Keeper(mux, target);
        if agent_client::blob_stored(link, &blob.sha256, REQUEST_TIMEOUT).await.map_err(failed)? {
            continue;
        }
        let file = tokio::fs::File::open(&blob.path)
            .await
            .map_err(|source| PlanError::Read { path: blob.path.clone(), source })?;
        agent_client::put_blob_file(link, &blob.sha256, file, UPLOAD_TIMEOUT).await.map_err(failed)?;
    }
    Ok(())
}

/// Starts every one of `instances`' sessions at once; each one's session id or why not.
pub async fn start(mux: &Keeper, targets: &Targets, instances: &[PlannedInstance]) -> Vec<Result<String, String>> {
    let mut starts = JoinSet::new();
    for (index, instance) in instances.iter().enumerate() {
        let (mux, targets, instance) = (mux.clone(), targets.clone(), instance.clone());
        starts.spawn(async move {
            let link = Link::Keeper(&mux, &targets[&instance.node]);
            let started = agent_client::start_session(link, &instance.request, REQUEST_TIMEOUT).await;
            (index, started.map(|created| created.id).map_err(|e| cause(&e)))
        });
    }
    let mut sessions: Vec<Result<String, String>> =
        (0..instances.len()).map(|_| Err("its start request was lost".to_owned())).collect();
    while let Some(joined) = starts.join_next().await {
        if let Ok((index, result)) = joined {
            sessions[index] = result;
        }
    }
    sessions
}

/// Kills the sessions `(node, session id)`, all at once (those already ended are left as
/// they are).
pub async fn kill_all(mux: &Keeper, targets: &Targets, sessions: Vec<(String, String)>) {
    let mut kills = JoinSet::new();
    for (node, id) in sessions {
        let (mux, targets) = (mux.clone(), targets.clone());
        kills.spawn(async move {
            let _ = agent_client::kill_session(Link::Keeper(&mux, &targets[&node]), &id, REQUEST_TIMEOUT).await;
        });
    }
    while kills.join_next().await.is_some() {}
}

/// How a placement on another node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Its session was started: its id.
    Started(String),
    /// The run stopped first; nothing was started.
    Stopped,
    /// The node did not take the blobs or the session: why.
    Failed(String),
}

/// Gives the node of `target` the `blobs` it lacks, then starts `request` there, unless
/// `stop` comes first; meanwhile kills `old` (the session left on a lost node, should
/// that node answer again).
pub async fn place(
    mux: Keeper,
    target: Target,
    blobs: Vec<Blob>,
    request: SessionRequest,
    mut stop: Receiver<bool>,
    old: Option<(Target, String)>,
) -> Placed {
    let kill_old = async {
        if let Some((node, id)) = &old {
            let _ = agent_client::kill_session(Link::Keeper(&mux, node), id, LIST_TIMEOUT).await;
        }
    };
    let start = async {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return Placed::Stopped,
            uploaded = upload_to(&mux, &target, &blobs) => if let Err(e) = uploaded {
                return Placed::Failed(cause(&e));
            },
        }
        if *stop.borrow() {
            return Placed::Stopped;
        }
        match agent_client::start_session(Link::Keeper(&mux, &target), &request, REQUEST_TIMEOUT).await {
            Ok(created) => Placed::Started(created.id),
            Err(e) => Placed::Failed(cause(&e)),
        }
    };
    tokio::join!(kill_old, start).1
}

/// What collecting an ended instance gave: its report, and why it is incomplete.
pub type Collection = (Option<Report>, Option<String>);

/// Reads an ended session's report and outputs into `out` (the instance's directory),
/// and copies its outputs where the job asked for them; the streams in `followed` are
/// already whole there (read as the guest wrote them) and are not read again.
pub async fn collect(
    link: Link<'_>,
    instance: &PlannedInstance,
    id: &str,
    out: &Path,
    followed: &[&str],
) -> Result<Collection, RunError> {
    let status = match agent_client::session_status(link, id, REQUEST_TIMEOUT).await {
        Ok(status) => status,
        Err(e) => return Ok((None, Some(format!("its report could not be read: {}", cause(&e))))),
    };
    write(out, "report", status.report.as_ref().map_or(&b""[..], |r| r.text.as_bytes())).await?;
    for Collected { stream, copy_to } in &instance.collect {
        let file = match followed.contains(stream) {
            true => out.join(stream),
            false => match save(link, id, out, stream).await? {
                Ok(file) => file,
                Err(e) => return Ok((status.report, Some(format!("its {stream} could not be read: {}", cause(&e))))),
            },
        };
        if let Some(path) = copy_to {
            // A kernel-side copy of the saved file: the output never sits in memory.
            tokio::fs::copy(&file, path).await.map_err(|source| RunError::Results { path: path.clone(), source })?;
        }
    }
    Ok((status.report, None))
}

/// Saves a failed attempt's `report` and the outputs its agent gives into `out`
/// (`<instance>/attempt-N/`).
pub async fn save_attempt(
    link: Link<'_>,
    instance: &PlannedInstance,
    id: &str,
    report: Option<&Report>,
    out: &Path,
) -> Result<(), RunError> {
    write(out, "report", report.map_or(&b""[..], |r| r.text.as_bytes())).await?;
    for stream in instance.collect.iter().map(|c| c.stream) {
        // An output the agent cannot give is left out of the attempt's record.
        let _ = save(link, id, out, stream).await?;
    }
    Ok(())
}

/// An ended session's report, when its agent gives it.
pub async fn report(link: Link<'_>, id: &str) -> Option<Option<Report>> {
    agent_client::session_status(link, id, REQUEST_TIMEOUT).await.ok().map(|status| status.report)
}

/// Streams session `id`'s `stream` into `dir/<stream>` (see
/// [`agent_client::save_session_output`]); the file's path. An agent that fails is the
/// `Err` to report against the instance; a file that cannot be written ends the run.
async fn save(link: Link<'_>, id: &str, dir: &Path, stream: &str) -> Result<Result<PathBuf, AgentError>, RunError> {
    let path = dir.join(stream);
    let results = |source| RunError::Results { path: path.clone(), source };
    tokio::fs::create_dir_all(dir).await.map_err(|source| RunError::Results { path: dir.to_path_buf(), source })?;
    let mut file = tokio::fs::File::create(&path).await.map_err(results)?;
    match agent_client::save_session_output(link, id, stream, &mut file, REQUEST_TIMEOUT).await {
        Ok(_) => Ok(Ok(path)),
        Err(agent_client::SaveError::Agent(e)) => {
            // No partial output left behind as if it were the whole.
            drop(file);
            let _ = tokio::fs::remove_file(&path).await;
            Ok(Err(e))
        }
        Err(agent_client::SaveError::Write(source)) => Err(results(source)),
    }
}

/// Writes `bytes` as `dir/name`, making `dir` when missing.
pub async fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RunError> {
    let results = |source| RunError::Results { path: dir.to_path_buf(), source };
    tokio::fs::create_dir_all(dir).await.map_err(results)?;
    tokio::fs::write(dir.join(name), bytes).await.map_err(results)
}

/// Makes the outputs saved in `saved` (a failed attempt's directory) the instance's
/// final ones in `out` again (its next attempt never started), copies included.
pub async fn restore(instance: &PlannedInstance, out: &Path, saved: &Path) -> Result<(), RunError> {
    let failed = |source| RunError::Results { path: saved.to_path_buf(), source };
    let kept = instance.collect.iter().map(|c| (c.stream, c.copy_to.as_ref()));
    for (name, copy_to) in std::iter::once(("report", None)).chain(kept) {
        match tokio::fs::rename(saved.join(name), out.join(name)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(e)),
        }
        if let Some(path) = copy_to {
            let copied = tokio::fs::copy(out.join(name), path).await;
            copied.map_err(|source| RunError::Results { path: path.clone(), source })?;
        }
    }
    match tokio::fs::remove_dir(saved).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
        _ => Ok(()),
    }
}
