//! Job files: read, check and expand a job (groups of guests wired by one-way channels)
//! into a [`Job`] of [`Instance`]s and [`Edge`]s, or into located diagnostics.
//!
//! ```
//! use zerolab_config::job::Job;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("map"), b"guest")?;
//! std::fs::write(dir.path().join("reduce"), b"guest")?;
//! let text = "\
//! apiVersion: zerolab/v1
//! kind: Job
//! name: wordcount
//! groups:
//!   - {name: map, count: 2, program: map, connect: [reduce]}
//!   - {name: reduce, program: reduce}
//! ";
//! let file = dir.path().join("job.yaml").display().to_string();
//! let job = Job::from_str(text, &file)?;
//! let names: Vec<&str> = job.instances().iter().map(|i| i.name.as_str()).collect();
//! assert_eq!(names, ["map-1", "map-2", "reduce"]);
//! let aliases: Vec<&str> = job.instances()[2].channels.iter().map(|c| c.alias.as_str()).collect();
//! assert_eq!(aliases, ["/dev/in/map-1", "/dev/in/map-2"]);
//! assert_eq!(job.summary(), "job wordcount: 2 groups, 3 instances, 2 channels");
//!
//! let err = Job::from_str(&text.replace("[reduce]", "[reduse]"), &file).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     format!("{file}:5:51: connect names unknown group `reduse`; expected one of `map`, `reduce` (did you mean `reduce`?)")
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Two formats, one [`Job`]: the YAML job file (`apiVersion: zerolab/v1`, `kind: Job`,
//! [`schema`]) and ZeroCloud's JSON job descriptions ([`zerocloud`]), told apart by
//! the first character (`[` is JSON). Both become a draft that one set of checks reads.
//!
//! The pipeline reuses the cluster file's, one module per step: `read` (syntax and
//! schema, stopping at the first error), `validate` (each group), `graph` (connect
//! names, cycles, retries) and `expand` (instances and channels), all reported together
//! through the shared [`Diagnostics`]. [`Job::check_placement`] then assigns
//! instances to a lab's nodes ([`placement`]). `docs/job.md` is the user's page.
//!
//! Checking reads the file system: programs and local inputs must exist (relative to
//! the job file's directory), and wildcard inputs are listed there.

mod draft;
mod expand;
mod files;
mod graph;
mod group;
pub mod placement;
mod problem;
mod read;
pub mod schema;
pub mod units;
mod validate;
pub mod zerocloud;

use std::path::Path;

use crate::document::{Checker, Document};

use crate::cluster::Cluster;
use crate::document::{Diagnostics, LoadError as DocumentLoadError};

pub use self::files::PathError;
pub use self::group::{Device, DeviceName, FileRef, Group, PlacementRule, Program, Strategy};
pub use self::placement::{Placement, DEFAULT_GUESTS_PER_NODE};
pub use self::problem::{Problem, MAX_CHANNELS, MAX_COUNT, MAX_EDGES, MAX_INSTANCES, MAX_RETRIES};
pub use self::units::{SizeError, TimeError};

/// Why [`Job::from_path`] returned no job.
pub type LoadError = DocumentLoadError<Problem>;

/// Which format a job was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A YAML job file (`kind: Job`).
    Yaml,
    /// A ZeroCloud JSON job description.
    ZeroCloud,
}

/// A valid job, its groups expanded into instances and channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    name: String,
    file_name: String,
    format: Format,
    groups: Vec<Group>,
    instances: Vec<Instance>,
    edges: Vec<Edge>,
}

/// One guest of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Its unique name: the group's, or `GROUP-N` in a group of several.
    pub name: String,
    /// Its group, by index in [`Job::groups`].
    pub group: usize,
    /// Its number in the group, from 1.
    pub number: u32,
    /// Its devices: the group's, with its own wildcard match and `*` in outputs
    /// replaced by its name.
    pub devices: Vec<Device>,
    /// Its channel ends, writers' in `connect` order, then readers' in edge order.
    pub channels: Vec<ChannelEnd>,
}

/// One end of a channel, as an instance sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEnd {
    /// What the guest opens: `/dev/out/<reader>` or `/dev/in/<writer>`.
    pub alias: String,
    /// Whether the guest writes or reads it.
    pub direction: Direction,
    /// The instance at the other end, by index in [`Job::instances`].
    pub peer: usize,
    /// The channel, by index in [`Job::edges`].
    pub edge: usize,
}

/// Which way data flows through a channel end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The guest reads (`/dev/in/…`).
    In,
    /// The guest writes (`/dev/out/…`).
    Out,
}

/// A one-way channel between two instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The writer, by index in [`Job::instances`].
    pub from: usize,
    /// The reader, by index in [`Job::instances`].
    pub to: usize,
}

impl Job {
    /// Reads and checks the job file at `path`; diagnostics name the file as given, and
    /// local paths in it are relative to its directory.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Job, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        Ok(Job::from_str(&text, &path.display().to_string())?)
    }

    /// Reads and checks a job's `text`, YAML or ZeroCloud JSON; diagnostics name it
    /// `file_name`, and local paths are relative to `file_name`'s directory.
    pub fn from_str(text: &str, file_name: &str) -> Result<Job, Diagnostics<Problem>> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let format = if zerocloud::is_zerocloud(text) { Format::ZeroCloud } else { Format::Yaml };
        let document = Document::parse(text);
        let mut check = Checker::new(document.map());
        let draft = read::read(text, file_name, &document, &mut check)
            .map_err(|(location, problem)| Diagnostics::one(file_name, location, problem))?;
        let base = Path::new(file_name).parent().unwrap_or(Path::new(""));
        let parts = validate::validate(draft, base, check).map_err(|problems| {
            Diagnostics::new(file_name, problems).expect("validation failed with at least one problem")
        })?;
        Ok(Job {
            name: parts.name,
            file_name: file_name.to_owned(),
            format,
            groups: parts.groups,
            instances: parts.instances,
            edges: parts.edges,
        })
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name it was read as.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The format it was written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Its groups, in file order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|group| group.name == name)
    }

    /// Its instances: by group in file order, then by number.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|instance| instance.name == name)
    }

    /// Its channels: by writer's group in file order, then writer, then `connect`
    /// order, then reader.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// One line: `job wordcount: 2 groups, 4 instances, 3 channels`.
    pub fn summary(&self) -> String {
        let count = |n: usize, what: &str| format!("{n} {what}{}", problem::plural(n as u64));
        format!(
            "job {}: {}, {}, {}",
            self.name,
            count(self.groups.len(), "group"),
            count(self.instances.len(), "instance"),
            count(self.edges.len(), "channel")
        )
    }

    /// Places every instance on `cluster`'s nodes, at most
    /// [`DEFAULT_GUESTS_PER_NODE`] per node; see [`placement`].
    pub fn check_placement(&self, cluster: &Cluster) -> Result<Placement, Diagnostics<Problem>> {
        self.check_placement_with(cluster, DEFAULT_GUESTS_PER_NODE)
    }

    /// Places every instance on `cluster`'s nodes, at most `guests_per_node` per node.
    pub fn check_placement_with(
        &self,
        cluster: &Cluster,
        guests_per_node: usize,
    ) -> Result<Placement, Diagnostics<Problem>> {
        placement::place(self, cluster, guests_per_node)
    }
}

/// Whether `text` is a job rather than a cluster file: a ZeroCloud JSON list, or a
/// document whose `kind` is `Job`.
pub fn is_job(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    zerocloud::is_zerocloud(text) || crate::document::read::kind_of(text).as_deref() == Some(schema::KIND)
}

/// Whether the file at `path` is a job (see [`is_job`]); false when it cannot be read,
/// so that reading it as a cluster file reports why.
pub fn is_job_file(path: impl AsRef<Path>) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| is_job(&text))
}

#[cfg(test)]
mod tests;
