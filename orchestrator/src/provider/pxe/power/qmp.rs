//! Power through a QEMU machine's QMP socket: a small native QMP client ([`Qmp`]: JSON
//! lines over the Unix socket, capabilities negotiated on connect, events kept aside) and
//! the power semantics built on it.
//!
//! QEMU must run with `-no-shutdown`: a guest that switches itself off then leaves QEMU
//! in the `shutdown` run state instead of ending the process, so it can be switched on
//! again. The mapping, chosen to behave like a real machine's power button:
//! - off = `stop` then `system_reset`: the vCPUs halt at once (the "button held" cut,
//!   no ACPI request the guest could ignore) and the reset leaves QEMU in `prelaunch`,
//!   so the next start runs the firmware from scratch. A machine already off (`prelaunch`,
//!   or `shutdown` after the guest switched itself off) is left alone.
//! - on = from any state but running (off, or paused by hand), `system_reset` then
//!   `cont`: a fresh boot (`cont` alone is refused in the `shutdown` state and would
//!   resume a stale machine otherwise). A running machine is left alone.
//! - cycle = `system_reset`, then `cont` unless it was running: a fresh boot either way.
//! - state = `query-status`: running is on; `prelaunch`, `shutdown`, `guest-panicked` and
//!   `internal-error` are off (a start boots from scratch); anything else (paused by
//!   hand, suspended, migrating) is unknown.
//!
//! `system_reset` is asynchronous in QEMU: the client waits for the host-caused `RESET`
//! event before it sends `cont` (else `cont` may still find the `shutdown` state).
//! One connection per call, the whole call bounded by [`TIMEOUT`]: QEMU serves one QMP
//! client at a time, so a call that cannot get in ends with a clear error, not a hang.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::{PowerAction, PowerState};

/// How long one power call (connect, negotiate, commands, events) may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a QMP conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be connected to.
    #[error("cannot connect: {0}; is the machine's QEMU running with `-qmp unix:SOCKET,server=on,wait=off`?")]
    Connect(#[source] io::Error),
    /// No answer in time.
    #[error("no answer within {} s; QEMU serves one QMP client at a time: is another one connected?", .0.as_secs())]
    Timeout(Duration),
    /// Reading or writing failed mid-conversation.
    #[error("the connection broke: {0}; did QEMU exit?")]
    Io(#[source] io::Error),
    /// QEMU closed the connection.
    #[error("QEMU closed the connection; did it exit?")]
    Closed,
    /// Something that is not QMP came back.
    #[error("not a QMP answer: {0}; is this QEMU's QMP socket (not its human monitor)?")]
    Protocol(String),
    /// QEMU answered a command with an error.
    #[error("QEMU refused `{command}`: {desc}")]
    Refused {
        /// The command.
        command: String,
        /// QEMU's description.
        desc: String,
    },
}

/// QEMU's run state (`query-status`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RunStatus {
    /// The run state's name (`running`, `prelaunch`, `shutdown`, `paused`, ...).
    pub status: String,
    /// Whether the vCPUs run.
    pub running: bool,
}

impl RunStatus {
    /// The power state this run state means (see the module doc).
    pub fn power(&self) -> PowerState {
        match self.status.as_str() {
            _ if self.running => PowerState::On,
            "prelaunch" | "shutdown" | "guest-panicked" | "internal-error" => PowerState::Off,
            _ => PowerState::Unknown,
        }
    }
}

/// One QMP connection, capabilities negotiated.
pub struct Qmp {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    /// Events read while waiting for answers, oldest first.
    events: VecDeque<Value>,
}

impl Qmp {
    /// Connects to `socket`, reads QEMU's greeting and negotiates capabilities. Has no
    /// timeout of its own: callers bound it (as [`apply`], [`state`] and [`status`] do).
    pub async fn connect(socket: &Path) -> Result<Qmp, QmpError> {
        let (reader, writer) = UnixStream::connect(socket).await.map_err(QmpError::Connect)?.into_split();
        let mut qmp = Qmp { lines: BufReader::new(reader).lines(), writer, events: VecDeque::new() };
        let greeting = qmp.message().await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("the greeting was {greeting}")));
        }
        qmp.execute("qmp_capabilities").await?;
        Ok(qmp)
    }

    /// Runs `command` (without arguments) and returns its `return` value; events that
    /// arrive meanwhile are kept for [`Qmp::wait_event`].
    pub async fn execute(&mut self, command: &str) -> Result<Value, QmpError> {
        let mut line = json!({ "execute": command }).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await.map_err(QmpError::Io)?;
        loop {
            let mut message = self.message().await?;
            if message.get("event").is_some() {
                self.events.push_back(message);
            } else if let Some(answer) = message.get_mut("return") {
                return Ok(answer.take());
            } else if let Some(error) = message.get("error") {
                let desc = error.get("desc").and_then(Value::as_str).unwrap_or("no description").to_owned();
                return Err(QmpError::Refused { command: command.to_owned(), desc });
            } else {
                return Err(QmpError::Protocol(format!("`{command}` was answered with {message}")));
            }
        }
    }

    /// QEMU's run state.
    pub async fn status(&mut self) -> Result<RunStatus, QmpError> {
        let answer = self.execute("query-status").await?;
        serde_json::from_value(answer.clone())
            .map_err(|e| QmpError::Protocol(format!("`query-status` was answered with {answer} ({e})")))
    }

    /// Waits for the first event named `name` for which `wanted` holds, among those kept
    /// and those still to come, and returns it.
    pub async fn wait_event(&mut self, name: &str, wanted: impl Fn(&Value) -> bool) -> Result<Value, QmpError> {
        let is_it = |event: &Value| event.get("event").and_then(Value::as_str) == Some(name) && wanted(event);
        if let Some(at) = self.events.iter().position(is_it) {
            return Ok(self.events.remove(at).unwrap_or_default());
        }
        loop {
            let message = self.message().await?;
            if is_it(&message) {
                return Ok(message);
            }
            if message.get("event").is_some() {
                self.events.push_back(message);
            }
        }
    }

    /// Resets the machine and waits until QEMU has done it (`system_reset` only asks).
    async fn reset(&mut self) -> Result<(), QmpError> {
        self.events.clear();
        self.execute("system_reset").await?;
        // The guest's own resets (firmware rebooting) carry `guest: true`; ours does not.
        self.wait_event("RESET", |e| e.pointer("/data/guest") == Some(&Value::Bool(false))).await?;
        Ok(())
    }

    async fn message(&mut self) -> Result<Value, QmpError> {
        let line = self.lines.next_line().await.map_err(QmpError::Io)?.ok_or(QmpError::Closed)?;
        serde_json::from_str(&line).map_err(|_| QmpError::Protocol(format!("the line {line:?}")))
    }
}

/// Carries out `action` on the QEMU machine behind `socket` (see the module doc).
pub async fn apply(socket: &Path, action: PowerAction) -> Result<(), QmpError> {
    bounded(async {
        let mut qmp = Qmp::connect(socket).await?;
        let was = qmp.status().await?;
        match action {
            PowerAction::On if was.running => Ok(()),
            PowerAction::Off if was.power() == PowerState::Off => Ok(()),
            PowerAction::Off => {
                qmp.execute("stop").await?;
                qmp.reset().await
            }
            PowerAction::On | PowerAction::Cycle => {
                qmp.reset().await?;
                if !was.running {
                    qmp.execute("cont").await?;
                }
                Ok(())
            }
        }
    })
    .await
}

/// The power state of the QEMU machine behind `socket`.
pub async fn state(socket: &Path) -> Result<PowerState, QmpError> {
    Ok(status(socket).await?.power())
}

/// The run state of the QEMU machine behind `socket` (one connection, bounded by [`TIMEOUT`]).
pub async fn status(socket: &Path) -> Result<RunStatus, QmpError> {
    bounded(async { Qmp::connect(socket).await?.status().await }).await
}

async fn bounded<T>(call: impl std::future::Future<Output = Result<T, QmpError>>) -> Result<T, QmpError> {
    tokio::time::timeout(TIMEOUT, call).await.unwrap_or(Err(QmpError::Timeout(TIMEOUT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str, running: bool) -> RunStatus {
        RunStatus { status: status.to_owned(), running }
    }

    #[test]
    fn maps_run_states_to_power() {
        assert_eq!(run("running", true).power(), PowerState::On);
        for off in ["prelaunch", "shutdown", "guest-panicked", "internal-error"] {
            assert_eq!(run(off, false).power(), PowerState::Off, "{off}");
        }
        for unknown in ["paused", "suspended", "inmigrate", "io-error"] {
            assert_eq!(run(unknown, false).power(), PowerState::Unknown, "{unknown}");
        }
    }
}
