//! What zerolab asks Vagrant: `vagrant up` of the machines that need making or starting
//! (during `up`; its output logged to `LAB/vagrant/up.log` and turned into per-node
//! progress), `vagrant ssh-config` once, to check that Vagrant reaches each machine where
//! and as whom the cluster file says, and the shelving commands `vagrant suspend`,
//! `resume`, `halt` and `up` of one machine (output in `LAB/vagrant/shelve.log`). From
//! then on zerolab reaches the machines itself, with the lab's key.
//!
//! Vagrant runs with `VAGRANT_CWD` set to the lab's `vagrant/` directory, so its state
//! (`.vagrant/`) lives in the lab directory; the boxes stay in the user's Vagrant home.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::VagrantError;
use crate::provider::{CreateProgress, CreateStep};

/// Lines of Vagrant's output kept for an error message.
const TAIL: usize = 8;

fn vagrant(dir: &Path) -> Command {
    let mut command = Command::new("vagrant");
    command
        .env("VAGRANT_CWD", dir)
        .env("VAGRANT_DEFAULT_PROVIDER", "libvirt")
        .env("VAGRANT_NO_COLOR", "1")
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null());
    command
}

fn spawn_error(e: std::io::Error) -> VagrantError {
    match e.kind() {
        std::io::ErrorKind::NotFound => VagrantError::Missing { program: "vagrant" },
        _ => VagrantError::Vagrant { command: "vagrant".into(), tail: e.to_string(), log: None },
    }
}

/// Where a line of `vagrant up` output puts its machine, if it says.
fn step(line: &str) -> Option<(&str, CreateStep)> {
    let rest = line.strip_prefix("==> ")?;
    let (node, message) = rest.split_once(": ")?;
    let step = if message.starts_with("Creating image")
        || message.starts_with("Creating domain")
        || message.starts_with("Uploading base box")
    {
        CreateStep::Making
    } else if message.starts_with("Starting domain") || message.starts_with("Waiting for domain to get an IP") {
        CreateStep::Booting
    } else {
        return None;
    };
    Some((node, step))
}

/// `vagrant up` of `nodes` (all at once: the libvirt provider brings machines up in
/// parallel), output appended to `log`, each machine's steps to `progress`. Provisioners
/// run on a machine's first up only: the Vagrantfile's one adds the lab's key. The log
/// ends with how long it took (`# zerolab: vagrant up NODES took 95.2s`).
pub async fn up(dir: &Path, nodes: &[String], log: &Path, progress: &CreateProgress) -> Result<(), VagrantError> {
    run(dir, &["up", "--provider=libvirt"], nodes, log, progress).await
}

/// `vagrant VERB NODES` for a Vagrant command on machines that exist (`suspend`,
/// `resume`, `halt`), output appended to `log` as [`up`] does.
pub async fn on_machines(dir: &Path, verb: &str, nodes: &[String], log: &Path) -> Result<(), VagrantError> {
    run(dir, &[verb], nodes, log, &crate::provider::no_progress()).await
}

async fn run(
    dir: &Path,
    args: &[&str],
    nodes: &[String],
    log: &Path,
    progress: &CreateProgress,
) -> Result<(), VagrantError> {
    let started = std::time::Instant::now();
    let mut child = vagrant(dir)
        .args(args)
        .arg("--no-color")
        .args(nodes)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let io = |source| VagrantError::Io { path: log.to_owned(), source };
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(log).await.map_err(io)?;
    let stderr = child.stderr.take().expect("piped");
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut text = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push(line);
        }
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut tail = std::collections::VecDeque::new();
    while let Some(line) = lines.next_line().await.map_err(io)? {
        file.write_all(format!("{line}\n").as_bytes()).await.map_err(io)?;
        if let Some((node, step)) = step(&line) {
            progress(node, step);
        }
        if !line.contains("Progress:") {
            tail.push_back(line);
            if tail.len() > TAIL {
                tail.pop_front();
            }
        }
    }
    let status = child.wait().await.map_err(io)?;
    let errors = errors.await.unwrap_or_default();
    for line in &errors {
        file.write_all(format!("{line}\n").as_bytes()).await.map_err(io)?;
    }
    let command = format!("vagrant {} {}", args[0], nodes.join(" "));
    let took = format!("# zerolab: {command} took {:.1}s\n", started.elapsed().as_secs_f64());
    file.write_all(took.as_bytes()).await.map_err(io)?;
    if status.success() {
        return Ok(());
    }
    let tail: Vec<String> = match errors.iter().any(|l| !l.trim().is_empty()) {
        true => errors.into_iter().filter(|l| !l.trim().is_empty()).take(TAIL).collect(),
        false => tail.into_iter().collect(),
    };
    Err(VagrantError::Vagrant { command, tail: tail.join(" / "), log: Some(log.to_owned()) })
}

/// How Vagrant reaches one machine, from `vagrant ssh-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    /// `HostName`.
    pub host: String,
    /// `User`.
    pub user: String,
    /// `Port`.
    pub port: u16,
    /// `IdentityFile`.
    pub identity: PathBuf,
}

/// `vagrant ssh-config NODES...`, once, by machine name.
pub async fn ssh_config(dir: &Path, nodes: &[String]) -> Result<HashMap<String, SshConfig>, VagrantError> {
    let output = vagrant(dir).arg("ssh-config").args(nodes).output().await.map_err(spawn_error)?;
    if !output.status.success() {
        let tail = String::from_utf8_lossy(&output.stderr).lines().take(TAIL).collect::<Vec<_>>().join(" / ");
        return Err(VagrantError::Vagrant { command: "vagrant ssh-config".into(), tail, log: None });
    }
    Ok(parse_ssh_config(&String::from_utf8_lossy(&output.stdout)))
}

/// The `Host` blocks of an OpenSSH client config, by host.
pub fn parse_ssh_config(text: &str) -> HashMap<String, SshConfig> {
    let mut hosts = HashMap::new();
    let mut current: Option<(String, HashMap<String, String>)> = None;
    let mut finish = |block: Option<(String, HashMap<String, String>)>| {
        let Some((name, fields)) = block else { return };
        let get = |key: &str| fields.get(key).cloned();
        if let (Some(host), Some(user), Some(port), Some(identity)) =
            (get("hostname"), get("user"), get("port"), get("identityfile"))
        {
            let identity = PathBuf::from(identity.trim_matches('"'));
            if let Ok(port) = port.parse() {
                hosts.insert(name, SshConfig { host, user, port, identity });
            }
        }
    };
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.split_once(char::is_whitespace) else { continue };
        let key = key.to_ascii_lowercase();
        if key == "host" {
            finish(current.take());
            current = Some((value.trim().to_owned(), HashMap::new()));
        } else if let Some((_, fields)) = current.as_mut() {
            fields.entry(key).or_insert_with(|| value.trim().to_owned());
        }
    }
    finish(current);
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_blocks_are_read_per_machine() {
        let text = "Host n1\n  HostName 10.78.0.2\n  User vagrant\n  Port 22\n  UserKnownHostsFile /dev/null\n  \
                    IdentityFile /labs/vg/vagrant/.vagrant/machines/n1/libvirt/private_key\n  IdentitiesOnly yes\n\n\
                    Host n2\n  HostName 10.78.0.3\n  User vagrant\n  Port 22\n  IdentityFile \"/k 2\"\n";
        let hosts = parse_ssh_config(text);
        assert_eq!(hosts["n1"].host, "10.78.0.2");
        assert_eq!(hosts["n1"].identity, Path::new("/labs/vg/vagrant/.vagrant/machines/n1/libvirt/private_key"));
        assert_eq!((hosts["n2"].user.as_str(), hosts["n2"].port), ("vagrant", 22));
        assert_eq!(hosts["n2"].identity, Path::new("/k 2"));
    }

    #[test]
    fn vagrant_output_lines_become_progress() {
        assert_eq!(step("==> n1: Creating domain with the following settings..."), Some(("n1", CreateStep::Making)));
        assert_eq!(
            step("==> node-2: Waiting for domain to get an IP address..."),
            Some(("node-2", CreateStep::Booting))
        );
        assert_eq!(step("    n1: SSH address: 10.78.0.2:22"), None);
    }
}
