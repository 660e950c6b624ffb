//! Providers: how a lab's nodes come to exist. One module per kind (`netns`, `ssh`,
//! `vagrant`, `pxe`), each exporting one [`Definition`], listed once in
//! [`registry::PROVIDERS`]; the cluster file's `provider:` is looked up there, so an
//! unknown kind is an error that lists the registered ones.
//!
//! A provider is two things, one unit struct implementing both. What the cluster file
//! needs of it, [`ProviderConfig`] (from `zerolab-config`, which holds no provider):
//! its name, a [`ProviderSpec`] (which node fields it reads, which it requires, its
//! default user, how nodes get addresses; written containerlab-style, [`BASE`] with
//! only what differs overridden) and a reader that checks its own node fields and
//! returns its typed settings, held by each node as [`NodeSettings`] and read back with
//! [`NodeSettings::get`]. And its lifecycle, the [`Provider`] trait (check, create,
//! address of a node, destroy, power off/on; see [`lifecycle`]): `netns` makes
//! namespace hosts, `ssh` reaches machines that exist, `vagrant` and `pxe` are not
//! implemented yet.

pub mod lifecycle;
pub mod netns;
pub mod progress;
pub mod pxe;
pub mod registry;
pub mod ssh;
pub mod teardown;
pub mod vagrant;

pub use self::lifecycle::{of, BoxFuture, Created, Provider, ProviderError, ShelveMode};
pub use self::progress::{no_progress, CreateProgress, CreateStep};
pub use self::registry::{Definition, PROVIDERS, REGISTRY};
pub use self::teardown::{Left, LeftNode, Teardown};
pub use zerolab_config::cluster::provider::{
    Addressing, NodeSettings, ProviderConfig, ProviderKind, ProviderSettings, ProviderSpec, Registry, BASE,
};

#[cfg(test)]
mod tests {
    use super::*;
    use zerolab_config::cluster::net::Subnet;
    use zerolab_config::cluster::schema::NodeField;

    #[test]
    fn every_field_is_read_by_some_provider() {
        for field in NodeField::ALL {
            assert!(!REGISTRY.reading(field).is_empty(), "{field}");
        }
    }

    #[test]
    fn required_fields_are_fields_the_provider_reads() {
        for &kind in REGISTRY.providers() {
            let spec = kind.spec();
            for field in spec.required {
                assert!(spec.fields.contains(field), "{kind}: {field}");
            }
            assert!(spec.default_user.is_some() || spec.required.contains(&NodeField::User), "{kind}");
        }
    }

    #[test]
    fn lab_subnets_differ_between_providers() {
        let subnets: Vec<Subnet> = REGISTRY
            .providers()
            .iter()
            .filter_map(|kind| match kind.spec().addressing {
                Addressing::Subnet { default } => Some(default),
                Addressing::PerNode => None,
            })
            .collect();
        for (i, subnet) in subnets.iter().enumerate() {
            assert!(subnet.is_private(), "{subnet}");
            assert!(!subnets[i + 1..].contains(subnet), "{subnet}");
        }
    }

    #[test]
    fn each_definition_is_one_provider_under_one_name() {
        let names = REGISTRY.names();
        assert_eq!(names, ["netns", "ssh", "vagrant", "pxe"]);
        for definition in PROVIDERS {
            assert_eq!(definition.lifecycle.kind(), definition.kind, "{}", definition.kind);
            assert_eq!(names.iter().filter(|name| *name == definition.kind.name()).count(), 1);
        }
        assert_eq!(REGISTRY.default_provider().name(), "netns");
    }
}
