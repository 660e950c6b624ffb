//! A machine's SSH host key, read from its serial console log before zerolab's first SSH
//! contact: the pin comes from a channel only this host sees, not from the network
//! (no trust on first use).
//!
//! zerolab's box (`vagrant/build-box`) writes its public host keys to the serial console
//! on every boot between cloud-init's markers, `-----BEGIN SSH HOST KEY KEYS-----` and
//! `-----END SSH HOST KEY KEYS-----`; libvirt logs that console to a file in the lab
//! directory (the Vagrantfile's `libvirt.serial`). The last complete block is the
//! machine's current keys; zerolab pins its ed25519 key.

use std::path::Path;
use std::time::{Duration, Instant};

use super::VagrantError;

const BEGIN: &str = "-----BEGIN SSH HOST KEY KEYS-----";
const END: &str = "-----END SSH HOST KEY KEYS-----";
/// The key type pinned (the one zerolab's SSH client asks for first).
const KEY_TYPE: &str = "ssh-ed25519";

/// The ed25519 host key (`ssh-ed25519 BASE64`) in the last complete key block of
/// `console`, if there is one.
pub fn host_key(console: &str) -> Option<String> {
    let end = console.rfind(END)?;
    let begin = console[..end].rfind(BEGIN)?;
    console[begin + BEGIN.len()..end].lines().find_map(|line| {
        // Console lines may carry a carriage return and terminal noise before the key.
        let line = line.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        let at = line.find(KEY_TYPE)?;
        let mut fields = line[at..].split_whitespace();
        let (kind, base64) = (fields.next()?, fields.next()?);
        Some(format!("{kind} {base64}"))
    })
}

/// Waits up to `wait` for `node`'s host key to appear in its console log at `path`.
pub async fn wait_host_key(node: &str, path: &Path, wait: Duration) -> Result<String, VagrantError> {
    let deadline = Instant::now() + wait;
    loop {
        let text = tokio::fs::read(path).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if let Some(key) = host_key(&text) {
            return Ok(key);
        }
        if Instant::now() >= deadline {
            return Err(VagrantError::NoHostKey { node: node.to_owned(), console: path.to_owned() });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_block_gives_the_ed25519_key() {
        let console = "boot noise\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n\
                       ecdsa-sha2-nistp256 AAAAE2 root@box\r\nssh-ed25519 AAAAold root@box\r\n\
                       -----END SSH HOST KEY KEYS-----\r\nreboot\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n\
                       \x1b[0mssh-ed25519 AAAAnew root@box\r\n-----END SSH HOST KEY KEYS-----\r\n\
                       -----BEGIN SSH HOST KEY KEYS-----\r\nssh-ed25519 AAAAhalf";
        assert_eq!(host_key(console).as_deref(), Some("ssh-ed25519 AAAAnew"));
        assert_eq!(host_key("no keys here"), None);
        assert_eq!(host_key("-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa AAAA\n-----END SSH HOST KEY KEYS-----"), None);
    }
}
