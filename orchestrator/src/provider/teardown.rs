//! What a provider's destroy left on its nodes: [`Teardown`], one [`LeftNode`] for each
//! node it did not clean, and why. `zerolab down` lists them and finishes anyway: a node
//! that cannot be reached must not keep a lab from being taken down, and a node whose
//! agent belongs to another lab must not be touched.

use std::fmt;

use crate::install::Owner;

/// What [`Provider::destroy`](super::Provider::destroy) did not clean (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teardown {
    /// Each node left as it was, in the cluster file's order.
    pub left: Vec<LeftNode>,
}

/// A node [`Teardown`] did not clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftNode {
    /// The node.
    pub node: String,
    /// Why it was left.
    pub why: Left,
}

/// Why a node was not cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// Its agent belongs to another lab: not ours to remove.
    Owned(Owner),
    /// Cleaning it failed (unreachable, key rejected, ...): what is there stays.
    Failed {
        /// The cause, without the node's name.
        cause: String,
        /// What to do by hand instead.
        by_hand: String,
    },
}

impl Left {
    /// Whether it is a failure (a node owned by another lab is left alone on purpose).
    pub fn is_failure(&self) -> bool {
        matches!(self, Left::Failed { .. })
    }
}

/// `left alone: n1, its agent belongs to lab X (DIR on HOST)`, or `not cleaned: n1: CAUSE;
/// to clean it by hand, ...`.
impl fmt::Display for LeftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Left::Owned(owner) => write!(f, "left alone: {}, its agent belongs to {owner}", self.node),
            Left::Failed { cause, by_hand } => {
                write!(f, "not cleaned: {}: {cause}; to clean it by hand, {by_hand}", self.node)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_left_node_is_one_line_naming_it_and_what_to_do() {
        let owner = Owner { lab: "x".into(), dir: "/labs/x".into(), host: "box".into() };
        let owned = LeftNode { node: "n1".into(), why: Left::Owned(owner) };
        assert_eq!(owned.to_string(), "left alone: n1, its agent belongs to lab x (/labs/x on box)");
        assert!(!owned.why.is_failure());
        let why = Left::Failed { cause: "unreachable".into(), by_hand: "as root on the node: `rm -rf /x`".into() };
        let failed = LeftNode { node: "n2".into(), why };
        assert_eq!(
            failed.to_string(),
            "not cleaned: n2: unreachable; to clean it by hand, as root on the node: `rm -rf /x`"
        );
        assert!(failed.why.is_failure());
    }
}
