//! What a job run sends where, decided before anything is sent: which blobs each node
//! needs (programs and local inputs, each hashed once), and each instance's node and
//! session request, devices and channels included. A local input whose `sha256` does
//! not match is refused here, before any node is touched, in one line naming the
//! instance and the device.
//!
//! Devices: a local input (`stdin`, `input`, `image`) becomes a blob; a node file or a
//! URL is passed to the agent as it is (with its checksum, which the agent checks); a
//! local output, and `stdout`/`stderr` when the job gives no path, is kept by the agent
//! in the session's directory and collected; a node output is written on the node and
//! not collected. `program: image:PATH` is sent as `image:PATH`, taken out of the
//! `image` device by the agent.
//!
//! Channels: each edge gets a fresh random 32-byte key, given to its two ends only (in
//! their session requests, over the lab's SSH connections). Both ends on one node: a
//! `Local` pipe the agent makes. Across nodes: the reader's agent listens, the writer's
//! agent connects to it at the reader node's address and channel port; the run's id is
//! the channel's job, so two runs of one job never meet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use zerolab_agent_api::{
    ChannelDirection, ChannelPeer, ChannelSpec, DeviceSource, DeviceSpec, ProgramRef, SessionRequest, Sha256,
};

use crate::job::{DeviceName, Direction, FileRef, Job, Placement, Program};

/// A local file to store on nodes as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its SHA-256: the blob's name on the node.
    pub sha256: Sha256,
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
    /// The outputs its agent keeps, to collect into the results directory when it ends.
    pub collect: Vec<Collected>,
}

/// An output kept by the agent and collected when the instance ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// `stdout`, `stderr` or `output`: its name in the agent's API and in the results
    /// directory.
    pub stream: &'static str,
    /// Where the job wants a copy on this machine, besides the results directory.
    pub copy_to: Option<PathBuf>,
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

/// What the runner cannot do or could not read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An instance without a node (placement did not cover it).
    #[error("instance {0} has no node; check the job's placement")]
    Unplaced(String),
    /// A local input that does not hash to its `sha256`.
    #[error("instance {instance}: device {device}: {} has sha256 {actual}, not the expected {expected}; the file changed or the job's sha256 is wrong", path.display())]
    Checksum { instance: String, device: &'static str, path: PathBuf, expected: String, actual: String },
    /// A node that must accept channel connections has no channel port.
    #[error("instance {instance}: node {node} accepts no channel connections (its agent has no channel port); run `zerolab up` to update the agent")]
    NoChannelPort { instance: String, node: String },
    /// A local output whose directory does not exist (checked before anything starts).
    #[error("instance {instance}: output directory {} does not exist; make it, or fix the job's output path", dir.display())]
    OutputDir { instance: String, dir: PathBuf },
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

/// Decides run `run_id` of `job` with `placement`: hashes every local file once (with
/// the cache `hashes.json` in `lab_dir`), makes every channel's key;
/// `listen_at` gives the `IP:PORT` where a node accepts channel connections (asked only
/// for nodes that read a channel from another node).
pub async fn plan(
    job: &Job,
    placement: &Placement,
    run_id: &str,
    listen_at: &BTreeMap<String, String>,
    lab_dir: &Path,
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
    let hashed = super::hashes::hash_all(&local_files(job), lab_dir).await?;
    let mut blobs: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut instances = Vec::new();
    let mut instance_blobs = Vec::new();
    for (index, instance) in job.instances().iter().enumerate() {
        let group = &job.groups()[instance.group];
        let Some(node) = placement.node(index) else {
            return Err(PlanError::Unplaced(instance.name.clone()));
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
        let mut files = Vec::new();
        let (program, argv0) = match &group.program {
            Program::Local(path) => {
                files.push(path.clone());
                (ProgramRef::Blob(hashed[path].sha256), file_name(&path.display().to_string()))
            }
            Program::Image(path) => (ProgramRef::Image(path.clone()), file_name(path)),
        };
        // Kept by the agent: stdout and stderr unless sent elsewhere, and local outputs.
        let collect: Vec<Collected> = [DeviceName::Stdout, DeviceName::Stderr, DeviceName::Output]
            .into_iter()
            .filter_map(|name| match instance.devices.iter().find(|d| d.name == name).map(|d| &d.file) {
                None if name != DeviceName::Output => Some(Collected { stream: name.name(), copy_to: None }),
                Some(FileRef::Local(path)) => Some(Collected { stream: name.name(), copy_to: Some(path.clone()) }),
                _ => None,
            })
            .collect();
        for path in collect.iter().filter_map(|c| c.copy_to.as_ref()) {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty() && !dir.is_dir()) {
                return Err(PlanError::OutputDir { instance: instance.name.clone(), dir: dir.to_path_buf() });
            }
        }
        let mut devices = Vec::new();
        for device in &instance.devices {
            let checksum = device.sha256;
            let source = match &device.file {
                FileRef::Local(path) if device.name.is_input() => {
                    files.push(path.clone());
                    let blob = hashed[path].clone();
                    if let Some(expected) = checksum.filter(|e| *e != blob.sha256) {
                        return Err(PlanError::Checksum {
                            instance: instance.name.clone(),
                            device: device.name.name(),
                            path: path.clone(),
                            expected: expected.to_string(),
                            actual: blob.sha256.to_string(),
                        });
                    }
                    DeviceSource::Blob { sha256: blob.sha256 }
                }
                FileRef::Local(_) => DeviceSource::Session,
                FileRef::Node(path) => DeviceSource::Node { path: path.display().to_string(), sha256: checksum },
                FileRef::Url(url) => DeviceSource::Url { url: url.clone(), sha256: checksum },
            };
            devices.push(DeviceSpec { name: device.name, source });
        }
        for path in &files {
            blobs.entry(node.to_owned()).or_default().insert(path.clone());
        }
        instance_blobs.push(files.iter().map(|path| hashed[path].clone()).collect());
        let mut request = SessionRequest::new(program);
        request.args =
            std::iter::once(argv0.unwrap_or_else(|| instance.name.clone())).chain(group.args.iter().cloned()).collect();
        request.env = group.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        request.warm = group.warm;
        request.memory = group.memory;
        request.timeout = group.timeout;
        request.devices = devices;
        request.channels = channels;
        instances.push(PlannedInstance { name: instance.name.clone(), node: node.to_owned(), request, collect });
    }
    let blobs =
        blobs.into_iter().map(|(node, paths)| (node, paths.iter().map(|p| hashed[p].clone()).collect())).collect();
    Ok(Plan { instances, blobs, instance_blobs })
}

/// The plan of one guest: the local `program` run with `args` on `node` as instance
/// `name`, its stdout and stderr kept by the agent and collected (`zerolab sandbox run`).
pub async fn one(name: &str, node: &str, program: &Path, args: Vec<String>, lab_dir: &Path) -> Result<Plan, PlanError> {
    let program = std::path::absolute(program).map_err(|source| PlanError::Read { path: program.into(), source })?;
    let hashed = super::hashes::hash_all(&BTreeSet::from([program.clone()]), lab_dir).await?;
    let blob = hashed[&program].clone();
    let request = SessionRequest { args, ..SessionRequest::new(blob.sha256) };
    let collect = [DeviceName::Stdout, DeviceName::Stderr].map(|d| Collected { stream: d.name(), copy_to: None });
    let instance = PlannedInstance { name: name.to_owned(), node: node.to_owned(), request, collect: collect.into() };
    Ok(Plan {
        instances: vec![instance],
        blobs: BTreeMap::from([(node.to_owned(), vec![blob.clone()])]),
        instance_blobs: vec![vec![blob]],
    })
}

/// The last part of a path, as the guest's `argv[0]`.
fn file_name(path: &str) -> Option<String> {
    path.rsplit('/').find(|part| !part.is_empty()).map(str::to_owned)
}

/// Every local file the job's instances need: programs and local inputs.
fn local_files(job: &Job) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for instance in job.instances() {
        if let Program::Local(path) = &job.groups()[instance.group].program {
            files.insert(path.clone());
        }
        for device in instance.devices.iter().filter(|d| d.name.is_input()) {
            if let FileRef::Local(path) = &device.file {
                files.insert(path.clone());
            }
        }
    }
    files
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
