//! One SSH connection to a node and the steps run over it.
//!
//! Steps that need root on the node ([`Session::exec_as_root`], [`Session::copy_as_root_then`])
//! run as they are when the login user is `root`, and through `sudo -n` otherwise (never
//! prompting: a user who needs a password for sudo gets [`Error::SudoPassword`] from
//! [`Session::check_sudo`], which says how to fix it).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::{load_secret_key, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, ChannelStream, Disconnect};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use zerolab_agent_api::{Hasher, Sha256};

use super::tcp::connect_tcp;
use super::{Error, HostKeys, Target};

/// How to connect: timeouts, retries while a node boots, keepalives.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limit for each TCP connect.
    pub connect_timeout: Duration,
    /// Limit for the SSH handshake with authentication.
    pub timeout: Duration,
    /// Extra attempts after a refused, reset or timed-out TCP connect.
    pub retries: u32,
    /// Wait before the first retry; doubled after each, up to 2 s.
    pub backoff: Duration,
    /// Keepalive after this much silence; the connection drops after 3 unanswered.
    pub keepalive: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            retries: 5,
            backoff: Duration::from_millis(200),
            keepalive: Some(Duration::from_secs(15)),
        }
    }
}

impl ConnectOptions {
    /// For a node known to be up (it answered before): no patience for a boot, so a
    /// node that went away is reported within about 4 s instead of a minute (six
    /// 10 s connects when its link is down). A TCP connect to a live node takes
    /// milliseconds; 2 s still covers one lost SYN (resent after 1 s), and one retry
    /// covers a blip.
    pub fn known_up() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            retries: 1,
            ..ConnectOptions::default()
        }
    }
}

/// russh's defaults, with AES-GCM before ChaCha20-Poly1305: both ends have AES
/// instructions on the machines we target, which makes bulk uploads cheaper for the node's
/// sshd as well as for us.
const PREFERRED: russh::Preferred = russh::Preferred {
    cipher: std::borrow::Cow::Borrowed(&[
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_256_CTR,
    ]),
    ..russh::Preferred::DEFAULT
};

/// How long a node has to answer a channel open: a live sshd answers in milliseconds, a
/// connection whose peer went away silently never does.
pub const OPEN_WAIT: Duration = Duration::from_secs(5);

/// The exit status of a copy that failed (see [`Session::copy_as_root_then`]).
const COPY_FAILED: u32 = 97;

/// How much of a command's standard input is read and written at once.
const STDIN_CHUNK: usize = 256 * 1024;

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when the command was killed by a signal.
    pub status: Option<u32>,
    /// The signal that killed the command, by name (`KILL`, `TERM`, ...).
    pub signal: Option<String>,
    /// Everything the command wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// What [`Session::upload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The file was streamed, verified and moved into place.
    Copied,
    /// The node already had a file with the same sha256.
    Skipped,
}

/// A byte stream to a Unix socket on the node (see [`Session::open_streamlocal`]).
pub type Stream = ChannelStream<Msg>;

/// An interactive shell on a pseudo-terminal (see [`Session::open_shell`]): split it,
/// write keystrokes and `window_change` on the write half, read output on the other.
pub type Shell = russh::Channel<Msg>;

/// Checks the server's key against the pins; a refusal is kept for [`Session::connect`]
/// to report (russh itself only says "unknown key").
struct Client {
    node: String,
    address: String,
    host_keys: HostKeys,
    refusal: Arc<Mutex<Option<Error>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let openssh = key.to_openssh().map_err(|e| russh::Error::Keys(e.into()))?;
        // `key-type base64`, without the comment.
        let key: Vec<&str> = openssh.split_whitespace().take(2).collect();
        match self.host_keys.check(&self.node, &self.address, &key.join(" ")) {
            Ok(()) => Ok(true),
            Err(e) => {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Ok(false)
            }
        }
    }
}

/// An authenticated connection to one node; share it (`&Session`) between steps.
pub struct Session {
    node: String,
    user: String,
    handle: Handle<Client>,
}

impl Session {
    /// Connects to `target`, retrying refused connects with backoff, checks the host key
    /// against `host_keys` (pinning it on first contact) and authenticates with the key.
    pub async fn connect(target: &Target, host_keys: &HostKeys, options: &ConnectOptions) -> Result<Session, Error> {
        let node = target.node.clone();
        let key = load_secret_key(&target.key, None).map_err(|source| Error::Key {
            node: node.clone(),
            path: target.key.clone(),
            source: Box::new(source),
        })?;
        let address = format!("{}:{}", target.address, target.port);
        let socket = connect_tcp(&node, &address, options).await?;
        let config = Arc::new(client::Config {
            keepalive_interval: options.keepalive,
            keepalive_max: 3,
            preferred: PREFERRED,
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let handler = Client {
            node: node.clone(),
            address: target.address.clone(),
            host_keys: host_keys.clone(),
            refusal: refusal.clone(),
        };
        let handshake = async {
            let mut handle = client::connect_stream(config, socket, handler).await?;
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), None);
            let auth = handle.authenticate_publickey(target.user.clone(), key).await?;
            Ok::<_, russh::Error>((handle, auth.success()))
        };
        let result = tokio::time::timeout(options.timeout, handshake).await;
        let (handle, authenticated) = match result {
            Err(_) => {
                return Err(Error::HandshakeTimeout { node, address, timeout: options.timeout });
            }
            Ok(Err(source)) => {
                if let Some(refusal) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    return Err(refusal);
                }
                return Err(Error::Ssh { node, operation: "handshake", source: Box::new(source) });
            }
            Ok(Ok(done)) => done,
        };
        if !authenticated {
            return Err(Error::AuthRejected { node, user: target.user.clone(), key: target.key.clone() });
        }
        tracing::debug!(node = %node, %address, "connected");
        Ok(Session { node, user: target.user.clone(), handle })
    }

    /// The node this session reaches.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// True once the connection is gone (closed by either side, or keepalives unanswered).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// The user it is logged in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether steps that need root go through `sudo -n` (the login user is not `root`).
    pub fn needs_sudo(&self) -> bool {
        self.user != "root"
    }

    /// Checks that steps needing root can run: nothing to check as `root`; otherwise
    /// `sudo -n true` must pass, and the error says why not (no sudo, a password needed).
    pub async fn check_sudo(&self, timeout: Duration) -> Result<(), Error> {
        if !self.needs_sudo() {
            return Ok(());
        }
        let output = self.exec("sudo -n true", None, timeout).await?;
        if output.success() {
            Ok(())
        } else {
            Err(sudo_failure(&self.node, &self.user, &output))
        }
    }

    /// Runs the POSIX shell `script` as root (`sh -c`, through `sudo -n` unless logged
    /// in as root; see [`check_sudo`](Self::check_sudo)), whatever the login shell is.
    pub async fn exec_as_root(&self, script: &str, timeout: Duration) -> Result<Output, Error> {
        self.exec(&as_root(self.needs_sudo(), script), None, timeout).await
    }

    /// Runs `command` (through the login shell) with `stdin` and returns its output once
    /// the channel closes, or fails after `timeout`.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output, Error> {
        match stdin {
            Some(bytes) => self.exec_stream(command, Some(bytes), timeout).await,
            None => self.exec_stream(command, None::<&[u8]>, timeout).await,
        }
    }

    /// Like [`exec`](Self::exec), with standard input streamed from a reader.
    pub async fn exec_stream<R>(&self, command: &str, stdin: Option<R>, timeout: Duration) -> Result<Output, Error>
    where
        R: AsyncRead + Unpin + Send,
    {
        let run = self.run(command, stdin);
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            // Dropping the channel closes it; the connection stays usable.
            Err(_) => Err(Error::Timeout { node: self.node.clone(), command: command.to_string(), timeout }),
        }
    }

    async fn run<R: AsyncRead + Unpin + Send>(&self, command: &str, stdin: Option<R>) -> Result<Output, Error> {
        let ssh = |operation| move |source| Error::Ssh { node: self.node.clone(), operation, source: Box::new(source) };
        let channel = self.within_open_wait("channel open", self.handle.channel_open_session()).await?;
        let channel = channel.map_err(ssh("channel open"))?;
        channel.exec(true, command).await.map_err(ssh("exec"))?;
        let (mut reader, writer) = channel.split();
        let send = async {
            if let Some(mut stdin) = stdin {
                // Large writes: the channel cuts them into packets as big as the peer
                // allows (`data(reader)` copies through an 8 KiB buffer, a packet each,
                // which made uploads four times slower than OpenSSH's).
                let mut tx = writer.make_writer();
                let mut buffer = vec![0; STDIN_CHUNK];
                loop {
                    let n = stdin.read(&mut buffer).await?;
                    if n == 0 {
                        break;
                    }
                    tx.write_all(&buffer[..n]).await?;
                }
            }
            writer.eof().await.map_err(std::io::Error::other)
        };
        tokio::pin!(send);
        let mut sending = true;
        let mut output = Output { status: None, signal: None, stdout: Vec::new(), stderr: Vec::new() };
        loop {
            tokio::select! {
                sent = &mut send, if sending => {
                    sending = false;
                    // A command that exits without reading all its input closes the
                    // channel under us; its status says what happened.
                    if let Err(e) = sent {
                        tracing::debug!(node = %self.node, "stdin not fully sent: {e}");
                    }
                }
                msg = reader.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => output.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => output.stderr.extend_from_slice(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => output.status = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        output.signal = Some(format!("{signal_name:?}"));
                    }
                    // The exit status can come before the last data: read until close.
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
        if output.status.is_none() && output.signal.is_none() {
            return Err(Error::NoExitStatus { node: self.node.clone(), command: command.to_string() });
        }
        Ok(output)
    }

    /// Streams `local` to `remote` with `mode` (e.g. `0o755`), verifying its sha256 on
    /// the node; skipped when `remote` already has the same content (its mode is then
    /// left as it is). `timeout` bounds each of the two steps (check, copy). The file goes
    /// to a temporary name beside `remote` and is renamed into place, so a half-written
    /// file never runs.
    pub async fn upload(&self, local: &Path, remote: &str, mode: u32, timeout: Duration) -> Result<Upload, Error> {
        let local_error = |source| Error::LocalFile { node: self.node.clone(), path: local.to_path_buf(), source };
        let sum = sha256_file(local).await.map_err(local_error)?;
        self.upload_with_sum(local, &sum, remote, mode, timeout).await
    }

    /// [`upload`](Self::upload) with the file's sha256 (see [`sha256_file`]) already
    /// known: when one file goes to many nodes, it is hashed once, not once per node.
    pub async fn upload_with_sum(
        &self,
        local: &Path,
        sum: &Sha256,
        remote: &str,
        mode: u32,
        timeout: Duration,
    ) -> Result<Upload, Error> {
        let quoted = shell_quote(remote);
        let check = self.exec(&format!("sha256sum {quoted} 2>/dev/null"), None, timeout).await?;
        if check.success()
            && String::from_utf8_lossy(&check.stdout).split_whitespace().next() == Some(sum.to_string().as_str())
        {
            return Ok(Upload::Skipped);
        }
        self.copy(local, sum, remote, mode, "", timeout, false).await?;
        Ok(Upload::Copied)
    }

    /// Streams `local` (whose sha256 is `sum`) to `remote` as root, without first asking
    /// whether the node has it (the caller knows it does not), verified and renamed into
    /// place as [`upload`](Self::upload) does; then runs the shell script `then` in the
    /// same command and returns its output (one command where two would do the same).
    /// A failed copy is an [`Error::Upload`] and `then` does not run.
    pub async fn copy_as_root_then(
        &self,
        local: &Path,
        sum: &Sha256,
        remote: &str,
        mode: u32,
        then: &str,
        timeout: Duration,
    ) -> Result<Output, Error> {
        self.copy(local, sum, remote, mode, then, timeout, true).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy(
        &self,
        local: &Path,
        sum: &Sha256,
        remote: &str,
        mode: u32,
        then: &str,
        timeout: Duration,
        root: bool,
    ) -> Result<Output, Error> {
        let command = |script: &str| if root { as_root(self.needs_sudo(), script) } else { script.to_owned() };
        let local_error = |source| Error::LocalFile { node: self.node.clone(), path: local.to_path_buf(), source };
        let upload_error = |cause: String| Error::Upload { node: self.node.clone(), remote: remote.to_string(), cause };
        let quoted = shell_quote(remote);
        // The copy runs in a subshell that exits COPY_FAILED on any failure, so its
        // failure is told from `then`'s.
        let script = format!(
            "(set -e; dest={quoted}; tmp=\"$dest.zerolab-upload.$$\"; trap 'rm -f \"$tmp\"' EXIT; \
             mkdir -p \"$(dirname \"$dest\")\"; cat > \"$tmp\"; \
             sum=$(sha256sum < \"$tmp\"); sum=${{sum%% *}}; \
             if [ \"$sum\" != {sum} ]; then echo \"checksum mismatch: node computed $sum\" >&2; exit 3; fi; \
             chmod {mode:o} \"$tmp\"; mv -f \"$tmp\" \"$dest\") || exit {COPY_FAILED}\n{then}"
        );
        let file = tokio::fs::File::open(local).await.map_err(local_error)?;
        let file = tokio::io::BufReader::with_capacity(256 * 1024, file);
        let output = self.exec_stream(&command(&script), Some(file), timeout).await?;
        if output.status == Some(COPY_FAILED) || (then.is_empty() && !output.success()) {
            return Err(upload_error(last_line(&String::from_utf8_lossy(&output.stderr), output.status)));
        }
        Ok(output)
    }

    /// Opens a byte stream to the Unix socket `socket_path` on the node
    /// (`direct-streamlocal@openssh.com`), e.g. to talk to the node agent.
    pub async fn open_streamlocal(&self, socket_path: &str) -> Result<Stream, Error> {
        let open = self.handle.channel_open_direct_streamlocal(socket_path);
        let channel = self.within_open_wait("streamlocal open", open).await?.map_err(|source| Error::Ssh {
            node: self.node.clone(),
            operation: "streamlocal open",
            source: Box::new(source),
        })?;
        Ok(channel.into_stream())
    }

    /// Opens the login shell on a pseudo-terminal of type `term` (e.g. `xterm-256color`)
    /// and `cols` x `rows` characters: the workshop portal's browser terminal.
    pub async fn open_shell(&self, term: &str, cols: u32, rows: u32) -> Result<Shell, Error> {
        let ssh = |operation| move |source| Error::Ssh { node: self.node.clone(), operation, source: Box::new(source) };
        let channel = self.within_open_wait("channel open", self.handle.channel_open_session()).await?;
        let channel = channel.map_err(ssh("channel open"))?;
        channel.request_pty(true, term, cols, rows, 0, 0, &[]).await.map_err(ssh("pty request"))?;
        channel.request_shell(true).await.map_err(ssh("shell request"))?;
        Ok(channel)
    }

    /// `open` (a channel open), or [`Error::ChannelTimeout`] after [`OPEN_WAIT`].
    async fn within_open_wait<T>(&self, operation: &'static str, open: impl Future<Output = T>) -> Result<T, Error> {
        tokio::time::timeout(OPEN_WAIT, open).await.map_err(|_| Error::ChannelTimeout {
            node: self.node.clone(),
            operation,
            timeout: OPEN_WAIT,
        })
    }

    /// Closes the connection politely.
    pub async fn close(self) -> Result<(), Error> {
        self.handle.disconnect(Disconnect::ByApplication, "", "en").await.map_err(|source| Error::Ssh {
            node: self.node.clone(),
            operation: "disconnect",
            source: Box::new(source),
        })
    }
}

/// The sha256 of a file, read in chunks (never whole in memory).
pub async fn sha256_file(path: &Path) -> std::io::Result<Sha256> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Hasher::default();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finish())
}

/// The command line that runs the POSIX shell `script` as root: `sh -c SCRIPT`, behind
/// `sudo -n` (which fails rather than asking for a password) when `sudo` is set.
fn as_root(sudo: bool, script: &str) -> String {
    let sudo = if sudo { "sudo -n " } else { "" };
    format!("{sudo}sh -c {}", shell_quote(script))
}

/// Why `sudo -n true` failed, from what it printed.
fn sudo_failure(node: &str, user: &str, output: &Output) -> Error {
    let (node, user) = (node.to_owned(), user.to_owned());
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status {
        // The shell's "command not found".
        Some(127) => Error::SudoMissing { node, user },
        _ if stderr.contains("password is required") => Error::SudoPassword { node, user },
        _ => Error::Sudo { node, user, cause: last_line(&stderr, output.status) },
    }
}

/// The last line a failed command wrote to stderr, or its exit status when it wrote none.
pub fn last_line(stderr: &str, status: Option<u32>) -> String {
    match stderr.trim().lines().last() {
        Some(line) => line.to_owned(),
        None => format!("exit status {status:?}"),
    }
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("/opt/a b"), "'/opt/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn root_steps_go_through_sudo_only_for_other_users() {
        assert_eq!(as_root(false, "echo 'hi'"), r"sh -c 'echo '\''hi'\'''");
        assert_eq!(as_root(true, "id -u"), "sudo -n sh -c 'id -u'");
    }

    #[test]
    fn sudo_failures_say_what_to_do() {
        let failed = |status, stderr: &str| {
            let output = Output { status: Some(status), signal: None, stdout: vec![], stderr: stderr.into() };
            sudo_failure("n1", "ops", &output).to_string()
        };
        assert_eq!(
            failed(1, "sudo: a password is required\n"),
            "user ops on node n1 cannot run sudo without a password; allow it \
             (sudoers: `ops ALL=(ALL) NOPASSWD: ALL`) or log in as root"
        );
        assert!(failed(127, "bash: line 1: sudo: command not found\n").contains("the node has no sudo; install sudo"));
        assert_eq!(
            failed(1, "sudo: account validation failure\n"),
            "user ops on node n1: `sudo -n true` failed: sudo: account validation failure"
        );
    }

    #[test]
    fn last_line_or_the_status() {
        assert_eq!(last_line("a\nsudo: a password is required\n", Some(1)), "sudo: a password is required");
        assert_eq!(last_line("  \n", Some(3)), "exit status Some(3)");
    }

    #[tokio::test]
    async fn hashes_a_file_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).await.unwrap().to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
