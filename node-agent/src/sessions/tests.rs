//! Unit tests of the session table: what a request is refused for, unknown ids, a bad
//! program ending in a failed report, and ids left by an earlier run.

use super::*;

fn sessions() -> (tempfile::TempDir, Sessions) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Blobs::open(dir.path().join("blobs")).unwrap();
    let s = Sessions::new(dir.path().join("sessions"), blobs, None, Options::default()).unwrap();
    (dir, s)
}

#[test]
fn refuses_unknown_program_blob() {
    let (_d, s) = sessions();
    let err = s.start(&api::SessionRequest::new(api::Sha256::of_bytes(b"never stored"))).unwrap_err();
    assert!(matches!(err, SessionsError::Devices(DevicesError::Blob(BlobError::Missing(_)))), "{err}");
}

#[test]
fn refuses_zero_timeout() {
    let (_d, s) = sessions();
    let name = api::Sha256::of_bytes(b"x");
    s.shared.blobs.put(&name, b"x").unwrap();
    let req = api::SessionRequest { timeout: 0, ..api::SessionRequest::new(name) };
    assert!(matches!(s.start(&req), Err(SessionsError::BadRequest(_))));
}

/// Issue 9: numbers the runtime cannot represent are refused with the request,
/// before a session exists (memory was not checked at all).
#[test]
fn refuses_memory_and_timeout_the_runtime_cannot_represent() {
    let (_d, s) = sessions();
    let name = api::Sha256::of_bytes(b"x");
    s.shared.blobs.put(&name, b"x").unwrap();
    let base = api::SessionRequest::new(name);
    for (req, needle) in [
        (api::SessionRequest { memory: u64::MAX, ..base.clone() }, "memory 18446744073709551615 is out of range"),
        (api::SessionRequest { memory: 0, ..base.clone() }, "memory 0 is out of range"),
        (api::SessionRequest { memory: MAX_MEMORY + 1, ..base.clone() }, "give 1 to 4294967296 bytes"),
        (api::SessionRequest { timeout: u64::MAX, ..base.clone() }, "timeout 18446744073709551615"),
        (api::SessionRequest { timeout: i64::MAX as u64, ..base.clone() }, "give 1 to 86400 seconds"),
    ] {
        match s.start(&req) {
            Err(SessionsError::BadRequest(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("memory {} timeout {}: {other:?}", req.memory, req.timeout),
        }
    }
    assert!(s.list().sessions.is_empty(), "a refused request left a session");
}

#[test]
fn refuses_channels_without_a_hub() {
    let (_d, s) = sessions();
    let name = api::Sha256::of_bytes(b"x");
    s.shared.blobs.put(&name, b"x").unwrap();
    let channel = api::ChannelSpec {
        alias: "/dev/in/a".into(),
        direction: api::ChannelDirection::In,
        job: "j".into(),
        channel: "a>b".into(),
        key: "00".repeat(32),
        peer: api::ChannelPeer::Local,
    };
    let req = api::SessionRequest { channels: vec![channel], ..api::SessionRequest::new(name) };
    assert!(matches!(s.start(&req), Err(SessionsError::NoHub)));
    assert!(s.list().sessions.is_empty());
}

#[test]
fn unknown_session_is_an_error_for_every_call() {
    let (_d, s) = sessions();
    assert!(matches!(s.status("nope"), Err(SessionsError::Unknown(_))));
    assert!(matches!(s.kill("nope"), Err(SessionsError::Unknown(_))));
    assert!(matches!(s.output("nope", Output::Stdout), Err(SessionsError::Unknown(_))));
}

#[test]
fn bad_executable_ends_in_a_failed_report_not_a_crash() {
    let (_d, s) = sessions();
    let name = api::Sha256::of_bytes(b"not an elf");
    s.shared.blobs.put(&name, b"not an elf").unwrap();
    let id = s.start(&api::SessionRequest::new(name)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        if let Some(r) = s.status(&id).unwrap().report {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "session never ended");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(report.return_code, ReturnCode::BadExecutable.code());
    assert_eq!(s.list().sessions.len(), 1);
}

#[test]
fn skips_ids_left_by_an_earlier_run() {
    let (_d, s) = sessions();
    let taken = s.new_id();
    s.next.store(1, Ordering::Relaxed);
    std::fs::create_dir(s.dir.join(&taken)).unwrap();
    let (id, _) = s.new_dir().unwrap();
    assert_ne!(id, taken);
}
