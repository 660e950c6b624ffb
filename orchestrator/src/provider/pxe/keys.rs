//! Each machine's secrets, made by zerolab before the machine first boots: its SSH host
//! key (so the first contact is already pinned, no trust on first use) and the token in
//! its metadata URL (so one machine cannot read another's key by guessing a URL).
//! Both are kept in the lab directory, readable by root only, and reused by every `up`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use super::error::{io, PxeError};
use super::host::run;

/// The directory of `node`'s keys.
pub fn key_dir(dir: &Path, node: &str) -> PathBuf {
    dir.join("keys").join(node)
}

/// `node`'s ed25519 host key pair in `dir`, made unless it exists; returns the public
/// key as `ssh-ed25519 BASE64` (what is pinned).
pub async fn host_key(dir: &Path, node: &str) -> Result<String, PxeError> {
    let keys = key_dir(dir, node);
    let private = keys.join("ssh_host_ed25519_key");
    let public = keys.join("ssh_host_ed25519_key.pub");
    if !private.exists() || !public.exists() {
        std::fs::create_dir_all(&keys).map_err(io(&keys))?;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).map_err(io(&keys))?;
        let _ = std::fs::remove_file(&private);
        let _ = std::fs::remove_file(&public);
        let path = private.to_string_lossy().into_owned();
        let comment = format!("root@{node}");
        run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f", &path]).await?;
    }
    let text = std::fs::read_to_string(&public).map_err(io(&public))?;
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind @ "ssh-ed25519"), Some(base64)) => Ok(format!("{kind} {base64}")),
        _ => Err(PxeError::Plan(format!(
            "{} is not an ed25519 public key; remove {} and run `up` again",
            public.display(),
            keys.display()
        ))),
    }
}

/// `node`'s metadata token in `dir` (32 hex digits), made unless it exists.
pub fn token(dir: &Path, node: &str) -> Result<String, PxeError> {
    let keys = key_dir(dir, node);
    let path = keys.join("token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(token.to_owned());
        }
    }
    std::fs::create_dir_all(&keys).map_err(io(&keys))?;
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| PxeError::Plan("the system's random source failed".into()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &token)?;
    Ok(token)
}

/// Writes `text` to `path`, readable by its owner only (tokens, files that hold them).
pub fn write_private(path: &Path, text: &str) -> Result<(), PxeError> {
    let mut file =
        std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path).map_err(io(path))?;
    file.write_all(text.as_bytes()).map_err(io(path))
}
