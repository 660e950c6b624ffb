//! The agent as a second initrd: a `newc` cpio archive holding
//! `/var/lib/zerolab/bin/zerolab-agent` (mode 0755, with its directories), which the
//! kernel unpacks over the live system's initramfs, so provisioning finds the agent
//! already there ([`crate::install`]'s path) and skips the upload.
//!
//! newc is small enough to write here: per entry a 110-byte ASCII header (`070701` and
//! thirteen 8-digit hex fields), the name with its NUL padded to 4 bytes, the data padded
//! to 4 bytes; the archive ends with an entry named `TRAILER!!!`. The kernel needs no
//! more (no inode numbers shared, no checksums).

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// Where the agent lands in the node's root file system (without the leading `/`).
pub const AGENT_IN_ARCHIVE: &str = "var/lib/zerolab/bin/zerolab-agent";

/// Writes to `out` a newc archive holding the file `agent` at [`AGENT_IN_ARCHIVE`].
pub fn write_agent_archive(agent: &Path, out: &mut impl Write) -> io::Result<()> {
    let mut file = fs::File::open(agent)?;
    let size = file.metadata()?.len();
    let size = u32::try_from(size).map_err(|_| io::Error::other("agent binary is larger than 4 GiB"))?;
    let mut ino = 1;
    let mut path = String::new();
    for dir in AGENT_IN_ARCHIVE.split('/').collect::<Vec<_>>().split_last().map_or(&[][..], |(_, dirs)| dirs) {
        path = if path.is_empty() { (*dir).to_owned() } else { format!("{path}/{dir}") };
        header(out, ino, 0o040_755, 2, 0, &path)?;
        ino += 1;
    }
    header(out, ino, 0o100_755, 1, size, AGENT_IN_ARCHIVE)?;
    let copied = io::copy(&mut (&mut file).take(u64::from(size)), out)?;
    if copied != u64::from(size) {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "agent binary changed while it was packed"));
    }
    pad(out, copied as usize)?;
    header(out, 0, 0, 1, 0, "TRAILER!!!")
}

/// One newc header and its name (padded); the data follows.
fn header(out: &mut impl Write, ino: u32, mode: u32, nlink: u32, size: u32, name: &str) -> io::Result<()> {
    let namesize = u32::try_from(name.len() + 1).map_err(|_| io::Error::other("name too long"))?;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
    let mut text = String::from("070701");
    for field in fields {
        text.push_str(&format!("{field:08x}"));
    }
    out.write_all(text.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    pad(out, 110 + name.len() + 1)
}

/// Zeros up to the next multiple of 4 after `len` bytes.
fn pad(out: &mut impl Write, len: usize) -> io::Result<()> {
    out.write_all(&[0u8; 3][..(4 - len % 4) % 4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn cpio_lists_and_extracts_the_agent_executable() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent");
        fs::write(&agent, b"#!/bin/sh\necho agent\n").unwrap();
        let archive = dir.path().join("agent.cpio");
        let mut bytes = Vec::new();
        write_agent_archive(&agent, &mut bytes).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        fs::write(&archive, &bytes).unwrap();
        let Ok(out) = Command::new("cpio").args(["-t", "-v", "-F"]).arg(&archive).output() else {
            eprintln!("skipped: no cpio here (the suite's setup installs it)");
            return;
        };
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<_> = listing.lines().collect();
        assert_eq!(lines.len(), 5, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" var"), "{listing}");
        assert!(lines[4].starts_with("-rwxr-xr-x") && lines[4].ends_with(AGENT_IN_ARCHIVE), "{listing}");
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let status =
            Command::new("cpio").args(["-i", "-d", "--quiet", "-F"]).arg(&archive).current_dir(&root).status().unwrap();
        assert!(status.success());
        assert_eq!(fs::read(root.join(AGENT_IN_ARCHIVE)).unwrap(), b"#!/bin/sh\necho agent\n");
    }
}
