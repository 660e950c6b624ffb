//! The attendee's side: join, the personal link, the lab page or the queue page, the
//! state the pages refresh from, Check, and adding an SSH key.
//!
//! A request without a valid attendee cookie gets the join form (a forged or expired
//! token included: its cookie is removed), never an error page; a full workshop is a
//! queue page. Page loads and refreshes count as activity (`touch`).

use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::auth::{self, ClientIp, ATTENDEE, FORM};
use super::pages::{JOIN, LAB, QUEUE};
use super::{Portal, Shared};
use crate::workshop::{AttendeeView, JoinError, SshAccess};

/// The join form's fields.
#[derive(Deserialize)]
pub struct JoinForm {
    csrf: String,
    code: String,
    name: String,
}

/// A form that only proves itself (Check).
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// The SSH key form.
#[derive(Deserialize)]
pub struct KeyForm {
    csrf: String,
    key: String,
}

/// `GET /`: the lab page, the queue page, or the join form.
pub async fn home(State(portal): Shared, headers: HeaderMap) -> Response {
    let Some((token, view)) = attendee(&portal, &headers).await else {
        return join_page(&portal, &headers, None, "");
    };
    portal.workshop.touch(&token).await;
    attendee_page(&portal, &headers, &token, &view, None)
}

/// `POST /join`: a new attendee (or the join form again, saying why not).
pub async fn join(
    State(portal): Shared,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Form(form): Form<JoinForm>,
) -> Response {
    let bound = auth::cookie(&headers, FORM).unwrap_or_default();
    if bound.is_empty() || !portal.csrf.check("form", &bound, &form.csrf) {
        return join_page(&portal, &headers, Some("the form had expired; please try again"), &form.name);
    }
    if !portal.join_failures.allowed(client) {
        let message = "too many wrong access codes from this address; wait a minute and try again";
        return join_page(&portal, &headers, Some(message), &form.name);
    }
    match portal.workshop.join(&form.code, &form.name).await {
        Ok(joined) => {
            let cookie = auth::set_cookie(ATTENDEE, &joined.token, "/");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(JoinError::BadCode) => {
            portal.join_failures.failed(client);
            join_page(&portal, &headers, Some("that is not the access code; ask the instructor"), &form.name)
        }
        Err(e) => join_page(&portal, &headers, Some(&e.to_string()), &form.name),
    }
}

/// `GET /l/TOKEN`: the personal link sets the cookie (in this browser too) and shows the
/// lab at `/` (so the token leaves the address bar); an unknown token gets the join form.
pub async fn link(State(portal): Shared, Path(token): Path<String>) -> Response {
    if portal.workshop.view(&token).await.is_none() {
        return ([(header::SET_COOKIE, auth::clear_cookie(ATTENDEE, "/"))], Redirect::to("/")).into_response();
    }
    ([(header::SET_COOKIE, auth::set_cookie(ATTENDEE, &token, "/"))], Redirect::to("/")).into_response()
}

/// `GET /api/view`: the attendee's state as JSON (401 without a valid cookie).
pub async fn view(State(portal): Shared, headers: HeaderMap) -> Response {
    match attendee(&portal, &headers).await {
        Some((_, view)) => Json(view_json(&view)).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// `POST /check`: runs the check scripts now; answers with the new state.
pub async fn check(State(portal): Shared, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let token = match guarded(&portal, &headers, &form.csrf).await {
        Ok(token) => token,
        Err(refusal) => return refusal,
    };
    match portal.workshop.check(&token).await {
        Ok(view) => Json(view_json(&view)).into_response(),
        Err(e) => (StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

/// `POST /ssh-key`: adds the attendee's public key; answers with the `ssh` command.
pub async fn ssh_key(State(portal): Shared, headers: HeaderMap, Form(form): Form<KeyForm>) -> Response {
    let token = match guarded(&portal, &headers, &form.csrf).await {
        Ok(token) => token,
        Err(refusal) => return refusal,
    };
    match portal.workshop.add_ssh_key(&token, form.key.trim()).await {
        Ok(access) => Json(serde_json::json!({ "ssh": ssh_command(&access) })).into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    }
}

/// The attendee's token and view, when the cookie holds a token the service knows.
pub(super) async fn attendee(portal: &Portal, headers: &HeaderMap) -> Option<(String, AttendeeView)> {
    let token = auth::cookie(headers, ATTENDEE)?;
    let view = portal.workshop.view(&token).await?;
    Some((token, view))
}

/// The token of a POST from the attendee's own page: a valid cookie and its CSRF token.
async fn guarded(portal: &Portal, headers: &HeaderMap, csrf: &str) -> Result<String, Response> {
    let Some((token, _)) = attendee(portal, headers).await else {
        return Err((StatusCode::UNAUTHORIZED, "not joined; open the portal's front page").into_response());
    };
    if !portal.csrf.check("attendee", &token, csrf) {
        return Err((StatusCode::FORBIDDEN, "the page had expired; reload it").into_response());
    }
    Ok(token)
}

/// The join form, with a fresh `zl_form` cookie when the browser has none (the old
/// attendee cookie, if any, removed: it named no attendee).
fn join_page(portal: &Portal, headers: &HeaderMap, error: Option<&str>, name: &str) -> Response {
    let (bound, set) = auth::form_cookie(headers);
    let csrf = portal.csrf.token("form", &bound);
    let mut response = portal.pages.render(JOIN, context! { csrf, error, name });
    let cookies = response.headers_mut();
    if let Some(set) = set {
        cookies.append(header::SET_COOKIE, set.parse().expect("a cookie of hex digits is a valid header"));
    }
    if auth::cookie(headers, ATTENDEE).is_some() {
        let clear = auth::clear_cookie(ATTENDEE, "/");
        cookies.append(header::SET_COOKIE, clear.parse().expect("a removal cookie is a valid header"));
    }
    response
}

/// The lab page, or the queue page when the attendee has no lab yet.
fn attendee_page(
    portal: &Portal,
    headers: &HeaderMap,
    token: &str,
    view: &AttendeeView,
    ssh_error: Option<&str>,
) -> Response {
    let csrf = portal.csrf.token("attendee", token);
    let link = personal_link(headers, token);
    let Some(lab) = &view.lab else {
        let (position, estimate) = view.queue.unwrap_or((1, Duration::ZERO));
        return portal
            .pages
            .render(QUEUE, context! { csrf, link, name => &view.name, position, estimate => duration(estimate) });
    };
    let current = view.step;
    let step_html = view.steps.get(current).map(|step| step.html.clone()).unwrap_or_default();
    let steps: Vec<_> = view.steps.iter().map(|step| context! { title => &step.title, done => step.done }).collect();
    portal.pages.render(
        LAB,
        context! {
            csrf, link, current, step_html, steps,
            name => &view.name,
            lab => &lab.name,
            nodes => &lab.nodes,
            state => lab.state.as_str(),
            notice => view.notice.as_deref().unwrap_or_default(),
            ssh => view.ssh.as_ref().map(ssh_command).unwrap_or_default(),
            ssh_error => ssh_error.unwrap_or_default(),
            time_left => view.time_left.map(duration).unwrap_or_default(),
            time_left_seconds => view.time_left.map(|t| t.as_secs().to_string()).unwrap_or_default(),
        },
    )
}

/// The page's state as the scripts read it.
fn view_json(view: &AttendeeView) -> serde_json::Value {
    let steps: Vec<_> = view
        .steps
        .iter()
        .map(|step| serde_json::json!({ "title": step.title, "html": step.html, "done": step.done }))
        .collect();
    serde_json::json!({
        "name": view.name,
        "lab": view.lab.as_ref().map(|lab| lab.name.clone()),
        "nodes": view.lab.as_ref().map(|lab| lab.nodes.clone()).unwrap_or_default(),
        "state": view.lab.as_ref().map(|lab| lab.state.as_str()),
        "queue": view.queue.map(|(position, estimate)| serde_json::json!({
            "position": position, "estimate": duration(estimate),
        })),
        "step": view.step,
        "steps": steps,
        "time_left": view.time_left.map(|t| t.as_secs()),
        "ssh": view.ssh.as_ref().map(ssh_command),
        "notice": view.notice,
    })
}

/// `ssh -p PORT USER@HOST`.
fn ssh_command(access: &SshAccess) -> String {
    format!("ssh -p {} {}@{}", access.port, access.user, access.host)
}

/// The personal link as this browser reached the portal (`http://HOST/l/TOKEN`).
fn personal_link(headers: &HeaderMap, token: &str) -> String {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/l/{token}")
}

/// `1h 05m`, `4m 10s`, `12s`.
pub(super) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(250)), "4m 10s");
        assert_eq!(duration(Duration::from_secs(3900)), "1h 05m");
    }
}
