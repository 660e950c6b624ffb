//! Who is asking, and may they: the portal's cookies, CSRF tokens, instructor sessions,
//! the WebSocket origin check and the limit on failed attempts.
//!
//! 1. Attendees are known by their token alone, kept in the `zl_attendee` cookie
//!    (HttpOnly: page scripts never see it; SameSite=Strict: another site's page cannot
//!    send it; Path=/) and checked by the service, which keeps only its hash.
//! 2. The instructor logs in with a password the service checks; the portal then keeps a
//!    random session id (its SHA-256 only, in memory: a restart asks to log in again) in
//!    the `zl_instructor` cookie, Path=/instructor. An attendee token is never a session id
//!    and a session id never an attendee token, so neither cookie opens the other side.
//! 3. Every POST carries a CSRF token: the HMAC-SHA256, under a key made at start, of the
//!    cookie the form acts for (the attendee's token, the instructor's session, or before
//!    either exists the `zl_form` cookie the form page set). A page of another origin can
//!    make the browser post, but it cannot read the token.
//! 4. The terminal's WebSocket is accepted only when its `Origin` is this server (browsers
//!    send cookies with cross-site WebSocket handshakes; the origin is what they cannot
//!    forge).
//! 5. Failed joins and instructor logins are limited per client address (a guessed access
//!    code or password costs a window); successful joins are not (a room joins at once).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use cookie::{Cookie, SameSite};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zerolab_agent_api::Sha256;

/// The attendee's token.
pub const ATTENDEE: &str = "zl_attendee";
/// The instructor's session id.
pub const INSTRUCTOR: &str = "zl_instructor";
/// The anonymous cookie the join and login forms' CSRF tokens are bound to.
pub const FORM: &str = "zl_form";

/// How long an instructor session lasts (a workshop day).
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed attempts allowed per client address and window.
const FAILURES_ALLOWED: u32 = 10;
/// The window failed attempts are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// 128 random bits as 32 hex digits (session ids, form cookies).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on Linux once booted; should it, an id
    // of zeros would be shared by everyone, so stop instead.
    SystemRandom::new().fill(&mut bytes).expect("the system random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for `path`.
pub fn set_cookie(name: &str, value: &str, path: &str) -> String {
    Cookie::build((name, value)).http_only(true).same_site(SameSite::Strict).path(path).build().to_string()
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(name: &str, path: &str) -> String {
    let mut cookie = Cookie::build((name, "")).http_only(true).same_site(SameSite::Strict).path(path).build();
    cookie.make_removal();
    cookie.to_string()
}

/// The `zl_form` cookie a join or login form's CSRF token is bound to: the browser's,
/// or a new one with the `Set-Cookie` value that gives it.
pub fn form_cookie(headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, FORM) {
        Some(bound) if !bound.is_empty() => (bound, None),
        _ => {
            let bound = random_id();
            let set = set_cookie(FORM, &bound, "/");
            (bound, Some(set))
        }
    }
}

/// Makes and checks CSRF tokens (point 3).
pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// A new key, from the system's random source.
    pub fn new() -> Csrf {
        Csrf {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).expect("the system random source failed"),
        }
    }

    /// The token for forms acting for `kind` (`attendee`, `instructor`, `form`) and the
    /// cookie value `bound`.
    pub fn token(&self, kind: &str, bound: &str) -> String {
        let tag = hmac::sign(&self.key, format!("{kind}\0{bound}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// True when `token` is the one for `kind` and `bound` (compared in constant time).
    pub fn check(&self, kind: &str, bound: &str, token: &str) -> bool {
        let Some(tag) = from_hex(token) else { return false };
        hmac::verify(&self.key, format!("{kind}\0{bound}").as_bytes(), &tag).is_ok()
    }
}

/// Bytes from hex digits; `None` for anything else.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The instructor's sessions (point 2): hashes of their ids, with their expiry.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// A new session; returns its id (for the cookie).
    pub fn open(&self) -> String {
        let id = random_id();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, expiry| *expiry > now);
        live.insert(hash(&id), now + SESSION_TTL);
        id
    }

    /// True when `id` is a live session.
    pub fn valid(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(&hash(id)).is_some_and(|expiry| *expiry > Instant::now())
    }
}

/// The SHA-256 of a secret, as kept in memory.
fn hash(secret: &str) -> String {
    Sha256::of_bytes(secret.as_bytes()).to_string()
}

/// Failed attempts per client address (point 5).
#[derive(Default)]
pub struct Failures {
    counts: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl Failures {
    /// False when `client` used up its failures in the current window.
    pub fn allowed(&self, client: Option<IpAddr>) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        match counts.get(&client) {
            Some((start, n)) => start.elapsed() >= FAILURE_WINDOW || *n < FAILURES_ALLOWED,
            None => true,
        }
    }

    /// Counts a failed attempt by `client`.
    pub fn failed(&self, client: Option<IpAddr>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        let entry = counts.entry(client).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }
}

/// True when the request's `Origin` is this server, as named by its `Host` (point 4).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(origin), Some(host)) = (header(header::ORIGIN), header(header::HOST)) else {
        return false;
    };
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

/// The client's address, when the server was started with connect info (as
/// [`super::serve`] does); `None` otherwise, so all clients then share one count.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn csrf_tokens_are_bound_to_kind_and_cookie() {
        let csrf = Csrf::new();
        let token = csrf.token("attendee", "abc");
        assert!(csrf.check("attendee", "abc", &token));
        assert!(!csrf.check("attendee", "abd", &token));
        assert!(!csrf.check("instructor", "abc", &token));
        assert!(!csrf.check("attendee", "abc", ""));
        assert!(!csrf.check("attendee", "abc", "zz"));
        assert!(!Csrf::new().check("attendee", "abc", &token), "another key");
    }

    #[test]
    fn sessions_know_only_their_ids() {
        let sessions = Sessions::default();
        let id = sessions.open();
        assert!(sessions.valid(&id));
        assert!(!sessions.valid(&random_id()));
        assert!(!sessions.valid(""));
    }

    #[test]
    fn failures_are_limited_per_client() {
        let failures = Failures::default();
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..FAILURES_ALLOWED {
            assert!(failures.allowed(a));
            failures.failed(a);
        }
        assert!(!failures.allowed(a));
        assert!(failures.allowed(Some(IpAddr::from([10, 0, 0, 2]))));
    }

    #[test]
    fn origin_must_be_this_server() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("10.0.0.1:8080"));
        assert!(!same_origin(&headers), "no origin");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://10.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&headers));
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let value = set_cookie(ATTENDEE, "t0k", "/");
        assert!(value.contains("HttpOnly") && value.contains("SameSite=Strict") && value.contains("Path=/"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; zl_attendee=t0k; b=2"));
        assert_eq!(cookie(&headers, ATTENDEE).as_deref(), Some("t0k"));
        assert_eq!(cookie(&headers, INSTRUCTOR), None);
    }
}
