//! Which lab a node's agent belongs to: the owner file `/var/lib/zerolab/owner` in the
//! agent's state directory, written by the start script and checked by it and by the
//! remove script, so two labs over the same machines never share, or remove, one agent.
//!
//! The file is three `key=value` lines: the lab's name, its directory and the machine it
//! lives on:
//!
//! ```text
//! lab=demo
//! dir=/home/ops/.local/state/zerolab/labs/demo
//! host=workstation
//! ```
//!
//! Design: the node decides, in the same script that starts or removes the agent, so the
//! check and the change cannot be split by another lab's command. A lab is its directory
//! on its machine: two labs with one name in two directories are two owners. An agent
//! without an owner file was installed by a zerolab older than the file; it is taken as
//! the lab's own only when the lab logged into that node before (its host key was
//! pinned), which is what upgrading finds.

use std::fmt;
use std::path::Path;

/// The owner file's name in the agent's state directory.
pub const FILE: &str = "owner";

/// The lab an agent belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The lab's name.
    pub lab: String,
    /// The lab directory (absolute).
    pub dir: String,
    /// The host name of the machine the lab lives on.
    pub host: String,
}

impl Owner {
    /// The lab `name` whose directory is `dir`, on this machine.
    pub fn of(name: &str, dir: &Path) -> Owner {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .ok()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "an unnamed host".to_owned());
        Owner { lab: name.to_owned(), dir: dir.display().to_string(), host }
    }

    /// The file's text: one `key=value` line each, control characters (a newline in a
    /// directory name) shown as `?` so every value stays on its line.
    pub fn to_file(&self) -> String {
        let clean = |value: &str| value.chars().map(|c| if c.is_control() { '?' } else { c }).collect::<String>();
        format!("lab={}\ndir={}\nhost={}\n", clean(&self.lab), clean(&self.dir), clean(&self.host))
    }

    /// Reads a file's text; a key that is missing reads as `?` (the file was edited by
    /// hand: it still names what it can).
    pub fn parse(text: &str) -> Owner {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
                .map_or_else(|| "?".to_owned(), str::to_owned)
        };
        Owner { lab: value("lab"), dir: value("dir"), host: value("host") }
    }
}

/// `lab demo (/labs/demo on workstation)`.
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lab {} ({} on {})", self.lab, self.dir, self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_as_written() {
        let owner = Owner { lab: "demo".into(), dir: "/labs/demo".into(), host: "box".into() };
        assert_eq!(owner.to_file(), "lab=demo\ndir=/labs/demo\nhost=box\n");
        assert_eq!(Owner::parse(&owner.to_file()), owner);
        assert_eq!(owner.to_string(), "lab demo (/labs/demo on box)");
    }

    #[test]
    fn a_newline_in_a_directory_cannot_add_a_line() {
        let owner = Owner { lab: "demo".into(), dir: "/labs/a\nhost=x".into(), host: "box".into() };
        assert_eq!(owner.to_file(), "lab=demo\ndir=/labs/a?host=x\nhost=box\n");
    }

    #[test]
    fn a_file_edited_by_hand_still_names_what_it_can() {
        assert_eq!(Owner::parse("lab=other\n"), Owner { lab: "other".into(), dir: "?".into(), host: "?".into() });
    }

    #[test]
    fn the_owner_of_a_lab_is_its_directory_on_this_machine() {
        let owner = Owner::of("demo", Path::new("/labs/demo"));
        assert_eq!((owner.lab.as_str(), owner.dir.as_str()), ("demo", "/labs/demo"));
        assert!(!owner.host.is_empty());
    }
}
