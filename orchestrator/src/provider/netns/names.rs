//! Kernel object names for one lab, derived from the lab name, so `ip netns` and
//! `ip link` say which lab each object belongs to.
//!
//! Namespaces have no length limit: node `n1` of lab `demo` is `zl-demo-n1`. Interface
//! names hold at most 15 bytes and lab names up to 32, so links carry as much of the lab
//! name as fits plus a hash that keeps them apart: the bridge is `zl-<lab≤7>-<h4>`
//! (`zl-demo-1a2b`), the host end of a node's veth `zl<lab≤4>-<h8>` with the hash of lab
//! and node (named after the node, not its place in the file, so adding or removing a
//! node never renames another's). Every link also carries the full names as its alias
//! (`ip link show` prints it): `zerolab lab demo`, `zerolab lab demo node n1`.
//!
//! Lab and node names are `[a-z0-9-]`, so `zl-a-b-c` can be lab `a`'s node `b-c` or lab
//! `a-b`'s node `c`: which lab made a name is recorded by its owner record
//! ([`crate::lab::owner`]), and a name owned by another lab is never touched. The names
//! of the previous build (`zl<h6>b`, `zl<h6>n<i>`, `zl<h6>-<node>`) are [`Legacy`]: `down`
//! still finds a lab made by it.

use zerolab_agent_api::Sha256;

/// The longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// Names of one lab's namespaces and links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    lab: String,
}

fn hex(parts: &[&str], digits: usize) -> String {
    let joined = parts.join("\0");
    Sha256::of_bytes(joined.as_bytes()).to_string()[..digits].to_owned()
}

/// The first `max` bytes of `name` (names are ASCII), without a trailing hyphen.
fn head(name: &str, max: usize) -> &str {
    name[..name.len().min(max)].trim_end_matches('-')
}

impl Names {
    /// The names for the lab `lab`.
    pub fn new(lab: &str) -> Names {
        Names { lab: lab.to_owned() }
    }

    /// The lab bridge: `zl-<lab≤7>-<h4>`.
    pub fn bridge(&self) -> String {
        format!("zl-{}-{}", head(&self.lab, 7), hex(&[&self.lab], 4))
    }

    /// The alias set on the bridge.
    pub fn bridge_alias(&self) -> String {
        format!("zerolab lab {}", self.lab)
    }

    /// The host end of node `node`'s veth pair: `zl<lab≤4>-<h8>`.
    pub fn veth(&self, node: &str) -> String {
        format!("zl{}-{}", head(&self.lab, 4), hex(&[&self.lab, node], 8))
    }

    /// The alias set on node `node`'s veth.
    pub fn veth_alias(&self, node: &str) -> String {
        format!("zerolab lab {} node {node}", self.lab)
    }

    /// The network namespace of node `node`: `zl-<lab>-<node>`.
    pub fn namespace(&self, node: &str) -> String {
        format!("zl-{}-{node}", self.lab)
    }

    /// Whether `namespace` has this lab's namespace names' form (by name only: lab
    /// `a-b`'s namespaces have lab `a`'s form too; what a lab removes is what its owner
    /// records say, not this).
    pub fn is_namespace(&self, namespace: &str) -> bool {
        namespace.strip_prefix(&self.namespace("")).is_some_and(|node| !node.is_empty())
    }
}

/// The names the build before lab-named objects gave a lab: `zl<h6>` and a suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Legacy {
    prefix: String,
}

impl Legacy {
    /// The old names of the lab `lab`.
    pub fn new(lab: &str) -> Legacy {
        Legacy { prefix: format!("zl{}", hex(&[lab], 6)) }
    }

    /// Its bridge.
    pub fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }

    /// Whether `link` is one of its veth host ends (`zl<h6>n<i>`).
    pub fn is_veth(&self, link: &str) -> bool {
        link.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('n'))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
    }

    /// Whether `namespace` is one of its namespaces (`zl<h6>-<node>`).
    pub fn is_namespace(&self, namespace: &str) -> bool {
        namespace.strip_prefix(&self.prefix).is_some_and(|rest| rest.starts_with('-'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_fit_ifnamsiz() {
        for lab in ["a", "demo", "li150", &"x".repeat(32), &format!("ab-{}", "c".repeat(29))] {
            let names = Names::new(lab);
            assert!(names.bridge().len() <= MAX_IFNAME, "{}", names.bridge());
            assert!(names.veth(&"n".repeat(63)).len() <= MAX_IFNAME, "{}", names.veth("n"));
            assert!(!names.bridge().contains("--"), "{}", names.bridge());
        }
    }

    #[test]
    fn names_say_which_lab() {
        let names = Names::new("demo");
        assert_eq!(names.namespace("node-1"), "zl-demo-node-1");
        assert!(names.bridge().starts_with("zl-demo-"), "{}", names.bridge());
        assert!(names.veth("node-1").starts_with("zldemo-"), "{}", names.veth("node-1"));
        assert_eq!(names.veth_alias("node-1"), "zerolab lab demo node node-1");
        assert!(Names::new("netns-3").bridge().starts_with("zl-netns-3-"));
    }

    #[test]
    fn names_are_stable_and_differ_between_labs_and_nodes() {
        assert_eq!(Names::new("netns-3"), Names::new("netns-3"));
        assert_ne!(Names::new("netns-3").bridge(), Names::new("netns-4").bridge());
        assert_ne!(Names::new("labname-1").bridge(), Names::new("labname-2").bridge());
        assert_ne!(Names::new("demo").veth("n1"), Names::new("demo").veth("n2"));
        assert_ne!(Names::new("demo").veth("n1"), Names::new("demo2").veth("n1"));
    }

    #[test]
    fn legacy_names_are_the_old_builds() {
        let old = Legacy::new("demo");
        let hex = &Sha256::of_bytes(b"demo").to_string()[..6];
        assert_eq!(old.bridge(), format!("zl{hex}b"));
        assert!(old.is_veth(&format!("zl{hex}n0")) && old.is_veth(&format!("zl{hex}n12")));
        assert!(!old.is_veth(&old.bridge()) && !old.is_veth(&format!("zl{hex}n1x")));
        assert!(old.is_namespace(&format!("zl{hex}-node-1")));
        assert!(!Legacy::new("other").is_namespace(&format!("zl{hex}-node-1")));
    }
}
