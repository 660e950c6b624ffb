//! Workshops: a lab for every attendee, made ahead in a warm pool, handed out in
//! seconds, kept through laptops sleeping, and followed by the instructor
//! (`docs/workshop.md` is the instructor's page).
//!
//! The workshop file is read in the config crate ([`zerolab_config::workshop`]); here is
//! what acts on it:
//! - [`service`]: the [`Workshop`] service the portal calls (join, view, terminal,
//!   check, SSH keys, the instructor's actions, events), over the state in [`state`]
//!   (`workshop.json`) and what attendees see in [`view`];
//! - [`pool`]: labs made before anyone arrives and kept in reserve, claims, the queue,
//!   labs taken down in the background;
//! - [`watch`]: the timers (expiry, idle shelving), the check scripts and the health
//!   loop that replaces a claimed lab whose node stopped answering;
//! - [`warm`]: each ready lab's warm terminal (an SSH login and a shell made ahead), so
//!   a browser terminal opened in the stampede costs a resize, not a login;
//! - [`sshport`]: attendees' own SSH keys and the ports forwarded to their nodes;
//! - [`serve`]: the detached process holding the service and the portal's listener;
//!   [`commands`]: `workshop up|status|down|plan`; [`plan`]: how many labs fit.
//!
//! The workshop directory holds all of its state:
//! ```text
//! <lab root>/workshops/<name>/   0700
//!   workshop.json                attendees (tokens as SHA-256), labs, timers, queue
//!   labs/                        the lab root of its labs (<name>-NNN), each an ordinary lab directory
//!   serve.pid, serve.lock, serve.log   the portal process
//!   instructor.txt               the instructor's password, when generated (0600)
//! ```

pub mod commands;
pub mod plan;
pub mod pool;
pub mod portal;
pub mod serve;
pub mod service;
mod shelf;
pub mod sshport;
pub mod state;
pub mod view;
pub mod warm;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::service::{AccessError, ActionError, JoinError, Joined, NodeAccess, Workshop, WorkshopError};
pub use self::state::AttendeeId;
pub use self::view::{AttendeeView, LabInfo, LabStateLabel, Overview, SshAccess, StepView, WorkshopEvent};
pub use zerolab_config::workshop::{format_duration, LoadError, Workshop as WorkshopFile};

/// Reads and checks the workshop file at `path` with this build's providers.
pub fn from_path(path: impl AsRef<Path>) -> Result<WorkshopFile, LoadError> {
    WorkshopFile::from_path(path, &crate::provider::REGISTRY)
}

/// The directory of workshop `name` under the lab root `root`.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    root.join("workshops").join(name)
}

/// How the service acts; [`Options::new`] has the defaults `serve` uses.
#[derive(Clone, Debug)]
pub struct Options {
    /// The agent binary installed on every node.
    pub agent: PathBuf,
    /// The `zerolab` executable (labs' keepers).
    pub program: PathBuf,
    /// Labs made at once.
    pub make_parallel: usize,
    /// How often the timers look.
    pub tick: Duration,
    /// How often an active attendee's checks run again.
    pub check_every: Duration,
    /// How often labs' nodes are probed.
    pub health_every: Duration,
    /// Failed probes in a row before a lab is replaced.
    pub health_failures: u32,
}

impl Options {
    /// The defaults: 8 labs made at once, checks every 30 s, nodes probed every 5 s.
    pub fn new(agent: PathBuf, program: PathBuf) -> Options {
        Options {
            agent,
            program,
            make_parallel: 8,
            tick: Duration::from_secs(1),
            check_every: Duration::from_secs(30),
            health_every: Duration::from_secs(5),
            health_failures: 2,
        }
    }
}
