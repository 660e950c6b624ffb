//! Power through a BMC: `ipmitool -I lanplus -H HOST -p PORT -U USER -E chassis power
//! on|off|cycle|status`, one run per question.
//!
//! The password is read from the node's password file (refused when the file is open to
//! group or others, as ssh refuses a private key) and handed to ipmitool in its
//! environment (`-E` reads `IPMI_PASSWORD`), never on its command line, where any user
//! could read it in `/proc`. Each run is bounded: ipmitool itself retries a silent BMC a
//! few times (`-N 1 -R 3`) and zerolab kills it after [`RUN_TIMEOUT`].
//!
//! On and off return once the BMC reports the new state (a BMC answers the command
//! before the machine has switched; OpenIPMI's simulator reports off only once the
//! machine's process has ended), waiting up to [`SETTLE_TIMEOUT`]. Cycle on a machine
//! that is off switches it on instead: many BMCs refuse a cycle from off (the IPMI
//! specification lets them), and "reset and run" is what zerolab means by it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::{PowerAction, PowerError, PowerState};

/// How long one ipmitool run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the machine may take to report the state asked for.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the state is read meanwhile.
const SETTLE_POLL: Duration = Duration::from_millis(300);

/// A BMC as a node's `power: {ipmi: ...}` names it.
pub(super) struct Bmc<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password_file: &'a Path,
    pub cipher_suite: Option<u8>,
}

/// Carries out `action` (see the module doc).
pub(super) async fn apply(bmc: &Bmc<'_>, node: &str, action: PowerAction) -> Result<(), PowerError> {
    let password = password(bmc.password_file, node).await?;
    let (command, want) = match action {
        PowerAction::On => ("on", PowerState::On),
        PowerAction::Off => ("off", PowerState::Off),
        PowerAction::Cycle => match read_state(bmc, node, &password).await? {
            PowerState::Off => ("on", PowerState::On),
            _ => {
                ipmitool(bmc, node, &password, "cycle").await?;
                return Ok(());
            }
        },
    };
    ipmitool(bmc, node, &password, command).await?;
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let got = read_state(bmc, node, &password).await?;
        if got == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PowerError::NotReached { node: node.to_owned(), want, got, seconds: SETTLE_TIMEOUT.as_secs() });
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// Whether the machine is on, as its BMC says.
pub(super) async fn state(bmc: &Bmc<'_>, node: &str) -> Result<PowerState, PowerError> {
    let password = password(bmc.password_file, node).await?;
    read_state(bmc, node, &password).await
}

async fn read_state(bmc: &Bmc<'_>, node: &str, password: &str) -> Result<PowerState, PowerError> {
    let output = ipmitool(bmc, node, password, "status").await?;
    parse_status(&output).ok_or_else(|| PowerError::IpmiStatus {
        node: node.to_owned(),
        host: bmc.host.to_owned(),
        port: bmc.port,
        output: output.trim().to_owned(),
    })
}

/// `Chassis Power is on` / `Chassis Power is off`, ipmitool's answers to `status`.
fn parse_status(output: &str) -> Option<PowerState> {
    match output.trim().strip_prefix("Chassis Power is ")? {
        "on" => Some(PowerState::On),
        "off" => Some(PowerState::Off),
        _ => None,
    }
}

/// The password on the file's first line, once the file is known to be private.
async fn password(path: &Path, node: &str) -> Result<String, PowerError> {
    let unreadable = |source| PowerError::PasswordFile { node: node.to_owned(), path: path.to_owned(), source };
    let mode = tokio::fs::metadata(path).await.map_err(unreadable)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PowerError::PasswordFileOpen { node: node.to_owned(), path: path.to_owned(), mode });
    }
    let text = tokio::fs::read_to_string(path).await.map_err(unreadable)?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// Runs `ipmitool ... chassis power COMMAND` and returns what it printed on stdout.
async fn ipmitool(bmc: &Bmc<'_>, node: &str, password: &str, command: &'static str) -> Result<String, PowerError> {
    let mut ipmitool = Command::new("ipmitool");
    ipmitool.args(["-I", "lanplus", "-H", bmc.host, "-p", &bmc.port.to_string(), "-U", bmc.user, "-E"]);
    ipmitool.args(["-N", "1", "-R", "3"]);
    if let Some(suite) = bmc.cipher_suite {
        ipmitool.args(["-C", &suite.to_string()]);
    }
    ipmitool.args(["chassis", "power", command]);
    ipmitool.env("IPMI_PASSWORD", password).stdin(Stdio::null()).kill_on_drop(true);
    let failed = |detail: String| PowerError::Ipmi {
        node: node.to_owned(),
        host: bmc.host.to_owned(),
        port: bmc.port,
        command,
        detail,
    };
    let run = match tokio::time::timeout(RUN_TIMEOUT, ipmitool.output()).await {
        Err(_) => return Err(failed(format!("ipmitool did not finish within {} s", RUN_TIMEOUT.as_secs()))),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PowerError::IpmitoolMissing { node: node.to_owned() })
        }
        Ok(Err(source)) => return Err(PowerError::Spawn { node: node.to_owned(), program: "ipmitool", source }),
        Ok(Ok(run)) => run,
    };
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(failed(format!("ipmitool exited with {}: {}", run.status, last.trim())));
    }
    Ok(String::from_utf8_lossy(&run.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipmitool_power_status() {
        assert_eq!(parse_status("Chassis Power is on\n"), Some(PowerState::On));
        assert_eq!(parse_status("Chassis Power is off\n"), Some(PowerState::Off));
        assert_eq!(parse_status("Chassis Power is unknown\n"), None);
        assert_eq!(parse_status(""), None);
    }

    #[tokio::test]
    async fn refuses_a_password_file_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bmc.pass");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = password(&path, "n2").await.unwrap_err();
        assert!(matches!(err, PowerError::PasswordFileOpen { mode: 0o640, .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(password(&path, "n2").await.unwrap(), "s3cret");
        let missing = password(&dir.path().join("none"), "n2").await.unwrap_err();
        assert!(matches!(missing, PowerError::PasswordFile { .. }), "{missing}");
    }
}
