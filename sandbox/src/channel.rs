//! Channels: the guest's only I/O, opened from manifest lines or given as fds.
//!
//! A channel whose limits cannot bind (every limit on its enabled sides at
//! least [`UNLIMITED`], ZeroVM's own "no limit" default) and that needs no
//! etag is *direct*: the guest's calls go straight to the kernel. Any other
//! channel is *mediated*: the supervisor performs each call, so limits are
//! enforced exactly and `-EDQUOT` comes at the precise call and byte.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::time::{Duration, Instant};

use crate::codes::ReturnCode;
use crate::manifest::{AccessType, ChannelSource, ChannelSpec, Limits};

/// A limit at or above this (4 GiB) does not bind.
pub const UNLIMITED: u64 = 1 << 32;

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
}

/// Why a channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A readable channel's path does not exist.
    #[error("channel {alias}: {path} does not exist")]
    Missing {
        /// Alias.
        alias: String,
        /// Path.
        path: String,
    },
    /// Not a regular file, character device or FIFO.
    #[error("channel {alias}: {path} is a {kind}; channels are regular files, character devices or FIFOs")]
    Unsupported {
        /// Alias.
        alias: String,
        /// Path.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A network channel outside the node agent.
    #[error("channel {alias}: network channels run under the node agent (zerolab run), not a standalone session")]
    Network {
        /// Alias.
        alias: String,
    },
    /// A write-only FIFO had no reader before the session's deadline.
    #[error("channel {alias}: no reader opened the FIFO {path} in time")]
    NoReader {
        /// Alias.
        alias: String,
        /// Path.
        path: String,
    },
    /// The open failed.
    #[error("channel {alias}: cannot open {path}")]
    Open {
        /// Alias.
        alias: String,
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl ChannelError {
    /// The ZeroVM return code.
    pub fn code(&self) -> ReturnCode {
        match self {
            ChannelError::Unsupported { .. } | ChannelError::Network { .. } => ReturnCode::UnsupportedSource,
            _ => ReturnCode::Malformed,
        }
    }
}

fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

impl Channel {
    /// Wraps a descriptor the caller already opened (pipe, socket, file...).
    pub fn from_fd(alias: impl Into<String>, access: AccessType, limits: Limits, fd: OwnedFd) -> io::Result<Channel> {
        let file = File::from(fd);
        let meta = file.metadata()?;
        let regular = meta.file_type().is_file();
        let size = if regular && access.random_get() { meta.len() } else { 0 };
        Ok(Channel { alias: alias.into(), access, limits, etag: false, fd: file.into(), size, regular })
    }

    /// Opens a manifest channel line; `deadline` bounds waiting for a FIFO reader.
    pub fn open(spec: &ChannelSpec, deadline: Instant) -> Result<Channel, ChannelError> {
        let alias = spec.alias.clone();
        let path = match &spec.source {
            ChannelSource::Path(p) => p.clone(),
            ChannelSource::Network(_) => return Err(ChannelError::Network { alias }),
        };
        let shown = path.display().to_string();
        let (readable, writable) = (spec.limits.readable(), spec.limits.writable());
        let kind = match std::fs::metadata(&path) {
            Ok(m) => Some(m.file_type()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => return Err(ChannelError::Open { alias, path: shown, source }),
        };
        let fifo = match kind {
            None if readable => return Err(ChannelError::Missing { alias, path: shown }),
            None => false,
            Some(ft) if ft.is_file() || ft.is_char_device() => false,
            Some(ft) if ft.is_fifo() => true,
            Some(ft) => return Err(ChannelError::Unsupported { alias, path: shown, kind: kind_name(ft) }),
        };
        let mut opts = OpenOptions::new();
        opts.read(readable).write(writable).custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK);
        if writable && !readable && !fifo {
            opts.create(true).mode(0o644);
            if kind.is_none_or(|ft| ft.is_file()) {
                opts.truncate(true);
            }
        }
        let file = loop {
            match opts.open(&path) {
                Ok(f) => break f,
                Err(e) if fifo && e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) if fifo && e.raw_os_error() == Some(libc::ENXIO) => {
                    return Err(ChannelError::NoReader { alias, path: shown });
                }
                Err(source) => return Err(ChannelError::Open { alias, path: shown, source }),
            }
        };
        let open_err = |source| ChannelError::Open { alias: alias.clone(), path: shown.clone(), source };
        set_blocking(&file).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        let ft = meta.file_type();
        if !(ft.is_file() || ft.is_char_device() || ft.is_fifo()) {
            return Err(ChannelError::Unsupported { alias, path: shown, kind: kind_name(ft) });
        }
        if readable && writable && spec.access == AccessType::RandGetSeqPut && ft.is_file() {
            // Type 1: sequential puts append after the existing data.
            // SAFETY: lseek on a descriptor we own.
            if unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) } < 0 {
                return Err(open_err(io::Error::last_os_error()));
            }
        }
        let size = if ft.is_file() && spec.access.random_get() { meta.len() } else { 0 };
        Ok(Channel {
            alias,
            access: spec.access,
            limits: spec.limits,
            etag: spec.etag,
            fd: file.into(),
            size,
            regular: ft.is_file(),
        })
    }

    /// Whether the supervisor must be in the path (see the module doc).
    pub fn mediated(&self) -> bool {
        let l = &self.limits;
        self.etag
            || (l.readable() && (l.gets < UNLIMITED || l.get_size < UNLIMITED))
            || (l.writable() && (l.puts < UNLIMITED || l.put_size < UNLIMITED))
    }
}

fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
