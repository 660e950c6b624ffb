//! A lab directory's identity, `LAB/lab.json`: the lab's name, the cluster file it was
//! brought up from (absolute), its provider, when it was made and a random id.
//!
//! `up` writes it when it makes the lab and reads it every time after: `up` from another
//! cluster file with the same lab name is refused at once, naming the file the lab was
//! made from ([`Identity::check_file`]), and `zerolab labs` shows it. A lab directory
//! made by a build without identities has no `lab.json`; it is written on its next `up`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_error, Lab, LabError};

/// What `LAB/lab.json` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The lab's name.
    pub name: String,
    /// The cluster file the lab was brought up from, absolute (`None`: not known, the
    /// lab was made through the library without a file).
    pub cluster_file: Option<PathBuf>,
    /// The provider's name.
    pub provider: String,
    /// When the lab was made, in seconds since the Unix epoch.
    pub created: u64,
    /// A random id (16 hex digits), new each time the lab directory is made.
    pub id: String,
}

impl Identity {
    /// A new identity for lab `name` made now from `cluster_file` with `provider`.
    pub fn new(name: &str, cluster_file: Option<&Path>, provider: &str) -> Identity {
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
        Identity {
            name: name.to_owned(),
            cluster_file: cluster_file.map(Path::to_owned),
            provider: provider.to_owned(),
            created,
            id: random_id(),
        }
    }

    /// Refuses `file` when the lab was brought up from another cluster file that still
    /// exists (a file that was moved or removed leaves the lab to the one given now).
    pub fn check_file(&self, lab: &Lab, file: &Path) -> Result<(), LabError> {
        match &self.cluster_file {
            Some(made_from) if made_from != file && made_from.exists() && !same_file(made_from, file) => {
                Err(LabError::OtherFile { lab: lab.name().to_owned(), file: made_from.clone() })
            }
            _ => Ok(()),
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// 64 random bits as 16 hex digits.
fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // The system's random source failing is not worth stopping `up` for: the id only
    // tells one making of a lab directory from another, and the time does that too.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
            .to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Lab {
    /// Where the lab's identity is kept.
    pub fn identity_path(&self) -> PathBuf {
        self.dir().join("lab.json")
    }

    /// The lab's identity (`None` when it has none: never brought up, or by an older build).
    pub fn identity(&self) -> Result<Option<Identity>, LabError> {
        let path = self.identity_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| LabError::State { path: path.clone(), source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    /// Writes the lab's identity (0600).
    pub fn save_identity(&self, identity: &Identity) -> Result<(), LabError> {
        let mut json = serde_json::to_vec_pretty(identity).expect("an identity serializes");
        json.push(b'\n');
        super::write_private(&self.identity_path(), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_ids_differ() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::open_or_create(root.path(), "demo").unwrap();
        assert_eq!(lab.identity().unwrap(), None);
        let identity = Identity::new("demo", Some(Path::new("/a/cluster.yaml")), "netns");
        lab.save_identity(&identity).unwrap();
        assert_eq!(lab.identity().unwrap(), Some(identity.clone()));
        assert_eq!(identity.id.len(), 16);
        assert_ne!(identity.id, Identity::new("demo", None, "netns").id);
    }

    #[test]
    fn another_existing_file_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        fs::write(&first, "x").unwrap();
        fs::write(&second, "x").unwrap();
        let lab = Lab::at(dir.path().join("labs"), "demo").unwrap();
        let identity = Identity::new("demo", Some(&first), "netns");
        identity.check_file(&lab, &first).unwrap();
        let err = identity.check_file(&lab, &second).unwrap_err().to_string();
        let a = first.display();
        assert_eq!(
            err,
            format!("lab demo is up from {a}; run `zerolab down {a}` first, or give this lab another name")
        );
        // The first file gone: the lab goes with the file given now.
        fs::remove_file(&first).unwrap();
        identity.check_file(&lab, &second).unwrap();
    }
}
