//! Owner records: which lab directory made a host, kept where the host's life is kept.
//!
//! Two lab roots can hold labs of the same name (and netns names derive from the lab
//! name), so a name alone does not say whose a namespace is. Every host object a lab
//! makes gets a record, `<owners>/<kind>/<object>` holding its [`Owner`] as JSON
//! (`{"lab": NAME, "dir": LAB_DIR, "id": LAB_ID}`); before `up` or `down` touches an
//! object of its names, it reads the record, and one owned by another lab directory is
//! refused ([`Foreign`]) naming that lab and the command that works on it.
//!
//! `netns` hosts die with the machine, so their records are under `/run/zerolab/owners`
//! (a tmpfs, emptied at boot with them: [`Owners::machine`]). The format is the same for
//! every provider (`ssh` keeps one inside the agent's state directory on its node).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_error, LabError};

/// Where the records of this machine's hosts live.
pub const MACHINE_OWNERS: &str = "/run/zerolab/owners";

/// Who made a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The lab's name.
    pub lab: String,
    /// The lab directory (absolute).
    pub dir: PathBuf,
    /// The lab's id (`LAB/lab.json`), empty when the lab has none.
    #[serde(default)]
    pub id: String,
}

impl Owner {
    /// Whether `dir` is this owner's lab directory.
    pub fn is(&self, dir: &Path) -> bool {
        self.dir == dir || matches!((fs::canonicalize(&self.dir), fs::canonicalize(dir)), (Ok(a), Ok(b)) if a == b)
    }
}

/// An object of this lab's names that another lab directory made.
#[derive(Debug, thiserror::Error)]
#[error(
    "{object} belongs to lab {} in {}, not to {}; {}",
    owner.lab, owner.dir.display(), dir.display(), what_to_run(owner)
)]
pub struct Foreign {
    /// The object (`namespace zl-demo-n1`, `bridge zl-demo-1a2b`).
    pub object: String,
    /// Who made it.
    pub owner: Owner,
    /// The lab directory that was refused.
    pub dir: PathBuf,
}

/// The command that works on the owner's lab: its cluster file and lab root when its
/// identity names them.
fn what_to_run(owner: &Owner) -> String {
    let root = owner.dir.parent().unwrap_or(&owner.dir).display().to_string();
    let file = fs::read(owner.dir.join("lab.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<super::Identity>(&bytes).ok())
        .and_then(|identity| identity.cluster_file);
    match file {
        Some(file) => format!(
            "work on that lab with `--lab-root {root}` (take it down with `zerolab down {} --lab-root {root}`), \
             or give this lab another name",
            file.display()
        ),
        None => format!("work on that lab with `--lab-root {root}`, or give this lab another name"),
    }
}

/// A directory of owner records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owners {
    dir: PathBuf,
}

impl Owners {
    /// This machine's records ([`MACHINE_OWNERS`]).
    pub fn machine() -> Owners {
        Owners::at(MACHINE_OWNERS)
    }

    /// The records under `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Owners {
        Owners { dir: dir.into() }
    }

    fn path(&self, kind: &str, object: &str) -> PathBuf {
        self.dir.join(kind).join(object)
    }

    /// The owner of `object` of `kind` (`netns`, `link`), if recorded.
    pub fn get(&self, kind: &str, object: &str) -> Result<Option<Owner>, LabError> {
        let path = self.path(kind, object);
        match fs::read(&path) {
            // A record cut short (a crash while writing) says nothing: as none.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Refuses `object` of `kind` when a lab directory other than `owner.dir` made it.
    pub fn check(&self, kind: &str, object: &str, dir: &Path) -> Result<(), LabError> {
        match self.get(kind, object)? {
            Some(owner) if !owner.is(dir) => {
                let object = format!("{} {object}", if kind == "netns" { "namespace" } else { kind });
                Err(LabError::Foreign(Box::new(Foreign { object, owner, dir: dir.to_owned() })))
            }
            _ => Ok(()),
        }
    }

    /// Records `owner` as the maker of `object` of `kind`.
    pub fn set(&self, kind: &str, object: &str, owner: &Owner) -> Result<(), LabError> {
        let dir = self.dir.join(kind);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let json = serde_json::to_vec(owner).expect("an owner serializes");
        super::write_private(&self.path(kind, object), &json)
    }

    /// Forgets who made `object` of `kind` (it is gone).
    pub fn remove(&self, kind: &str, object: &str) -> Result<(), LabError> {
        let path = self.path(kind, object);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&path)(e)),
            _ => Ok(()),
        }
    }

    /// The objects of `kind` that the lab in `dir` made, sorted.
    pub fn owned_by(&self, kind: &str, dir: &Path) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join(kind)) else { return Vec::new() };
        let mut objects: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|object| self.get(kind, object).ok().flatten().is_some_and(|owner| owner.is(dir)))
            .collect();
        objects.sort();
        objects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(dir: &Path) -> Owner {
        Owner { lab: "demo".into(), dir: dir.to_owned(), id: "0123456789abcdef".into() }
    }

    #[test]
    fn records_round_trip_and_list_by_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let owners = Owners::at(tmp.path().join("owners"));
        let (a, b) = (tmp.path().join("a/demo"), tmp.path().join("b/demo"));
        assert_eq!(owners.get("netns", "zl-demo-n1").unwrap(), None);
        owners.set("netns", "zl-demo-n1", &owner(&a)).unwrap();
        owners.set("netns", "zl-demo-n2", &owner(&b)).unwrap();
        assert_eq!(owners.get("netns", "zl-demo-n1").unwrap(), Some(owner(&a)));
        assert_eq!(owners.owned_by("netns", &a), ["zl-demo-n1"]);
        let json = fs::read_to_string(tmp.path().join("owners/netns/zl-demo-n1")).unwrap();
        assert_eq!(json, format!(r#"{{"lab":"demo","dir":"{}","id":"0123456789abcdef"}}"#, a.display()));
        owners.remove("netns", "zl-demo-n1").unwrap();
        owners.remove("netns", "zl-demo-n1").unwrap();
        assert!(owners.owned_by("netns", &a).is_empty());
    }

    #[test]
    fn another_labs_object_is_refused_naming_its_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let owners = Owners::at(tmp.path().join("owners"));
        let (a, b) = (tmp.path().join("a/demo"), tmp.path().join("b/demo"));
        owners.set("netns", "zl-demo-n1", &owner(&a)).unwrap();
        owners.check("netns", "zl-demo-n1", &a).unwrap();
        owners.check("netns", "zl-demo-n9", &b).unwrap();
        let err = owners.check("netns", "zl-demo-n1", &b).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "namespace zl-demo-n1 belongs to lab demo in {}, not to {}; work on that lab with `--lab-root {}`, \
                 or give this lab another name",
                a.display(),
                b.display(),
                tmp.path().join("a").display()
            )
        );
    }
}
