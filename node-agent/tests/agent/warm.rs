//! Warm daemons (`warm: true`): the first request starts the daemon (its
//! start-up reads the `input` device), later requests with the same program
//! and inputs run as copies of it on their own stdin, skipping the start-up:
//! they see what the start-up read even after the input file changed.

use zerolab_agent::api::{self, DeviceName, DeviceSource, DeviceSpec};

use crate::harness::{guest, Agent};

const GUEST: &str = "node-agent/tests/guests/warm.c";

#[tokio::test]
async fn warm_sessions_run_as_copies_of_one_daemon() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.txt");
    std::fs::write(&input, "first").unwrap();
    let program = agent.upload(guest(GUEST)).await;
    let request = |stdin: &api::Sha256, warm: bool| api::SessionRequest {
        devices: vec![
            DeviceSpec {
                name: DeviceName::Input,
                source: DeviceSource::Node { path: input.display().to_string(), sha256: None },
            },
            DeviceSpec { name: DeviceName::Stdin, source: DeviceSource::Blob { sha256: *stdin } },
        ],
        timeout: 20,
        warm,
        ..api::SessionRequest::new(program)
    };
    for (i, stdin) in ["one", "two", "three"].iter().enumerate() {
        let blob = agent.upload(stdin.as_bytes().to_vec()).await;
        let id = agent.start_session(&request(&blob, true)).await;
        let report = agent.wait(&id).await;
        assert_eq!((report.exit_state.as_str(), report.user_code), ("ok", 0), "{report:?}");
        assert_eq!(agent.stdout(&id).await, format!("init read: first stdin: {stdin}\n"), "session {i}");
        // The daemon started once: what it read stays, whatever the file says now.
        std::fs::write(&input, "changed").unwrap();
    }
    let blob = agent.upload(b"cold".to_vec()).await;
    let id = agent.start_session(&request(&blob, false)).await;
    let report = agent.wait(&id).await;
    assert_eq!(report.user_code, 3, "without warm the guest is no daemon: {report:?}");
    assert_eq!(agent.stdout(&id).await, "no fork\n");
}
