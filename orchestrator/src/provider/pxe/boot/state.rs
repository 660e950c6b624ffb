//! The nodes' boot state, `LAB/pxe/state.json`: which install nodes are installed (and so
//! boot from their disk). Written by the boot server when a node reports `installed` and
//! by `zerolab reinstall` ([`set_installed`] with `false`); both take `flock` on
//! `LAB/pxe/state.lock` around read-modify-write and replace the file by rename, so a
//! reader ([`load`]) never sees half of it and no update is lost.
//!
//! After a change, [`set_installed`] rewrites that node's boot files (iPXE script and
//! pxelinux menu), so a TFTP menu served by dnsmasq follows too; the boot server renders
//! its scripts from this file on every request anyway.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::plan::{BootPlan, PlanError, PLAN_FILE};
use super::render::{self, RenderError};

/// The state file, in `LAB/pxe/`.
pub const STATE_FILE: &str = "state.json";
/// The lock taken around every change of it.
const LOCK_FILE: &str = "state.lock";

/// Every node's boot state, by node name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The nodes that have a state (a node not listed is not installed).
    pub nodes: BTreeMap<String, NodeState>,
}

/// One node's boot state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Installed to its disk: it boots from there.
    pub installed: bool,
}

impl State {
    /// Whether `node` is installed.
    pub fn installed(&self, node: &str) -> bool {
        self.nodes.get(node).is_some_and(|state| state.installed)
    }
}

/// The state could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, locking or writing failed.
    #[error("cannot access boot state {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state.
    #[error("boot state {path} is not valid; remove it (every install node then installs again)")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The plan of that directory could not be read (to rewrite the node's boot files).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The node is not in the plan.
    #[error("no node {node} in the boot plan of {dir}")]
    UnknownNode {
        /// The node asked for.
        node: String,
        /// The boot directory.
        dir: PathBuf,
    },
    /// The node's boot files could not be rewritten.
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The state in `dir` (`LAB/pxe`); a missing file is the empty state.
pub fn load(dir: &Path) -> Result<State, StateError> {
    let path = dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

/// Marks `node` of the plan in `dir` installed (or not), under the state lock, and rewrites
/// its boot files. Returns whether anything changed.
pub fn set_installed(dir: &Path, node: &str, installed: bool) -> Result<bool, StateError> {
    let plan = BootPlan::load(&dir.join(PLAN_FILE))?;
    let Some(boot_node) = plan.node(node) else {
        return Err(StateError::UnknownNode { node: node.to_owned(), dir: dir.to_owned() });
    };
    let changed = update(dir, |state| {
        let entry = state.nodes.entry(node.to_owned()).or_default();
        let changed = entry.installed != installed;
        entry.installed = installed;
        changed
    })?;
    render::write_node(&plan, boot_node, installed)?;
    Ok(changed)
}

/// Runs `change` on the state in `dir` under its lock and writes the result back.
fn update<T>(dir: &Path, change: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
    let lock_path = dir.join(LOCK_FILE);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Io { path, source }
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io(&lock_path)(e.into()))?;
    let mut state = load(dir)?;
    let answer = change(&mut state);
    let path = dir.join(STATE_FILE);
    let temp = dir.join(format!("{STATE_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(&state).map_err(|e| io(&path)(e.into()))?;
    let mut out =
        fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&temp).map_err(io(&temp))?;
    out.write_all(&text).map_err(io(&temp))?;
    fs::rename(&temp, &path).map_err(io(&path))?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_flips_and_rewrites_the_node_script() {
        let dir = tempfile::tempdir().unwrap();
        let plan = super::super::sample_plan(dir.path());
        plan.save(&dir.path().join(PLAN_FILE)).unwrap();
        assert!(!load(dir.path()).unwrap().installed("n2"));
        assert!(set_installed(dir.path(), "n2", true).unwrap());
        assert!(!set_installed(dir.path(), "n2", true).unwrap(), "no change the second time");
        assert!(load(dir.path()).unwrap().installed("n2"));
        let script = fs::read_to_string(dir.path().join("http/52-54-00-99-13-02.ipxe")).unwrap();
        assert!(script.contains("\nexit\n"), "{script}");
        assert!(set_installed(dir.path(), "n2", false).unwrap());
        let script = fs::read_to_string(dir.path().join("http/52-54-00-99-13-02.ipxe")).unwrap();
        assert!(script.contains("zerolab.mode=install"), "{script}");
    }

    #[test]
    fn an_unknown_node_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        super::super::sample_plan(dir.path()).save(&dir.path().join(PLAN_FILE)).unwrap();
        let err = set_installed(dir.path(), "nope", true).unwrap_err();
        assert!(err.to_string().starts_with("no node nope in the boot plan of"), "{err}");
    }
}
