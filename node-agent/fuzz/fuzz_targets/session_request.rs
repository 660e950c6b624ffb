//! Fuzz target: a `POST /v1/sessions` body, through every check the agent makes
//! before a session exists.
//!
//! JSON into `SessionRequest` (as the handler does), then the number checks, the
//! channel checks and the device checks (against an empty blob store). Any bytes must
//! give a request or an error, never a panic; an accepted request must survive a JSON
//! round trip unchanged.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use zerolab_agent::api::SessionRequest;
use zerolab_agent::blobs::Blobs;
use zerolab_agent::{channels, devices, sessions};

fn blobs() -> &'static Blobs {
    static BLOBS: OnceLock<(tempfile::TempDir, Blobs)> = OnceLock::new();
    &BLOBS
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let blobs = Blobs::open(dir.path().join("blobs")).unwrap();
            (dir, blobs)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<SessionRequest>(data) else { return };
    let again: SessionRequest = serde_json::from_slice(&serde_json::to_vec(&req).unwrap()).unwrap();
    assert_eq!(req, again, "a JSON round trip changed the request");
    let _ = sessions::check_numbers(&req);
    let _ = channels::spec::check(&req.channels, req.channel_wait_secs);
    let _ = devices::check(&req, blobs(), true);
});
