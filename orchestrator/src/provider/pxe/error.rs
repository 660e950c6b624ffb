//! What can go wrong making, reaching or removing a `pxe` lab ([`PxeError`]): each
//! message names the cause and what to do.

use std::path::PathBuf;

/// What can go wrong in a `pxe` lab.
#[derive(Debug, thiserror::Error)]
pub enum PxeError {
    /// A program the provider runs is not installed.
    #[error(
        "{program} not found: install the Debian package {package} (scripts/setup installs everything a pxe lab needs)"
    )]
    Missing {
        /// The program.
        program: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// A host command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its last line of output, or why it could not run.
        detail: String,
    },
    /// The boot interface does not exist on this host.
    #[error("boot interface `{interface}` does not exist on this host; set pxe.interface to the interface on the machines' network (`ip link` lists them)")]
    NoInterface {
        /// The interface.
        interface: String,
    },
    /// The cluster file asks for something the lab cannot do.
    #[error("{0}")]
    Plan(String),
    /// A machine did not come up in time.
    #[error("node {node}: no progress for {secs} s after `{step}` (pxe.deadline); {hint}")]
    Stuck {
        /// The node.
        node: String,
        /// The last boot step it reached.
        step: String,
        /// How long it sat there.
        secs: u64,
        /// What to look at.
        hint: String,
    },
    /// Building the live system or the disk image failed.
    #[error("building {what} failed: {detail} (its whole output: {})", log.display())]
    Build {
        /// What was built.
        what: &'static str,
        /// The last line of its output.
        detail: String,
        /// Its log.
        log: PathBuf,
    },
    /// A lab file.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `map_err` for an I/O error on `path`.
pub(super) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> PxeError + '_ {
    move |source| PxeError::Io { path: path.to_owned(), source }
}
