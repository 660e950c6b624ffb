//! Pinned host keys: trust on first use, then a changed key is a hard error.
//!
//! The file lives in the lab directory, one line per node: `node address key-type
//! base64`. Pins are keyed by node name (a rebuilt node keeps its name and address but
//! gets a new key, which is exactly the case to refuse). The file is read once; new pins
//! are appended under a mutex, so parallel connects never lose or duplicate a line.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::Error;

/// A node's pinned key: `key-type base64`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    address: String,
    key: String,
}

/// The lab's pinned host keys; cheap to clone and safe to share between tasks.
#[derive(Debug, Clone)]
pub struct HostKeys {
    path: PathBuf,
    pins: Arc<Mutex<HashMap<String, Pin>>>,
}

impl HostKeys {
    /// Opens the pins at `path`; a missing file means no node is pinned yet.
    pub fn open(path: impl Into<PathBuf>) -> Result<HostKeys, Error> {
        let path = path.into();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::HostKeysFile { path, source }),
        };
        let mut pins = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [node, address, kind, base64] = fields[..] else {
                return Err(Error::HostKeysLine { path, line: n + 1 });
            };
            let pin = Pin { address: address.to_string(), key: format!("{kind} {base64}") };
            pins.insert(node.to_string(), pin);
        }
        Ok(HostKeys { path, pins: Arc::new(Mutex::new(pins)) })
    }

    /// The file the pins are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pinned key (`key-type base64`) of `node`, if any.
    pub fn pinned(&self, node: &str) -> Option<String> {
        self.lock().get(node).map(|pin| pin.key.clone())
    }

    /// Accepts `key` (`key-type base64`) for `node`: pins it on first contact, passes when
    /// it matches the pin, and fails with the fix when it does not.
    pub fn check(&self, node: &str, address: &str, key: &str) -> Result<(), Error> {
        let mut pins = self.lock();
        if let Some(pin) = pins.get(node) {
            if pin.key == key {
                return Ok(());
            }
            return Err(Error::HostKeyChanged {
                node: node.to_string(),
                address: address.to_string(),
                file: self.path.clone(),
                pinned: fingerprint(&pin.key),
                presented: fingerprint(key),
            });
        }
        let io = |source| Error::HostKeysFile { path: self.path.clone(), source };
        // Appended while holding the lock: one writer at a time, one line per node.
        let mut file = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path).map_err(io)?;
        file.write_all(format!("{node} {address} {key}\n").as_bytes()).map_err(io)?;
        pins.insert(node.to_string(), Pin { address: address.to_string(), key: key.to_string() });
        Ok(())
    }

    /// Forgets the pins of `nodes` (hosts made anew have new keys: the next contact
    /// pins theirs), rewriting the file without their lines.
    pub fn forget(&self, nodes: &[String]) -> Result<(), Error> {
        let mut pins = self.lock();
        if !nodes.iter().any(|node| pins.contains_key(node)) {
            return Ok(());
        }
        pins.retain(|node, _| !nodes.contains(node));
        let mut kept: Vec<_> = pins.iter().map(|(node, pin)| format!("{node} {} {}\n", pin.address, pin.key)).collect();
        kept.sort();
        let io = |source| Error::HostKeysFile { path: self.path.clone(), source };
        std::fs::write(&self.path, kept.concat()).map_err(io)
    }

    /// Every pin as `(node, key)` (`key-type base64`), by node name.
    pub fn pins(&self) -> Vec<(String, String)> {
        let mut pins: Vec<_> = self.lock().iter().map(|(node, pin)| (node.clone(), pin.key.clone())).collect();
        pins.sort();
        pins
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pin>> {
        // A panic while holding the lock cannot leave the map half-updated (one insert).
        self.pins.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `key-type base64` as its SHA-256 fingerprint (`SHA256:...`, as `ssh-keygen -l` shows
/// it), or as it is when it does not parse.
fn fingerprint(key: &str) -> String {
    match russh::keys::PublicKey::from_openssh(key) {
        Ok(key) => key.fingerprint(russh::keys::HashAlg::Sha256).to_string(),
        Err(_) => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgotten_nodes_are_pinned_anew_and_the_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        keys.check("n1", "10.0.0.2", "ssh-ed25519 AAAA1").unwrap();
        keys.check("n2", "10.0.0.3", "ssh-ed25519 AAAA2").unwrap();
        keys.forget(&["n2".to_owned()]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "n1 10.0.0.2 ssh-ed25519 AAAA1\n");
        let reopened = HostKeys::open(&path).unwrap();
        assert_eq!(reopened.pinned("n2"), None);
        reopened.check("n2", "10.0.0.3", "ssh-ed25519 AAAAnew").unwrap();
        assert_eq!(reopened.pinned("n1").as_deref(), Some("ssh-ed25519 AAAA1"));
    }

    #[test]
    fn pins_on_first_use_and_refuses_a_changed_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        keys.check("n1", "10.0.0.2", "ssh-ed25519 AAAA").unwrap();
        keys.check("n1", "10.0.0.2", "ssh-ed25519 AAAA").unwrap();
        let reopened = HostKeys::open(&path).unwrap();
        assert_eq!(reopened.pinned("n1").as_deref(), Some("ssh-ed25519 AAAA"));
        let err = reopened.check("n1", "10.0.0.2", "ssh-ed25519 BBBB").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("node n1") && msg.contains("remove its line"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "n1 10.0.0.2 ssh-ed25519 AAAA\n");
    }

    #[test]
    fn a_changed_key_is_shown_as_fingerprints_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let keys = HostKeys::open(&path).unwrap();
        let pinned = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKFnOGhs7X2yf36EjpeIrBJvTA6n4PFz4C403Ty0b74z";
        let presented = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIanLgKmBx7J8jT19jhN6eOUgEYbbi/b5UwWk0dn7euE";
        keys.check("n1", "10.0.0.2", pinned).unwrap();
        let err = keys.check("n1", "10.0.0.2", presented).unwrap_err();
        let file = path.display();
        assert_eq!(
            err.to_string(),
            format!(
                "node n1: host key changed: 10.0.0.2 now presents SHA256:oL+0U+7vRRZw1Q8+GdLIhS5pISLIj32oSt1qW5Ybs4s, \
                 but {file} pins SHA256:AAOMcvJ//Yv0eOj4OmV4k4HNUHVfkaHQie2knPpKon4; if n1 was rebuilt, remove its \
                 line from {file} and run `zerolab up` again (or `zerolab down`, then `zerolab up`, to start the lab \
                 over)"
            )
        );
    }

    #[test]
    fn rejects_a_malformed_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "n1 10.0.0.2 ssh-ed25519\n").unwrap();
        let err = HostKeys::open(&path).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
