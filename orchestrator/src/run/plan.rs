//! What a job run sends where, decided before anything is sent: which blobs each node
//! needs (programs and local inputs, each hashed once), and each instance's node and
//! session request, channels included. Whatever the runner cannot do yet is refused
//! here, before any node is touched, in one line naming the instance and the device.
//!
//! Channels: each edge gets a fresh random 32-byte key, given to its two ends only (in
//! their session requests, over the lab's SSH connections). Both ends on one node: a
//! `Local` pipe the agent makes. Across nodes: the reader's agent listens, the writer's
//! agent connects to it at the reader node's address and channel port; the run's id is
//! the channel's job, so two runs of one job never meet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ring::rand::{SecureRandom, SystemRandom};
use zerolab_agent::api::{ChannelDirection, ChannelPeer, ChannelSpec, SessionRequest};

use crate::job::{DeviceName, Direction, FileRef, Job, Placement, Program};
use crate::ssh;

/// A local file to store on nodes as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its SHA-256, hex: the blob's name on the node.
    pub sha256: String,
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// One instance as it will run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedInstance {
    /// The instance's name (`map-1`).
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// What its node's agent is asked to run.
    pub request: SessionRequest,
    /// Where its stdout goes on this machine, besides the results directory.
    pub stdout_to: Option<PathBuf>,
    /// Where its stderr goes on this machine, besides the results directory.
    pub stderr_to: Option<PathBuf>,
}

/// The whole run, decided.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every instance, in the job's order.
    pub instances: Vec<PlannedInstance>,
    /// The blobs each node needs, by node.
    pub blobs: BTreeMap<String, Vec<Blob>>,
    /// The blobs each instance needs on whichever node runs it, by index in `instances`
    /// (what placing it again on another node uploads).
    pub instance_blobs: Vec<Vec<Blob>>,
}

/// What the runner cannot do (yet) or could not read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A device kind or source the runner does not support yet.
    #[error("instance {instance}: {what} is not supported by `zerolab run` yet; {hint}")]
    Unsupported { instance: String, what: String, hint: &'static str },
    /// A node that must accept channel connections has no channel port.
    #[error("instance {instance}: node {node} accepts no channel connections (its agent has no channel port); run `zerolab up` to update the agent")]
    NoChannelPort { instance: String, node: String },
    /// No randomness for the channel keys.
    #[error("cannot make channel keys: the system's random source failed")]
    Random,
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Decides run `run_id` of `job` with `placement`: hashes every local file once, makes
/// every channel's key; `listen_at` gives the `IP:PORT` where a node accepts channel
/// connections (asked only for nodes that read a channel from another node).
pub async fn plan(
    job: &Job,
    placement: &Placement,
    run_id: &str,
    listen_at: &BTreeMap<String, String>,
) -> Result<Plan, PlanError> {
    let random = SystemRandom::new();
    let keys: Vec<String> = job
        .edges()
        .iter()
        .map(|_| {
            let mut key = [0u8; 32];
            random.fill(&mut key).map_err(|_| PlanError::Random)?;
            Ok(key.iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect::<Result<_, PlanError>>()?;
    let mut hashed: BTreeMap<PathBuf, Blob> = BTreeMap::new();
    let mut blobs: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut instances = Vec::new();
    let mut instance_blobs = Vec::new();
    for (index, instance) in job.instances().iter().enumerate() {
        let group = &job.groups()[instance.group];
        let unsupported = |what: String, hint| PlanError::Unsupported { instance: instance.name.clone(), what, hint };
        let Some(node) = placement.node(index) else {
            return Err(unsupported("an instance without a node".into(), "check the job's placement"));
        };
        let mut channels = Vec::new();
        for end in &instance.channels {
            let edge = job.edges()[end.edge];
            let (from, to) = (&job.instances()[edge.from].name, &job.instances()[edge.to].name);
            let peer = if placement.is_local(&edge) {
                ChannelPeer::Local
            } else if end.direction == Direction::In {
                ChannelPeer::Listen
            } else {
                let reader = placement.node(edge.to).unwrap_or_default();
                let no_port = || PlanError::NoChannelPort { instance: to.clone(), node: reader.to_owned() };
                ChannelPeer::Connect { address: listen_at.get(reader).ok_or_else(no_port)?.clone() }
            };
            channels.push(ChannelSpec {
                alias: end.alias.clone(),
                direction: match end.direction {
                    Direction::In => ChannelDirection::In,
                    Direction::Out => ChannelDirection::Out,
                },
                job: run_id.to_owned(),
                channel: format!("{from}>{to}"),
                key: keys[end.edge].clone(),
                peer,
            });
        }
        let program = match &group.program {
            Program::Local(path) => path.clone(),
            Program::Image(path) => {
                return Err(unsupported(format!("program `image:{path}`"), "give the program as a local file"))
            }
        };
        let mut files = vec![program.clone()];
        let (mut stdin, mut stdout_to, mut stderr_to) = (None, None, None);
        for device in &instance.devices {
            match (device.name, &device.file) {
                (DeviceName::Stdin, FileRef::Local(path)) => {
                    files.push(path.clone());
                    stdin = Some(path.clone());
                }
                (DeviceName::Stdout, FileRef::Local(path)) => stdout_to = Some(path.clone()),
                (DeviceName::Stderr, FileRef::Local(path)) => stderr_to = Some(path.clone()),
                (name, file) => {
                    return Err(unsupported(
                        format!("device {} from {file}", name.name()),
                        "stdin from a local file and stdout/stderr to local files are supported",
                    ))
                }
            }
        }
        for path in files.iter().cloned() {
            if !hashed.contains_key(&path) {
                let read = |source| PlanError::Read { path: path.clone(), source };
                let size = tokio::fs::metadata(&path).await.map_err(read)?.len();
                let sha256 = ssh::sha256_file(&path).await.map_err(read)?;
                hashed.insert(path.clone(), Blob { sha256, path: path.clone(), size });
            }
            blobs.entry(node.to_owned()).or_default().insert(path);
        }
        instance_blobs.push(files.iter().map(|path| hashed[path].clone()).collect());
        let sha = |path: &PathBuf| hashed[path].sha256.clone();
        let argv0 = program.file_name().map_or_else(|| instance.name.clone(), |n| n.to_string_lossy().into_owned());
        let mut request = SessionRequest::new(sha(&program));
        request.args = std::iter::once(argv0).chain(group.args.iter().cloned()).collect();
        request.env = group.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        request.memory = group.memory;
        request.timeout = group.timeout;
        request.stdin = stdin.as_ref().map(sha);
        request.channels = channels;
        instances.push(PlannedInstance {
            name: instance.name.clone(),
            node: node.to_owned(),
            request,
            stdout_to,
            stderr_to,
        });
    }
    let blobs =
        blobs.into_iter().map(|(node, paths)| (node, paths.iter().map(|p| hashed[p].clone()).collect())).collect();
    Ok(Plan { instances, blobs, instance_blobs })
}

/// The nodes that must accept channel connections: those of readers whose writer runs
/// on another node.
pub fn listening_nodes(job: &Job, placement: &Placement) -> BTreeSet<String> {
    job.edges()
        .iter()
        .filter(|edge| !placement.is_local(edge))
        .filter_map(|edge| placement.node(edge.to).map(str::to_owned))
        .collect()
}
