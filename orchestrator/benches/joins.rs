//! The stampede benchmark: N attendees join a workshop at once (root only; default 100,
//! `BENCH_JOINS`), each an HTTP client doing what a browser does (the join form, the join,
//! the lab page, the terminal's WebSocket) until its terminal shows a shell prompt.
//! Prints p50/p95/p99 and errors, side by side with the same N clients fetching the join
//! form at once (the server's floor), before and after, and the ratio.
//!
//! The workshop (`wbench1`, 10.220.0.0/16, portal on 127.0.0.1:18299, SSH ports
//! 23900-23999) has N warm labs of one netns node; its service and portal run in this
//! process (as `zerolab workshop serve` runs them); the time to warm them is printed too;
//! every lab is taken down at the end. `scripts/bench-workshop` runs it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use zerolab::workshop::{self, portal, Options, Workshop};

const ZEROLAB: &str = env!("CARGO_BIN_EXE_zerolab");
const PORT: u16 = 18299;
const CODE: &str = "bench";
/// A client that has no prompt by then counts as an error.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() {
    if !is_root() {
        eprintln!("skipped: the joins benchmark makes netns labs, which needs root");
        return;
    }
    let n = env_usize("BENCH_JOINS", 100);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = workshop::from_path(write_workshop(dir.path(), n)).expect("the workshop file");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let service = Workshop::open(
        file.clone(),
        workshop::dir(&dir.path().join("labs"), &file.name),
        Options::new(agent(), PathBuf::from(ZEROLAB)),
    )
    .expect("open the workshop");
    let base = format!("http://127.0.0.1:{PORT}");
    let (warm, before, joins, after) = runtime.block_on(async {
        let started = Instant::now();
        service.start();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", PORT)).await.expect("the portal's port");
        let router = portal::router(service.clone(), portal::Assets::load().expect("the portal's assets"));
        tokio::spawn(async move { portal::serve(listener, router, std::future::pending()).await });
        while service.overview().await.pool.free < n {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let warm = started.elapsed();
        let before = round(n, || static_page(base.clone())).await;
        let joins = round(n, || join(base.clone())).await;
        let after = round(n, || static_page(base.clone())).await;
        let counts = service.terminal_counts();
        service.close().await;
        (warm, before, (joins, counts), after)
    });
    let (joins, counts) = joins;
    println!("workshop: {n} warm labs of 1 node in {:.1} s", warm.as_secs_f64());
    println!("{n} clients at once        p50      p95      p99   errors");
    for (label, result) in [("join form (before)", &before), ("join to prompt", &joins), ("join form (after)", &after)]
    {
        let (p50, p95, p99) = percentiles(&result.0);
        println!("{label:<22} {:>6.0}ms {:>6.0}ms {:>6.0}ms {:>6}", ms(p50), ms(p95), ms(p99), result.1);
    }
    let floor = percentiles(&before.0).2.max(percentiles(&after.0).2);
    println!("ratio (p99 join to prompt / p99 join form): {:.1}x", ms(percentiles(&joins.0).2) / ms(floor).max(0.001));
    println!("terminals: {} warm (made with the lab), {} connected when asked", counts.warm, counts.cold);
    let _ = runtime.block_on(workshop::commands::down(&file, &dir.path().join("labs")));
}

/// True when running as root (namespace hosts need it).
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The release `zerolab-agent` beside the benchmark's `zerolab`, installed on every node.
fn agent() -> PathBuf {
    let agent = Path::new(ZEROLAB).with_file_name("zerolab-agent");
    assert!(agent.is_file(), "build the agent first: cargo build --release -p zerolab-agent");
    agent
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn write_workshop(dir: &Path, n: usize) -> PathBuf {
    let yaml = format!(
        "apiVersion: zerolab/v1\nkind: Workshop\nname: wbench1\n\
         lab: {{provider: netns, nodes: [{{name: node, count: 1}}]}}\n\
         network: 10.220.0.0/16\ncapacity: {n}\npool: {{warm: {n}, reserve: 0}}\n\
         access_code: {CODE}\nduration: 90m\n\
         portal: {{listen: 127.0.0.1:{PORT}, ssh_ports: 23900-23999, public_host: 127.0.0.1}}\n\
         steps:\n  - title: Log in\n    text: Nothing to do.\n"
    );
    let file = dir.join("wbench1.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// Runs `n` clients at once; their times (successes) and the number of errors.
async fn round<F, Fut>(n: usize, client: F) -> (Vec<Duration>, usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Duration, String>> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let start = start.clone();
            let work = client();
            tokio::spawn(async move {
                start.wait().await;
                tokio::time::timeout(PATIENCE, work).await.unwrap_or_else(|_| Err("timed out".into()))
            })
        })
        .collect();
    let (mut times, mut errors) = (Vec::new(), 0);
    for task in tasks {
        match task.await.expect("client task") {
            Ok(time) => times.push(time),
            Err(e) => {
                if errors == 0 {
                    eprintln!("first error: {e}");
                }
                errors += 1;
            }
        }
    }
    times.sort();
    (times, errors)
}

fn percentiles(times: &[Duration]) -> (Duration, Duration, Duration) {
    if times.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    let at = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    (at(0.50), at(0.95), at(0.99))
}

fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider of its own; the benchmark speaks plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The comparison: the join form, as a browser fetches it.
async fn static_page(base: String) -> Result<Duration, String> {
    let started = Instant::now();
    let page = client().get(&base).send().await.map_err(|e| e.to_string())?;
    page.text().await.map_err(|e| e.to_string())?;
    Ok(started.elapsed())
}

/// One attendee: the form, the join, the lab page, the terminal until a prompt.
async fn join(base: String) -> Result<Duration, String> {
    let started = Instant::now();
    let http = client();
    let form = http.get(&base).send().await.map_err(|e| e.to_string())?;
    let bound = set_cookie(&form, "zl_form").ok_or("no form cookie")?;
    let body = form.text().await.map_err(|e| e.to_string())?;
    let csrf = between(&body, "name=\"csrf\" value=\"", "\"").ok_or("no csrf token")?;
    let joined = http
        .post(format!("{base}/join"))
        .header("cookie", format!("zl_form={bound}"))
        .header("content-type", "application/x-www-form-urlencoded")
        // The token is hex, the code and name plain letters: nothing to escape.
        .body(format!("csrf={csrf}&code={CODE}&name=bench"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let token = set_cookie(&joined, "zl_attendee").filter(|t| !t.is_empty()).ok_or("join refused")?;
    let cookie = format!("zl_attendee={token}");
    let page = http.get(&base).header("cookie", &cookie).send().await.map_err(|e| e.to_string())?;
    let page = page.text().await.map_err(|e| e.to_string())?;
    if !page.contains("id=\"terminal\"") {
        return Err("no lab page (queued?)".into());
    }
    let mut request = format!("ws://127.0.0.1:{PORT}/term").into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert("cookie", cookie.parse().map_err(|_| "cookie header")?);
    request.headers_mut().insert("origin", base.parse().map_err(|_| "origin header")?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| e.to_string())?;
    let mut screen = String::new();
    while !(screen.trim_end().ends_with('#') || screen.trim_end().ends_with('$')) {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(Ok(_)) => {}
            _ => return Err(format!("terminal closed before a prompt: {screen:?}")),
        }
    }
    Ok(started.elapsed())
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (n, value) = v.split(';').next()?.split_once('=')?;
        (n == name).then(|| value.to_owned())
    })
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}
