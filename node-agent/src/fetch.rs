//! URL devices: the agent fetches `http://` and `https://` inputs into its blob store.
//!
//! A [`Fetcher`] holds one reqwest client (rustls with the ring provider and the
//! system's root certificates; proxies from the usual environment variables) and the
//! agent's tokio runtime. Session threads call [`Fetcher::fetch`], which blocks that
//! thread, never a runtime worker. The body streams through a
//! [`BlobWriter`](crate::blobs::BlobWriter), so a fetch of any size costs no memory,
//! and is stored under the SHA-256 it hashes to; with an expected `sha256`, a mismatch
//! is an error and nothing is stored, and a blob already stored under it is used
//! without touching the network. Fetches of one URL on one node take turns, so the
//! instances of a job that share an input with a checksum download it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use zerolab_sandbox::session::error_chain;

use crate::api::Sha256;
use crate::blobs::{BlobError, BlobPin, Blobs};

/// How long connecting to a URL's server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// Why a URL could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (no TLS roots, say).
    #[error("cannot make an HTTP client: {0}; check the node's CA certificates (package ca-certificates)")]
    Client(String),
    /// Connecting, sending or reading failed.
    #[error("fetching {url} failed: {cause}; check that the node can reach it")]
    Transfer {
        /// The URL.
        url: String,
        /// Every cause, joined.
        cause: String,
    },
    /// The server answered with an error status.
    #[error("fetching {url}: the server answered {status}; check the URL")]
    Status {
        /// The URL.
        url: String,
        /// The status line.
        status: String,
    },
    /// The body does not hash to the expected checksum.
    #[error("{url} has sha256 {actual}, not the expected {expected}; the file changed or the job's sha256 is wrong")]
    Mismatch {
        /// The URL.
        url: String,
        /// The checksum asked for.
        expected: Sha256,
        /// What the body hashes to.
        actual: Sha256,
    },
    /// The session's time ran out first.
    #[error("fetching {url} took longer than the session's {secs} s timeout; give the job a longer timeout")]
    Deadline {
        /// The URL.
        url: String,
        /// The session's timeout.
        secs: u64,
    },
    /// The session was killed while fetching.
    #[error("killed while fetching")]
    Cancelled,
    /// The blob store could not take it.
    #[error(transparent)]
    Store(#[from] BlobError),
}

/// Fetches URLs into the blob store.
#[derive(Debug)]
pub struct Fetcher {
    /// Made at the first fetch: building it loads and parses the system's root
    /// certificates (tens of milliseconds of CPU), which an agent that never fetches,
    /// or 100 agents starting at once, should not pay.
    client: OnceLock<Result<reqwest::Client, String>>,
    runtime: Handle,
    blobs: Blobs,
    /// One lock per URL ever fetched (a handful per job), so fetches of it take turns.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Fetcher {
    /// A fetcher storing into `blobs`, running its requests on `runtime`.
    pub fn new(blobs: Blobs, runtime: Handle) -> Fetcher {
        Fetcher { client: OnceLock::new(), runtime, blobs, turns: Mutex::new(HashMap::new()) }
    }

    fn client(&self) -> Result<&reqwest::Client, FetchError> {
        let made = self.client.get_or_init(|| {
            // Either this call installs ring as the process's provider or one is there already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                .user_agent(concat!("zerolab-agent/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| error_chain(&e))
        });
        made.as_ref().map_err(|e| FetchError::Client(e.clone()))
    }

    /// Fetches `url` (checked against `sha256` when given) before `deadline`, or until
    /// `cancel` is notified, blocking the calling thread, which must not be one of the
    /// runtime's; returns the blob, pinned.
    pub fn fetch(
        &self,
        url: &str,
        sha256: Option<Sha256>,
        deadline: Instant,
        timeout_secs: u64,
        cancel: &tokio::sync::Notify,
    ) -> Result<BlobPin, FetchError> {
        self.runtime.block_on(async {
            // Made inside block_on: a timer needs the runtime's context.
            let fetch = tokio::time::timeout_at(deadline.into(), self.fetch_async(url, sha256));
            tokio::select! {
                fetched = fetch => {
                    fetched.unwrap_or_else(|_| Err(FetchError::Deadline { url: url.to_owned(), secs: timeout_secs }))
                }
                () = cancel.notified() => Err(FetchError::Cancelled),
            }
        })
    }

    async fn fetch_async(&self, url: &str, sha256: Option<Sha256>) -> Result<BlobPin, FetchError> {
        let stored = |sha: Option<Sha256>| sha.and_then(|s| self.blobs.pin(&s).ok());
        if let Some(path) = stored(sha256) {
            return Ok(path);
        }
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(turns.entry(url.to_owned()).or_default())
        };
        let _turn = turn.lock().await;
        if let Some(path) = stored(sha256) {
            return Ok(path);
        }
        let transfer = |e: reqwest::Error| FetchError::Transfer { url: url.to_owned(), cause: error_chain(&e) };
        let mut response = self.client()?.get(url).send().await.map_err(transfer)?;
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.to_owned(), status: response.status().to_string() });
        }
        // Writes go to the page cache and block only this session's thread (block_on
        // runs the future here, not on a runtime worker).
        let mut writer = self.blobs.writer(sha256)?;
        while let Some(chunk) = response.chunk().await.map_err(transfer)? {
            writer.write(&chunk)?;
        }
        let blob = writer.finish().map_err(|e| match e {
            BlobError::Mismatch { expected, actual } => FetchError::Mismatch { url: url.to_owned(), expected, actual },
            e => e.into(),
        })?;
        tracing::info!(url, sha256 = %blob.sha256, bytes = blob.size, "fetched");
        Ok(self.blobs.pin(&blob.sha256)?)
    }
}
