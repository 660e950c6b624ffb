//! The test harness: real `zerolab-agent` processes, each in its own temp
//! dir with its own socket, state and channel port on 127.0.0.1, an HTTP
//! client over the Unix socket, and guests built with `sandbox/guest/zvm-gcc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use zerolab_agent::api;

/// A running agent; killed when dropped.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
    /// Its channel port on 127.0.0.1 (from `GET /v1/facts`).
    pub channel_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// Starts the binary (channels on 127.0.0.1, a port of its choosing) and
    /// waits until it answers a health check.
    pub async fn start() -> Agent {
        Agent::start_with(&[]).await
    }

    /// [`Agent::start`] with more flags (`--session-ttl 1`, say).
    pub async fn start_with(flags: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/agent.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_zerolab-agent"))
            .arg("--socket")
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--channel-address", "127.0.0.1", "--channel-port", "0"])
            .args(flags)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).unwrap())
            .spawn()
            .unwrap();
        let mut agent = Agent { child, socket, channel_port: 0, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::UnixStream::connect(&agent.socket).await.is_ok() {
                let (status, _) = agent.call(Method::GET, "/v1/health", Vec::new()).await;
                assert_eq!(status, StatusCode::OK);
                let (_, facts) = agent.json(Method::GET, "/v1/facts", None).await;
                let facts: api::Facts = serde_json::from_value(facts).unwrap();
                agent.channel_port = facts.channel_port.expect("the agent listens for channels");
                return agent;
            }
            if Instant::now() > deadline {
                panic!("agent did not start listening; its log:\n{}", agent.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Its state directory (`blobs/`, `sessions/`).
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    /// `127.0.0.1:PORT` of its channel listener.
    pub fn channel_address(&self) -> String {
        format!("127.0.0.1:{}", self.channel_port)
    }

    /// One request on a fresh connection.
    pub async fn call(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "agent")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    pub async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, bytes) = self.call(method, path, body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// Uploads `bytes`; returns their sha256.
    pub async fn upload(&self, bytes: Vec<u8>) -> api::Sha256 {
        let name = api::Sha256::of_bytes(&bytes);
        let (status, body) = self.call(Method::PUT, &format!("/v1/blobs/{name}"), bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        name
    }

    /// Posts a session request; the status and the answer.
    pub async fn post_session(&self, req: &api::SessionRequest) -> (StatusCode, Value) {
        self.json(Method::POST, "/v1/sessions", Some(serde_json::to_value(req).unwrap())).await
    }

    pub async fn start_session(&self, req: &api::SessionRequest) -> String {
        let (status, v) = self.post_session(req).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        serde_json::from_value::<api::SessionCreated>(v).unwrap().id
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> api::Health {
        let (status, v) = self.json(Method::GET, "/v1/health", None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        serde_json::from_value(v).unwrap()
    }

    pub async fn status(&self, id: &str) -> api::SessionStatus {
        let (status, v) = self.json(Method::GET, &format!("/v1/sessions/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        serde_json::from_value(v).unwrap()
    }

    /// Polls until the session is done; returns its report.
    pub async fn wait(&self, id: &str) -> api::Report {
        self.wait_polling(id, Duration::from_millis(20), Duration::from_secs(60)).await
    }

    /// Polls every `every` until the session is done, at most `limit`.
    pub async fn wait_polling(&self, id: &str, every: Duration, limit: Duration) -> api::Report {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.status(id).await;
            if let Some(r) = s.report {
                assert_eq!(s.state, api::SessionState::Done);
                return r;
            }
            assert!(Instant::now() < deadline, "session {id} never ended; agent log:\n{}", self.log());
            tokio::time::sleep(every).await;
        }
    }

    pub async fn stdout(&self, id: &str) -> String {
        self.output(id, "stdout").await
    }

    pub async fn stderr(&self, id: &str) -> String {
        self.output(id, "stderr").await
    }

    async fn output(&self, id: &str, which: &str) -> String {
        let (status, bytes) = self.call(Method::GET, &format!("/v1/sessions/{id}/{which}"), Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8(bytes).unwrap()
    }

    /// Descriptors the agent process holds now.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).unwrap().count()
    }

    /// The agent's resident memory in bytes.
    pub fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The most resident memory the agent ever had, in bytes (its high-water mark).
    pub fn peak_rss(&self) -> u64 {
        self.status_bytes("VmHWM:")
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The program built from `src` (relative to the workspace) once per run:
/// with `sandbox/guest/zvm-gcc` as a guest, or with the host's gcc when
/// `native` (for comparisons).
fn build(src: &str, native: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    let stem = Path::new(src).file_stem().unwrap().to_string_lossy().into_owned();
    let kind = if native { "native" } else { "guest" };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("agent-{kind}-{stem}"));
    let source = workspace_dir().join(src);
    let stale = |out: &Path| {
        let age = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        age(out) < age(&source)
    };
    if !out.exists() || stale(&out) {
        let compiler = if native { PathBuf::from("gcc") } else { workspace_dir().join("sandbox/guest/zvm-gcc") };
        let status = Command::new(compiler)
            .args(["-O2", "-Wall"])
            .arg(&source)
            .arg("-o")
            .arg(&out)
            .status()
            .expect("cannot run gcc (or sandbox/guest/zvm-gcc); install gcc, binutils and libc6-dev");
        assert!(status.success(), "building {src} failed");
    }
    out
}

/// The guest built from `src` (relative to the workspace).
pub fn guest(src: &str) -> Vec<u8> {
    std::fs::read(build(src, false)).unwrap()
}

/// The native program built from `src` (relative to the workspace).
pub fn native(src: &str) -> PathBuf {
    build(src, true)
}
