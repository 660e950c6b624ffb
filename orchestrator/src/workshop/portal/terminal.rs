//! The browser terminal: `GET /term` upgrades to a WebSocket that carries bytes between
//! xterm.js and a login shell on a pseudo-terminal (`xterm-256color`) of the attendee's
//! node, reached over SSH with the lab's key and pinned host keys (what `zerolab ssh`
//! uses), as the service's `open_terminal()` gives it: the lab's warm terminal (made
//! ahead, its prompt replayed here) when it has one, else a new connection.
//!
//! Frames: binary both ways are terminal bytes; a text frame from the browser is a
//! resize, `{"cols":C,"rows":R}`. The socket closes when the shell ends, when the
//! browser goes, or when the attendee's lab is no longer the one it was opened on
//! (reset, replaced, expired: the page reconnects to the new one). Refused before the
//! upgrade: another `Origin` (403), no attendee (401). Failures after it (the node
//! unreachable) are written into the terminal as one line, then the socket closes.
//! Keystrokes count as activity (`touch`, at most every [`TOUCH_EVERY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use russh::ChannelMsg;
use serde::Deserialize;

use super::attendee::attendee;
use super::auth;
use super::{Portal, Shared};

/// How often typing counts as activity.
const TOUCH_EVERY: Duration = Duration::from_secs(10);
/// How often the socket checks that the attendee's lab is still the one it serves.
const LAB_CHECK: Duration = Duration::from_secs(2);

/// The upgrade's query: which node, and the terminal's first size.
#[derive(Deserialize)]
pub struct TermQuery {
    node: Option<String>,
    cols: Option<u32>,
    rows: Option<u32>,
}

/// A resize from the browser.
#[derive(Deserialize)]
struct Resize {
    cols: u32,
    rows: u32,
}

/// `GET /term`: the WebSocket, for the attendee's own lab only and only from this origin.
pub async fn upgrade(
    State(portal): Shared,
    headers: HeaderMap,
    Query(query): Query<TermQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !auth::same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "the terminal opens only from the portal's own pages").into_response();
    }
    let Some((token, view)) = attendee(&portal, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "not joined; open the portal's front page").into_response();
    };
    let Some(lab) = view.lab.map(|lab| lab.name) else {
        return (StatusCode::CONFLICT, "no lab yet: you are in the queue").into_response();
    };
    ws.on_upgrade(move |socket| async move {
        let mut socket = socket;
        if let Err(message) = bridge(&portal, &token, &lab, query, &mut socket).await {
            let line = format!("\r\n[zerolab] {message}\r\n");
            let _ = socket.send(Message::Binary(line.into_bytes().into())).await;
        }
        let _ = socket.send(Message::Close(None)).await;
    })
}

/// Connects to the node and carries bytes until one side ends; the error is the line
/// the attendee reads.
async fn bridge(
    portal: &Arc<Portal>,
    token: &str,
    lab: &str,
    query: TermQuery,
    socket: &mut WebSocket,
) -> Result<(), String> {
    let (cols, rows) = (query.cols.unwrap_or(80).clamp(10, 500), query.rows.unwrap_or(24).clamp(5, 200));
    let terminal =
        portal.workshop.open_terminal(token, query.node.as_deref(), cols, rows).await.map_err(|e| e.to_string())?;
    // A warm shell's prompt, written before the browser came.
    if !terminal.early.is_empty() && socket.send(Message::Binary(terminal.early.into())).await.is_err() {
        let _ = terminal.session.close().await;
        return Ok(());
    }
    let (session, shell) = (terminal.session, terminal.shell);
    let (mut output, input) = shell.split();
    let mut last_touch = Instant::now();
    let mut lab_check = tokio::time::interval(LAB_CHECK);
    let ended = loop {
        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if input.data_bytes(bytes).await.is_err() {
                        break Ok(());
                    }
                    if last_touch.elapsed() >= TOUCH_EVERY {
                        last_touch = Instant::now();
                        portal.workshop.touch(token).await;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Ok(size) = serde_json::from_str::<Resize>(&text) {
                        let _ = input.window_change(size.cols.clamp(10, 500), size.rows.clamp(5, 200), 0, 0).await;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break Ok(()),
                Some(Ok(_)) => {}
            },
            message = output.wait() => match message {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    if socket.send(Message::Binary(data.to_vec().into())).await.is_err() {
                        break Ok(());
                    }
                }
                Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => break Ok(()),
                Some(_) => {}
            },
            _ = lab_check.tick() => {
                let current = portal.workshop.view(token).await.and_then(|view| view.lab.map(|lab| lab.name));
                if current.as_deref() != Some(lab) {
                    break Err(format!("lab {lab} is no longer yours; the page connects to your new lab"));
                }
            }
        }
    };
    let _ = session.close().await;
    ended
}
