//! The keeper process: holds one SSH connection per node, runs the lab's services, and
//! serves the lab's clients over the keeper socket (see the [module doc](super)).
//!
//! Order of start-up: take the lab's keeper lock (a second keeper exits at once), remove
//! a stale socket, bind a new one readable only by us, then serve. Each client connection
//! is checked to come from our own user (`SO_PEERCRED`) and carries one request.
//!
//! Connections are made on first use and kept; a kept connection found closed is made
//! again, and a command whose channel could not even be opened (the connection died
//! under it, so it never ran) is retried once on a fresh connection. Pins are re-read
//! for every new connection, so a lab that `up` rebuilt (new hosts, new pins) is
//! reached with the new pins.
//!
//! The keeper exits on `Stop`, when its socket is removed or replaced (the lab was taken
//! down), or after [`IDLE`] without a request while it runs no service; it stops its
//! services before it exits (see [`super::service`] for when it dies instead).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use super::protocol::{read_line, write_line, FailureKind, Reply, Request};
use super::service::{Service, ServiceError, ServiceSpec, ServiceStatus};
use super::{socket_path, KeeperError, LOCK, SERVICES};
use crate::ssh::{self, ConnectOptions, HostKeys, Output, Session, Target};
use zerolab_sandbox::session::error_chain;

/// The keeper exits after this long without a request (like OpenSSH's ControlPersist).
pub const IDLE: Duration = Duration::from_secs(600);
/// How often the keeper checks that its socket is still its own and that it is not idle.
const WATCH: Duration = Duration::from_secs(1);

/// Runs the keeper for the lab in `lab_dir` until it is stopped, its socket goes away, or
/// it has been idle for [`IDLE`]. Returns at once when another keeper holds the lab.
pub async fn serve(lab_dir: &Path) -> Result<(), KeeperError> {
    let lock_path = lab_dir.join(LOCK);
    // Held until this function returns, just before the process exits.
    let Some(_lock) = crate::lab::lock::try_exclusive(&lock_path)
        .map_err(|source| KeeperError::Io { path: lock_path.clone(), source })?
    else {
        return Ok(());
    };
    let socket = socket_path(lab_dir)?;
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|source| KeeperError::Io { path: socket.clone(), source })?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| KeeperError::Io { path: socket.clone(), source })?;
    let inode = std::fs::metadata(&socket).map_err(|source| KeeperError::Io { path: socket.clone(), source })?.ino();
    let keeper = Arc::new(Server::new(lab_dir));
    tracing::info!(lab = %lab_dir.display(), "keeper serving");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                keeper.touch();
                let (keeper, stop_tx) = (keeper.clone(), stop_tx.clone());
                tokio::spawn(async move {
                    keeper.active.fetch_add(1, Ordering::SeqCst);
                    if let Err(e) = keeper.handle(stream, &stop_tx).await {
                        tracing::debug!("client: {e}");
                    }
                    keeper.active.fetch_sub(1, Ordering::SeqCst);
                    keeper.touch();
                });
            }
            _ = stop_rx.changed() => break,
            () = tokio::time::sleep(WATCH) => {
                let ours = std::fs::metadata(&socket).is_ok_and(|m| m.ino() == inode);
                if !ours {
                    tracing::info!("socket removed: the lab is gone");
                    keeper.stop_services().await;
                    return Ok(());
                }
                let idle = keeper.idle() >= IDLE && keeper.active.load(Ordering::SeqCst) == 0;
                if idle && !keeper.runs_services().await {
                    tracing::info!("idle for {IDLE:?}");
                    break;
                }
            }
        }
    }
    keeper.stop_services().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// One kept connection per node, keyed by node name (with the target it was made for).
type Slot = Arc<Mutex<Option<(Target, Arc<Session>)>>>;

struct Server {
    known_hosts: PathBuf,
    services_dir: PathBuf,
    services: Mutex<BTreeMap<String, Service>>,
    slots: std::sync::Mutex<HashMap<String, Slot>>,
    started: Instant,
    last_used_ms: AtomicU64,
    active: AtomicUsize,
}

impl Server {
    fn new(lab_dir: &Path) -> Server {
        Server {
            known_hosts: crate::lab::known_hosts_in(lab_dir),
            services_dir: lab_dir.join(SERVICES),
            services: Mutex::new(BTreeMap::new()),
            slots: std::sync::Mutex::new(HashMap::new()),
            started: Instant::now(),
            last_used_ms: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        self.last_used_ms.store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    fn idle(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.last_used_ms.load(Ordering::SeqCst)))
    }

    async fn handle(&self, stream: UnixStream, stop: &tokio::sync::watch::Sender<bool>) -> std::io::Result<()> {
        // The socket is 0600 in a private directory; this also refuses a client of
        // another user that got hold of a descriptor.
        let me = nix::unistd::geteuid().as_raw();
        if stream.peer_cred()?.uid() != me {
            return Ok(());
        }
        let mut stream = BufReader::new(stream);
        let Some(request) = read_line::<Request>(&mut stream).await? else { return Ok(()) };
        match request {
            Request::Exec { target, command, timeout_ms } => {
                let result = self.exec(&target, &command, Duration::from_millis(timeout_ms)).await;
                match result {
                    Ok(output) => {
                        let reply = Reply::Output {
                            status: output.status,
                            signal: output.signal,
                            stdout_len: output.stdout.len(),
                            stderr_len: output.stderr.len(),
                        };
                        write_line(&mut stream, &reply).await?;
                        stream.write_all(&output.stdout).await?;
                        stream.write_all(&output.stderr).await?;
                        stream.flush().await
                    }
                    Err(e) => write_line(&mut stream, &failed(&e)).await,
                }
            }
            Request::Stream { target, socket } => {
                let remote = match self.open_socket(&target, &socket).await {
                    Ok(remote) => remote,
                    Err(e) => return write_line(&mut stream, &failed(&e)).await,
                };
                write_line(&mut stream, &Reply::Streaming).await?;
                let mut remote = remote;
                // Bytes the client sent after its request line are in the reader's buffer:
                // copying from the BufReader passes them on first.
                tokio::io::copy_bidirectional(&mut stream, &mut remote).await.map(drop)
            }
            Request::Warm { targets } => {
                for target in targets {
                    let keeper_slot = self.slot(&target.node);
                    let known_hosts = self.known_hosts.clone();
                    tokio::spawn(async move {
                        if let Err(e) =
                            connect_slot(&keeper_slot, &target, &known_hosts, &ConnectOptions::known_up()).await
                        {
                            tracing::debug!("warm {}: {}", target.node, error_chain(&e));
                        }
                    });
                }
                write_line(&mut stream, &Reply::Done).await
            }
            Request::StartService { service } => match self.start_service(service).await {
                Ok(status) => write_line(&mut stream, &Reply::Services { services: vec![status] }).await,
                Err(e) => {
                    let reply = Reply::Failed { kind: FailureKind::Other, cause: error_chain(&e) };
                    write_line(&mut stream, &reply).await
                }
            },
            Request::Services => {
                let services = self.services.lock().await.values().map(Service::status).collect();
                write_line(&mut stream, &Reply::Services { services }).await
            }
            Request::Stop => {
                // Answered once the services are gone, so `down` finds nothing of them.
                self.stop_services().await;
                write_line(&mut stream, &Reply::Done).await?;
                let _ = stop.send(true);
                Ok(())
            }
        }
    }

    /// Starts `spec`, or keeps the live service of its name when that has the same spec.
    async fn start_service(&self, spec: ServiceSpec) -> Result<ServiceStatus, ServiceError> {
        let mut services = self.services.lock().await;
        if let Some(running) = services.get(&spec.name) {
            if running.spec == spec && running.is_live() {
                return Ok(running.status());
            }
        }
        if let Some(old) = services.remove(&spec.name) {
            old.stop().await;
        }
        let service = Service::start(spec, &self.services_dir).await?;
        let status = service.status();
        services.insert(status.name.clone(), service);
        Ok(status)
    }

    /// Whether a service runs or will be restarted (a keeper with one does not idle out).
    async fn runs_services(&self) -> bool {
        self.services.lock().await.values().any(Service::is_live)
    }

    /// Stops every service and waits until they are gone.
    async fn stop_services(&self) {
        let services = std::mem::take(&mut *self.services.lock().await);
        for service in services.into_values() {
            service.stop().await;
        }
    }

    fn slot(&self, node: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(node.to_owned()).or_default().clone()
    }

    /// The kept connection to `target`, made (again) when there is none or it closed.
    async fn session(&self, target: &Target, options: &ConnectOptions) -> Result<Arc<Session>, ssh::Error> {
        connect_slot(&self.slot(&target.node), target, &self.known_hosts, options).await
    }

    async fn exec(&self, target: &Target, command: &str, timeout: Duration) -> Result<Output, ssh::Error> {
        // A node the lab says is ready answers soon or is reported (see `known_up`).
        let options = ConnectOptions::known_up();
        let session = self.session(target, &options).await?;
        match session.exec(command, None, timeout).await {
            // The channel could not be opened: the connection died and the command never
            // ran, so running it on a fresh connection runs it once.
            Err(ssh::Error::Ssh { operation: "channel open", .. } | ssh::Error::ChannelTimeout { .. }) => {
                self.forget(target, &session).await;
                self.session(target, &options).await?.exec(command, None, timeout).await
            }
            result => result,
        }
    }

    /// A byte stream to `socket` on `target`, retried once on a fresh connection when the
    /// kept one turns out dead (as [`exec`](Self::exec) does).
    async fn open_socket(&self, target: &Target, socket: &str) -> Result<ssh::Stream, ssh::Error> {
        let options = ConnectOptions::known_up();
        let session = self.session(target, &options).await?;
        match session.open_streamlocal(socket).await {
            Err(ssh::Error::ChannelTimeout { .. }) => {
                self.forget(target, &session).await;
                self.session(target, &options).await?.open_streamlocal(socket).await
            }
            result => result,
        }
    }

    async fn forget(&self, target: &Target, dead: &Arc<Session>) {
        let slot = self.slot(&target.node);
        let mut kept = slot.lock().await;
        if kept.as_ref().is_some_and(|(_, session)| Arc::ptr_eq(session, dead)) {
            *kept = None;
        }
    }
}

async fn connect_slot(
    slot: &Slot,
    target: &Target,
    known_hosts: &Path,
    options: &ConnectOptions,
) -> Result<Arc<Session>, ssh::Error> {
    let mut kept = slot.lock().await;
    if let Some((made_for, session)) = kept.as_ref() {
        if made_for == target && !session.is_closed() {
            return Ok(session.clone());
        }
    }
    let host_keys = HostKeys::open(known_hosts)?;
    let session = Arc::new(Session::connect(target, &host_keys, options).await?);
    *kept = Some((target.clone(), session.clone()));
    Ok(session)
}

fn failed(error: &ssh::Error) -> Reply {
    let kind = match error {
        ssh::Error::Unreachable { .. } | ssh::Error::HandshakeTimeout { .. } | ssh::Error::ChannelTimeout { .. } => {
            FailureKind::Unreachable
        }
        // sshd's answer when its connect(2) to a socket fails: nothing listens there.
        ssh::Error::Ssh { source, .. }
            if matches!(**source, russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed)) =>
        {
            FailureKind::Refused
        }
        _ => FailureKind::Other,
    };
    Reply::Failed { kind, cause: error_chain(error) }
}

#[cfg(test)]
mod tests {
    use super::super::SOCKET;
    use super::*;

    #[test]
    fn the_socket_is_named_in_the_lab_dir() {
        assert_eq!(socket_path(Path::new("/l")).unwrap(), Path::new("/l").join(SOCKET));
    }
}
