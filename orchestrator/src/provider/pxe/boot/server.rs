//! The boot server daemon, `zerolab pxe-serve PLAN`: the lab's boot services in one
//! process, started by [`super::serve::start`] and stopped by SIGTERM.
//!
//! [`run`] in order: write every boot file ([`render::write_all`]); pack the agent into
//! `http/agent.cpio` (once); give the interface the IPv6 address of the router
//! advertisements (only if missing, removed again at the end); bind HTTP on
//! `server:http_port` (before dnsmasq, so a port in use fails before anything answers
//! DHCP); start dnsmasq; write `serve.pid` (the sign that it is up); serve until SIGTERM
//! or SIGINT, or until dnsmasq dies; then stop dnsmasq, reap it, remove the address and
//! the pid file.
//!
//! HTTP routes (every one only to a node's own address):
//! - `GET /v1/boot/aa-bb-cc-dd-ee-ff.ipxe`: the node's script, rendered now from the
//!   plan and `state.json` (an installed install node gets `exit`);
//! - `GET /v1/files/{vmlinuz,initrd.img,disk.img.gz,bootx64.efi,agent.cpio,installer/linux,installer/initrd.gz}`;
//! - `GET /v1/node/TOKEN/{hostname,authorized_keys,ssh_host_ed25519_key,ssh_host_ed25519_key.pub,preseed.cfg,event/STEP}`:
//!   404 unless TOKEN is a node's, 403 unless the peer is that node's address.
//!
//! Refusals are logged (peer and route, never the token); what the nodes fetch is
//! recorded in `events.jsonl` ([`super::events`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::dnsmasq::{self, DnsmasqError};
use super::events::{self, step};
use super::plan::{BootNode, BootPlan, PlanError};
use super::render::{self, RenderError};
use super::state;

/// The server's pid file, in `LAB/pxe/`: written once it serves.
pub const PID_FILE: &str = "serve.pid";
/// The packed agent, in `LAB/pxe/http/`.
const AGENT_CPIO: &str = "http/agent.cpio";

/// The boot server could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The plan could not be read.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The boot files could not be written.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// dnsmasq could not be started.
    #[error(transparent)]
    Dnsmasq(#[from] DnsmasqError),
    /// dnsmasq exited while serving.
    #[error("dnsmasq exited while serving ({status}); see {log}")]
    DnsmasqDied {
        /// How it exited.
        status: String,
        /// Its log.
        log: PathBuf,
    },
    /// The HTTP port could not be bound.
    #[error("cannot serve HTTP on {address}; is the address on the interface and the port free?")]
    Bind {
        /// The address and port.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the server's could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What the handlers share.
struct Shared {
    plan: BootPlan,
}

/// Runs the boot services of the plan at `plan_path` until SIGTERM or SIGINT.
pub async fn run(plan_path: &Path) -> Result<(), ServerError> {
    let plan = BootPlan::load(plan_path)?;
    let dir = plan.dir.clone();
    render::write_all(&plan)?;
    if let Some(agent) = &plan.agent {
        pack_agent(agent, &dir.join(AGENT_CPIO))?;
    }
    let added = ensure_ra_address(&plan).await;
    let address = SocketAddr::from((plan.server, plan.http_port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(source) => {
            remove_ra_address(&plan, added).await;
            return Err(ServerError::Bind { address, source });
        }
    };
    let mut child = match dnsmasq::start(&plan).await {
        Ok(child) => child,
        Err(e) => {
            remove_ra_address(&plan, added).await;
            return Err(e.into());
        }
    };
    let pid_path = dir.join(PID_FILE);
    let written = std::fs::write(&pid_path, format!("{}\n", std::process::id()));
    let shared = Arc::new(Shared { plan: plan.clone() });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    tracing::info!(lab = %plan.lab, %address, interface = %plan.interface, "boot services up");
    let outcome = match written {
        Err(source) => Err(ServerError::Io { path: pid_path.clone(), source }),
        Ok(()) => wait_for_stop(&mut child, &dir).await,
    };
    let _ = stop_tx.send(());
    dnsmasq::stop(&mut child).await;
    let _ = http.await;
    remove_ra_address(&plan, added).await;
    let _ = std::fs::remove_file(&pid_path);
    tracing::info!(lab = %plan.lab, "boot services stopped");
    outcome
}

/// Waits for SIGTERM or SIGINT (`Ok`), or for dnsmasq to die (an error).
async fn wait_for_stop(child: &mut tokio::process::Child, dir: &Path) -> Result<(), ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let io = |source| ServerError::Io { path: dir.to_owned(), source };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    tokio::select! {
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
        status = child.wait() => Err(ServerError::DnsmasqDied {
            status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            log: dir.join(dnsmasq::LOG_FILE),
        }),
    }
}

/// Packs `agent` into the cpio at `path` (through a temporary file).
fn pack_agent(agent: &Path, path: &Path) -> Result<(), ServerError> {
    let io = |source| ServerError::Io { path: path.to_owned(), source };
    let temp = path.with_extension("cpio.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&temp).map_err(io)?);
    super::cpio::write_agent_archive(agent, &mut out).map_err(io)?;
    std::io::Write::flush(&mut out).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

/// Adds the router advertisements' address to the interface unless it has it; whether
/// it was added (and so is to be removed). A failure only costs iPXE its 16 s wait.
async fn ensure_ra_address(plan: &BootPlan) -> bool {
    let address = format!("{}/64", plan.ra_address());
    let shown =
        tokio::process::Command::new("ip").args(["-6", "-o", "addr", "show", "dev", &plan.interface]).output().await;
    if shown.as_ref().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&address)) {
        return false;
    }
    let added = tokio::process::Command::new("ip")
        .args(["-6", "addr", "add", &address, "dev", &plan.interface, "nodad"])
        .output()
        .await;
    match added {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stderr);
            tracing::warn!(interface = %plan.interface, "cannot add {address}: {}; iPXE will wait for IPv6", said.trim());
            false
        }
        Err(e) => {
            tracing::warn!(interface = %plan.interface, "cannot run ip: {e}; iPXE will wait for IPv6");
            false
        }
    }
}

/// Removes the address [`ensure_ra_address`] added, and the address the interface may
/// have made itself from the advertisements (SLAAC: every address in the prefix goes).
async fn remove_ra_address(plan: &BootPlan, added: bool) {
    if added {
        let prefix = format!("{}/64", plan.ra_prefix());
        let _ = tokio::process::Command::new("ip")
            .args(["-6", "addr", "flush", "dev", &plan.interface, "to", &prefix])
            .output()
            .await;
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/boot/{script}", get(boot_script))
        .route("/v1/files/{*name}", get(file))
        .route("/v1/node/{token}/{*item}", get(metadata))
        .with_state(shared)
}

fn peer_v4(peer: SocketAddr) -> Option<Ipv4Addr> {
    match peer.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

fn refuse(status: StatusCode, peer: SocketAddr, route: &str, why: &str) -> Response {
    tracing::warn!(%peer, route, "refused ({status}): {why}");
    status.into_response()
}

fn record(plan: &BootPlan, node: &BootNode, step: &str, detail: Option<String>) {
    if let Err(e) = events::record(&plan.dir, &node.name, step, detail) {
        tracing::warn!(node = %node.name, "cannot record event {step}: {e}");
    }
}

/// `GET /v1/boot/MAC.ipxe`.
async fn boot_script(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(script): UrlPath<String>,
) -> Response {
    let plan = &shared.plan;
    let route = "/v1/boot";
    let mac = script.strip_suffix(".ipxe").and_then(|mac| mac.parse().ok());
    let Some(node) = mac.and_then(|mac| plan.node_with_mac(mac)) else {
        return refuse(StatusCode::NOT_FOUND, peer, route, "no node with that mac");
    };
    if peer_v4(peer) != Some(node.address) {
        return refuse(StatusCode::FORBIDDEN, peer, route, &format!("not the address of {}", node.name));
    }
    let installed = match state::load(&plan.dir) {
        Ok(state) => state.installed(&node.name),
        Err(e) => {
            tracing::warn!(node = %node.name, "{e}; serving the script of a node not installed");
            false
        }
    };
    match render::ipxe_script(plan, node, installed) {
        Ok(script) => {
            record(plan, node, step::SCRIPT, None);
            ([(header::CONTENT_TYPE, "text/plain")], script).into_response()
        }
        Err(e) => {
            tracing::error!(node = %node.name, "{e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `GET /v1/files/NAME`: one of the plan's artifacts, streamed, to a node's address.
async fn file(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let plan = &shared.plan;
    let route = "/v1/files";
    let Some(node) = peer_v4(peer).and_then(|address| plan.node_at(address)) else {
        return refuse(StatusCode::FORBIDDEN, peer, route, "not a node's address");
    };
    let installer = plan.installer.as_ref();
    let (path, event): (Option<PathBuf>, Option<&str>) = match name.as_str() {
        "vmlinuz" => (Some(plan.live.kernel.clone()), Some(step::KERNEL)),
        "initrd.img" => (Some(plan.live.initrd.clone()), Some(step::INITRD)),
        "agent.cpio" => (plan.agent.as_ref().map(|_| plan.dir.join(AGENT_CPIO)), None),
        "disk.img.gz" => (plan.image.clone(), None),
        "bootx64.efi" => (plan.image.as_ref().map(|image| image.with_file_name("bootx64.efi")), None),
        "installer/linux" => (installer.map(|i| i.kernel.clone()), Some(step::KERNEL)),
        "installer/initrd.gz" => (installer.map(|i| i.initrd.clone()), Some(step::INITRD)),
        _ => (None, None),
    };
    let Some(path) = path else {
        return refuse(StatusCode::NOT_FOUND, peer, route, &format!("no file {name} in the plan"));
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(e) => {
            tracing::error!(node = %node.name, "cannot open {}: {e}", path.display());
            return StatusCode::NOT_FOUND.into_response();
        }
    };
    let length = file.metadata().await.map(|m| m.len()).ok();
    if let Some(event) = event {
        record(plan, node, event, Some(name.clone()));
    }
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024));
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    if let Some(length) = length {
        response.headers_mut().insert(header::CONTENT_LENGTH, length.into());
    }
    response
}

/// `GET /v1/node/TOKEN/ITEM`: the node's metadata and its own events.
async fn metadata(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath((token, item)): UrlPath<(String, String)>,
) -> Response {
    let plan = &shared.plan;
    let route = "/v1/node";
    let Some(node) = node_with_token(plan, &token) else {
        return refuse(StatusCode::NOT_FOUND, peer, route, "no node has that token");
    };
    if peer_v4(peer) != Some(node.address) {
        return refuse(StatusCode::FORBIDDEN, peer, route, &format!("not the address of {}", node.name));
    }
    let keys = plan.dir.join("keys").join(&node.name);
    let text = |body: String| ([(header::CONTENT_TYPE, "text/plain")], body).into_response();
    match item.as_str() {
        "hostname" => text(format!("{}\n", node.name)),
        "authorized_keys" => text(format!("{}\n", plan.authorized_key.trim())),
        "ssh_host_ed25519_key" | "ssh_host_ed25519_key.pub" => {
            match tokio::fs::read_to_string(keys.join(&item)).await {
                Ok(key) => text(key),
                Err(e) => {
                    tracing::error!(node = %node.name, "cannot read its {item}: {e}");
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        }
        "preseed.cfg" => match render::preseed(plan, node) {
            Ok(preseed) => text(preseed),
            Err(e) => refuse(StatusCode::NOT_FOUND, peer, route, &e.to_string()),
        },
        _ => match item.strip_prefix("event/").filter(|step| step::REPORTED.contains(step)) {
            Some(reported) => {
                record(plan, node, reported, None);
                if reported == step::INSTALLED {
                    if let Err(e) = state::set_installed(&plan.dir, &node.name, true) {
                        tracing::error!(node = %node.name, "cannot mark it installed: {e}");
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                }
                text("ok\n".to_owned())
            }
            None => refuse(StatusCode::NOT_FOUND, peer, route, "no such item"),
        },
    }
}

/// The node whose token is `token`, compared in constant time (no early exit on the
/// first differing byte, so the time taken does not tell how much of a guess was right).
fn node_with_token<'a>(plan: &'a BootPlan, token: &str) -> Option<&'a BootNode> {
    plan.nodes.iter().find(|node| {
        let (a, b) = (node.token.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    })
}
