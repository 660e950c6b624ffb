//! libvirt object names for one `vagrant` lab, derived from the lab name, so `virsh`
//! says which lab each object belongs to.
//!
//! Every name starts with the lab's prefix `zl-<lab>_`: domains `zl-<lab>_<node>` (Vagrant's
//! `default_prefix` plus the machine's name), their volumes `zl-<lab>_<node>.img`, the
//! network `zl-<lab>_net`. Lab names are `[a-z0-9-]`, so the `_` ends the lab name: lab
//! `a`'s prefix `zl-a_` is never the start of lab `a-b`'s names (`zl-a-b_`), and `down` can
//! remove everything with its prefix without touching another lab's. The bridge holds at
//! most 15 bytes: `zv-<lab≤7>-<h4>`, with a hash of the lab name that keeps them apart.
//! A machine's MAC is fixed by lab and node (`52:54:00` and three bytes of their hash),
//! so its DHCP reservation, and so its address, is known before it boots.

use zerolab_agent_api::Sha256;

/// Names of one lab's libvirt objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    lab: String,
}

fn hex(parts: &[&str], digits: usize) -> String {
    Sha256::of_bytes(parts.join("\0").as_bytes()).to_string()[..digits].to_owned()
}

impl Names {
    /// The names for the lab `lab`.
    pub fn new(lab: &str) -> Names {
        Names { lab: lab.to_owned() }
    }

    /// What every name of the lab starts with: `zl-<lab>_`.
    pub fn prefix(&self) -> String {
        format!("zl-{}_", self.lab)
    }

    /// Whether `name` (a domain, network or volume) is this lab's.
    pub fn is_ours(&self, name: &str) -> bool {
        name.starts_with(&self.prefix())
    }

    /// Node `node`'s domain: `zl-<lab>_<node>`.
    pub fn domain(&self, node: &str) -> String {
        format!("{}{node}", self.prefix())
    }

    /// Node `node`'s root volume, as the libvirt provider names it.
    pub fn volume(&self, node: &str) -> String {
        format!("{}.img", self.domain(node))
    }

    /// The lab's network: `zl-<lab>_net`.
    pub fn network(&self) -> String {
        format!("{}net", self.prefix())
    }

    /// The lab network's bridge: `zv-<lab≤7>-<h4>`.
    pub fn bridge(&self) -> String {
        let head = self.lab[..self.lab.len().min(7)].trim_end_matches('-');
        format!("zv-{head}-{}", hex(&[&self.lab], 4))
    }

    /// Node `node`'s MAC address: locally administered QEMU range, hashed from lab and node.
    pub fn mac(&self, node: &str) -> String {
        let h = hex(&[&self.lab, node], 6);
        format!("52:54:00:{}:{}:{}", &h[0..2], &h[2..4], &h[4..6])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_lab_and_never_match_another_labs() {
        let names = Names::new("a");
        assert_eq!(names.domain("n1"), "zl-a_n1");
        assert_eq!(names.volume("n1"), "zl-a_n1.img");
        assert_eq!(names.network(), "zl-a_net");
        assert!(names.is_ours("zl-a_n1.img"));
        assert!(!names.is_ours(&Names::new("a-b").domain("n1")), "lab a-b's domain is not lab a's");
        assert!(!Names::new("a-b").is_ours(&names.domain("b_n1")));
    }

    #[test]
    fn bridges_fit_and_macs_are_fixed_per_node() {
        let long = Names::new("a-very-long-lab-name-of-32-chars");
        assert!(long.bridge().len() <= 15, "{}", long.bridge());
        assert!(long.bridge().starts_with("zv-a-very-"));
        let names = Names::new("demo");
        assert_eq!(names.mac("n1"), names.mac("n1"));
        assert_ne!(names.mac("n1"), names.mac("n2"));
        assert!(names.mac("n1").starts_with("52:54:00:") && names.mac("n1").len() == 17);
    }
}
