//! Providers for this crate's tests: the real ones live with their lifecycles in the
//! orchestrator. `local` is [`BASE`] with no settings of its own (the default); `remote`
//! reaches machines by address, user and key, with a `port` setting.

use super::provider::{Addressing, ProviderKind, ProviderSettings, Registry, BASE, DEFAULT_SSH_PORT};
use super::schema::NodeField;
use super::{Checker, EntryView, NodeSettings, Problem, ProviderConfig, ProviderSpec};

pub(crate) struct Local;

pub(crate) const LOCAL: ProviderKind = ProviderKind::new(&Local);

#[derive(Debug, PartialEq)]
pub(crate) struct LocalSettings;

impl ProviderSettings for LocalSettings {}

impl ProviderConfig for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &BASE
    }

    fn node_settings(&self, _entry: &EntryView<'_>, _check: &mut Checker<'_>) -> Option<NodeSettings> {
        Some(local_settings())
    }
}

pub(crate) fn local_settings() -> NodeSettings {
    NodeSettings::new(LOCAL, LocalSettings)
}

pub(crate) struct Remote;

#[derive(Debug, PartialEq)]
pub(crate) struct RemoteSettings {
    pub port: u16,
}

impl ProviderSettings for RemoteSettings {
    fn ssh_port(&self) -> u16 {
        self.port
    }
}

const REMOTE_SPEC: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User, NodeField::Key, NodeField::Port],
    required: &[NodeField::Address, NodeField::User, NodeField::Key],
    default_user: None,
    addressing: Addressing::PerNode,
    sections: &[],
};

impl ProviderConfig for Remote {
    fn name(&self) -> &'static str {
        "remote"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &REMOTE_SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        let port = match entry.port() {
            None => DEFAULT_SSH_PORT,
            Some((0, path)) => {
                check.report(&path, Problem::PortZero);
                return None;
            }
            Some((port, _)) => port,
        };
        Some(NodeSettings::new(ProviderKind::new(&Remote), RemoteSettings { port }))
    }
}

/// `local` (the default) and `remote`.
pub(crate) static REGISTRY: Registry = Registry::new(&[LOCAL, ProviderKind::new(&Remote)]);
