//! Channels: the guest's only I/O, opened from manifest lines or given as fds.
//!
//! A channel whose limits cannot bind (every limit on its enabled sides at
//! least [`UNLIMITED`], ZeroVM's own "no limit" default) and that needs no
//! etag is *direct*: the guest's calls go straight to the kernel. Any other
//! channel is *mediated*: the supervisor performs each call, so limits are
//! enforced exactly and `-EDQUOT` comes at the precise call and byte.
//!
//! A channel is a *network* channel when its descriptor is a TCP socket (an
//! IPv4 or IPv6 stream socket, as the node agent hands over between nodes):
//! the report counts its traffic under `net`, every other channel's under
//! `local`. The kernel counts a guest's direct calls on all its channels
//! together, so a direct network channel's bytes come from its socket's own
//! counters ([`Channel::socket_bytes`]).
//!
//! A channel named by a host path is opened by [`open_path`] and checked on the
//! opened descriptor: a regular file on an ordinary file system, a FIFO, or one
//! of a few harmless devices; procfs, sysfs and the other kernel file systems,
//! other devices, and symbolic links another user planted in a sticky
//! world-writable directory are refused with code 93 (`source.rs`, `walk.rs`).
//! `/dev/stdin`, `/dev/stdout` and `/dev/stderr` name the supervisor's own
//! descriptors 0, 1, 2, checked the same way by [`inherit`] and used as they are:
//! the same open file, so the guest writes where the descriptor points (after what
//! the shell wrote before, at the end under `>>`), never truncating it, and what the
//! supervisor prints next (the report) comes after the guest's output. Such a
//! channel is a stream: puts on it are sequential whatever its type (a random-put
//! type would write at offsets from the file's start, over what was there).

use std::fs::File;
use std::io::{self, Seek};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Instant;

pub use self::source::{inherit, open_path, Access, Kind, Refusal, SourceError, DEVICES, ORDINARY};
use crate::codes::ReturnCode;
use crate::manifest::{AccessType, ChannelSource, ChannelSpec, Limits};

mod source;
mod walk;

/// A limit at or above this (4 GiB) does not bind.
pub const UNLIMITED: u64 = 1 << 32;

/// What an inherited pipe is grown to (the default `fs.pipe-max-size`, which an
/// unprivileged process may ask for). A guest on a 64 KiB pipe switches with its
/// peer every 64 KiB, and each switch into or out of a guest costs more than a
/// native process's (the kernel flips the `rdtsc`-faulting bit in CR4, a write
/// that traps to the hypervisor on the virtual machines here: 2.5-5 µs more per
/// pipe round trip): with 1 MiB a `cat` guest switches about four times less.
pub const PIPE_SIZE: i32 = 1 << 20;

/// Grows the pipe `file` to [`PIPE_SIZE`] unless it is already that large. Best
/// effort: where the system allows less (a lower `fs.pipe-max-size`, a user
/// over `fs.pipe-user-pages-soft`), the pipe keeps its size and only runs slower.
fn grow_pipe(file: &File) {
    use nix::fcntl::{fcntl, FcntlArg};
    if fcntl(file, FcntlArg::F_GETPIPE_SZ).is_ok_and(|size| size < PIPE_SIZE) {
        let _ = fcntl(file, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    }
}

/// An open channel.
#[derive(Debug)]
pub struct Channel {
    /// The alias the guest sees.
    pub alias: String,
    /// The manifest's access type.
    pub access: AccessType,
    /// The four limits.
    pub limits: Limits,
    /// Whether the report carries an etag for it.
    pub etag: bool,
    /// The open source.
    pub fd: OwnedFd,
    /// Size at start for random-get regular files, else 0.
    pub size: u64,
    /// Whether it is a regular file (never blocks).
    pub regular: bool,
    /// Whether it is a TCP socket: the report counts its traffic as network
    /// traffic (see the module doc).
    pub network: bool,
}

/// Bytes the guest side of a network channel has read from and written to its
/// socket, as the kernel counts them for the connection (so only differences
/// mean anything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketBytes {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub written: u64,
}

/// Why a channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A network channel outside the node agent.
    #[error("channel {alias}: network channels run under the node agent (zerolab run), not a standalone session")]
    Network {
        /// Alias.
        alias: String,
    },
    /// The source is missing, refused, or could not be opened.
    #[error("channel {alias}")]
    Source {
        /// Alias.
        alias: String,
        /// Why.
        #[source]
        source: SourceError,
    },
}

impl ChannelError {
    /// The ZeroVM return code.
    pub fn code(&self) -> ReturnCode {
        match self {
            ChannelError::Network { .. } => ReturnCode::UnsupportedSource,
            ChannelError::Source { source, .. } => source.code(),
        }
    }
}

/// The supervisor's own descriptor a manifest path names: `/dev/stdin`,
/// `/dev/stdout` and `/dev/stderr` are 0, 1 and 2 (as in ZeroVM manifests),
/// not the `/proc/self/fd` links they are on the host.
fn standard_descriptor(path: &Path) -> Option<RawFd> {
    ["/dev/stdin", "/dev/stdout", "/dev/stderr"].iter().position(|p| path == Path::new(p)).map(|fd| fd as RawFd)
}

/// The access type of a channel on one of the supervisor's own descriptors: puts
/// sequential (where the descriptor points), gets as asked.
fn stream_access(asked: AccessType) -> AccessType {
    match asked {
        AccessType::SeqGetRandPut => AccessType::SeqGetSeqPut,
        AccessType::RandGetRandPut => AccessType::RandGetSeqPut,
        other => other,
    }
}

impl Channel {
    /// Wraps a descriptor the caller already opened (pipe, socket, file...).
    /// It is not checked: the caller vouches for it (see [`open_path`] for
    /// opening a host path the way a manifest channel is opened).
    pub fn from_fd(alias: impl Into<String>, access: AccessType, limits: Limits, fd: OwnedFd) -> io::Result<Channel> {
        let file = File::from(fd);
        let meta = file.metadata()?;
        let regular = meta.file_type().is_file();
        let size = if regular && access.random_get() { meta.len() } else { 0 };
        let network = meta.file_type().is_socket() && is_tcp(&file);
        Ok(Channel { alias: alias.into(), access, limits, etag: false, fd: file.into(), size, regular, network })
    }

    /// The supervisor's own standard descriptor `fd` (0, 1 or 2) as the channel
    /// `alias`, checked by [`inherit`]. A pipe is grown to [`PIPE_SIZE`] first.
    pub fn inherit(alias: &str, access: AccessType, limits: Limits, fd: RawFd) -> Result<Channel, ChannelError> {
        let (file, kind) = inherit(fd, alias, Access { read: limits.readable(), write: limits.writable() })
            .map_err(|source| ChannelError::Source { alias: alias.to_owned(), source })?;
        if kind == Kind::Fifo {
            grow_pipe(&file);
        }
        Channel::from_fd(alias, access, limits, file.into()).map_err(|e| ChannelError::Source {
            alias: alias.to_owned(),
            source: SourceError::Open { path: alias.to_owned(), source: e },
        })
    }

    /// Opens a manifest channel line; `deadline` bounds waiting for a FIFO
    /// reader. The source is opened and checked by [`open_path`], or, for
    /// `/dev/stdin`, `/dev/stdout` and `/dev/stderr`, is the supervisor's own
    /// descriptor checked by [`inherit`].
    pub fn open(spec: &ChannelSpec, deadline: Instant) -> Result<Channel, ChannelError> {
        let alias = spec.alias.clone();
        let path = match &spec.source {
            ChannelSource::Path(p) => p.clone(),
            ChannelSource::Network(_) => return Err(ChannelError::Network { alias }),
        };
        let shown = path.display().to_string();
        let (readable, writable) = (spec.limits.readable(), spec.limits.writable());
        let access = Access { read: readable, write: writable };
        let standard = standard_descriptor(&path);
        let opened = match standard {
            Some(fd) => inherit(fd, &shown, access),
            None => open_path(&path, access, deadline),
        };
        let (file, kind) = opened.map_err(|source| ChannelError::Source { alias: alias.clone(), source })?;
        let open_err = |source| ChannelError::Source {
            alias: alias.clone(),
            source: SourceError::Open { path: shown.clone(), source },
        };
        let regular = kind == Kind::Regular;
        let access = match standard {
            Some(_) => stream_access(spec.access),
            None => spec.access,
        };
        if readable && writable && access == AccessType::RandGetSeqPut && regular && standard.is_none() {
            // Type 1: sequential puts append after the existing data.
            (&file).seek(io::SeekFrom::End(0)).map_err(open_err)?;
        }
        let size = if regular && access.random_get() { file.metadata().map_err(open_err)?.len() } else { 0 };
        Ok(Channel {
            alias,
            access,
            limits: spec.limits,
            etag: spec.etag,
            fd: file.into(),
            size,
            regular,
            network: false,
        })
    }

    /// Whether the supervisor must be in the path: its limits bind or it has
    /// an etag (see the module doc), or it has no place among the jail's
    /// direct descriptor ranges (`jail::seccomp::Policy`): read-write of type
    /// 0 or 2, which only a descriptor handed in can be, or neither readable
    /// nor writable.
    pub fn mediated(&self) -> bool {
        let l = &self.limits;
        let (r, w) = (l.readable(), l.writable());
        self.etag
            || (r && (l.gets < UNLIMITED || l.get_size < UNLIMITED))
            || (w && (l.puts < UNLIMITED || l.put_size < UNLIMITED))
            || (r && w && !self.access.random_get())
            || !(r || w)
    }

    /// A network channel's bytes so far, from the kernel's counters for its
    /// connection; `None` for other channels, or if the kernel does not say.
    ///
    /// Written: every byte queued on the connection is acknowledged by the
    /// peer or still in the send queue. Read: every byte that arrived in order
    /// (`tcpi_bytes_received`) was read or is still in the receive queue, except
    /// that the peer's end of stream counts as one byte once it has arrived.
    /// Bytes another process moves on the same connection count too, so the
    /// supervisor takes the difference over the guest's run.
    pub fn socket_bytes(&self) -> Option<SocketBytes> {
        if !self.network {
            return None;
        }
        let fd = self.fd.as_raw_fd();
        let info = tcp_info(fd)?;
        let unread = queued(fd, libc::FIONREAD)?;
        let unsent = queued(fd, libc::TIOCOUTQ)?;
        let end_arrived = matches!(info.state, TCP_TIME_WAIT | TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING);
        Some(SocketBytes {
            read: info.bytes_received.saturating_sub(unread + u64::from(end_arrived)),
            written: info.bytes_acked + unsent,
        })
    }
}

/// Whether `fd` is an IPv4 or IPv6 stream socket.
fn is_tcp(fd: &File) -> bool {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage};
    let family = getsockname::<SockaddrStorage>(fd.as_raw_fd()).ok().and_then(|a| a.family());
    matches!(family, Some(AddressFamily::Inet | AddressFamily::Inet6))
        && getsockopt(fd, sockopt::SockType).is_ok_and(|t| t == SockType::Stream)
}

/// `tcpi_state` values (`include/net/tcp_states.h`) in which the peer's end
/// of stream has arrived while this end is still open.
const TCP_TIME_WAIT: u8 = 6;
const TCP_CLOSE_WAIT: u8 = 8;
const TCP_LAST_ACK: u8 = 9;
const TCP_CLOSING: u8 = 11;

/// The start of the kernel's `struct tcp_info` (`linux/tcp.h`), up to the
/// byte counters (Linux 4.1 and later).
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    state: u8,
    _flags: [u8; 7],
    /// `tcpi_rto` to `tcpi_total_retrans`.
    _counts: [u32; 24],
    /// `tcpi_pacing_rate` and `tcpi_max_pacing_rate`.
    _pacing: [u64; 2],
    bytes_acked: u64,
    bytes_received: u64,
}

/// Raw `getsockopt`: nix has no `TCP_INFO` option.
fn tcp_info(fd: RawFd) -> Option<TcpInfo> {
    let mut info = TcpInfo::default();
    let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, plain integers.
    let r = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) };
    (r == 0 && len as usize >= std::mem::size_of::<TcpInfo>()).then_some(info)
}

/// The bytes in a socket's receive (`FIONREAD`) or send (`TIOCOUTQ`) queue.
/// Raw `ioctl`: nix only has macros that generate the same unsafe call.
fn queued(fd: RawFd, request: libc::Ioctl) -> Option<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: both requests write one int.
    let r = unsafe { libc::ioctl(fd, request, &raw mut n) };
    (r == 0).then(|| n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use super::*;

    fn wrap(fd: impl Into<OwnedFd>) -> Channel {
        Channel::from_fd("/dev/in/x", AccessType::SeqGetSeqPut, Limits::UNLIMITED, fd.into()).unwrap()
    }

    /// A connected TCP pair over loopback: (accepted, connecting).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, client)
    }

    #[test]
    fn a_tcp_socket_is_a_network_channel_and_pipes_files_and_unix_sockets_are_local() {
        let (accepted, client) = tcp_pair();
        assert!(wrap(accepted).network);
        assert!(wrap(client).network);
        if let Ok(listener) = TcpListener::bind("[::1]:0") {
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            assert!(wrap(client).network, "IPv6");
        }
        let (r, w) = nix::unistd::pipe().unwrap();
        assert!(!wrap(r).network && !wrap(w).network);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!wrap(a).network);
        assert!(!wrap(tempfile::tempfile().unwrap()).network);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!wrap(udp).network, "a datagram socket is not a stream");
        assert_eq!(wrap(tempfile::tempfile().unwrap()).socket_bytes(), None);
    }

    fn state(c: &Channel) -> u8 {
        tcp_info(c.fd.as_raw_fd()).unwrap().state
    }

    #[test]
    fn socket_bytes_count_what_this_end_read_and_wrote() {
        let (mut ours, mut peer) = tcp_pair();
        // What went over the connection before the channel existed is not the guest's.
        peer.write_all(b"hello").unwrap();
        let mut five = [0u8; 5];
        ours.read_exact(&mut five).unwrap();
        let ch = wrap(ours);
        let start = ch.socket_bytes().unwrap();
        let mut file = File::from(ch.fd.try_clone().unwrap());
        let since = |ch: &Channel| {
            let now = ch.socket_bytes().unwrap();
            (now.read - start.read, now.written - start.written)
        };

        let data = vec![7u8; 100_000];
        peer.write_all(&data).unwrap();
        let mut some = vec![0u8; 1000];
        file.read_exact(&mut some).unwrap();
        assert_eq!(since(&ch), (1000, 0), "read part, more waiting unread");
        file.write_all(&data[..3000]).unwrap();
        assert_eq!(since(&ch), (1000, 3000), "written, acknowledged or not");

        // The peer's end of stream arrives while data is still unread.
        peer.shutdown(Shutdown::Write).unwrap();
        let waited = Instant::now();
        while state(&ch) != TCP_CLOSE_WAIT {
            assert!(waited.elapsed() < Duration::from_secs(5), "no end of stream");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(since(&ch), (1000, 3000), "end of stream arrived, data unread");
        let mut rest = Vec::new();
        file.read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), 99_000);
        assert_eq!(since(&ch), (100_000, 3000), "read to the end of stream");
        let mut echoed = vec![0u8; 3000];
        peer.read_exact(&mut echoed).unwrap();
    }
}
