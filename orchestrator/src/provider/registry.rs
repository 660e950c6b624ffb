//! The one list of providers: each provider module exports one [`Definition`] (its
//! cluster-file half, a [`ProviderConfig`](zerolab_config::cluster::ProviderConfig)
//! behind a [`ProviderKind`], and its lifecycle, a [`Provider`]), and [`PROVIDERS`]
//! lists them once, in the order they are documented, the default first. The
//! [`REGISTRY`] cluster files are read with is made from the same list, so a provider
//! cannot be readable without a lifecycle, or the other way round.
//!
//! Adding a provider: write its module (name, spec, settings type and reader, lifecycle;
//! `ssh.rs` is the smallest complete one) with `pub const DEFINITION`, then add
//! `name::DEFINITION` below.

use zerolab_config::cluster::{ProviderKind, Registry};

use super::{netns, pxe, ssh, vagrant, Provider};

/// One provider: what the cluster file reads of it, and its lifecycle.
#[derive(Clone, Copy)]
pub struct Definition {
    /// Its name, spec and node-settings reader.
    pub kind: ProviderKind,
    /// How its nodes come to exist, are reached and go away.
    pub lifecycle: &'static dyn Provider,
}

/// Every provider, the default (used when a file names none) first.
pub const PROVIDERS: &[Definition] = &[netns::DEFINITION, ssh::DEFINITION, vagrant::DEFINITION, pxe::DEFINITION];

/// The providers as cluster files see them: [`PROVIDERS`]' kinds, in order.
static KINDS: [ProviderKind; PROVIDERS.len()] = kinds(PROVIDERS);

/// The registry cluster files are read with.
pub static REGISTRY: Registry = Registry::new(&KINDS);

const fn kinds<const N: usize>(definitions: &[Definition]) -> [ProviderKind; N] {
    let mut kinds = [definitions[0].kind; N];
    let mut i = 0;
    while i < N {
        kinds[i] = definitions[i].kind;
        i += 1;
    }
    kinds
}

/// The definition of `kind`, a provider of this registry (every cluster's is).
pub fn definition(kind: ProviderKind) -> &'static Definition {
    PROVIDERS
        .iter()
        .find(|definition| definition.kind == kind)
        .unwrap_or_else(|| panic!("provider {kind} is not registered"))
}
