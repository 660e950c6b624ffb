//! What zerolab asks libvirt directly, through `virsh -c qemu:///system`: the state of a
//! lab's domains, its network, its volumes, and removing them. Vagrant makes machines;
//! everything after that (status, `down`, repairs) is libvirt's word, so no command after
//! `up` runs `vagrant`.
//!
//! Each call is one `virsh` process (about 20 ms); errors carry virsh's own message.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use super::VagrantError;

/// The libvirt connection Vagrant's libvirt provider uses by default.
pub const URI: &str = "qemu:///system";
/// The storage pool the machines' volumes are in.
pub const POOL: &str = "default";

/// Runs `virsh ARGS`; its standard output, or its error as one line.
pub async fn run(args: &[&str]) -> Result<String, VagrantError> {
    let output =
        Command::new("virsh").arg("-c").arg(URI).args(args).stdin(Stdio::null()).output().await.map_err(|e| match e
            .kind()
        {
            std::io::ErrorKind::NotFound => VagrantError::Missing { program: "virsh" },
            _ => VagrantError::Virsh { command: args.join(" "), detail: e.to_string() },
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let detail = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| line.trim_start_matches("error: ").trim())
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Err(VagrantError::Virsh { command: args.join(" "), detail })
}

fn names(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// Every domain's name, running or not.
pub async fn domains() -> Result<Vec<String>, VagrantError> {
    Ok(names(&run(&["list", "--all", "--name"]).await?))
}

/// Every network's name, active or not.
pub async fn networks() -> Result<Vec<String>, VagrantError> {
    Ok(names(&run(&["net-list", "--all", "--name"]).await?))
}

/// Every volume's name in [`POOL`].
pub async fn volumes() -> Result<Vec<String>, VagrantError> {
    let text = run(&["vol-list", POOL]).await?;
    // A header, a rule, then `NAME PATH` rows (names have no spaces).
    Ok(text
        .lines()
        .skip_while(|line| !line.trim_start().starts_with('-'))
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// `domain`'s state (`running`, `shut off`, `paused`, ...), or `None` when there is no
/// such domain.
pub async fn domain_state(domain: &str) -> Result<Option<String>, VagrantError> {
    match run(&["domstate", domain]).await {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(VagrantError::Virsh { detail, .. }) if detail.contains("ailed to get domain") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `network` is defined, and whether it is active.
pub async fn network_state(network: &str) -> Result<Option<bool>, VagrantError> {
    match run(&["net-info", network]).await {
        Ok(text) => Ok(Some(text.lines().any(|l| l.starts_with("Active:") && l.ends_with("yes")))),
        Err(VagrantError::Virsh { detail, .. }) if detail.contains("ailed to get network") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Defines the network in `xml` and starts it.
pub async fn start_network(network: &str, xml: &Path) -> Result<(), VagrantError> {
    let xml = xml.to_string_lossy();
    if network_state(network).await?.is_none() {
        run(&["net-define", &xml]).await?;
    }
    if network_state(network).await? != Some(true) {
        run(&["net-start", network]).await?;
    }
    Ok(())
}

/// Stops and undefines `network`; one that is not there is fine.
pub async fn remove_network(network: &str) -> Result<(), VagrantError> {
    match network_state(network).await? {
        None => return Ok(()),
        Some(true) => {
            run(&["net-destroy", network]).await?;
        }
        Some(false) => {}
    }
    run(&["net-undefine", network]).await.map(drop)
}

/// Stops and undefines `domain` (with its snapshots' and managed saves' metadata); one
/// that is not there is fine. Its volumes are removed by [`remove_volume`].
pub async fn remove_domain(domain: &str) -> Result<(), VagrantError> {
    match domain_state(domain).await? {
        None => return Ok(()),
        Some(state) if state != "shut off" => {
            run(&["destroy", domain]).await?;
        }
        Some(_) => {}
    }
    run(&["undefine", domain, "--managed-save", "--snapshots-metadata", "--nvram"]).await.map(drop)
}

/// Deletes `volume` from [`POOL`]; one that is not there is fine.
pub async fn remove_volume(volume: &str) -> Result<(), VagrantError> {
    match run(&["vol-delete", "--pool", POOL, volume]).await {
        Err(VagrantError::Virsh { detail, .. }) if detail.contains("ot found") || detail.contains("no storage vol") => {
            Ok(())
        }
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_per_line_without_blanks() {
        assert_eq!(names(" zl-a_n1\nzl-a_n2\n\n"), ["zl-a_n1", "zl-a_n2"]);
    }
}
