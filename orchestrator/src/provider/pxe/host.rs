//! What a `pxe` lab changes on this host's network, and undoes: the server's address on
//! the boot interface (only when the interface lacked it; `down` removes only what `up`
//! added, recorded in `LAB/pxe/host.json`), and the optional NAT to an uplink, as
//! iptables rules carrying the comment `zerolab:LAB` so `down` finds exactly this lab's.
//! Forwarding is switched on for the two interfaces only (`net.ipv4.conf.IF.forwarding`),
//! never machine-wide, and set back to what it was by `down`.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{io, PxeError};

/// What `up` changed on the host, so `down` undoes exactly that.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostChanges {
    /// `ADDRESS/PREFIX` added to the boot interface by zerolab.
    pub address: Option<String>,
    /// The boot interface.
    pub interface: String,
    /// The uplink the boot network is masqueraded to.
    pub nat: Option<Nat>,
    /// Each interface whose IPv4 forwarding zerolab switched on, with its value before.
    #[serde(default)]
    pub forwarding: Vec<(String, String)>,
}

/// The NAT rules of a lab.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, Clone)]
pub struct Nat {
    /// The boot network (`A.B.C.D/N`).
    pub subnet: String,
    /// The boot interface.
    pub interface: String,
    /// The uplink.
    pub uplink: String,
    /// The rules' comment (`zerolab:LAB`).
    pub comment: String,
}

impl Nat {
    /// The rules, as `iptables` arguments after `-A`/`-D` (table first).
    fn rules(&self) -> Vec<Vec<String>> {
        let c = |s: &str| s.to_owned();
        let tag = [c("-m"), c("comment"), c("--comment"), self.comment.clone()];
        let mut masquerade = vec![c("-t"), c("nat"), c("POSTROUTING"), c("-s"), self.subnet.clone(), c("-o")];
        masquerade.extend([self.uplink.clone(), c("-j"), c("MASQUERADE")]);
        let mut out = vec![c("-t"), c("filter"), c("FORWARD"), c("-i"), self.interface.clone(), c("-o")];
        out.extend([self.uplink.clone(), c("-j"), c("ACCEPT")]);
        let mut back = vec![c("-t"), c("filter"), c("FORWARD"), c("-i"), self.uplink.clone(), c("-o")];
        back.extend([self.interface.clone(), c("-m"), c("conntrack"), c("--ctstate"), c("RELATED,ESTABLISHED")]);
        back.extend([c("-j"), c("ACCEPT")]);
        [masquerade, out, back]
            .into_iter()
            .map(|mut rule| {
                rule.extend(tag.iter().cloned());
                rule
            })
            .collect()
    }
}

const FILE: &str = "host.json";

/// Loads what `up` changed (nothing when the file is missing).
pub fn load(dir: &Path) -> Result<Option<HostChanges>, PxeError> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            PxeError::Plan(format!("{} is damaged ({e}); remove it and the lab's rules by hand", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

fn save(dir: &Path, changes: &HostChanges) -> Result<(), PxeError> {
    let path = dir.join(FILE);
    let text = serde_json::to_vec_pretty(changes).expect("plain data serializes");
    std::fs::write(&path, text).map_err(io(&path))
}

/// Puts the server's address on `interface` unless it has it, and the NAT rules in
/// place unless they are; records what was changed in `dir` before changing it.
pub async fn apply(
    dir: &Path,
    interface: &str,
    server: Ipv4Addr,
    prefix: u8,
    nat: Option<Nat>,
) -> Result<(), PxeError> {
    if !Path::new("/sys/class/net").join(interface).exists() {
        return Err(PxeError::NoInterface { interface: interface.to_owned() });
    }
    let mut changes =
        load(dir)?.unwrap_or_else(|| HostChanges { interface: interface.to_owned(), ..HostChanges::default() });
    let cidr = format!("{server}/{prefix}");
    let shown = run("ip", &["-4", "-o", "addr", "show", "dev", interface]).await?;
    let has = shown.split_whitespace().any(|word| word == cidr);
    if !has {
        let owned = shown.split_whitespace().any(|word| word.split('/').next() == Some(&server.to_string()));
        if owned {
            let message = format!("interface {interface} has {server} with another prefix than /{prefix}; fix it (`ip addr`) or change pxe.server");
            return Err(PxeError::Plan(message));
        }
        changes.address = Some(cidr.clone());
        save(dir, &changes)?;
        run("ip", &["addr", "add", &cidr, "dev", interface]).await?;
    }
    run("ip", &["link", "set", interface, "up"]).await?;
    if let Some(nat) = nat {
        if !Path::new("/sys/class/net").join(&nat.uplink).exists() {
            return Err(PxeError::NoInterface { interface: nat.uplink.clone() });
        }
        changes.nat = Some(nat.clone());
        save(dir, &changes)?;
        for rule in nat.rules() {
            if !rule_exists(&rule).await {
                let mut args = vec!["-w".to_owned(), rule[0].clone(), rule[1].clone(), "-A".to_owned()];
                args.extend(rule[2..].iter().cloned());
                run("iptables", &args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
            }
        }
        for dev in [&nat.interface, &nat.uplink] {
            let key = format!("/proc/sys/net/ipv4/conf/{dev}/forwarding");
            let before = std::fs::read_to_string(&key).map_err(io(Path::new(&key)))?.trim().to_owned();
            if before != "1" && !changes.forwarding.iter().any(|(d, _)| d == dev) {
                changes.forwarding.push((dev.clone(), before));
                save(dir, &changes)?;
            }
            std::fs::write(&key, "1").map_err(io(Path::new(&key)))?;
        }
    }
    Ok(())
}

/// Undoes what [`apply`] recorded; idempotent. Returns what could not be undone.
pub async fn undo(dir: &Path) -> Result<Vec<String>, PxeError> {
    let Some(changes) = load(dir)? else { return Ok(Vec::new()) };
    let mut left = Vec::new();
    if let Some(nat) = &changes.nat {
        for rule in nat.rules() {
            while rule_exists(&rule).await {
                let mut args = vec!["-w".to_owned(), rule[0].clone(), rule[1].clone(), "-D".to_owned()];
                args.extend(rule[2..].iter().cloned());
                if let Err(e) = run("iptables", &args.iter().map(String::as_str).collect::<Vec<_>>()).await {
                    left.push(e.to_string());
                    break;
                }
            }
        }
    }
    for (dev, before) in &changes.forwarding {
        let key = format!("/proc/sys/net/ipv4/conf/{dev}/forwarding");
        // An interface that went away took its setting with it.
        if Path::new(&key).exists() {
            if let Err(e) = std::fs::write(&key, before) {
                left.push(format!("{key}: {e}"));
            }
        }
    }
    if let Some(cidr) = &changes.address {
        let exists = Path::new("/sys/class/net").join(&changes.interface).exists();
        if exists {
            let shown = run("ip", &["-4", "-o", "addr", "show", "dev", &changes.interface]).await.unwrap_or_default();
            if shown.split_whitespace().any(|word| word == cidr) {
                if let Err(e) = run("ip", &["addr", "del", cidr, "dev", &changes.interface]).await {
                    left.push(e.to_string());
                }
            }
        }
    }
    if left.is_empty() {
        let path = dir.join(FILE);
        let _ = std::fs::remove_file(&path);
    }
    Ok(left)
}

async fn rule_exists(rule: &[String]) -> bool {
    let mut args = vec!["-w".to_owned(), rule[0].clone(), rule[1].clone(), "-C".to_owned()];
    args.extend(rule[2..].iter().cloned());
    tokio::process::Command::new("iptables")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

/// Runs a host command; its stdout, or an error with its last stderr line.
pub(super) async fn run(program: &str, args: &[&str]) -> Result<String, PxeError> {
    let command = format!("{program} {}", args.join(" "));
    let output = tokio::process::Command::new(program).args(args).output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PxeError::Command { command: command.clone(), detail: format!("{program} is not installed") }
        } else {
            PxeError::Command { command: command.clone(), detail: e.to_string() }
        }
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_owned();
        return Err(PxeError::Command { command, detail });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_rules_are_tagged_with_the_lab() {
        let nat = Nat {
            subnet: "10.79.0.0/24".into(),
            interface: "eno2".into(),
            uplink: "wlan0".into(),
            comment: "zerolab:rack1".into(),
        };
        let rules = nat.rules();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].join(" "),
            "-t nat POSTROUTING -s 10.79.0.0/24 -o wlan0 -j MASQUERADE -m comment --comment zerolab:rack1"
        );
        assert!(rules.iter().all(|rule| rule.ends_with(&["zerolab:rack1".to_owned()])));
    }
}
