//! Devices: stdin, stdout, stderr, input, output and image from uploaded blobs,
//! files on the node and URLs the agent fetches from a real HTTP server on
//! 127.0.0.1; `image:PATH` programs out of a tar made by `tar`; checksums that
//! do not match, servers that fail or never answer, bad requests; and blob
//! uploads streamed to disk (larger than memory would like, or cut short).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zerolab_agent::api::{self, DeviceName, DeviceSource, DeviceSpec};
use zerolab_agent::api::{ProgramRef, Sha256};

use crate::harness::{guest, Agent};

const GUEST: &str = "node-agent/tests/guests/devices.c";

fn device(name: DeviceName, source: DeviceSource) -> DeviceSpec {
    DeviceSpec { name, source }
}

fn blob(sha256: &Sha256) -> DeviceSource {
    DeviceSource::Blob { sha256: *sha256 }
}

fn node(path: &Path, sha256: Option<Sha256>) -> DeviceSource {
    DeviceSource::Node { path: path.display().to_string(), sha256 }
}

fn url(url: String, sha256: Option<Sha256>) -> DeviceSource {
    DeviceSource::Url { url, sha256 }
}

/// A request for `program` (a blob, or `image:PATH`) with `devices`.
fn request(program: &(impl ToString + ?Sized), devices: Vec<DeviceSpec>) -> api::SessionRequest {
    let program: ProgramRef = program.to_string().parse().unwrap();
    api::SessionRequest { devices, timeout: 20, ..api::SessionRequest::new(program) }
}

/// A plain HTTP/1.1 server on 127.0.0.1: `/data` is `body`, `/slow` never answers,
/// anything else is 404. Counts the requests for `/data`.
struct Server {
    port: u16,
    data_requests: Arc<AtomicUsize>,
}

impl Server {
    async fn start(body: Vec<u8>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let data_requests = Arc::new(AtomicUsize::new(0));
        let (count, body) = (Arc::clone(&data_requests), Arc::new(body));
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let (count, body) = (Arc::clone(&count), Arc::clone(&body));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                    let response = match path.as_str() {
                        "/data" => {
                            count.fetch_add(1, Ordering::SeqCst);
                            let mut r =
                                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&response).await;
                });
            }
        });
        Server { port, data_requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn data_requests(&self) -> usize {
        self.data_requests.load(Ordering::SeqCst)
    }
}

async fn output(agent: &Agent, id: &str, which: &str) -> (StatusCode, String) {
    let (status, bytes) = agent.call(Method::GET, &format!("/v1/sessions/{id}/{which}"), Vec::new()).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn input_output_and_an_image_program_from_blobs() {
    let agent = Agent::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/devices"), guest(GUEST)).unwrap();
    std::fs::write(dir.path().join("README"), "an image\n").unwrap();
    let tar = dir.path().join("image.tar");
    let made = std::process::Command::new("tar")
        .arg("cf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .args(["./README", "./bin"])
        .status();
    assert!(made.unwrap().success());
    let image = std::fs::read(&tar).unwrap();
    let image_size = image.len();

    let image = agent.upload(image).await;
    let input = agent.upload(b"random access input\n".repeat(10_000)).await;
    let stdin = agent.upload(b"from stdin\n".to_vec()).await;
    let devices = vec![
        device(DeviceName::Image, blob(&image)),
        device(DeviceName::Output, DeviceSource::Session),
        device(DeviceName::Input, blob(&input)),
        device(DeviceName::Stdin, blob(&stdin)),
    ];
    for _ in 0..2 {
        let id = agent.start_session(&request("image:bin/devices", devices.clone())).await;
        let report = agent.wait(&id).await;
        assert_eq!((report.exit_state.as_str(), report.user_code), ("ok", 0), "{report:?}");
        assert_eq!(agent.stdout(&id).await, format!("from stdin\nimage {image_size}\n"));
        let (status, out) = output(&agent, &id, "output").await;
        assert_eq!((status, out.len()), (StatusCode::OK, 200_000));
        assert!(out.starts_with("random access input\n"));
    }

    let missing = request("image:bin/nothing", devices);
    let report = agent.wait(&agent.start_session(&missing).await).await;
    assert_eq!(report.return_code, 2, "{report:?}");
    assert!(report.exit_state.contains("image:bin/nothing: no such file in the image"), "{report:?}");
}

/// An interpreter built with zvm-cc (Lua, from `sandbox/guest/posix/build-lua`,
/// cached) as `image:bin/lua`: the agent mounts the image through `/dev/nvram`,
/// so the interpreter runs its script (the `input` device) on stdin.
#[tokio::test]
async fn an_image_program_with_a_posix_interpreter_sees_its_image() {
    let built =
        std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/guest/posix/build-lua"))
            .output()
            .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let tar = Path::new(String::from_utf8(built.stdout).unwrap().trim()).join("lua.tar");
    let agent = Agent::start().await;
    let image = agent.upload(std::fs::read(tar).unwrap()).await;
    let script = agent
        .upload(
            b"local n = 0\nfor _ in io.lines() do n = n + 1 end\n\
        print(n, io.open(\"/bin/lua\") ~= nil)\n"
                .to_vec(),
        )
        .await;
    let stdin = agent.upload(b"one\ntwo\nthree\n".to_vec()).await;
    let devices = vec![
        device(DeviceName::Image, blob(&image)),
        device(DeviceName::Input, blob(&script)),
        device(DeviceName::Stdin, blob(&stdin)),
    ];
    let req =
        api::SessionRequest { args: vec!["lua".into(), "/dev/input".into()], ..request("image:bin/lua", devices) };
    let id = agent.start_session(&req).await;
    let report = agent.wait(&id).await;
    assert_eq!((report.exit_state.as_str(), report.user_code), ("ok", 0), "{report:?}");
    let (_, stderr) = output(&agent, &id, "stderr").await;
    assert_eq!(agent.stdout(&id).await, "3\ttrue\n", "three lines, and the image is the guest's /: {stderr}");
}

#[tokio::test]
async fn node_files_are_read_checked_and_written() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "on the node\n").unwrap();
    let sha = Sha256::of_bytes(b"on the node\n");
    let out = dir.path().join("out.txt");
    std::fs::write(&out, "old contents that are longer\n").unwrap();

    let devices =
        vec![device(DeviceName::Stdin, node(&input, Some(sha))), device(DeviceName::Stdout, node(&out, None))];
    let id = agent.start_session(&request(&program, devices)).await;
    let report = agent.wait(&id).await;
    assert_eq!(report.exit_state, "ok", "{report:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "on the node\n", "truncated, then written");
    let (status, body) = output(&agent, &id, "stdout").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("kept no stdout"), "{body}");

    std::fs::write(&input, "changed on the node\n").unwrap();
    let id = agent.start_session(&request(&program, vec![device(DeviceName::Stdin, node(&input, Some(sha)))])).await;
    let report = agent.wait(&id).await;
    assert_eq!(report.return_code, 32, "corrupted: {report:?}");
    assert!(report.exit_state.contains(&format!("device stdin: {} has sha256", input.display())), "{report:?}");

    let gone = dir.path().join("gone.txt");
    let id = agent.start_session(&request(&program, vec![device(DeviceName::Input, node(&gone, None))])).await;
    let report = agent.wait(&id).await;
    assert!(report.exit_state.contains(&format!("device input: cannot open {}", gone.display())), "{report:?}");
}

#[tokio::test]
async fn urls_are_fetched_once_per_checksum_and_checked() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let body = b"fetched over http\n".repeat(100_000);
    let sha = Sha256::of_bytes(&body);
    let server = Server::start(body.clone()).await;

    let with_sum = request(&program, vec![device(DeviceName::Stdin, url(server.url("/data"), Some(sha)))]);
    for _ in 0..3 {
        let id = agent.start_session(&with_sum).await;
        assert_eq!(agent.wait(&id).await.exit_state, "ok", "{}", agent.log());
        assert_eq!(agent.stdout(&id).await.len(), body.len());
    }
    assert_eq!(server.data_requests(), 1, "a blob stored under its checksum is not fetched again");
    let without = request(&program, vec![device(DeviceName::Stdin, url(server.url("/data"), None))]);
    assert_eq!(agent.wait(&agent.start_session(&without).await).await.exit_state, "ok");
    assert_eq!(server.data_requests(), 2, "without a checksum, every session fetches");

    let wrong: Sha256 = "0".repeat(64).parse().unwrap();
    let bad_sum = request(&program, vec![device(DeviceName::Stdin, url(server.url("/data"), Some(wrong)))]);
    let report = agent.wait(&agent.start_session(&bad_sum).await).await;
    assert_eq!(report.return_code, 32, "{report:?}");
    assert!(report.exit_state.contains(&format!("has sha256 {sha}, not the expected {wrong}")), "{report:?}");
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{wrong}"), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a mismatched body is not stored");

    let missing = request(&program, vec![device(DeviceName::Input, url(server.url("/nope"), None))]);
    let report = agent.wait(&agent.start_session(&missing).await).await;
    assert!(report.exit_state.contains("the server answered 404 Not Found"), "{report:?}");
    let closed = request(&program, vec![device(DeviceName::Stdin, url("http://127.0.0.1:1/x".into(), None))]);
    let report = agent.wait(&agent.start_session(&closed).await).await;
    assert!(report.exit_state.contains("fetching http://127.0.0.1:1/x failed"), "{report:?}");
}

/// An HTTPS server on 127.0.0.1 (Python's, with a self-signed certificate made by
/// `openssl`): what a man in the middle would present. Killed when dropped.
struct UntrustedTls {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl UntrustedTls {
    fn start() -> UntrustedTls {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs (scripts/setup installs it)");
        assert!(made.success());
        std::fs::write(dir.path().join("data"), "secret-looking data\n").unwrap();
        let server = "import http.server, ssl, sys\n\
            s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n\
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('cert.pem', 'key.pem')\n\
            s.socket = c.wrap_socket(s.socket, server_side=True)\n\
            print(s.server_address[1], flush=True); s.serve_forever()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", server])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs (scripts/setup installs it)");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the TLS server printed {line:?}"));
        UntrustedTls { child, port, _dir: dir }
    }
}

impl Drop for UntrustedTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_https_server_the_node_does_not_trust_is_refused() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let tls = UntrustedTls::start();
    let url = format!("https://127.0.0.1:{}/data", tls.port);
    let id =
        agent.start_session(&request(&program, vec![device(DeviceName::Stdin, self::url(url.clone(), None))])).await;
    let report = agent.wait(&id).await;
    assert_eq!(report.return_code, 14, "{report:?}");
    assert!(report.exit_state.contains(&format!("device stdin: fetching {url} failed")), "{report:?}");
    assert!(report.exit_state.to_lowercase().contains("certificate"), "{report:?}");
    assert_eq!(agent.stdout(&id).await, "", "the guest never ran");
}

#[tokio::test]
async fn a_kill_ends_a_fetch_that_never_answers() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let server = Server::start(Vec::new()).await;
    let slow = request(&program, vec![device(DeviceName::Stdin, url(server.url("/slow"), None))]);
    let id = agent.start_session(&slow).await;
    let status = agent.status(&id).await;
    assert_eq!((status.state, status.waiting_for), (api::SessionState::Waiting, vec!["/dev/stdin".to_owned()]));
    let killed = Instant::now();
    let (code, _) = agent.json(Method::DELETE, &format!("/v1/sessions/{id}"), None).await;
    assert_eq!(code, StatusCode::OK);
    let report = agent.wait(&id).await;
    assert_eq!(report.exit_state, "killed", "{report:?}");
    assert!(killed.elapsed() < Duration::from_secs(2), "killed after {:?}", killed.elapsed());
}

#[tokio::test]
async fn a_lease_not_renewed_ends_a_fetch_that_never_answers() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let server = Server::start(Vec::new()).await;
    let slow = request(&program, vec![device(DeviceName::Stdin, url(server.url("/slow"), None))]);
    let started = Instant::now();
    let id = agent.start_session(&api::SessionRequest { lease_secs: Some(1), ..slow }).await;
    assert_eq!(agent.status(&id).await.state, api::SessionState::Waiting);
    let report = agent.wait(&id).await;
    assert_eq!((report.exit_state.as_str(), report.return_code), ("lease expired", 4), "{report:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "ended {:?} after the start", started.elapsed());
}

#[tokio::test]
async fn bad_devices_are_refused_in_one_line_and_leave_nothing() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let sha = program;
    let cases = [
        (json!([{"name": "stdout", "source": {"blob": {"sha256": sha}}}]), "device stdout cannot go to a blob"),
        (
            json!([{"name": "output", "source": {"url": {"url": "http://h/x"}}}]),
            "device output cannot go to a blob or a URL",
        ),
        (json!([{"name": "stdin", "source": "session"}]), "device stdin cannot come from the session"),
        (json!([{"name": "output", "source": {"node": {"path": "/tmp/x", "sha256": sha}}}]), "cannot have a sha256"),
        (json!([{"name": "input", "source": {"node": {"path": "etc/passwd"}}}]), "is not absolute"),
        (json!([{"name": "input", "source": {"url": {"url": "ftp://h/x"}}}]), "is not an http:// or https:// URL"),
        (json!([{"name": "input", "source": {"url": {"url": "http:///x"}}}]), "is not an http:// or https:// URL"),
        (json!([{"name": "input", "source": {"node": {"path": "/x", "sha256": "ABC"}}}]), "\"ABC\" is not a sha256"),
        (
            json!([{"name": "stdout", "source": "session"}, {"name": "stdout", "source": "session"}]),
            "device stdout is given twice",
        ),
        (
            json!([{"name": "input", "source": {"blob": {"sha256": sha}}}, {"name": "input", "source": {"blob": {"sha256": sha}}}]),
            "device input is given twice",
        ),
    ];
    for (devices, expected) in cases {
        let body = json!({"program": program, "devices": devices});
        let (status, v) = agent.json(Method::POST, "/v1/sessions", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{devices}: {v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(expected) && !error.contains('\n'), "{devices}: {error}");
    }
    let (status, v) = agent.json(Method::POST, "/v1/sessions", Some(json!({"program": "image:bin/x"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("needs an image device"), "{v}");
    let (_, v) = agent.json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(v["sessions"], json!([]), "no session was made");
}

#[tokio::test]
async fn uploads_and_outputs_stream_and_an_upload_cut_short_is_not_stored() {
    let agent = Agent::start().await;
    let program = agent.upload(guest(GUEST)).await;
    let mut big = vec![0u8; 128 << 20];
    big.chunks_mut(4096).enumerate().for_each(|(i, page)| page[..8].copy_from_slice(&i.to_le_bytes()));
    let peak = agent.peak_rss();
    let name = agent.upload(big.clone()).await;
    let grew = agent.peak_rss().saturating_sub(peak);
    assert!(grew < 32 << 20, "a 128 MiB upload raised the agent's peak memory by {} MiB", grew >> 20);
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{name}"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);

    let id = agent.start_session(&request(&program, vec![device(DeviceName::Stdin, blob(&name))])).await;
    assert_eq!(agent.wait(&id).await.exit_state, "ok");
    let peak = agent.peak_rss();
    let (status, stdout) = agent.call(Method::GET, &format!("/v1/sessions/{id}/stdout"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(stdout == big, "128 MiB of stdout read back intact");
    let grew = agent.peak_rss().saturating_sub(peak);
    assert!(grew < 32 << 20, "reading 128 MiB of stdout raised the agent's peak memory by {} MiB", grew >> 20);

    let cut = Sha256::of_bytes(b"never sent in full");
    let mut stream = tokio::net::UnixStream::connect(&agent.socket).await.unwrap();
    let head = format!("PUT /v1/blobs/{cut} HTTP/1.1\r\nhost: a\r\ncontent-length: 1000000\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7u8; 1000]).await.unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = agent.call(Method::HEAD, &format!("/v1/blobs/{cut}"), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut blobs: Vec<String> = std::fs::read_dir(agent.state_dir().join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    let mut stored = [program.to_string(), name.to_string()];
    stored.sort();
    assert_eq!(blobs, stored, "no temporary file is left behind");
}
