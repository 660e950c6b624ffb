//! The workshop portal, end to end: a real workshop (netns labs; the service and the
//! portal in the test's process, as `zerolab workshop serve` runs them) driven over HTTP
//! and WebSocket
//! (`security.rs`: what one attendee's cookie, link and socket can reach, the instructor's
//! door, CSRF, origin, limits) and in headless Chromium through chromedriver
//! (`browser.rs`: join, type in the terminal, the instructor's live table, reset, the
//! queue), and the warm terminals (`warm.rs`: each lab's own, single use, gone with a
//! reset or a shelve, none left after down). Root only (netns labs); each test skips,
//! saying why, when root, the agent, chromedriver or the fetched xterm.js is missing.

mod browser;
mod harness;
mod security;
mod warm;
