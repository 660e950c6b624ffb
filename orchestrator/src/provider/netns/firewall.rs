//! The firewall of a lab with isolated (`rootfs:`) nodes: its nodes reach their own lab
//! subnet and nothing else of this machine.
//!
//! A node has no route off its subnet and no capability over its network namespace, so
//! it can only send to its lab's bridge; these iptables rules (filter table, each with
//! the comment `zerolab:<lab>`, inserted first) close what the bridge's host side would
//! let through, in order:
//! 1. `FORWARD -i BR -o BR ACCEPT`: node to node on the same bridge (bridged frames pass
//!    FORWARD when `br_netfilter` is loaded, as here);
//! 2. `FORWARD -i BR ESTABLISHED,RELATED ACCEPT`: replies of connections forwarded in
//!    (a workshop's SSH port forwarded to a node);
//! 3. `FORWARD -i BR DROP`: nothing else leaves the bridge for another interface (other
//!    labs' bridges, this machine's uplinks);
//! 4. `INPUT -i BR ESTABLISHED,RELATED ACCEPT`: replies to connections this machine
//!    opened (zerolab's SSH to its nodes);
//! 5. `INPUT -i BR DROP`: no new connection from a node to any address of this machine
//!    (its sshd, the portal, the bridge address, other labs' bridge addresses).
//!
//! The rules are recorded in `LAB/firewall` before they are added (at once, with
//! `iptables-restore --noflush`), and `down` deletes exactly those (a rule already gone
//! is fine).

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use super::host::{io_err, run, NetnsError};
use crate::lab::Lab;

/// The file listing the lab's rules, one `iptables` rule specification a line.
pub const FILE: &str = "firewall";

/// The lab's rules (chain first), in the order they are inserted at the top.
fn rules(lab: &str, bridge: &str) -> Vec<Vec<String>> {
    let comment = format!("zerolab:{lab}");
    let rule = |chain: &str, rest: &[&str]| -> Vec<String> {
        let mut rule = vec![chain.to_owned(), "-i".into(), bridge.to_owned()];
        rule.extend(rest.iter().map(|s| s.to_string()));
        rule.extend(["-m".into(), "comment".into(), "--comment".into(), comment.clone()]);
        rule
    };
    let established = ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"];
    vec![
        rule("FORWARD", &["-o", bridge, "-j", "ACCEPT"]),
        rule("FORWARD", &established),
        rule("FORWARD", &["-j", "DROP"]),
        rule("INPUT", &established),
        rule("INPUT", &["-j", "DROP"]),
    ]
}

fn iptables(action: &str, rule: &[String]) -> Result<String, NetnsError> {
    run(Command::new("iptables").args(["-w", "-t", "filter", action]).args(rule))
}

/// Adds the lab's rules (recorded first) in one `iptables-restore --noflush`: all or
/// none. Each is inserted at the top of its chain, the last first, so they stay in
/// order above the chain's other rules even while other labs insert theirs.
pub(super) fn apply(lab: &Lab, bridge: &str) -> Result<(), NetnsError> {
    let rules = rules(lab.name(), bridge);
    let path = lab.dir().join(FILE);
    let text: String = rules.iter().map(|rule| format!("{}\n", rule.join("\t"))).collect();
    fs::write(&path, text).map_err(io_err(&path))?;
    let mut batch = String::from("*filter\n");
    for rule in rules.iter().rev() {
        let quoted: Vec<String> = rule[1..].iter().map(|arg| format!("\"{arg}\"")).collect();
        batch.push_str(&format!("-I {} 1 {}\n", rule[0], quoted.join(" ")));
    }
    batch.push_str("COMMIT\n");
    let mut child = match Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NetnsError::Missing { program: "iptables-restore", package: "iptables" })
        }
        Err(e) => return Err(NetnsError::Command { command: "iptables-restore".into(), detail: e.to_string() }),
    };
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(batch.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| NetnsError::Command { command: "iptables-restore".into(), detail: e.to_string() })?;
    if !output.status.success() || !matches!(written, Some(Ok(()))) {
        let detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return Err(NetnsError::Command { command: "iptables-restore --noflush".into(), detail });
    }
    Ok(())
}

/// Whether the lab has its firewall (its rules are recorded).
pub(super) fn exists(lab: &Lab) -> bool {
    lab.dir().join(FILE).exists()
}

/// Deletes the rules `LAB/firewall` records, then the file.
pub(super) fn remove(lab: &Lab) -> Result<(), NetnsError> {
    let path = lab.dir().join(FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    for line in text.lines().filter(|line| !line.is_empty()) {
        let rule: Vec<String> = line.split('\t').map(str::to_owned).collect();
        // Every copy (a rule added twice by hand is still the lab's).
        while iptables("-C", &rule).is_ok() {
            iptables("-D", &rule)?;
        }
    }
    fs::remove_file(&path).map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_say_their_lab_and_drop_last() {
        let rules = rules("nd1", "zl-nd1-abcd");
        assert_eq!(rules.len(), 5);
        for rule in &rules {
            assert!(rule.windows(2).any(|w| w[0] == "--comment" && w[1] == "zerolab:nd1"), "{rule:?}");
            assert!(rule.windows(2).any(|w| w[0] == "-i" && w[1] == "zl-nd1-abcd"), "{rule:?}");
        }
        assert!(rules[2].contains(&"DROP".to_owned()) && rules[4].contains(&"DROP".to_owned()));
    }
}
