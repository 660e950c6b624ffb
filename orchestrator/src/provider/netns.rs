//! `netns`: each node is a network namespace on this machine, joined to a lab bridge on
//! the lab subnet, with its own sshd. The default provider.
//!
//! Cluster file: everything from [`BASE`]: nodes get addresses from the lab subnet
//! (default [`DEFAULT_SUBNET`]), log in as `root` with the key pair the lab generates
//! (so `key` does not apply). Its own node fields ([`settings`]): `rootfs: debian` gives
//! a node a root file system of its own with user, pid, IPC and cgroup isolation
//! (`isolated.rs`) and puts its lab behind a firewall (`firewall.rs`); `limits:` its
//! memory, pids and CPU limits.
//!
//! Acting on the machine (root only): [`create`] makes each node a network namespace on
//! a lab bridge with its own mount and UTS namespace, private directories and OpenSSH
//! sshd; [`destroy`] removes all of it (`teardown.rs`), and no more: every object is
//! recorded as its lab directory's ([`crate::lab::owner`]), and one another lab made is
//! never touched. The details and the order are in `host.rs`; kernel object names
//! (they carry the lab's name) in [`names`]. [`Netns`] is the lifecycle on top: a lab is
//! up while its bridge exists, and creating it again when it is up [`reconcile`]s it with
//! its cluster file (nodes added are made, nodes removed go).

mod firewall;
mod host;
mod isolated;
pub mod names;
mod reconcile;
pub mod settings;
mod shelve;
mod spawn;
mod teardown;

use std::path::Path;

pub use self::host::{check_subnet_free, create, sshd_config, NetnsError, Sshd, SSHD};
pub use self::isolated::{record_agent, ID_BASE, ID_COUNT};
pub use self::names::{Legacy, Names};
pub use self::reconcile::{reconcile, Changes};
pub use self::settings::{Limits, Rootfs, Settings};
pub use self::teardown::destroy;

use zerolab_config::cluster::net::Subnet;
use zerolab_config::cluster::schema::NodeField;
use zerolab_config::cluster::{Checker, EntryView};

use super::{
    BoxFuture, CreateProgress, Created, Definition, NodeSettings, Provider, ProviderConfig, ProviderError,
    ProviderKind, ProviderSpec, ShelveMode, Teardown, BASE,
};
use crate::lab::{io_error, Lab, Owners};
use zerolab_config::cluster::{Cluster, Node};

/// The lab subnet when `network.subnet` is not given: the base's.
pub const DEFAULT_SUBNET: Subnet = zerolab_config::cluster::provider::BASE_SUBNET;

/// The `netns` provider, for the registry.
pub const DEFINITION: Definition = Definition { kind: KIND, lifecycle: &Netns };

/// Its handle.
pub const KIND: ProviderKind = ProviderKind::new(&Netns);

/// What `netns` reads from the cluster file: the base and its own `rootfs`, `limits`.
pub const SPEC: ProviderSpec =
    ProviderSpec { fields: &[NodeField::Address, NodeField::User, NodeField::Rootfs, NodeField::Limits], ..BASE };

/// The `netns` provider: namespace hosts on this machine, reached with the lab's key.
pub struct Netns;

impl ProviderConfig for Netns {
    fn name(&self) -> &'static str {
        "netns"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        settings::node_settings(entry, check)
    }
}

impl Provider for Netns {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn removes_nodes(&self) -> bool {
        true
    }

    /// Up while the lab's bridge exists (it is the first thing made, the last removed);
    /// a bridge another lab directory made is refused, naming that lab.
    /// A lab the previous build made (its bridge has the old name) is refused, saying
    /// how to take it down.
    fn is_up(&self, lab: &Lab) -> Result<bool, ProviderError> {
        let bridge = Names::new(lab.name()).bridge();
        Owners::machine().check("link", &bridge, lab.dir())?;
        if Path::new("/sys/class/net").join(&bridge).exists() {
            return Ok(true);
        }
        let old = Legacy::new(lab.name()).bridge();
        if Path::new("/sys/class/net").join(&old).exists() {
            return Err(NetnsError::OldBuild { lab: lab.name().to_owned(), bridge: old }.into());
        }
        Ok(false)
    }

    fn create<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        progress: CreateProgress,
    ) -> BoxFuture<'a, Result<Created, ProviderError>> {
        Box::pin(async move {
            // A lab that is up follows its cluster file (nodes added or removed); the
            // rest is verified by provisioning, not rebuilt.
            if self.is_up(lab)? {
                let (lab, cluster) = (lab.clone(), cluster.clone());
                blocking(move || reconcile::reconcile(&lab, &cluster, &*progress)).await?;
                return Ok(Created::Existing);
            }
            // New hosts get new host keys (say the machine rebooted): the pins of the
            // hosts this lab made before are void, and these are made here, by us.
            let known_hosts = lab.known_hosts();
            std::fs::write(&known_hosts, "").map_err(io_error(&known_hosts))?;
            // Making hosts runs `ip`, `ssh-keygen` and waits for sshd: blocking work,
            // on a thread of its own.
            let (lab, cluster) = (lab.clone(), cluster.clone());
            blocking(move || host::create(&lab, &cluster, &*progress)).await?;
            Ok(Created::Made)
        })
    }

    fn destroy<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Result<Teardown, ProviderError>> {
        let (lab, cluster) = (lab.clone(), cluster.clone());
        Box::pin(async move {
            blocking(move || teardown::destroy(&lab, Some(&cluster))).await?;
            Ok(Teardown::default())
        })
    }

    /// Frozen: the node's processes frozen in its freezer cgroup; offloaded: killed,
    /// its namespace, address, files and host key kept (`shelve.rs`).
    fn shelve<'a>(
        &'a self,
        lab: &'a Lab,
        _cluster: &'a Cluster,
        node: &'a Node,
        mode: ShelveMode,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let (lab, node) = (lab.clone(), node.clone());
        Box::pin(async move { Ok(blocking(move || shelve::shelve(&lab, &node, mode)).await?) })
    }

    /// Thawed, or started again as `up` starts it and listening.
    fn unshelve<'a>(
        &'a self,
        lab: &'a Lab,
        _cluster: &'a Cluster,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        let (lab, node) = (lab.clone(), node.clone());
        Box::pin(async move { Ok(blocking(move || shelve::unshelve(&lab, &node)).await?) })
    }
}

/// Runs blocking host work on tokio's blocking pool (a panic there is re-raised here).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
