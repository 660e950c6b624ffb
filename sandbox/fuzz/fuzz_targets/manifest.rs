//! Fuzz target: manifest text, as `zvsh --manifest` and the runtime read it.
//!
//! Any bytes must give a manifest or a `ManifestError`, never a panic. An accepted
//! manifest must pass `validate`, survive `render` and a second parse unchanged, and
//! hold only numbers the runtime can use (`now + Timeout` is representable).

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use zerolab_sandbox::manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = manifest::parse(data) else { return };
    m.validate().expect("a parsed manifest validates");
    assert!(Instant::now().checked_add(Duration::from_secs(m.timeout)).is_some(), "Timeout {}", m.timeout);
    assert!((1..=manifest::MAX_MEMORY).contains(&m.memory), "Memory {}", m.memory);
    let text = m.render();
    let again = manifest::parse(text.as_bytes()).expect("a rendered manifest parses");
    // Lines differ (render writes its own layout); everything else must not.
    let strip = |mut m: manifest::Manifest| {
        m.channels.iter_mut().for_each(|c| c.line = 0);
        m
    };
    assert_eq!(strip(m), strip(again), "render then parse changed the manifest:\n{text}");
});
