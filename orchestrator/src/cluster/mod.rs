//! Cluster files, read with this build's providers: the [`zerolab_config::cluster`]
//! module (schema, checks, expansion, [`ClusterBuilder`]) with the orchestrator's
//! [`REGISTRY`] passed in. [`from_str`] and [`from_path`] are
//! how the commands read a cluster file.
//!
//! ```
//! let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: netn\nnodes: [{name: a}]\n";
//! let err = zerolab::cluster::from_str(text, "demo.yaml").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "demo.yaml:4:11: unknown provider `netn`; expected one of `netns`, `ssh`, `vagrant`, `pxe` (did you mean `netns`?)"
//! );
//! ```

use std::path::Path;

pub use zerolab_config::cluster::*;

use crate::provider::REGISTRY;

/// Reads and checks a cluster file's `text` (see [`Cluster::from_str`]); diagnostics
/// name it `file_name`.
pub fn from_str(text: &str, file_name: &str) -> Result<Cluster, Diagnostics> {
    Cluster::from_str(text, file_name, &REGISTRY)
}

/// Reads and checks the cluster file at `path` (see [`Cluster::from_path`]).
pub fn from_path(path: impl AsRef<Path>) -> Result<Cluster, LoadError> {
    Cluster::from_path(path, &REGISTRY)
}

/// Checks a cluster built in code (see [`ClusterBuilder::build`]).
pub fn build(builder: &ClusterBuilder) -> Result<Cluster, BuildError> {
    builder.build(&REGISTRY)
}

#[cfg(test)]
mod tests;
