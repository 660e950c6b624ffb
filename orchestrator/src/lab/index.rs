//! `zerolab labs`: every lab under a root, as the machine has it now.
//!
//! For each lab directory under the root: its identity (`lab.json`: provider, cluster
//! file), its nodes ready of recorded (`state.json`), whether its hosts exist (the
//! provider's [`is_up`](crate::provider::Provider::is_up)), whether its keeper answers,
//! and how many runs it keeps under `jobs/`. From these, one [`Condition`]: a lab whose
//! state records nodes but whose hosts are gone (netns after a reboot) is
//! [`Stale`](Condition::Stale), not up.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{io_error, Lab, LabError, NodeState};
use crate::keeper::Keeper;
use crate::provider::PROVIDERS;

/// Where a lab is, as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Every node ready.
    Up,
    /// Some nodes recorded are not ready.
    PartlyUp,
    /// Taken down (or never brought up): no node recorded; collected results may be kept.
    Down,
    /// Nodes recorded, but their hosts are gone (say the machine rebooted).
    Stale,
}

impl Condition {
    /// As `zerolab labs` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Up => "up",
            Condition::PartlyUp => "partly up",
            Condition::Down => "down",
            Condition::Stale => "stale",
        }
    }
}

/// One lab under the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSummary {
    /// Its name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its provider (`None` when its directory does not say: made by an older build).
    pub provider: Option<String>,
    /// Nodes recorded ready.
    pub ready: usize,
    /// Nodes recorded.
    pub total: usize,
    /// Where it is.
    pub condition: Condition,
    /// The cluster file it was brought up from, when known.
    pub cluster_file: Option<PathBuf>,
    /// Whether its connection keeper answers.
    pub keeper: bool,
    /// The runs whose results it keeps (`LAB/jobs/`).
    pub runs: usize,
}

/// Every lab under `root`, by name (none when the root does not exist).
pub async fn list(root: &Path) -> Result<Vec<LabSummary>, LabError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(root)(e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut labs = Vec::new();
    for name in names {
        // Directories that are no lab's (an invalid name) are not listed.
        let Ok(lab) = Lab::at(root, &name) else { continue };
        labs.push(summary(&lab).await?);
    }
    Ok(labs)
}

async fn summary(lab: &Lab) -> Result<LabSummary, LabError> {
    let identity = lab.identity().ok().flatten();
    let state = lab.load_state().unwrap_or_default();
    let total = state.nodes.len();
    let ready = state.nodes.values().filter(|record| record.state == NodeState::Ready).count();
    let provider = identity.as_ref().map(|identity| identity.provider.clone());
    let hosts = provider
        .as_deref()
        .and_then(|name| PROVIDERS.iter().find(|definition| definition.kind.to_string() == name))
        .map(|definition| definition.lifecycle.is_up(lab).unwrap_or(false));
    let condition = match (total, hosts) {
        (0, _) => Condition::Down,
        (_, Some(false)) => Condition::Stale,
        _ if ready == total => Condition::Up,
        _ => Condition::PartlyUp,
    };
    let runs = fs::read_dir(lab.dir().join("jobs")).map_or(0, |entries| {
        entries.filter_map(|e| e.ok()).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count()
    });
    Ok(LabSummary {
        name: lab.name().to_owned(),
        dir: lab.dir().to_owned(),
        provider,
        ready,
        total,
        condition,
        cluster_file: identity.and_then(|identity| identity.cluster_file),
        keeper: Keeper::running(lab.dir()).await.is_some(),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{Identity, LabState, NodeRecord};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn no_root_no_labs() {
        let root = tempfile::tempdir().unwrap();
        assert!(runtime().block_on(list(&root.path().join("none"))).unwrap().is_empty());
    }

    #[test]
    fn a_lab_with_results_only_is_down_with_its_runs_and_ssh_records_count() {
        let root = tempfile::tempdir().unwrap();
        let down = Lab::at(root.path(), "gone").unwrap();
        fs::create_dir_all(down.dir().join("jobs/wc-1")).unwrap();
        fs::create_dir_all(down.dir().join("jobs/wc-2")).unwrap();
        let ssh = Lab::open_or_create(root.path(), "remote").unwrap();
        ssh.save_identity(&Identity::new("remote", Some(Path::new("/a/remote.yaml")), "ssh")).unwrap();
        let mut state = LabState::default();
        state.nodes.insert("a".into(), NodeRecord::new("10.0.0.2", NodeState::Ready));
        state.nodes.insert("b".into(), NodeRecord::new("10.0.0.3", NodeState::Unreachable));
        ssh.save_state(&state).unwrap();
        fs::create_dir(root.path().join("Not-A-Lab")).unwrap();

        let labs = runtime().block_on(list(root.path())).unwrap();
        assert_eq!(labs.len(), 2, "{labs:?}");
        assert_eq!((labs[0].name.as_str(), labs[0].condition, labs[0].runs), ("gone", Condition::Down, 2));
        assert_eq!(labs[0].provider, None);
        let remote = &labs[1];
        assert_eq!((remote.ready, remote.total, remote.condition), (1, 2, Condition::PartlyUp));
        assert_eq!(remote.cluster_file.as_deref(), Some(Path::new("/a/remote.yaml")));
        assert!(!remote.keeper);
    }
}
