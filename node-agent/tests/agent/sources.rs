//! `node:` device paths are channel sources like a manifest's (issue 9, classes 1
//! and 2): the agent's own `/proc/self/environ` as an input and a `/proc` file as
//! an output are refused with code 93, and so are another user's symbolic links
//! in a sticky world-writable directory (as root); the file behind such a link is
//! neither read into the guest nor truncated. Root's links there still work.

use std::fs;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

use zerolab_agent::api::{self, DeviceName, DeviceSource, DeviceSpec};

use crate::harness::{guest, Agent};

const GUEST: &str = "node-agent/tests/guests/devices.c";
const SECRET: &str = "the agent's secret\n";
const PRECIOUS: &str = "the agent's precious data\n";

fn node(name: DeviceName, path: &Path) -> DeviceSpec {
    DeviceSpec { name, source: DeviceSource::Node { path: path.display().to_string(), sha256: None } }
}

fn request(program: api::Sha256, devices: Vec<DeviceSpec>) -> api::SessionRequest {
    api::SessionRequest { devices, timeout: 20, ..api::SessionRequest::new(program) }
}

/// Runs the devices guest (stdin to stdout) with `devices`; the report.
async fn run(agent: &Agent, program: &api::Sha256, devices: Vec<DeviceSpec>) -> (String, api::Report) {
    let id = agent.start_session(&request(*program, devices)).await;
    (id.clone(), agent.wait(&id).await)
}

#[track_caller]
fn assert_refused(report: &api::Report, what: &[&str]) {
    assert_eq!(report.return_code, 93, "{report:?}");
    assert_eq!(report.validator, 2, "the guest never ran: {report:?}");
    for w in what {
        assert!(report.exit_state.contains(w), "{w:?} not in {report:?}");
    }
}

#[tokio::test]
async fn node_paths_under_proc_are_refused() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let environ = Path::new("/proc/self/environ");
    let (id, report) = run(&agent, &program, vec![node(DeviceName::Stdin, environ)]).await;
    assert_refused(&report, &["device stdin: /proc/self/environ is on procfs"]);
    assert_eq!(agent.stdout(&id).await, "", "the agent's environment reached the guest");

    // An output: the agent's own process name, of all things.
    let comm = Path::new("/proc/self/comm");
    let (_, report) = run(&agent, &program, vec![node(DeviceName::Stdout, comm)]).await;
    assert_refused(&report, &["device stdout: /proc/self/comm is on procfs"]);
    let (_, report) = run(&agent, &program, vec![node(DeviceName::Input, Path::new("/dev/kmsg"))]).await;
    assert_refused(&report, &["device input: /dev/kmsg is the character device 1:11"]);
}

#[tokio::test]
async fn another_users_links_in_a_sticky_directory_are_not_followed() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED another_users_links_in_a_sticky_directory_are_not_followed: needs root (CI runs as root)");
        return;
    }
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let dir = tempfile::tempdir().unwrap();
    let (secret, target, shared) = (dir.path().join("secret"), dir.path().join("target"), dir.path().join("shared"));
    fs::write(&secret, SECRET).unwrap();
    fs::write(&target, PRECIOUS).unwrap();
    for f in [&secret, &target] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let link = |to: &Path, name: &str, owner: u32| {
        let at = shared.join(name);
        symlink(to, &at).unwrap();
        lchown(&at, Some(owner), Some(owner)).unwrap();
        at
    };
    let (input, output) = (link(&secret, "input", 65534), link(&target, "output", 65534));

    let devices = vec![node(DeviceName::Stdin, &input), node(DeviceName::Stdout, &output)];
    let (_, report) = run(&agent, &program, devices).await;
    let shown = format!("goes through the symbolic link {}, owned by uid 65534", input.display());
    assert_refused(&report, &[&shown, "sticky world-writable directory"]);
    assert_eq!(fs::read_to_string(&target).unwrap(), PRECIOUS, "the target was truncated");
    let (_, report) = run(&agent, &program, vec![node(DeviceName::Output, &output)]).await;
    assert_refused(&report, &[&format!("the symbolic link {}", output.display())]);
    assert_eq!(fs::read_to_string(&target).unwrap(), PRECIOUS, "the target was truncated");

    // Root's own links in the same directory are followed.
    let (input, output) = (link(&secret, "root-input", 0), link(&target, "root-output", 0));
    let devices = vec![node(DeviceName::Stdin, &input), node(DeviceName::Stdout, &output)];
    let (_, report) = run(&agent, &program, devices).await;
    assert_eq!((report.return_code, report.exit_state.as_str()), (0, "ok"), "{report:?}");
    assert_eq!(fs::read_to_string(&target).unwrap(), SECRET, "copied through root's links");
}
