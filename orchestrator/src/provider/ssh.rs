//! `ssh`: machines that already exist, reached by address, user and key.
//!
//! Cluster file: differs from [`BASE`](super::BASE) in everything about reaching a node: each node
//! names its own `address` (IP or host name; there is no lab network, so `count` cannot
//! be used), and `user` and `key` are required (on the node or in `defaults`): zerolab
//! did not make these machines and does not guess how to log in. `port` defaults to 22.
//!
//! Lifecycle ([`Ssh`]): there is nothing to create, and the lab is up while its directory
//! exists. A node is reached at its address and port with its own `key` (`~/` expands to
//! `$HOME`; a relative path is relative to the working directory). Destroying the lab
//! stops and removes what zerolab installed on each node it ever logged into (the nodes
//! with a pinned host key; see [`install::remove`]) and nothing else, all at once and
//! bounded as `up` is (a node that does not answer costs about 4 s). A node that cannot
//! be cleaned, or whose agent belongs to another lab, is listed in the [`Teardown`]:
//! `zerolab down` says what is left there and finishes. Shelving is refused: zerolab
//! does not run these machines.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zerolab_config::cluster::schema::NodeField;
use zerolab_config::cluster::{Checker, EntryView, Problem};

use super::{
    Addressing, BoxFuture, CreateProgress, Created, Definition, Left, LeftNode, NodeSettings, Provider, ProviderConfig,
    ProviderError, ProviderKind, ProviderSettings, ProviderSpec, ShelveMode, Teardown,
};
use crate::install::{self, InstallError, Owner, Paths, Removed};
use crate::lab::Lab;
use crate::ssh::{run_parallel, ConnectOptions, HostKeys, Session, Target};
use zerolab_config::cluster::{Cluster, Node};
use zerolab_sandbox::session::error_chain;

/// The SSH port when `port` is not given.
pub const DEFAULT_PORT: u16 = zerolab_config::cluster::provider::DEFAULT_SSH_PORT;

/// The `ssh` provider, for the registry.
pub const DEFINITION: Definition = Definition { kind: KIND, lifecycle: &Ssh };

/// Its handle.
pub const KIND: ProviderKind = ProviderKind::new(&Ssh);

/// What `ssh` reads from the cluster file.
pub const SPEC: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User, NodeField::Key, NodeField::Port],
    required: &[NodeField::Address, NodeField::User, NodeField::Key],
    default_user: None,
    addressing: Addressing::PerNode,
    sections: &[],
};

/// An `ssh` node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The port its sshd listens on.
    pub port: u16,
}

impl ProviderSettings for Settings {
    fn ssh_port(&self) -> u16 {
        self.port
    }
}

/// The `ssh` provider: machines that exist; zerolab only adds itself to them, and
/// removes itself again.
pub struct Ssh;

impl ProviderConfig for Ssh {
    fn name(&self) -> &'static str {
        "ssh"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        let port = match entry.port() {
            None => DEFAULT_PORT,
            Some((0, path)) => {
                check.report(&path, Problem::PortZero);
                return None;
            }
            Some((port, _)) => port,
        };
        Some(NodeSettings::new(KIND, Settings { port }))
    }
}

impl Provider for Ssh {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    /// Up while the lab's key pair exists: `up` makes it, `down` removes it (a lab
    /// directory that holds only the collected results of its runs is down).
    fn is_up(&self, lab: &Lab) -> Result<bool, ProviderError> {
        Ok(lab.private_key().exists())
    }

    fn create<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _progress: CreateProgress,
    ) -> BoxFuture<'a, Result<Created, ProviderError>> {
        Box::pin(async { Ok(Created::Existing) })
    }

    fn address(&self, _lab: &Lab, node: &Node) -> Result<Target, ProviderError> {
        let key = node.key.as_deref().ok_or_else(|| ProviderError::Key {
            node: node.name.clone(),
            key: String::new(),
            reason: "missing; give the node (or `defaults`) a `key: PATH`".into(),
        })?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let key = expand_home(&key.to_string_lossy(), home.as_deref()).map_err(|reason| ProviderError::Key {
            node: node.name.clone(),
            key: key.display().to_string(),
            reason,
        })?;
        Ok(Target {
            node: node.name.clone(),
            address: node.address.to_string(),
            port: node.ssh_port(),
            user: node.user.clone(),
            key,
        })
    }

    fn destroy<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Result<Teardown, ProviderError>> {
        Box::pin(remove_agents(lab, cluster.nodes().iter().collect(), move |node| self.address(lab, node)))
    }

    fn shelve<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
        mode: ShelveMode,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { Err(not_owned(mode.command())) })
    }

    fn unshelve<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async { Err(not_owned("unshelve")) })
    }
}

/// Why an ssh node cannot be shelved: zerolab logs into it, it does not run it.
fn not_owned(operation: &'static str) -> ProviderError {
    ProviderError::NotSupported {
        provider: KIND,
        operation,
        reason: "it does not own its machines (they run outside zerolab); stop them where they run",
    }
}

/// Removes what zerolab installed from each of `nodes` it logged into (a pinned host
/// key), reached at `address`, all at once; what it could not clean, or left alone
/// (another lab's agent), is in the [`Teardown`]. Used by every provider whose machines
/// outlive the lab (ssh; pxe machines that boot from their disks).
pub(crate) async fn remove_agents(
    lab: &Lab,
    nodes: Vec<&Node>,
    address: impl Fn(&Node) -> Result<Target, ProviderError>,
) -> Result<Teardown, ProviderError> {
    let failed = |node: &str, cause: &str| LeftNode {
        node: node.to_owned(),
        why: Left::Failed { cause: without_node(node, cause).to_owned(), by_hand: install::by_hand(&Paths::NODE) },
    };
    let host_keys = match HostKeys::open(lab.known_hosts()) {
        Ok(keys) => keys,
        // Which nodes zerolab logged into is not known: any of them may hold it.
        Err(e) => {
            let cause = error_chain(&e);
            return Ok(Teardown { left: nodes.iter().map(|n| failed(&n.name, &cause)).collect() });
        }
    };
    // Only a node zerolab logged into can hold anything it installed; one never
    // reached (no pinned host key) is left alone, and need not even exist.
    let mut left = Vec::new();
    let mut targets = Vec::new();
    for node in nodes.iter().filter(|node| host_keys.pinned(&node.name).is_some()) {
        match address(node) {
            Ok(target) => targets.push(target),
            Err(e) => left.push(failed(&node.name, &error_chain(&e))),
        }
    }
    // The nodes answered before: one that does not answer at once is reported,
    // as `up` reports it, and the others are cleaned all the same.
    let owner = Arc::new(Owner::of(lab.name(), lab.dir()));
    let results = run_parallel(&targets, crate::ssh::PARALLEL, move |target| {
        let (host_keys, owner) = (host_keys.clone(), owner.clone());
        async move {
            let work = async {
                let session = Session::connect(&target, &host_keys, &ConnectOptions::known_up()).await?;
                let removed = install::remove(&session, &owner).await;
                let _ = session.close().await;
                Ok(removed)
            };
            let late = || Ok(Err(InstallError::Remove(format!("no answer within {REMOVE_WAIT:?}"))));
            tokio::time::timeout(REMOVE_WAIT, work).await.unwrap_or_else(|_| late())
        }
    })
    .await;
    for (node, result) in results {
        match result {
            Ok(Ok(Removed::Removed)) => {}
            Ok(Ok(Removed::LeftAlone(owner))) => left.push(LeftNode { node, why: Left::Owned(owner) }),
            Ok(Err(e)) => left.push(failed(&node, &error_chain(&e))),
            Err(e) => left.push(failed(&node, &error_chain(&e))),
        }
    }
    let order = |name: &str| nodes.iter().position(|n| n.name == name);
    left.sort_by_key(|l| order(&l.node));
    Ok(Teardown { left })
}

/// How long `down` gives one node to be cleaned (connect, remove, close): a node that
/// answers takes well under a second; one that does not is reported, not waited for.
const REMOVE_WAIT: Duration = Duration::from_secs(20);

/// `cause` without a leading `node NODE: ` (the line names the node already).
fn without_node<'a>(node: &str, cause: &'a str) -> &'a str {
    cause.strip_prefix("node ").and_then(|c| c.strip_prefix(node)).and_then(|c| c.strip_prefix(": ")).unwrap_or(cause)
}

/// `key` with a leading `~` or `~/` replaced by `home`; other paths as they are.
fn expand_home(key: &str, home: Option<&std::path::Path>) -> Result<PathBuf, String> {
    let rest = match key.strip_prefix('~') {
        None => return Ok(PathBuf::from(key)),
        Some("") => "",
        Some(rest) => match rest.strip_prefix('/') {
            Some(rest) => rest,
            None => return Err("only `~` and `~/` are expanded, not `~user`; write the path in full".into()),
        },
    };
    match home {
        Some(home) => Ok(home.join(rest)),
        None => Err("HOME is not set, so `~` cannot be expanded; write the path in full".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn expands_only_the_home_tilde() {
        let home = Some(Path::new("/home/ops"));
        assert_eq!(expand_home("~/.ssh/id_ed25519", home).unwrap(), Path::new("/home/ops/.ssh/id_ed25519"));
        assert_eq!(expand_home("~", home).unwrap(), Path::new("/home/ops"));
        assert_eq!(expand_home("/keys/~x", home).unwrap(), Path::new("/keys/~x"));
        assert_eq!(expand_home("keys/id", None).unwrap(), Path::new("keys/id"));
        assert!(expand_home("~ops/.ssh/id", home).unwrap_err().contains("not `~user`"));
        assert!(expand_home("~/id", None).unwrap_err().starts_with("HOME is not set"));
    }

    #[test]
    fn nodes_are_reached_with_their_own_key_and_port() {
        let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: office\nprovider: ssh\n\
                    nodes:\n  - {name: a, address: 192.0.2.1, port: 2222, user: ops, key: /keys/a}\n";
        let cluster = crate::cluster::from_str(text, "office.yaml").unwrap();
        let lab = Lab::at("/labs", "office").unwrap();
        let target = Ssh.address(&lab, &cluster.nodes()[0]).unwrap();
        let expected = Target {
            node: "a".into(),
            address: "192.0.2.1".into(),
            port: 2222,
            user: "ops".into(),
            key: "/keys/a".into(),
        };
        assert_eq!(target, expected);
    }
}
