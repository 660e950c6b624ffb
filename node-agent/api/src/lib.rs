//! `zerolab-agent-api`: the agent's API v1, the vocabulary the agent and the
//! orchestrator share: request and response bodies, [`Sha256`] (a blob's name, an
//! input's checksum) and [`ProgramRef`] (which program a session runs).
//!
//! The daemon is the `zerolab-agent` crate; this one is types and hashing only
//! (serde, sha2, thiserror), so the orchestrator depends on it and builds nothing of
//! the daemon. Both sides parse and print digests and programs through the same code,
//! so they agree on the wire by construction. Every error response is an [`ErrorBody`].
//!
//! ```
//! use zerolab_agent_api::{SessionRequest, Sha256};
//! let program = Sha256::of_bytes(b"a static guest");
//! let request = SessionRequest { args: vec!["wc".into()], ..SessionRequest::new(program) };
//! let json = serde_json::to_string(&request).unwrap();
//! assert!(json.starts_with(&format!(r#"{{"program":"{program}","args":["wc"]"#)));
//! assert_eq!(serde_json::from_str::<SessionRequest>(&json).unwrap(), request);
//! ```
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
//! | `GET /v1/sessions/{id}/output` |                   | raw bytes written so far  |
//! | `DELETE /v1/sessions/{id}`     |                   | [`SessionStatus`]         |
//! | `POST /v1/leases`              | [`LeaseRenewal`]  | [`LeasesRenewed`]         |
//!
//! A finished session is kept for the agent's `--session-ttl`; after that its outputs
//! and directory are removed and every route of it answers 410 Gone, saying so.
//!
//! Channels between guests ([`ChannelSpec`]): a session may ask for channels
//! whose other end is another session of the same job, on this node
//! ([`ChannelPeer::Local`]) or on another node's agent ([`ChannelPeer::Listen`]
//! for the reading end, [`ChannelPeer::Connect`] for the writing end, which
//! connects to the reader's agent at its [`Facts::channel_port`]). The guest
//! starts once every channel is connected; until then the session is
//! [`SessionState::Waiting`].
//!
//! Devices ([`DeviceSpec`]): a session's `stdin`, `stdout`, `stderr`,
//! `input`, `output` and `image` come from an uploaded blob, a file already on
//! the node, or an `http(s)://` URL the agent fetches (inputs), and go to the
//! session's directory or a file on the node (outputs). Fetching a URL and
//! checking a checksum happen after the request is accepted, while the session
//! is [`SessionState::Waiting`]; a failure there ends the session with a report
//! naming the device and the cause.

use serde::{Deserialize, Serialize};

mod program;
mod sha256;

pub use program::{ParseProgramError, ProgramRef, IMAGE_PREFIX};
pub use sha256::{Hasher, ParseSha256Error, Sha256};

/// The path prefix of this API version.
pub const PREFIX: &str = "/v1";

/// The header of an output route's answer (`GET /v1/sessions/{id}/stdout?offset=N`)
/// that gives the session's state (`waiting`, `running`, `done`) read before the output:
/// after `done`, the body holds the rest of the output, so a follower stops there.
pub const SESSION_STATE_HEADER: &str = "zerolab-session-state";
/// Default `memory` of a session: 256 MiB.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Default `timeout` of a session, in seconds (ZeroVM's `Timeout` unit).
pub const DEFAULT_TIMEOUT_SECS: u64 = 50;
/// Default `channel_wait_secs`: how long a session waits for its channels.
pub const DEFAULT_CHANNEL_WAIT_SECS: u64 = 30;
/// The agent's default TCP port for channels from other agents.
pub const DEFAULT_CHANNEL_PORT: u16 = 7700;

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
    /// Connections to the channel port refused since the agent started (bad
    /// or unauthenticated handshakes); the log shows them only in a bounded
    /// way, this counts every one. 0 from an agent without the field.
    #[serde(default)]
    pub refused_channel_connections: u64,
    /// Sessions killed because their lease was not renewed in time (see
    /// [`SessionRequest::lease_secs`]) since the agent started. 0 from an agent
    /// without the field.
    #[serde(default)]
    pub leases_expired: u64,
    /// What the agent keeps on its node; `None` from an agent without the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreStats>,
}

/// What an agent keeps on its node, and the limits it keeps it within (part of
/// [`Health`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Blobs stored.
    pub blobs: u64,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// The size past which unreferenced blobs are collected, least recently used
    /// first (`--blob-store-limit`).
    pub blob_limit_bytes: u64,
    /// Blobs collected since the agent started.
    pub blobs_collected: u64,
    /// Sessions preparing, waiting or running.
    pub sessions_live: u64,
    /// Finished sessions still kept (their reports and outputs).
    pub sessions_finished: u64,
    /// Finished sessions removed since the agent started.
    pub sessions_expired: u64,
    /// How long a finished session is kept, in seconds (`--session-ttl`).
    pub session_ttl_secs: u64,
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
    /// The TCP port on which the agent accepts channels from other agents
    /// (give `NODE_ADDRESS:PORT` to the writing end's [`ChannelPeer::Connect`]);
    /// `None` when it has no channel listener (an older agent, or the port
    /// could not be bound: its log says why).
    #[serde(default)]
    pub channel_port: Option<u16>,
}

/// `PUT /v1/blobs/{sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobStored {
    /// The blob's SHA-256.
    pub sha256: Sha256,
    /// Its size in bytes.
    pub size: u64,
}

/// `POST /v1/sessions`: run one guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The static guest program: an uploaded blob, or a file inside the
    /// session's `image` device (see [`ProgramRef`]).
    pub program: ProgramRef,
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
    /// The guest's devices, each at most once. Without one, `stdin` is empty,
    /// `stdout` and `stderr` are kept in the session's directory, and there is
    /// no `input`, `output` or `image`.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// Channels to other guests of the same job; the guest starts once all
    /// are connected.
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
    /// How long to wait, in seconds, for every channel to be connected before
    /// the session fails with a report naming the channel and both its ends.
    #[serde(default = "default_channel_wait")]
    pub channel_wait_secs: u64,
    /// The session's lease, in seconds: when given, the agent stops the guest (exit
    /// state `lease expired`) once this long has passed since the session started or
    /// its lease was last renewed (`POST /v1/leases`). An orchestrator that runs a job
    /// renews its sessions' leases while it cares about them, so guests whose
    /// orchestrator died, was interrupted or lost the node stop by themselves. Without
    /// one, the session runs until it ends or its `timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
    /// Run in a copy of a warm daemon (ZeroVM's daemon mode): the agent keeps one
    /// daemon per program, arguments, environment, `memory` and `image` and `input`
    /// devices, started by the first such request; the guest initialises there once
    /// and calls `zvm_fork` (`os.fork()` in Python), and each request then runs
    /// from that point in a fresh jailed copy on its own devices, skipping the
    /// start-up. A guest that never calls `zvm_fork` runs its whole self in the
    /// daemon, with no devices but those two: the session's report says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
}

/// One device of a session: which, and where its data comes from or goes.
///
/// JSON: `{"name": "stdin", "source": {"blob": {"sha256": "<64 hex>"}}}`,
/// `{"name": "input", "source": {"url": {"url": "https://…", "sha256": "<64 hex>"}}}`,
/// `{"name": "output", "source": {"node": {"path": "/srv/out.txt"}}}`,
/// `{"name": "output", "source": "session"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Which device; the guest opens `/dev/<name>`.
    pub name: DeviceName,
    /// Where it reads from or writes to.
    pub source: DeviceSource,
}

/// The six devices of a guest, as ZeroVM names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceName {
    /// `/dev/stdin`: read, sequential.
    Stdin,
    /// `/dev/stdout`: written, sequential.
    Stdout,
    /// `/dev/stderr`: written, sequential.
    Stderr,
    /// `/dev/input`: read, random access.
    Input,
    /// `/dev/output`: written, sequential.
    Output,
    /// `/dev/image`: a tar, read, random access; `program: image:PATH` runs a file in it.
    Image,
}

impl DeviceName {
    /// Every device, in the order they are documented.
    pub const ALL: [DeviceName; 6] = [
        DeviceName::Stdin,
        DeviceName::Stdout,
        DeviceName::Stderr,
        DeviceName::Input,
        DeviceName::Output,
        DeviceName::Image,
    ];

    /// The device named `name`.
    pub fn from_name(name: &str) -> Option<DeviceName> {
        DeviceName::ALL.into_iter().find(|device| device.name() == name)
    }

    /// The alias the guest opens (`/dev/stdin`).
    pub fn alias(self) -> String {
        format!("/dev/{}", self.name())
    }

    /// Its name (`stdin`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceName::Stdin => "stdin",
            DeviceName::Stdout => "stdout",
            DeviceName::Stderr => "stderr",
            DeviceName::Input => "input",
            DeviceName::Output => "output",
            DeviceName::Image => "image",
        }
    }

    /// Whether the guest reads it (stdin, input, image) rather than writes it.
    pub fn is_input(self) -> bool {
        matches!(self, DeviceName::Stdin | DeviceName::Input | DeviceName::Image)
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a device's data comes from (inputs) or goes (outputs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum DeviceSource {
    /// Outputs only: a file in the session's directory, read back with
    /// `GET /v1/sessions/{id}/NAME` (`stdout`, `stderr`, `output`).
    Session,
    /// Inputs only: an uploaded blob.
    Blob {
        /// The blob's SHA-256.
        sha256: Sha256,
    },
    /// A file on the node, an absolute path: an input is read from it (and
    /// checked against `sha256` when given); an output is created or truncated
    /// there (mode 0644).
    Node {
        /// The file.
        path: String,
        /// An input's expected SHA-256; must be absent on an output.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<Sha256>,
    },
    /// Inputs only: an `http://` or `https://` URL the agent fetches into its
    /// blob store. With `sha256` the download is checked, and a blob already
    /// stored under it is used without fetching; without, every session fetches
    /// anew.
    Url {
        /// The URL.
        url: String,
        /// The expected SHA-256 of the body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<Sha256>,
    },
}

/// One end of a one-way channel between two guests of a job.
///
/// JSON: `{"alias": "/dev/out/reduce-1", "direction": "out", "job": "wc-7f3a",
/// "channel": "map-1>reduce-1", "key": "<64 hex>", "peer": {"connect":
/// {"address": "10.77.0.3:7700"}}}`; `peer` is also `"local"` or `"listen"`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    /// The name the guest sees: `/dev/in/<writer>` for a reader,
    /// `/dev/out/<reader>` for a writer.
    pub alias: String,
    /// Whether this session's guest reads or writes the channel.
    pub direction: ChannelDirection,
    /// The job's id, the same on both ends (printable ASCII, 1 to 255 bytes).
    pub job: String,
    /// The channel's id, unique within the job and the same on both ends,
    /// e.g. `map-1>reduce-1` (printable ASCII, 1 to 255 bytes).
    pub channel: String,
    /// 64 hex digits: 32 random bytes the orchestrator makes per job and
    /// channel and gives to both ends. It authenticates the connection
    /// between agents; it never crosses the network.
    pub key: String,
    /// Where the other end is.
    pub peer: ChannelPeer,
}

impl std::fmt::Debug for ChannelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key: requests end up in logs.
        f.debug_struct("ChannelSpec")
            .field("alias", &self.alias)
            .field("direction", &self.direction)
            .field("job", &self.job)
            .field("channel", &self.channel)
            .field("key", &"<hidden>")
            .field("peer", &self.peer)
            .finish()
    }
}

/// Which way data flows for this session's guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelDirection {
    /// The guest reads (a sequential, read-only channel).
    In,
    /// The guest writes (a sequential, write-only channel).
    Out,
}

/// Where a channel's other end is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelPeer {
    /// Another session on this agent: the agent makes a pipe and gives one
    /// end to each of the two sessions, whichever asks first.
    Local,
    /// Another agent connects to this one's channel port (the reading end
    /// of a channel across nodes; `direction` must be `in`).
    Listen,
    /// This agent connects to the other end's agent (the writing end of a
    /// channel across nodes; `direction` must be `out`).
    Connect {
        /// The reading end's agent: its node's address and [`Facts::channel_port`],
        /// as `IP:PORT` (`10.77.0.3:7700`, `[fd00::3]:7700`).
        address: String,
    },
}

fn default_memory() -> u64 {
    DEFAULT_MEMORY
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_channel_wait() -> u64 {
    DEFAULT_CHANNEL_WAIT_SECS
}

impl SessionRequest {
    /// A request for `program` with every other field at its default.
    pub fn new(program: impl Into<ProgramRef>) -> Self {
        SessionRequest {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT_SECS,
            devices: Vec::new(),
            channels: Vec::new(),
            channel_wait_secs: DEFAULT_CHANNEL_WAIT_SECS,
            lease_secs: None,
            warm: false,
        }
    }
}

/// `POST /v1/leases`: renew the leases of these sessions (see
/// [`SessionRequest::lease_secs`]), each for its own lease's length from now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRenewal {
    /// Session ids.
    pub sessions: Vec<String>,
}

/// `POST /v1/leases` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeasesRenewed {
    /// The sessions whose lease was renewed (known, with a lease, not yet done).
    pub renewed: Vec<String>,
    /// The sessions not renewed: unknown or expired ids, sessions without a lease, and
    /// sessions already done (their guests are not running; read their reports).
    pub not_renewed: Vec<String>,
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
    /// Preparing its devices (fetching URLs, checking checksums, taking its
    /// program out of its image) or waiting for its channels to be connected;
    /// the guest has not started.
    Waiting,
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
    /// Every session since the agent started that has not expired, oldest first.
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
    /// While [`SessionState::Waiting`]: what it waits for: the devices being
    /// prepared (`/dev/stdin`), then the aliases of the channels not yet connected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_request_fills_defaults() {
        let sha = "ab".repeat(32);
        let r: SessionRequest = serde_json::from_str(&format!(r#"{{"program":"{sha}"}}"#)).unwrap();
        assert_eq!(r, SessionRequest::new(sha.parse::<Sha256>().unwrap()));
    }

    #[test]
    fn session_request_rejects_unknown_fields() {
        assert!(serde_json::from_str::<SessionRequest>(r#"{"program":"image:a","memroy":1}"#).is_err());
    }

    #[test]
    fn channel_specs_read_all_three_peers() {
        let key = "ab".repeat(32);
        let text = format!(
            r#"{{"program":"image:p","channel_wait_secs":2,"channels":[
              {{"alias":"/dev/out/b","direction":"out","job":"j","channel":"a>b","key":"{key}",
                "peer":{{"connect":{{"address":"10.0.0.2:7700"}}}}}},
              {{"alias":"/dev/in/c","direction":"in","job":"j","channel":"c>a","key":"{key}","peer":"listen"}},
              {{"alias":"/dev/in/d","direction":"in","job":"j","channel":"d>a","key":"{key}","peer":"local"}}]}}"#
        );
        let r: SessionRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(r.channel_wait_secs, 2);
        let peers: Vec<&ChannelPeer> = r.channels.iter().map(|c| &c.peer).collect();
        assert_eq!(
            peers,
            [&ChannelPeer::Connect { address: "10.0.0.2:7700".into() }, &ChannelPeer::Listen, &ChannelPeer::Local]
        );
        assert_eq!(r.channels[1].direction, ChannelDirection::In);
        assert!(!format!("{r:?}").contains(&key), "the key must not be printed");
    }

    #[test]
    fn device_specs_read_every_source() {
        let sha = "ab".repeat(32);
        let text = format!(
            r#"{{"program":"image:bin/wc","devices":[
              {{"name":"stdin","source":{{"blob":{{"sha256":"{sha}"}}}}}},
              {{"name":"input","source":{{"url":{{"url":"http://h/x","sha256":"{sha}"}}}}}},
              {{"name":"image","source":{{"node":{{"path":"/srv/i.tar"}}}}}},
              {{"name":"output","source":"session"}}]}}"#
        );
        let r: SessionRequest = serde_json::from_str(&text).unwrap();
        let names: Vec<DeviceName> = r.devices.iter().map(|d| d.name).collect();
        assert_eq!(names, [DeviceName::Stdin, DeviceName::Input, DeviceName::Image, DeviceName::Output]);
        assert_eq!(r.devices[2].source, DeviceSource::Node { path: "/srv/i.tar".into(), sha256: None });
        assert_eq!(serde_json::to_value(&r.devices[3].source).unwrap(), serde_json::json!("session"));
        let typo = r#"{"program":"image:p","devices":[{"name":"stdin","source":{"blob":{"sha":"x"}}}]}"#;
        assert!(serde_json::from_str::<SessionRequest>(typo).is_err());
    }

    #[test]
    fn facts_without_a_channel_port_still_read() {
        let f: Facts = serde_json::from_str(r#"{"hostname":"h","cpus":1,"memory_bytes":1,"kernel":"k"}"#).unwrap();
        assert_eq!(f.channel_port, None);
    }

    #[test]
    fn state_is_lowercase() {
        assert_eq!(serde_json::to_string(&SessionState::Running).unwrap(), r#""running""#);
    }

    #[test]
    fn malformed_digests_and_programs_are_refused_with_the_request() {
        let sha = "ab".repeat(32);
        let blob = |s: &str| {
            format!(r#"{{"program":"{sha}","devices":[{{"name":"stdin","source":{{"blob":{{"sha256":"{s}"}}}}}}]}}"#)
        };
        assert!(serde_json::from_str::<SessionRequest>(&blob(&sha)).is_ok());
        let err = serde_json::from_str::<SessionRequest>(&blob("../etc/passwd")).unwrap_err().to_string();
        assert!(err.contains("\"../etc/passwd\" is not a sha256"), "{err}");
        let err = serde_json::from_str::<SessionRequest>(r#"{"program":"wc"}"#).unwrap_err().to_string();
        assert!(err.contains("neither a blob's sha256"), "{err}");
        let upper = format!(
            r#"{{"program":"image:p","devices":[{{"name":"input","source":{{"url":{{"url":"http://h/","sha256":"{}"}}}}}}]}}"#,
            sha.to_uppercase()
        );
        assert!(serde_json::from_str::<SessionRequest>(&upper).is_err());
    }

    #[test]
    fn health_without_store_stats_still_reads() {
        let h: Health = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert_eq!((h.refused_channel_connections, h.store), (0, None));
    }
}
