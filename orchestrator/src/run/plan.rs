//! What a job run sends where, decided before anything is sent: which blobs each node
//! needs (programs and local inputs, each hashed once), and each instance's node and
//! session request. Whatever the runner cannot do yet is refused here, before any
//! node is touched, in one line naming the instance and the device.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use zerolab_agent::api::SessionRequest;

use crate::job::{DeviceName, FileRef, Job, Placement, Program};
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
}

/// What the runner cannot do (yet) or could not read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A device kind or source the runner does not support yet.
    #[error("instance {instance}: {what} is not supported by `zerolab run` yet; {hint}")]
    Unsupported { instance: String, what: String, hint: &'static str },
    /// A local file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Decides the run of `job` with `placement`: hashes every local file once.
pub async fn plan(job: &Job, placement: &Placement) -> Result<Plan, PlanError> {
    let mut hashed: BTreeMap<PathBuf, Blob> = BTreeMap::new();
    let mut blobs: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut instances = Vec::new();
    for (index, instance) in job.instances().iter().enumerate() {
        let group = &job.groups()[instance.group];
        let unsupported = |what: String, hint| PlanError::Unsupported { instance: instance.name.clone(), what, hint };
        let Some(node) = placement.node(index) else {
            return Err(unsupported("an instance without a node".into(), "check the job's placement"));
        };
        if !instance.channels.is_empty() {
            return Err(unsupported(
                format!("channel {}", instance.channels[0].alias),
                "channels between guests come with the agents' channel support",
            ));
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
        for path in files {
            if !hashed.contains_key(&path) {
                let read = |source| PlanError::Read { path: path.clone(), source };
                let size = tokio::fs::metadata(&path).await.map_err(read)?.len();
                let sha256 = ssh::sha256_file(&path).await.map_err(read)?;
                hashed.insert(path.clone(), Blob { sha256, path: path.clone(), size });
            }
            blobs.entry(node.to_owned()).or_default().insert(path);
        }
        let sha = |path: &PathBuf| hashed[path].sha256.clone();
        let argv0 = program.file_name().map_or_else(|| instance.name.clone(), |n| n.to_string_lossy().into_owned());
        let mut request = SessionRequest::new(sha(&program));
        request.args = std::iter::once(argv0).chain(group.args.iter().cloned()).collect();
        request.env = group.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        request.memory = group.memory;
        request.timeout = group.timeout;
        request.stdin = stdin.as_ref().map(sha);
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
    Ok(Plan { instances, blobs })
}
