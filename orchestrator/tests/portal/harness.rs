//! What the portal tests share: a workshop in a temp dir ([`WorkshopHarness`]: the
//! service and the portal in-process, access code and instructor password; every lab
//! down on drop), an HTTP
//! client that keeps no cookies of its own ([`Http`]: the tests pass each cookie on
//! purpose), the WebSocket terminal ([`Term`]), and chromedriver ([`Driver`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerolab::workshop::{self, portal, Options, Workshop};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// `target/<profile>/zerolab-agent`, beside this test's `target/<profile>/deps/`.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("zerolab-agent");
    path.is_file().then_some(path)
}

/// The agent when `test` can run here; otherwise says why it is skipped.
pub fn prerequisites(test: &str) -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: {test} makes netns labs, which needs root (CI runs it as root)");
        return None;
    }
    if zerolab::workshop::portal::Assets::load().is_err() {
        eprintln!("skipped: {test}: the portal's xterm.js is not fetched; run scripts/web-assets");
        return None;
    }
    let agent = agent_binary();
    if agent.is_none() {
        eprintln!(
            "skipped: {test}: no zerolab-agent beside the test binaries; run `cargo build --release -p zerolab-agent`"
        );
    }
    agent
}

/// A workshop made for one test, its service and portal in this process (as `zerolab
/// workshop serve` runs them); every lab taken down on drop, also when a test fails.
pub struct WorkshopHarness {
    dir: tempfile::TempDir,
    file: PathBuf,
    pub workshop: Arc<Workshop>,
    server: tokio::task::JoinHandle<()>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub code: String,
    pub password: String,
    /// The marker file the first step's check looks for (on the node; netns nodes without
    /// their own root file system see the host's, so it is unique per workshop).
    pub marker: String,
}

impl WorkshopHarness {
    /// Workshop `name` (`wb*`) on `network`, portal on `port`, attendee SSH ports
    /// `ssh_ports`: `capacity` labs of one node, all warm; returns once they are.
    pub async fn up(
        agent: PathBuf,
        name: &str,
        network: &str,
        port: u16,
        ssh_ports: &str,
        capacity: u32,
    ) -> WorkshopHarness {
        let _ = tracing_subscriber::fmt().with_env_filter("zerolab=info").with_test_writer().try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let code = format!("code-{name}");
        let password = format!("teach-{name}-{}", std::process::id());
        std::fs::write(dir.path().join("instructor.txt"), format!("{password}\n")).unwrap();
        let marker = format!("/tmp/zerolab-portal-test-{name}-{}", std::process::id());
        let yaml = format!(
            "apiVersion: zerolab/v1\nkind: Workshop\nname: {name}\n\
             lab: {{provider: netns, nodes: [{{name: node, count: 1}}]}}\n\
             network: {network}\ncapacity: {capacity}\npool: {{warm: {capacity}, reserve: 0}}\n\
             access_code: {code}\nduration: 90m\nextend: 30m\nidle: 15m\n\
             portal: {{listen: '127.0.0.1:{port}', ssh_ports: {ssh_ports}, public_host: 127.0.0.1}}\n\
             instructor: {{password_file: instructor.txt}}\n\
             steps:\n  - title: Leave a mark\n    text: Run `touch {marker}`, then press Check.\n    check: test -f {marker}\n\
             \x20 - title: All done\n    text: That is the workshop.\n"
        );
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let parsed = workshop::from_path(&file).expect("the workshop file");
        let mut options = Options::new(agent, PathBuf::from(env!("CARGO_BIN_EXE_zerolab")));
        options.check_every = Duration::from_secs(2);
        let workshop = Workshop::open(parsed, workshop::dir(&dir.path().join("labs"), name), options).expect("open");
        workshop.start();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the portal's port");
        let router = portal::router(workshop.clone(), portal::Assets::load().expect("assets"));
        let server = tokio::spawn(async move {
            let _ = portal::serve(listener, router, std::future::pending()).await;
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while workshop.overview().await.pool.free < capacity as usize {
            assert!(Instant::now() < deadline, "{name}: {capacity} warm labs not ready in 120 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        WorkshopHarness { dir, file, workshop, server, url: format!("http://127.0.0.1:{port}"), code, password, marker }
    }

    /// The portal's address.
    pub fn address(&self) -> SocketAddr {
        self.url.trim_start_matches("http://").parse().unwrap()
    }

    /// Stops the service and takes every lab of the workshop down, with its SSH rules.
    fn clean(&self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.marker);
        let file = workshop::from_path(&self.file).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(self.workshop.close());
        let _ = runtime.block_on(workshop::commands::down(&file, &self.dir.path().join("labs")));
    }
}

impl Drop for WorkshopHarness {
    fn drop(&mut self) {
        // Off the test's runtime: `clean` runs one of its own.
        std::thread::scope(|scope| drop(scope.spawn(|| self.clean()).join()));
    }
}

/// A response as the tests read it.
pub struct Page {
    pub status: u16,
    pub body: String,
    /// `Set-Cookie` values, `name=value` only.
    pub cookies: Vec<(String, String)>,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The value of cookie `name` this response set.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `<input name="csrf" value="...">` or `<meta name="csrf" content="...">`.
    pub fn csrf(&self) -> String {
        for prefix in ["name=\"csrf\" value=\"", "name=\"csrf\" content=\""] {
            if let Some(start) = self.body.find(prefix) {
                let rest = &self.body[start + prefix.len()..];
                return rest[..rest.find('"').unwrap()].to_owned();
            }
        }
        panic!("no csrf token in the page: {}", self.body);
    }
}

/// An HTTP client that follows no redirects and keeps no cookies.
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        // reqwest is built without a TLS provider of its own; the tests speak plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Http { client, base: base.to_owned() }
    }

    pub async fn get(&self, path: &str, cookies: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base)).header("cookie", cookies);
        read(request.send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, cookies: &str, form: &[(&str, &str)]) -> Page {
        let body = form.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect::<Vec<_>>().join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookies)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        read(request.send().await.expect("POST")).await
    }

    /// Joins as `name`; returns the attendee's token (their cookie's value).
    pub async fn join(&self, code: &str, name: &str) -> Option<String> {
        let form = self.get("/", "").await;
        let bound = form.cookie("zl_form").expect("the join form sets zl_form").to_owned();
        let joined = self
            .post("/join", &format!("zl_form={bound}"), &[("csrf", &form.csrf()), ("code", code), ("name", name)])
            .await;
        joined.cookie("zl_attendee").filter(|token| !token.is_empty()).map(str::to_owned)
    }

    /// Logs the instructor in; returns the session cookie's value.
    pub async fn instructor(&self, password: &str) -> Option<String> {
        let form = self.get("/instructor", "").await;
        let bound = form.cookie("zl_form").expect("the login form sets zl_form").to_owned();
        let page = self
            .post("/instructor/login", &format!("zl_form={bound}"), &[("csrf", &form.csrf()), ("password", password)])
            .await;
        page.cookie("zl_instructor").filter(|id| !id.is_empty()).map(str::to_owned)
    }

    /// Waits until the attendee has a lab; returns its name.
    pub async fn lab(&self, token: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = self.get("/api/view", &format!("zl_attendee={token}")).await;
            let json: serde_json::Value = serde_json::from_str(&view.body).unwrap_or_default();
            if let Some(lab) = json["lab"].as_str() {
                return lab.to_owned();
            }
            assert!(Instant::now() < deadline, "no lab after 60 s: {}", view.body);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn read(response: reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let cookies = headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())))
        .collect();
    Page { status, body: response.text().await.unwrap_or_default(), cookies, headers }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The terminal's WebSocket, as a client outside a browser.
pub struct Term {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    pub screen: String,
}

impl Term {
    /// Opens `/term` with `cookies` and `origin`; the HTTP status when refused.
    pub async fn open(address: SocketAddr, cookies: &str, origin: &str) -> Result<Term, u16> {
        let mut request = format!("ws://{address}/term").into_client_request().unwrap();
        request.headers_mut().insert("cookie", cookies.parse().unwrap());
        request.headers_mut().insert("origin", origin.parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Term { socket, screen: String::new() }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("websocket: {e}"),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.socket.send(Message::Binary(text.as_bytes().to_vec().into())).await.unwrap();
    }

    /// Reads until the screen contains `needle` (true) or `timeout` passes or the socket
    /// closes (false).
    pub async fn until(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.screen.contains(needle) {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Binary(bytes)))) => self.screen.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Some(Ok(_))) => {}
                _ => return false,
            }
        }
        true
    }
}

/// chromedriver on a port of ours; killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    /// Starts chromedriver on `port`; `None` (saying why) when it is not installed.
    pub fn start(port: u16) -> Option<Driver> {
        let Some(path) =
            ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].into_iter().map(Path::new).find(|p| p.exists())
        else {
            eprintln!("skipped: no chromedriver; apt-get install -y chromium-driver (scripts/setup does)");
            return None;
        };
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Driver { child, url: format!("http://127.0.0.1:{port}") })
    }

    /// A new headless Chromium session (its own profile: its own cookies).
    pub async fn browser(&self) -> fantoccini::Client {
        let mut caps = serde_json::Map::new();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--window-size=1280,900",
        ];
        caps.insert("goog:chromeOptions".into(), serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
