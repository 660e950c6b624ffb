//! The agent's API v1: request and response bodies, shared with the orchestrator.
//!
//! Always compiled and free of server dependencies (serde only), so the
//! orchestrator depends on `zerolab-agent` with `default-features = false`
//! and gets exactly these types. Every error response is an [`ErrorBody`].
//!
//! | Method and path                | Request           | Response                  |
//! |--------------------------------|-------------------|---------------------------|
//! | `GET /v1/health`               |                   | [`Health`]                |
//! | `GET /v1/version`              |                   | [`Version`]               |
//! | `GET /v1/facts`                |                   | [`Facts`]                 |
//! | `PUT /v1/blobs/{sha256}`       | raw bytes         | [`BlobStored`]            |
//! | `HEAD /v1/blobs/{sha256}`      |                   | 200 stored, 404 not       |
//! | `POST /v1/sessions`            | [`SessionRequest`]| [`SessionCreated`]        |
//! | `GET /v1/sessions`             |                   | [`SessionList`]           |
//! | `GET /v1/sessions/{id}`        |                   | [`SessionStatus`]         |
//! | `GET /v1/sessions/{id}/stdout` |                   | raw bytes written so far  |
//! | `GET /v1/sessions/{id}/stderr` |                   | raw bytes written so far  |
//! | `DELETE /v1/sessions/{id}`     |                   | [`SessionStatus`]         |

use serde::{Deserialize, Serialize};

/// The path prefix of this API version.
pub const PREFIX: &str = "/v1";

/// Default `memory` of a session: 256 MiB.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Default `timeout` of a session, in seconds (ZeroVM's `Timeout` unit).
pub const DEFAULT_TIMEOUT_SECS: u64 = 50;

/// Every 4xx and 5xx body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line: the cause and what to do about it.
    pub error: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the agent answers.
    pub status: String,
}

/// `GET /v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The crate version.
    pub version: String,
    /// SHA-256 (hex) of the running binary: the orchestrator skips the upload
    /// when it equals the local build's.
    pub build: String,
}

/// `GET /v1/facts`: what the node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The node's hostname (its UTS namespace's).
    pub hostname: String,
    /// CPUs this process may use.
    pub cpus: u32,
    /// Total memory in bytes (`MemTotal`).
    pub memory_bytes: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

/// `PUT /v1/blobs/{sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStored {
    /// The blob's SHA-256 (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `POST /v1/sessions`: run one guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// SHA-256 of an uploaded blob holding the static guest program.
    pub program: String,
    /// argv; empty means the program's name alone.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment, as name and value pairs.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// `Memory` in bytes.
    #[serde(default = "default_memory")]
    pub memory: u64,
    /// `Timeout` in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// SHA-256 of an uploaded blob to use as stdin; none means empty stdin.
    #[serde(default)]
    pub stdin: Option<String>,
}

fn default_memory() -> u64 {
    DEFAULT_MEMORY
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

impl SessionRequest {
    /// A request for `program` with every other field at its default.
    pub fn new(program: impl Into<String>) -> Self {
        SessionRequest {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT_SECS,
            stdin: None,
        }
    }
}

/// `POST /v1/sessions` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    /// The session's id.
    pub id: String,
}

/// Whether a session's guest is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Starting or running.
    Running,
    /// Ended; the report is final.
    Done,
}

/// One line of `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Id.
    pub id: String,
    /// State.
    pub state: SessionState,
    /// The report's exit state once done (`ok`, `killed`, `session timeout`, ...).
    pub exit_state: Option<String>,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    /// All sessions since the agent started, oldest first.
    pub sessions: Vec<SessionSummary>,
}

/// `GET /v1/sessions/{id}` and `DELETE /v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// Id.
    pub id: String,
    /// State.
    pub state: SessionState,
    /// The report, once done.
    pub report: Option<Report>,
}

/// A session's report: ZeroVM's six-line text and its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The six-line report exactly as `zvsh` prints it.
    pub text: String,
    /// Validator state: 0 passed, 1 failed, 2 not run.
    pub validator: u8,
    /// The guest's exit code (`zvm_exit` or `main`'s return).
    pub user_code: i64,
    /// `ok`, `killed`, `session timeout`, or why the session failed.
    pub exit_state: String,
    /// ZeroVM's return code (0 when the guest exited by itself).
    pub return_code: i32,
    /// System CPU seconds.
    pub sys_s: f64,
    /// User CPU seconds.
    pub user_s: f64,
    /// Local channel traffic: gets, get bytes, puts, put bytes.
    pub local: [u64; 4],
    /// Network channel traffic: gets, get bytes, puts, put bytes.
    pub net: [u64; 4],
}

/// Whether `s` is a SHA-256 as this API spells it: 64 lowercase hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_request_fills_defaults() {
        let r: SessionRequest = serde_json::from_str(r#"{"program":"ab"}"#).unwrap();
        assert_eq!(r, SessionRequest::new("ab"));
    }

    #[test]
    fn session_request_rejects_unknown_fields() {
        assert!(serde_json::from_str::<SessionRequest>(r#"{"program":"ab","memroy":1}"#).is_err());
    }

    #[test]
    fn state_is_lowercase() {
        assert_eq!(serde_json::to_string(&SessionState::Running).unwrap(), r#""running""#);
    }

    #[test]
    fn sha256_must_be_64_lowercase_hex() {
        assert!(is_sha256(&"a".repeat(64)));
        assert!(!is_sha256(&"A".repeat(64)));
        assert!(!is_sha256(&"a".repeat(63)));
        assert!(!is_sha256("../etc/passwd"));
    }
}
