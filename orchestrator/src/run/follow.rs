//! Following instances' stdout and stderr while they run, for a caller that shows
//! them as they come (`zerolab sandbox run`).
//!
//! Each read asks the agent only for the bytes past those already read
//! (`GET /v1/sessions/{id}/stdout?offset=N`), so a guest's output crosses the wire
//! once whatever its size, and goes both to the instance's file in the results
//! directory (appended) and to the caller's [`Hook`], piece by piece (memory stays
//! flat). The agent says, in the same answer, whether the session had ended before
//! the read: after such a read the file is whole and collecting does not read it again.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

use super::RunError;
use super::REQUEST_TIMEOUT;
use crate::agent_client::{self, AgentError, Link, SaveError};

/// Which of the guest's outputs a piece comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its stdout.
    Stdout,
    /// Its stderr.
    Stderr,
}

impl Stream {
    /// Both, in the order they are read.
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    /// Its name in the agent's API and in the results directory.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Gets every new piece of a followed instance's output: the instance (by index in
/// the job), the stream, the bytes.
pub type Hook<'a> = Box<dyn FnMut(usize, Stream, &[u8]) + 'a>;

/// Why a followed output could not be read on.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The agent did not answer: the caller says what that means for the run.
    #[error(transparent)]
    Agent(AgentError),
    /// The results directory could not be written: the run ends.
    #[error(transparent)]
    Run(RunError),
}

/// What was read of each followed instance's streams, and where the pieces go.
pub struct Follower<'a> {
    hook: Hook<'a>,
    /// Per instance: the bytes read of each stream, in [`Stream::BOTH`]'s order.
    read: HashMap<usize, [u64; 2]>,
}

impl<'a> Follower<'a> {
    /// Follows with `hook` getting the pieces.
    pub fn new(hook: Hook<'a>) -> Follower<'a> {
        Follower { hook, read: HashMap::new() }
    }

    /// Reads what is new of instance `index`'s stdout and stderr (`streams`, those its
    /// agent keeps) in session `id`, appending it to `out/<stream>` and handing it to
    /// the hook. True when the session had ended before both reads: nothing follows.
    pub async fn read(
        &mut self,
        link: Link<'_>,
        index: usize,
        id: &str,
        streams: &[&str],
        out: &Path,
    ) -> Result<bool, FollowError> {
        let results = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FollowError::Run(RunError::Results { path, source })
        };
        tokio::fs::create_dir_all(out).await.map_err(results(out))?;
        let mut ended = true;
        for (slot, stream) in Stream::BOTH.into_iter().enumerate() {
            if !streams.contains(&stream.name()) {
                continue;
            }
            let path = out.join(stream.name());
            let file =
                tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await.map_err(results(&path))?;
            let offset = self.read.entry(index).or_default()[slot];
            let hook = &mut self.hook;
            let mut tee = Tee { file, hook: &mut |bytes: &[u8]| hook(index, stream, bytes) };
            let followed =
                agent_client::follow_session_output(link, id, stream.name(), offset, &mut tee, REQUEST_TIMEOUT)
                    .await
                    .map_err(|e| match e {
                    SaveError::Agent(e) => FollowError::Agent(e),
                    SaveError::Write(source) => FollowError::Run(RunError::Results { path: path.clone(), source }),
                })?;
            self.read.entry(index).or_default()[slot] += followed.bytes;
            ended &= followed.ended;
        }
        Ok(ended)
    }
}

/// A file that hands each piece written to it, once written, to a hook too.
struct Tee<'h> {
    file: tokio::fs::File,
    hook: &'h mut dyn FnMut(&[u8]),
}

impl AsyncWrite for Tee<'_> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.file).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            (this.hook)(&buf[..n]);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_tee_gives_the_hook_exactly_what_reached_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout");
        let mut seen = Vec::new();
        {
            let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await.unwrap();
            let mut hook = |bytes: &[u8]| seen.extend_from_slice(bytes);
            let mut tee = Tee { file, hook: &mut hook };
            for piece in [&b"one "[..], b"two ", &[7u8; 100_000]] {
                tee.write_all(piece).await.unwrap();
            }
            tee.flush().await.unwrap();
        }
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written.len(), 8 + 100_000);
        assert_eq!(seen, written);
    }
}
