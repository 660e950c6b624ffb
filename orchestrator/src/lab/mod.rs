//! The lab directory: everything one lab keeps on this machine, in one place (like
//! containerlab's lab dir), at `<root>/<name>/`.
//!
//! The root is one state directory per user, whatever the working directory
//! ([`default_root`]: `$ZEROLAB_HOME`, else `$XDG_STATE_HOME/zerolab/labs`, else
//! `~/.local/state/zerolab/labs`), so the same cluster file used from anywhere is one lab;
//! `--lab-root DIR` chooses another. Labs an older build made under `.zerolab` in a
//! working directory are pointed out by [`old_lab_hint`].
//!
//! ```text
//! <root>/<name>/            0700
//!   lab.json                the lab's identity: name, cluster file, provider, id ([`identity`])
//!   id_ed25519, .pub        the lab's SSH key pair, generated once (private key 0600)
//!   known_hosts             pinned host keys, written by the SSH code (0600)
//!   ssh_known_hosts         the pins in OpenSSH's format, for OpenSSH (`inventory`, `ssh`)
//!   ssh_config              an OpenSSH client config for the nodes (`zerolab ssh`)
//!   state.json              node states (see [`state`]), replaced atomically (0600)
//!   logs/                   per-node logs (0700)
//!   nodes/<node>/           provider runtime files (netns: each node's private dirs)
//!   lab.lock                the lab's lock: who is changing it (pid, command; [`lock`])
//!   keeper.sock, .lock, .log  the connection keeper's socket (0600), lock and log (see
//!                           [`crate::keeper`])
//!   services/<name>.log     the log of each service the keeper runs for the lab
//! ```
//!
//! [`Lab`] is the directory; [`Lab::open`] ([`crate::lab_handle`]) is a lab that is up, as a
//! command on its nodes sees it; [`LabLock`] ([`lock`]) keeps two commands that change
//! the lab from interleaving; [`owner`] records which lab directory made each host, so
//! no lab touches another's; [`index`] lists the labs under a root (`zerolab labs`).
//!
//! The directory is created mode 0700 and every file in it without access for group or
//! others (the public key excepted), so nothing secret is readable by other users even
//! when the root directory is. The key pair comes from OpenSSH's `ssh-keygen`: the lab
//! logs in with the real OpenSSH client and server, so their own tool makes the keys.

pub mod identity;
pub mod index;
pub mod lock;
pub mod owner;
pub mod state;

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use self::identity::Identity;
pub use self::lock::{Holder, LabLock, LockError, LockWait, Waiting};
pub use self::owner::{Foreign, Owner, Owners};
pub use self::state::{LabState, NodeRecord, NodeState};
use crate::cluster::names::check_lab_name;

/// Where labs lived by default before [`default_root`]: `.zerolab` in the working directory.
pub const OLD_ROOT: &str = ".zerolab";

/// Where labs live when no root is given: `$ZEROLAB_HOME` if set, else
/// `$XDG_STATE_HOME/zerolab/labs` (an absolute `XDG_STATE_HOME`), else
/// `$HOME/.local/state/zerolab/labs` (the home from the password database when `HOME` is
/// unset; root's is `/root`).
pub fn default_root() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(home) = var("ZEROLAB_HOME") {
        return home;
    }
    if let Some(state) = var("XDG_STATE_HOME").filter(|dir| dir.is_absolute()) {
        return state.join("zerolab/labs");
    }
    let home = var("HOME")
        .or_else(|| nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|user| user.dir))
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/state/zerolab/labs")
}

/// A line pointing at lab `name` under `.zerolab` in the working directory, where an older
/// build put it, when `root` is elsewhere and holds no lab of that name (`None` otherwise).
pub fn old_lab_hint(root: &Path, name: &str) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let old = cwd.join(OLD_ROOT);
    let root = if root.is_absolute() { root.to_owned() } else { cwd.join(root) };
    let elsewhere =
        fs::canonicalize(&root).map_or(root.clone(), |r| r) != fs::canonicalize(&old).unwrap_or(old.clone());
    (elsewhere && old.join(name).is_dir() && !root.join(name).exists()).then(|| {
        format!(
            "zerolab: note: lab {name} is in {} (where labs were kept before); labs now live in {}: \
             pass `--lab-root {OLD_ROOT}` to work on it there",
            old.join(name).display(),
            root.display()
        )
    })
}

/// What can go wrong with a lab directory.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The name is not a valid lab name.
    #[error("invalid lab name `{name}`: {reason}")]
    Name { name: String, reason: String },
    /// A file or directory of the lab could not be made, read or written.
    #[error("lab file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen` could not be run or failed.
    #[error("ssh-keygen failed for {}: {detail}; install openssh-client", path.display())]
    Keygen { path: PathBuf, detail: String },
    /// `up` from a cluster file other than the one the lab was made from.
    #[error(
        "lab {lab} is up from {}; run `zerolab down {}` first, or give this lab another name",
        file.display(), file.display()
    )]
    OtherFile { lab: String, file: PathBuf },
    /// A host of this lab's names was made by another lab directory.
    #[error(transparent)]
    Foreign(Box<Foreign>),
    /// `state.json` is not a lab state.
    #[error("lab state {} is corrupt", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> LabError + '_ {
    move |source| LabError::Io { path: path.to_owned(), source }
}

/// An open lab directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lab {
    name: String,
    dir: PathBuf,
}

impl Lab {
    /// Opens the lab `name` under `root`, creating its directory, key pair, `known_hosts`
    /// and `logs/` where missing (an existing key pair is kept).
    pub fn open_or_create(root: impl AsRef<Path>, name: &str) -> Result<Lab, LabError> {
        let lab = Lab::at(root.as_ref(), name)?;
        let root = lab.dir.parent().expect("a lab dir has a parent").to_owned();
        DirBuilder::new().recursive(true).mode(0o700).create(&root).map_err(io_error(&root))?;
        private_dir(&lab.dir)?;
        private_dir(&lab.logs_dir())?;
        let known_hosts = lab.known_hosts();
        OpenOptions::new().create(true).append(true).mode(0o600).open(&known_hosts).map_err(io_error(&known_hosts))?;
        if !lab.private_key().exists() {
            lab.generate_key()?;
        }
        Ok(lab)
    }

    /// The lab `name` under `root`, without creating or reading anything (for tearing
    /// down or inspecting a lab that may not exist).
    pub fn at(root: impl AsRef<Path>, name: &str) -> Result<Lab, LabError> {
        check_lab_name(name).map_err(|reason| LabError::Name { name: name.to_owned(), reason: reason.to_string() })?;
        let root = root.as_ref();
        let root = if root.is_absolute() {
            root.to_owned()
        } else {
            std::env::current_dir().map_err(io_error(root))?.join(root)
        };
        Ok(Lab { name: name.to_owned(), dir: root.join(name) })
    }

    /// Whether the lab directory exists.
    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    fn generate_key(&self) -> Result<(), LabError> {
        let key = self.private_key();
        // A half-written pair from an interrupted run would make ssh-keygen ask before
        // overwriting; start clean.
        let _ = fs::remove_file(self.public_key());
        let output = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C"])
            .arg(format!("zerolab-{}", self.name))
            .arg("-f")
            .arg(&key)
            .output()
            .map_err(|e| LabError::Keygen { path: key.clone(), detail: e.to_string() })?;
        if !output.status.success() {
            let detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(LabError::Keygen { path: key, detail });
        }
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).map_err(io_error(&key))
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lab's private SSH key (ed25519, 0600).
    pub fn private_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The lab's public SSH key: what nodes authorize.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }

    /// The pinned host keys, in OpenSSH `known_hosts` format.
    pub fn known_hosts(&self) -> PathBuf {
        known_hosts_in(&self.dir)
    }

    /// The node states.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The per-node logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// Provider runtime files, one directory per node; removed when the lab is destroyed.
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }

    /// The node states (empty when none were saved yet).
    pub fn load_state(&self) -> Result<LabState, LabError> {
        LabState::load(&self.state_path())
    }

    /// Saves the node states atomically (temporary file, then rename).
    pub fn save_state(&self, state: &LabState) -> Result<(), LabError> {
        state.save(&self.state_path())
    }

    /// Removes the lab directory and everything in it (nothing is left of it).
    pub fn remove(self) -> Result<(), LabError> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&self.dir)(e)),
            _ => Ok(()),
        }
    }
}

/// Writes `bytes` to `path`, readable and writable by its owner only (also when the file
/// was there before with another mode).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), LabError> {
    use std::io::Write;
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io_error(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))
}

/// The pinned host keys of the lab in `dir`.
pub fn known_hosts_in(dir: &Path) -> PathBuf {
    dir.join("known_hosts")
}

/// Creates `dir` (0700) if missing and makes sure it is 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), LabError> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            out.push((path.clone(), meta.mode() & 0o777));
            if meta.is_dir() {
                modes(&path, out);
            }
        }
    }

    #[test]
    fn creates_private_lab_dir_with_key_pair() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::open_or_create(root.path(), "demo").unwrap();
        assert_eq!(lab.dir(), root.path().join("demo"));
        assert_eq!(fs::metadata(lab.dir()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(lab.private_key()).unwrap().mode() & 0o777, 0o600);
        assert!(fs::read_to_string(lab.public_key()).unwrap().starts_with("ssh-ed25519 "));
        lab.save_state(&LabState::default()).unwrap();
        let mut all = Vec::new();
        modes(lab.dir(), &mut all);
        assert!(all.len() >= 5, "{all:?}");
        for (path, mode) in all {
            if path != lab.public_key() {
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
            }
        }
    }

    #[test]
    fn keeps_key_pair_when_reopened() {
        let root = tempfile::tempdir().unwrap();
        let first = Lab::open_or_create(root.path(), "demo").unwrap();
        let key = fs::read(first.private_key()).unwrap();
        let again = Lab::open_or_create(root.path(), "demo").unwrap();
        assert_eq!(fs::read(again.private_key()).unwrap(), key);
    }

    #[test]
    fn at_creates_nothing() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::at(root.path(), "demo").unwrap();
        assert_eq!(lab.dir(), root.path().join("demo"));
        assert!(!lab.exists());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_invalid_name() {
        let root = tempfile::tempdir().unwrap();
        let err = Lab::open_or_create(root.path(), "../x").unwrap_err();
        assert!(err.to_string().starts_with("invalid lab name `../x`"), "{err}");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_leaves_nothing_and_is_idempotent() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::open_or_create(root.path(), "demo").unwrap();
        lab.clone().remove().unwrap();
        assert!(!root.path().join("demo").exists());
        lab.remove().unwrap();
    }
}
