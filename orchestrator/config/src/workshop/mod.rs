//! Workshop files (`kind: Workshop`): a lab template (a cluster file, or its fields
//! inline), how many labs at most and how many made ahead, the access code, the labs'
//! timers and the steps attendees follow; read, checked and located into a [`Workshop`],
//! or into diagnostics that say where and what is wrong.
//!
//! ```yaml
//! apiVersion: zerolab/v1
//! kind: Workshop
//! name: zerovm-101
//! lab: lab.yaml              # or inline: {provider: netns, nodes: [{name: node, count: 2}]}
//! access_code: sesame
//! duration: 1h30m
//! steps:
//!   - {title: Hello, text: Run `zvsh`, check: test -f /root/done}
//! ```
//!
//! The pipeline is the cluster file's: `schema` (read, stopping at the first error),
//! then every semantic check reported together. A template in its own file is checked as
//! the cluster file it is, its problems placed in that file ([`LoadError::Template`]);
//! an inline one is checked the same way, its problems placed under `lab:` in the
//! workshop file. Lab `N` is the template named `<workshop>-NNN` with the `N`th /24 of
//! `network` as its subnet ([`Workshop::lab`]).

pub mod duration;
mod problem;
pub mod schema;

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::duration::{format_duration, parse_duration};
pub use self::problem::Problem;
use self::schema::{LabSpec, WorkshopFile};
use crate::cluster::names::{check_lab_name, MAX_LAB_NAME};
use crate::cluster::schema::ClusterFile;
use crate::cluster::{BuildError, Cluster, ClusterBuilder, Registry, Subnet};
use crate::document::{read, Checker, Diagnostics, Document, DocumentKind, Segment, YamlPath};

/// The network labs' subnets come from when the file names none.
pub const DEFAULT_NETWORK: &str = "10.200.0.0/16";
/// Where the portal listens when the file does not say.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// The attendees' SSH ports when the file does not say.
pub const DEFAULT_SSH_PORTS: RangeInclusive<u16> = 22000..=22999;

/// A valid workshop file.
#[derive(Clone, Debug)]
pub struct Workshop {
    /// The workshop's name.
    pub name: String,
    template: ClusterBuilder,
    /// The block the labs' /24s come from.
    pub network: Subnet,
    /// Labs at most.
    pub capacity: u32,
    /// Labs made before anyone arrives.
    pub warm: u32,
    /// Free labs kept while attendees claim.
    pub reserve: u32,
    /// The access code attendees type.
    pub access_code: String,
    /// A lab's time from its claim.
    pub duration: Duration,
    /// What the instructor's extend adds.
    pub extend: Duration,
    /// A lab idle this long is shelved (`None`: never).
    pub idle: Option<Duration>,
    /// Where the portal listens.
    pub listen: SocketAddr,
    /// This machine's ports forwarded to attendees' nodes.
    pub ssh_ports: RangeInclusive<u16>,
    /// The host attendees reach this machine at (`None`: the address they used).
    pub public_host: Option<String>,
    /// The instructor's password file, absolute (`None`: generated in the workshop directory).
    pub password_file: Option<PathBuf>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step attendees follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its title.
    pub title: String,
    /// Its instructions, Markdown.
    pub text: String,
    /// The shell command that says it is done (exit 0), if any.
    pub check: Option<String>,
    /// The node the check runs on.
    pub node: String,
}

/// Why a workshop file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The workshop file is not valid.
    #[error(transparent)]
    Invalid(#[from] Diagnostics<Problem>),
    /// The lab template's own file is not a valid cluster file.
    #[error(transparent)]
    Template(#[from] Diagnostics<crate::cluster::Problem>),
}

impl Workshop {
    /// Reads and checks the workshop file at `path`; files it names are relative to it.
    pub fn from_path(path: impl AsRef<Path>, registry: &Registry) -> Result<Workshop, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_owned(), source })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Workshop::from_str(&text, &path.display().to_string(), base, registry)
    }

    /// Reads and checks a workshop file's `text` (named `file_name` in diagnostics);
    /// the files it names are relative to `base`.
    pub fn from_str(text: &str, file_name: &str, base: &Path, registry: &Registry) -> Result<Workshop, LoadError> {
        let document = Document::parse(text);
        let file: WorkshopFile = read::read_document(&document, DocumentKind::Workshop)
            .map_err(|(location, problem)| Diagnostics::one(file_name, location, Problem::Read(problem)))?;
        let mut check = Checker::new(document.map());
        let workshop = validate(file, base, registry, &mut check)?;
        match workshop {
            Some(workshop) if check.is_clean() => Ok(workshop),
            _ => Err(LoadError::Invalid(
                Diagnostics::new(file_name, check.into_problems()).expect("validation failed with a problem"),
            )),
        }
    }

    /// Lab `index`'s name: `<workshop>-NNN`.
    pub fn lab_name(&self, index: u32) -> String {
        format!("{}-{index:03}", self.name)
    }

    /// Lab `index`'s subnet: the `index`th /24 of `network`.
    pub fn lab_subnet(&self, index: u32) -> Subnet {
        lab_subnet(self.network, index)
    }

    /// The highest lab index `network` has a /24 for (index 0 is never used).
    pub fn max_index(&self) -> u32 {
        slots(self.network) - 1
    }

    /// Lab `index`: the template with its name and subnet, checked as a cluster file.
    pub fn lab(&self, index: u32, registry: &Registry) -> Result<Cluster, BuildError> {
        self.template.clone().name(&self.lab_name(index)).subnet(&self.lab_subnet(index).to_string()).build(registry)
    }
}

/// How many /24s `network` holds.
fn slots(network: Subnet) -> u32 {
    1u32 << (24u8.saturating_sub(network.prefix()))
}

fn lab_subnet(network: Subnet, index: u32) -> Subnet {
    let address = Ipv4Addr::from(u32::from(network.network()) + (index << 8));
    Subnet::new(address, 24)
}

/// Every semantic check, reported to `check`; `None` when the template could not be
/// read at all. A problem of the template's own file ends it (`Err`): those are
/// located there. The result is valid only when `check` is clean.
fn validate(
    file: WorkshopFile,
    base: &Path,
    registry: &Registry,
    check: &mut Checker<'_, Problem>,
) -> Result<Option<Workshop>, LoadError> {
    let root = YamlPath::root();
    // The labs' names are `<name>-NNN`: the name has room for four characters less.
    let name_checked = check_lab_name(&format!("{}-000", file.name));
    if let Err(reason) = name_checked.clone() {
        let reason = match reason {
            crate::cluster::names::NameError::TooLong { len, .. } => {
                crate::cluster::names::NameError::TooLong { len: len - 4, max: MAX_LAB_NAME - 4 }
            }
            other => other,
        };
        check.report(&root.key("name"), Problem::Name { name: file.name.clone(), reason });
    }
    let network_text = file.network.clone().unwrap_or_else(|| DEFAULT_NETWORK.to_owned());
    let network = match network_text.parse::<Subnet>() {
        Ok(subnet) if subnet.prefix() > 23 => {
            let reason = "it holds a single /24; expected /23 or larger".to_owned();
            check.report(&root.key("network"), Problem::Network { value: network_text, reason });
            None
        }
        Ok(subnet) if !subnet.is_private() => {
            let reason = "it is not inside 10/8, 172.16/12 or 192.168/16".to_owned();
            check.report(&root.key("network"), Problem::Network { value: network_text, reason });
            None
        }
        Ok(subnet) => Some(subnet),
        Err(_) => {
            let reason = "not an IPv4 block A.B.C.D/N".to_owned();
            check.report(&root.key("network"), Problem::Network { value: network_text, reason });
            None
        }
    };
    let capacity = file.capacity.unwrap_or(20);
    if capacity == 0 {
        check.report(&root.key("capacity"), Problem::ZeroCapacity);
    }
    if let Some(network) = network {
        if capacity >= slots(network) {
            let labs = slots(network) - 1;
            check.report(&root.key("capacity"), Problem::NetworkTooSmall { network, labs, capacity });
        }
    }
    let pool = file.pool.clone().unwrap_or_default();
    let warm = pool.warm.unwrap_or(capacity.min(5));
    let reserve = pool.reserve.unwrap_or(warm.min(2));
    for (field, value) in [("warm", warm), ("reserve", reserve)] {
        if value > capacity {
            check.report(&root.key("pool").key(field), Problem::PoolOverCapacity { field, value, capacity });
        }
    }
    let access_code = access_code(&file, base, check);
    let duration = duration_field(file.duration.as_deref(), "duration", 90 * 60, check);
    let extend = duration_field(file.extend.as_deref(), "extend", 30 * 60, check);
    let idle = file.idle.as_deref().and_then(|text| parse_field(text, &root.key("idle"), check));
    let portal = file.portal.clone().unwrap_or_default();
    let listen_text = portal.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.parse::<SocketAddr>().ok();
    if listen.is_none() {
        check.report(&root.key("portal").key("listen"), Problem::Listen { value: listen_text });
    }
    let ssh_ports = match &portal.ssh_ports {
        None => Some(DEFAULT_SSH_PORTS),
        Some(text) => {
            let range = port_range(text);
            if range.is_none() {
                check.report(&root.key("portal").key("ssh_ports"), Problem::Ports { value: text.clone() });
            }
            range
        }
    };
    if let Some(range) = &ssh_ports {
        let ports = u32::from(*range.end()) - u32::from(*range.start()) + 1;
        if ports < capacity {
            check.report(&root.key("portal").key("ssh_ports"), Problem::TooFewPorts { ports, capacity });
        }
    }
    let password_file =
        file.instructor.as_ref().and_then(|i| i.password_file.as_ref()).map(|p| absolute(&base.join(p)));

    let Some(template) = template(&file, base, registry, check)? else { return Ok(None) };
    // A field refused above is reported; its default stands in so the rest is checked.
    let network = network.unwrap_or(Subnet::new(Ipv4Addr::new(10, 200, 0, 0), 16));
    let listen = listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8080)));
    let ssh_ports = ssh_ports.unwrap_or(DEFAULT_SSH_PORTS);
    let mut workshop = Workshop {
        name: file.name.clone(),
        template,
        network,
        capacity,
        warm,
        reserve,
        access_code: access_code.unwrap_or_default(),
        duration,
        extend,
        idle,
        listen,
        ssh_ports,
        public_host: portal.public_host.clone(),
        password_file,
        steps: Vec::new(),
    };
    // Lab 1 as every lab will be: the template with a lab's name and subnet.
    let first = match workshop.lab(1, registry) {
        Ok(lab) => lab,
        Err(BuildError(problems)) => {
            for invalid in problems {
                let path = match invalid.path.to_string().as_str() {
                    // Said once, as the workshop's name.
                    "name" if name_checked.is_err() => continue,
                    "name" => root.key("name"),
                    "network.subnet" => root.key("network"),
                    _ if matches!(file.lab, LabSpec::Inline(_)) => under(&root.key("lab"), &invalid.path),
                    _ => root.key("lab"),
                };
                check.report(&path, Problem::Lab(invalid.problem));
            }
            return Ok(None);
        }
    };
    let nodes: Vec<String> = first.nodes().iter().map(|n| n.name.clone()).collect();
    if file.steps.is_empty() {
        check.report(&root.key("steps"), Problem::NoSteps);
    }
    for (i, step) in file.steps.iter().enumerate() {
        let path = root.key("steps").index(i);
        if step.title.trim().is_empty() {
            check.report(&path.key("title"), Problem::EmptyTitle);
        }
        if step.check.as_deref().is_some_and(|c| c.trim().is_empty()) {
            check.report(&path.key("check"), Problem::EmptyCheck);
        }
        let node = match &step.node {
            Some(node) if !nodes.contains(node) => {
                check.report(&path.key("node"), Problem::UnknownNode { node: node.clone(), known: nodes.clone() });
                continue;
            }
            Some(node) => node.clone(),
            None => nodes[0].clone(),
        };
        workshop.steps.push(Step {
            title: step.title.clone(),
            text: step.text.clone(),
            check: step.check.clone(),
            node,
        });
    }
    Ok(Some(workshop))
}

/// The lab template: the named cluster file checked as one (its problems are in that
/// file), or the inline fields read into one.
fn template(
    file: &WorkshopFile,
    base: &Path,
    registry: &Registry,
    check: &mut Checker<'_, Problem>,
) -> Result<Option<ClusterBuilder>, LoadError> {
    let path = YamlPath::root().key("lab");
    match &file.lab {
        LabSpec::File(name) => {
            let full = base.join(name);
            let text = match std::fs::read_to_string(&full) {
                Ok(text) => text,
                Err(e) => {
                    check.report(&path, Problem::File { path: name.clone(), reason: e.to_string() });
                    return Ok(None);
                }
            };
            let shown = full.display().to_string();
            Cluster::from_str(&text, &shown, registry)?;
            Ok(Some(ClusterBuilder::from_template(&text, &shown)?))
        }
        LabSpec::Inline(lab) => {
            let lab = (**lab).clone();
            Ok(Some(
                ClusterBuilder::from_file(ClusterFile {
                    api_version: crate::document::API_VERSION.to_owned(),
                    kind: crate::cluster::schema::KIND.to_owned(),
                    name: format!("{}-001", file.name),
                    provider: lab.provider,
                    network: lab.network,
                    defaults: lab.defaults,
                    nodes: lab.nodes,
                    provision: lab.provision,
                    ..ClusterFile::default()
                })
                .base(base),
            ))
        }
    }
}

/// `path` of an inline template, as a path of the workshop file under `lab`.
fn under(lab: &YamlPath, path: &YamlPath) -> YamlPath {
    path.segments().iter().fold(lab.clone(), |at, segment| match segment {
        Segment::Key(key) => at.key(key),
        Segment::Index(index) => at.index(*index),
    })
}

fn access_code(file: &WorkshopFile, base: &Path, check: &mut Checker<'_, Problem>) -> Option<String> {
    let root = YamlPath::root();
    let code = match (&file.access_code, &file.access_code_file) {
        (Some(_), Some(_)) => {
            check.report(&root.key("access_code_file"), Problem::AccessCode { both: true });
            return None;
        }
        (None, None) => {
            check.report(&root, Problem::AccessCode { both: false });
            return None;
        }
        (Some(code), None) => (code.clone(), root.key("access_code")),
        (None, Some(name)) => match std::fs::read_to_string(base.join(name)) {
            Ok(text) => (text.trim().to_owned(), root.key("access_code_file")),
            Err(e) => {
                let problem = Problem::File { path: name.clone(), reason: e.to_string() };
                check.report(&root.key("access_code_file"), problem);
                return None;
            }
        },
    };
    if code.0.is_empty() || code.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
        check.report(&code.1, Problem::AccessCodeText);
        return None;
    }
    Some(code.0)
}

fn duration_field(text: Option<&str>, field: &str, default: u64, check: &mut Checker<'_, Problem>) -> Duration {
    match text {
        None => Duration::from_secs(default),
        Some(text) => parse_field(text, &YamlPath::root().key(field), check).unwrap_or(Duration::from_secs(default)),
    }
}

fn parse_field(text: &str, path: &YamlPath, check: &mut Checker<'_, Problem>) -> Option<Duration> {
    match parse_duration(text) {
        Ok(duration) => Some(duration),
        Err(reason) => {
            check.report(path, Problem::Duration { value: text.to_owned(), reason });
            None
        }
    }
}

/// `FIRST-LAST`, both 1024 or above, FIRST ≤ LAST.
fn port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (first, last) = text.trim().split_once('-')?;
    let (first, last): (u16, u16) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first >= 1024 && first <= last).then_some(first..=last)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests;
