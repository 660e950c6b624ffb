//! The instructor's side: login, the table of attendees with live updates, the actions
//! (reset, extend, shelve, unshelve) and the CSV export.
//!
//! Everything under `/instructor/` except the login needs the instructor's session
//! cookie; an attendee's cookie is not one (see `auth.rs`). Without a session the page is
//! the login form, the data routes answer 401.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Redirect, Response};
use futures_util::stream::Stream;
use minijinja::context;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::attendee::duration;
use super::auth::{self, ClientIp, FORM, INSTRUCTOR};
use super::pages::{INSTRUCTOR as PAGE, LOGIN};
use super::{Portal, Shared};
use crate::workshop::{AttendeeId, Overview, WorkshopEvent};

/// How often the live table is sent even when nothing happened (time left and idle
/// times move on their own).
const TICK: Duration = Duration::from_secs(5);

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    password: String,
}

/// An action on one attendee.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    id: String,
    action: String,
}

/// `GET /instructor`: the table, or the login form without a session.
pub async fn page(State(portal): Shared, headers: HeaderMap) -> Response {
    match session(&portal, &headers) {
        Some(id) => portal.pages.render(PAGE, context! { csrf => portal.csrf.token("instructor", &id) }),
        None => login_page(&portal, &headers, None),
    }
}

/// `POST /instructor/login`.
pub async fn login(
    State(portal): Shared,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let bound = auth::cookie(&headers, FORM).unwrap_or_default();
    if bound.is_empty() || !portal.csrf.check("form", &bound, &form.csrf) {
        return login_page(&portal, &headers, Some("the form had expired; please try again"));
    }
    if !portal.login_failures.allowed(client) {
        return login_page(&portal, &headers, Some("too many wrong passwords from this address; wait a minute"));
    }
    if !portal.workshop.instructor_login(&form.password) {
        portal.login_failures.failed(client);
        return login_page(&portal, &headers, Some("wrong password"));
    }
    let id = portal.sessions.open();
    ([(header::SET_COOKIE, auth::set_cookie(INSTRUCTOR, &id, "/instructor"))], Redirect::to("/instructor"))
        .into_response()
}

/// `GET /instructor/overview`: the table as JSON.
pub async fn overview(State(portal): Shared, headers: HeaderMap) -> Response {
    if session(&portal, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(table(&portal.workshop.overview().await)).into_response()
}

/// `GET /instructor/events`: the table whenever the workshop changes, and every [`TICK`].
pub async fn events(State(portal): Shared, headers: HeaderMap) -> Response {
    if session(&portal, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let events = portal.workshop.events();
    let stream = live(portal, events);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// The table, sent at once, then after every event (a burst sent once) or tick.
fn live(
    portal: std::sync::Arc<Portal>,
    events: tokio::sync::broadcast::Receiver<WorkshopEvent>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let tick = tokio::time::interval(TICK);
    futures_util::stream::unfold((portal, events, tick, true), |(portal, mut events, mut tick, first)| async move {
        if !first {
            tokio::select! {
                received = events.recv() => {
                    if let Err(RecvError::Closed) = received {
                        return None;
                    }
                    // Whatever else arrived meanwhile is in the table sent now.
                    while events.try_recv().is_ok() {}
                }
                _ = tick.tick() => {}
            }
        }
        let data = table(&portal.workshop.overview().await).to_string();
        Some((Ok(Event::default().event("overview").data(data)), (portal, events, tick, false)))
    })
}

/// `POST /instructor/action`: `reset`, `extend`, `shelve` or `unshelve` attendee `id`.
pub async fn action(State(portal): Shared, headers: HeaderMap, Form(form): Form<ActionForm>) -> Response {
    let Some(session) = session(&portal, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !portal.csrf.check("instructor", &session, &form.csrf) {
        return (StatusCode::FORBIDDEN, "the page had expired; reload it").into_response();
    }
    let Ok(id) = form.id.parse::<AttendeeId>() else {
        return (StatusCode::BAD_REQUEST, "no such attendee").into_response();
    };
    let workshop = &portal.workshop;
    let done = match form.action.as_str() {
        "reset" => workshop.reset(id).await,
        "extend" => workshop.extend(id, None).await,
        "shelve" => workshop.shelve(id).await,
        "unshelve" => workshop.unshelve(id).await,
        _ => return (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    };
    match done {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

/// `GET /instructor/attendees.csv`.
pub async fn csv(State(portal): Shared, headers: HeaderMap) -> Response {
    if session(&portal, &headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let disposition = "attachment; filename=\"attendees.csv\"";
    (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8"), (header::CONTENT_DISPOSITION, disposition)],
        portal.workshop.csv().await,
    )
        .into_response()
}

/// The instructor's session id, when the cookie holds a live one.
fn session(portal: &Portal, headers: &HeaderMap) -> Option<String> {
    auth::cookie(headers, INSTRUCTOR).filter(|id| portal.sessions.valid(id))
}

/// The login form, with a fresh `zl_form` cookie when the browser has none.
fn login_page(portal: &Portal, headers: &HeaderMap, error: Option<&str>) -> Response {
    let (bound, set) = auth::form_cookie(headers);
    let mut response = portal.pages.render(LOGIN, context! { csrf => portal.csrf.token("form", &bound), error });
    if let Some(set) = set {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set.parse().expect("a cookie of hex digits is a valid header"));
    }
    response
}

/// The table as the page's script reads it.
fn table(overview: &Overview) -> serde_json::Value {
    let rows: Vec<_> = overview
        .rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "id": row.id.to_string(),
                "name": row.name,
                "lab": row.lab,
                "state": row.state.map(|state| state.as_str()),
                "step": format!("{}/{}", row.step + 1, row.steps),
                "activity": format!("{} ago", duration(row.idle_for)),
                "time_left": row.time_left.map(duration),
                "queued": row.queued,
            })
        })
        .collect();
    serde_json::json!({ "attendees": rows, "pool": overview.pool })
}
