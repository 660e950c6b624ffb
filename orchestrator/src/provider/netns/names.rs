//! Kernel object names for one lab, derived from the lab name.
//!
//! Interface names hold at most 15 characters, lab names up to 32, so links are named
//! after a hash of the lab name: `zl<h6>b` for the bridge, `zl<h6>n<i>` for the host end
//! of node `i`'s veth (6 hex digits keep collisions between labs on one machine
//! unlikely; `i` up to 9999 still fits). Namespaces have no such limit but share the
//! prefix (`zl<h6>-<node>`), so destroy finds everything of a lab by prefix alone, even
//! with no state file.

use zerolab_agent_api::Sha256;

/// The longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// Names of one lab's namespaces and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// The names for the lab `lab`.
    pub fn new(lab: &str) -> Names {
        // The first 3 bytes of the hash, as 6 hex digits.
        let hex = &Sha256::of_bytes(lab.as_bytes()).to_string()[..6];
        Names { prefix: format!("zl{hex}") }
    }

    /// The lab bridge.
    pub fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }

    /// The host end of node `index`'s veth pair (index from 0).
    pub fn veth(&self, index: usize) -> String {
        format!("{}n{index}", self.prefix)
    }

    /// Whether `link` is one of this lab's veth host ends.
    pub fn is_veth(&self, link: &str) -> bool {
        link.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('n'))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    }

    /// The network namespace of node `node`.
    pub fn namespace(&self, node: &str) -> String {
        format!("{}-{node}", self.prefix)
    }

    /// Whether `namespace` is one of this lab's.
    pub fn is_namespace(&self, namespace: &str) -> bool {
        namespace.strip_prefix(&self.prefix).is_some_and(|rest| rest.starts_with('-'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_fit_ifnamsiz() {
        let names = Names::new(&"x".repeat(32));
        assert!(names.bridge().len() <= MAX_IFNAME);
        assert!(names.veth(9999).len() <= MAX_IFNAME, "{}", names.veth(9999));
        assert!(names.bridge().starts_with("zl") && names.bridge().ends_with('b'));
    }

    #[test]
    fn names_are_stable_and_differ_between_labs() {
        assert_eq!(Names::new("netns-3"), Names::new("netns-3"));
        assert_ne!(Names::new("netns-3").bridge(), Names::new("netns-4").bridge());
        assert_ne!(Names::new("a").namespace("b-c"), Names::new("a-b").namespace("c"));
    }

    #[test]
    fn recognizes_only_its_own_objects() {
        let names = Names::new("demo");
        let other = Names::new("other");
        assert!(names.is_veth(&names.veth(0)) && names.is_veth(&names.veth(123)));
        assert!(!names.is_veth(&names.bridge()) && !names.is_veth(&other.veth(0)));
        assert!(!names.is_veth(&format!("{}x", names.veth(1))));
        assert!(names.is_namespace(&names.namespace("node-1")));
        assert!(!names.is_namespace(&other.namespace("node-1")));
        assert!(!names.is_namespace(&names.bridge()));
    }
}
