//! Attendees' own SSH: `add_ssh_key` appends the attendee's public key to their first
//! node's authorized keys and forwards a port of `portal.ssh_ports` on this machine to
//! that node's SSH port; the rules go on reset, remove and `workshop down`.
//!
//! Security, in order:
//! 1. the key is one line `TYPE BASE64 [COMMENT]` of a known type, checked here before
//!    it reaches a shell: no options (`command=`, `from=`), no quote, no control
//!    character, so the attendee can add a login for themselves and nothing else;
//! 2. it is appended on their own node only (over the lab's keeper, as root there), so
//!    it opens no other attendee's node: their key is refused there, by that node's sshd;
//! 3. each attendee gets one port, recorded before any rule is added, and the rules
//!    name exactly their node's address and port, so a port leads to one node;
//! 4. the rules (comment `zerolab:ws:<workshop>`): DNAT of the port in `nat`
//!    PREROUTING (from other machines) and OUTPUT (from this one, to its own addresses
//!    only), MASQUERADE of those forwarded connections only (the nodes have no route
//!    but their lab's subnet, so replies must come back to the bridge's address), and
//!    FORWARD accepts for them and their replies (a FORWARD policy of DROP stays DROP
//!    for everything else). Forwarding from other machines also needs IPv4 forwarding
//!    on the interface they come in by: zerolab does not switch it on machine-wide.

use std::sync::Arc;

use zerolab_sandbox::session::error_chain;

use super::service::AccessError;
use super::state::SshGrant;
use super::view::SshAccess;
use super::{Workshop, WorkshopEvent};
use crate::keeper::Keeper;
use crate::provider;

/// The key types accepted (OpenSSH's, as `ssh-keygen -t` makes them).
const KEY_TYPES: [&str; 8] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

/// The key line to append, or why `text` is not one public key.
pub fn check_key(text: &str) -> Result<String, String> {
    let line = text.trim();
    if line.is_empty() {
        return Err("it is empty".to_owned());
    }
    if line.chars().any(|c| c.is_control()) {
        return Err("it is more than one line".to_owned());
    }
    let mut fields = line.split_whitespace();
    let kind = fields.next().unwrap_or_default();
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("`{}` is not a key type", kind.chars().take(40).collect::<String>()));
    }
    let body = fields.next().ok_or("the key itself is missing")?;
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if body.len() < 16 || !body.chars().all(base64) {
        return Err("the key is not base64".to_owned());
    }
    let comment: Vec<&str> = fields.collect();
    let comment = comment.join(" ");
    if comment.contains(['\'', '"', '\\']) || comment.len() > 200 {
        return Err("the comment has quotes or backslashes, or is over 200 characters".to_owned());
    }
    Ok(if comment.is_empty() { format!("{kind} {body}") } else { format!("{kind} {body} {comment}") })
}

/// How attendees reach `port`.
pub(super) fn access(ws: &Workshop, port: u16, user: &str) -> SshAccess {
    let host = ws.file.public_host.clone().unwrap_or_else(|| match ws.file.listen.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        ip => ip.to_string(),
    });
    SshAccess { host, port, user: user.to_owned() }
}

impl Workshop {
    /// Adds `public_key` to the first node of the lab of the attendee holding `token`
    /// and forwards their port to it (the same port again when they add another key).
    pub async fn add_ssh_key(self: &Arc<Self>, token: &str, public_key: &str) -> Result<SshAccess, AccessError> {
        let key = check_key(public_key).map_err(|reason| AccessError::BadKey { reason })?;
        let id = self.attendee_of(token).ok_or(AccessError::UnknownToken)?;
        let node = self.terminal(token, None).await?;
        let failed = |cause: String| AccessError::Failed { cause };
        let (index, _) = self.lab_of(id).map_err(|_| AccessError::NoLab)?;
        // The port is taken (recorded) before any rule exists.
        let range = self.file.ssh_ports.clone();
        let grant = self
            .update(|state| {
                let taken: Vec<u16> = state.attendees.iter().filter_map(|a| a.ssh.as_ref().map(|g| g.port)).collect();
                let Some(attendee) = state.attendee_mut(id) else { return (Err(AccessError::UnknownToken), vec![]) };
                if let Some(grant) = &attendee.ssh {
                    return (Ok((grant.clone(), false)), vec![]);
                }
                let Some(port) = range.clone().find(|p| !taken.contains(p)) else {
                    return (Err(AccessError::NoPort), vec![]);
                };
                let grant = SshGrant { port, key: key.clone(), address: node.address.clone() };
                attendee.ssh = Some(grant.clone());
                (Ok((grant, true)), vec![WorkshopEvent::Attendee(id)])
            })
            .map_err(|e| failed(error_chain(&e)))??;
        let (grant, new) = grant;
        append_key(self, index, &node.node, &key).await.map_err(failed)?;
        if new {
            let node_port = node.port;
            if let Err(cause) = add_rules(&self.file.name, &grant, node_port).await {
                remove_rules(&self.file.name, std::slice::from_ref(&grant)).await;
                let _ = self.update(|state| {
                    if let Some(attendee) = state.attendee_mut(id) {
                        attendee.ssh = None;
                    }
                    ((), vec![WorkshopEvent::Attendee(id)])
                });
                return Err(failed(cause));
            }
        }
        Ok(access(self, grant.port, &node.user))
    }
}

/// Appends `key` to the authorized keys of node `node` of lab `index` (the file its
/// sshd reads, as its `sshd_config` names it).
async fn append_key(ws: &Workshop, index: u32, node: &str, key: &str) -> Result<(), String> {
    let (cluster, lab) = (ws.cluster(index)?, ws.lab(index)?);
    let node = cluster.node(node).ok_or_else(|| format!("no node {node}"))?;
    let target = provider::of(&cluster).and_then(|p| p.address(&lab, node)).map_err(|e| error_chain(&e))?;
    let keeper = Keeper::open(lab.dir(), &ws.options.program).await.map_err(|e| error_chain(&e))?;
    // `key` was checked by `check_key`: no quote can end the quoting.
    let script = format!(
        "f=$(awk '$1==\"AuthorizedKeysFile\" {{print $2; exit}}' /etc/ssh/sshd_config 2>/dev/null); \
         f=${{f:-.ssh/authorized_keys}}; case $f in /*) ;; *) f=$HOME/$f;; esac; \
         mkdir -p \"$(dirname \"$f\")\" && grep -qxF '{key}' \"$f\" 2>/dev/null || printf '%s\\n' '{key}' >> \"$f\""
    );
    match keeper.exec(&target, &script, std::time::Duration::from_secs(10)).await {
        Ok(Ok(output)) if output.success() => Ok(()),
        Ok(Ok(output)) => {
            Err(format!("adding the key on {}: {}", node.name, String::from_utf8_lossy(&output.stderr).trim()))
        }
        Ok(Err(failure)) => Err(failure.cause),
        Err(e) => Err(error_chain(&e)),
    }
}

/// The comment every rule of workshop `name` carries.
pub fn comment(name: &str) -> String {
    format!("zerolab:ws:{name}")
}

/// The rules of one grant, as `iptables` arguments (`-t TABLE CHAIN ...`, without `-A`).
fn rules(name: &str, grant: &SshGrant, node_port: u16) -> Vec<Vec<String>> {
    let (port, to) = (grant.port.to_string(), format!("{}:{node_port}", grant.address));
    let node_port = node_port.to_string();
    let tag = ["-m", "comment", "--comment", &comment(name)].map(String::from);
    let rule = |parts: &[&str]| {
        let mut rule: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
        rule.extend(tag.iter().cloned());
        rule
    };
    let address = grant.address.as_str();
    // A rule for the connections this grant forwards: to the node's port, DNAT'd from `port`.
    let forwarded = |head: &[&str], target: &str| {
        let tail = ["-p", "tcp", "-d", address, "--dport", &node_port, "-m", "conntrack", "--ctstate", "DNAT"];
        rule(&[head, &tail, &["--ctorigdstport", &port, "-j", target]].concat())
    };
    vec![
        rule(&["-t", "nat", "PREROUTING", "-p", "tcp", "--dport", &port, "-j", "DNAT", "--to-destination", &to]),
        rule(&[
            "-t",
            "nat",
            "OUTPUT",
            "-p",
            "tcp",
            "--dport",
            &port,
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ]),
        forwarded(&["-t", "nat", "POSTROUTING"], "MASQUERADE"),
        forwarded(&["-t", "filter", "FORWARD"], "ACCEPT"),
        rule(&[
            "-t",
            "filter",
            "FORWARD",
            "-p",
            "tcp",
            "-s",
            address,
            "--sport",
            &node_port,
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "--ctorigdstport",
            &port,
            "-j",
            "ACCEPT",
        ]),
    ]
}

async fn iptables(action: &str, rule: &[String]) -> Result<(), String> {
    let mut args = vec!["-w".to_owned(), rule[0].clone(), rule[1].clone(), action.to_owned()];
    args.extend(rule[2..].iter().cloned());
    let output = tokio::process::Command::new("iptables")
        .args(&args)
        .output()
        .await
        .map_err(|e| format!("cannot run iptables: {e}; install iptables"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("iptables {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Adds the rules of `grant` (FORWARD accepts first in their chain).
async fn add_rules(name: &str, grant: &SshGrant, node_port: u16) -> Result<(), String> {
    for rule in rules(name, grant, node_port) {
        let action = if rule[2] == "FORWARD" { "-I" } else { "-A" };
        iptables(action, &rule).await?;
    }
    Ok(())
}

/// Removes every rule of workshop `name` forwarding one of `grants`' ports.
pub(super) async fn remove_rules(name: &str, grants: &[SshGrant]) {
    let ports: Vec<String> = grants.iter().map(|g| g.port.to_string()).collect();
    remove_matching(name, |line| {
        ports.iter().any(|port| {
            line.contains(&format!("--dport {port} ")) || line.contains(&format!("--ctorigdstport {port} "))
        })
    })
    .await;
}

/// Removes every rule of workshop `name` (`workshop down`); returns the rules left.
pub async fn remove_all(name: &str) -> Vec<String> {
    remove_matching(name, |_| true).await
}

/// Deletes the rules of workshop `name` that `select` picks, as `iptables -S` lists
/// them; returns those it could not delete.
async fn remove_matching(name: &str, select: impl Fn(&str) -> bool) -> Vec<String> {
    let tag = format!("--comment {}", comment(name));
    let mut left = Vec::new();
    for table in ["nat", "filter"] {
        let Ok(output) = tokio::process::Command::new("iptables").args(["-w", "-t", table, "-S"]).output().await else {
            continue;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            // iptables-nft quotes comments (`--comment "zerolab:ws:wc1"`); ours have no
            // spaces, so the rule reads the same without the quotes.
            let line = line.replace('"', "");
            // `--comment zerolab:ws:wc1` must not match workshop `wc10`.
            let ours = line.split(&tag).nth(1).is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
            let Some(rule) = line.strip_prefix("-A ") else { continue };
            if !ours || !select(&format!("{line} ")) {
                continue;
            }
            let mut args = vec!["-t".to_owned(), table.to_owned()];
            args.extend(rule.split_whitespace().map(str::to_owned));
            if let Err(e) = iptables("-D", &args).await {
                left.push(e);
            }
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_key_line_and_nothing_else() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOr8yH0Uo2w0VJ3V4Zb5Zb5Zb5Zb5Zb5Zb5Zb5Zb5Zb5Z";
        assert_eq!(check_key(&format!("  {key} ann@laptop \n")).unwrap(), format!("{key} ann@laptop"));
        assert_eq!(check_key(key).unwrap(), key);
        for (bad, why) in [
            ("", "it is empty"),
            (&format!("{key}\n{key}"), "it is more than one line"),
            (&format!("command=\"sh\" {key}"), "`command=\"sh\"` is not a key type"),
            ("ssh-ed25519", "the key itself is missing"),
            ("ssh-ed25519 AAAA'$(reboot)'AAAAAAAAAAAA", "the key is not base64"),
            (&format!("{key} it's"), "the comment has quotes or backslashes, or is over 200 characters"),
        ] {
            assert_eq!(check_key(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn rules_name_one_node_and_one_port() {
        let grant = SshGrant { port: 23001, key: String::new(), address: "10.212.3.2".into() };
        let rules: Vec<String> = rules("wc1", &grant, 22).iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            rules[0],
            "-t nat PREROUTING -p tcp --dport 23001 -j DNAT --to-destination 10.212.3.2:22 -m comment --comment zerolab:ws:wc1"
        );
        assert!(rules.iter().all(|r| r.contains("23001") && r.contains("10.212.3.2")));
    }
}
