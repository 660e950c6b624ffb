//! The workshop's web portal: every HTTP route of `zerolab workshop serve`.
//!
//! Attendees (`attendee.rs`): `GET /` (the join form, the lab page or the queue page),
//! `POST /join`, `GET /l/TOKEN` (the personal link: sets the cookie, returns the same
//! lab), `GET /api/view` (what the pages refresh from), `POST /check`, `POST /ssh-key`;
//! `GET /term` is the terminal's WebSocket (`terminal.rs`: bytes between xterm.js and a
//! shell on a pseudo-terminal of the attendee's node, over the lab's SSH key).
//! The instructor (`instructor.rs`): `GET /instructor` (login or the table),
//! `POST /instructor/login`, `GET /instructor/overview`, `GET /instructor/events`
//! (Server-Sent Events: the table again whenever the workshop changes, and every few
//! seconds), `POST /instructor/action` (reset, extend, shelve, unshelve),
//! `GET /instructor/attendees.csv`. `GET /assets/NAME`: the pages' scripts and styles
//! ([`Assets`]), nothing from the internet.
//!
//! Every decision is the [`Workshop`] service's; the portal only renders pages
//! (`pages.rs`, `templates/portal-*.html.j2`, every value escaped) and guards the doors
//! (`auth.rs`: cookies, CSRF, sessions, origin, failed attempts). Every response carries
//! the security headers of `security_headers`; request bodies are limited to
//! [`BODY_LIMIT`]. Tokens never reach a log.

mod assets;
mod attendee;
mod auth;
mod instructor;
mod pages;
mod terminal;

pub use assets::{Assets, AssetsError};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::Workshop;

/// The largest request body accepted (an SSH public key fits many times over).
pub const BODY_LIMIT: usize = 16 * 1024;

/// What every handler shares.
struct Portal {
    workshop: Arc<Workshop>,
    assets: Assets,
    pages: pages::Pages,
    csrf: auth::Csrf,
    sessions: auth::Sessions,
    join_failures: auth::Failures,
    login_failures: auth::Failures,
}

type Shared = State<Arc<Portal>>;

/// The portal's routes over `workshop`, serving `assets`.
pub fn router(workshop: Arc<Workshop>, assets: Assets) -> Router {
    let portal = Arc::new(Portal {
        workshop,
        assets,
        pages: pages::Pages::new(),
        csrf: auth::Csrf::new(),
        sessions: auth::Sessions::default(),
        join_failures: auth::Failures::default(),
        login_failures: auth::Failures::default(),
    });
    Router::new()
        .route("/", get(attendee::home))
        .route("/join", post(attendee::join))
        .route("/l/{token}", get(attendee::link))
        .route("/api/view", get(attendee::view))
        .route("/check", post(attendee::check))
        .route("/ssh-key", post(attendee::ssh_key))
        .route("/term", get(terminal::upgrade))
        .route("/instructor", get(instructor::page))
        .route("/instructor/login", post(instructor::login))
        .route("/instructor/overview", get(instructor::overview))
        .route("/instructor/events", get(instructor::events))
        .route("/instructor/action", post(instructor::action))
        .route("/instructor/attendees.csv", get(instructor::csv))
        .route("/assets/{name}", get(asset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(security_headers))
        .with_state(portal)
}

/// Serves the portal on `listener` until `shutdown` completes, with each client's
/// address known to the handlers (the failed-attempt limits count per address).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// `GET /assets/NAME`.
async fn asset(State(portal): Shared, Path(name): Path<String>) -> Response {
    match portal.assets.get(&name) {
        Some((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The headers every response gets:
/// 1. `Content-Security-Policy`: scripts, connections, images, forms only from this
///    server; no framing. Styles also allow inline `<style>` elements, because xterm.js
///    makes its size and theme rules as one (scripts stay strictly `'self'`).
/// 2. `X-Frame-Options: DENY` for browsers without `frame-ancestors`.
/// 3. `X-Content-Type-Options: nosniff`: files are only what their type says.
/// 4. `Referrer-Policy: no-referrer`: a personal link's token never leaves in a Referer.
/// 5. `Cache-Control: no-store` on everything but the assets: pages hold personal data.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
               connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
