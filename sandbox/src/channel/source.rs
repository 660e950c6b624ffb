//! Channel sources: what an open file must be to become a guest's channel.
//!
//! The supervisor opens channels with its own credentials (root under the node
//! agent, often under `zvsh`), so a channel that named the supervisor's own
//! `/proc/self/mem` would hand the guest the supervisor's memory, and one that
//! named `/dev/kmsg`, a sysfs file or `/proc/1/environ` would hand it what only
//! root may read. A source is therefore checked on the descriptor that was
//! actually opened (`fstat`'s type and `st_rdev`, `fstatfs`'s `f_type`), never
//! on the path, and must be one of:
//!
//! - a regular file on an ordinary file system ([`ORDINARY`]: the disk, network,
//!   FUSE and memory file systems that hold users' files);
//! - a FIFO;
//! - one of the character devices `/dev/null`, `/dev/zero`, `/dev/full`,
//!   `/dev/random`, `/dev/urandom` (by major and minor number, so a copy of the
//!   node elsewhere is the same device and `/dev/kmsg` is not);
//! - for the supervisor's own standard descriptors only ([`inherit`]): also a
//!   socket or a terminal. Whoever started the supervisor opened those, so they
//!   give the guest nothing its caller could not; a terminal named by path
//!   (`/dev/pts/3`) could be another user's session, so it is refused.
//!
//! Everything else is refused with ZeroVM's code 93 ([`Refusal`]): directories,
//! block devices, other character devices, sockets named by path, and regular
//! files on every other file system, procfs, sysfs, debugfs, tracefs,
//! securityfs, cgroup, bpf, configfs, pstore, efivarfs, selinuxfs, nsfs, pidfs,
//! anon_inode, mqueue, and whatever the next kernel adds.
//!
//! **Why an allowlist of file systems, not a denylist of kernel ones.** The
//! kernel grows a pseudo file system every few releases, and several of them
//! report their files as regular files (nsfs, pidfs, mqueue, bpf pins); a
//! denylist would let the next one through silently. The file systems that hold
//! users' data are few and change slowly, and one missing from the list is a
//! clear refusal that names its magic number, not a hole.
//!
//! How a path is walked to an open descriptor is in `walk.rs` ([`open_path`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{self, FileStat, SFlag};

use crate::codes::ReturnCode;

/// The character devices a channel may be, by (major, minor).
pub const DEVICES: [(u32, u32, &str); 5] =
    [(1, 3, "/dev/null"), (1, 5, "/dev/zero"), (1, 7, "/dev/full"), (1, 8, "/dev/random"), (1, 9, "/dev/urandom")];

/// File systems whose regular files (and directories, on the way to them) may be
/// channels, by `f_type` (`linux/magic.h`, and the out-of-tree ones' own numbers).
pub const ORDINARY: [(u32, &str); 36] = [
    (0xEF53, "ext2/3/4"),
    (0x5846_5342, "xfs"),
    (0x9123_683E, "btrfs"),
    (0xF2F5_2010, "f2fs"),
    (0xCA45_1A4E, "bcachefs"),
    (0x2FC1_2FC1, "zfs"),
    (0x3153_464A, "jfs"),
    (0x5265_4973, "reiserfs"),
    (0x3434, "nilfs2"),
    (0x7461_636F, "ocfs2"),
    (0x0116_1970, "gfs2"),
    (0x0102_1994, "tmpfs"),
    (0x8584_58F6, "ramfs"),
    (0x9584_58F6, "hugetlbfs"),
    (0x794C_7630, "overlayfs"),
    (0x6969, "nfs"),
    (0xFE53_4D42, "smb2"),
    (0xFF53_4D42, "cifs"),
    (0x6573_5546, "fuse"),
    (0x0102_1997, "9p"),
    (0x00C3_6400, "ceph"),
    (0x0BD0_0BD0, "lustre"),
    (0x4750_4653, "gpfs"),
    (0x5346_414F, "afs"),
    (0x2003_0528, "orangefs"),
    (0x4D44, "vfat"),
    (0x2011_BAB0, "exfat"),
    (0x5346_544E, "ntfs"),
    (0x4244, "hfs"),
    (0x482B, "hfsplus"),
    (0x7371_7368, "squashfs"),
    (0xE0F5_E1E2, "erofs"),
    (0x9660, "iso9660"),
    (0x1501_3346, "udf"),
    (0x2846_3D45, "cramfs"),
    (0xF15F, "ecryptfs"),
];

/// Kernel file systems, by `f_type`, so a refusal can name them.
const KERNEL: [(u32, &str); 30] = [
    (0x9FA0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_E0EB, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0xCAFE_4A11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x6165_676C, "pstore"),
    (0xDE5E_81E4, "efivarfs"),
    (0xF97C_FF8C, "selinuxfs"),
    (0x4341_5D53, "smackfs"),
    (0x5A3C_69F0, "apparmorfs"),
    (0x6E73_6673, "nsfs"),
    (0x5049_4446, "pidfs"),
    (0x0904_1934, "anon_inode"),
    (0x5049_5045, "pipefs"),
    (0x534F_434B, "sockfs"),
    (0x1CD1, "devpts"),
    (0x4249_4E4D, "binfmt_misc"),
    (0x6573_5543, "fusectl"),
    (0x1980_0202, "mqueue"),
    (0x0187, "autofs"),
    (0x6759_6969, "rpc_pipefs"),
    (0x6E66_7364, "nfsd"),
    (0x6264_6576, "bdev"),
    (0x444D_4142, "dmabuf"),
    (0x5345_434D, "secretmem"),
    (0x6C6F_6F70, "binderfs"),
];

/// The terminal majors (`Documentation/admin-guide/devices.txt`): virtual
/// consoles and serial ports, `/dev/tty`, `/dev/console`, `/dev/ptmx`, pts.
fn terminal_major(major: u32) -> bool {
    matches!(major, 4 | 5 | 136..=143)
}

const HINT: &str = "a channel is a regular file on an ordinary file system, a FIFO, \
                    or /dev/null, /dev/zero, /dev/full, /dev/random or /dev/urandom";

/// What a checked source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file on an ordinary file system.
    Regular,
    /// A FIFO (or, inherited, a pipe).
    Fifo,
    /// A socket (inherited only).
    Socket,
    /// One of [`DEVICES`].
    Device,
    /// A terminal (inherited only).
    Terminal,
}

/// Why a source is refused; each is ZeroVM's code 93. The text follows the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A directory.
    #[error("is a directory; name a file in it")]
    Directory,
    /// A block device.
    #[error("is a block device; {HINT}")]
    BlockDevice,
    /// A character device not in [`DEVICES`] and not a terminal.
    #[error("is the character device {major}:{minor}; {HINT}")]
    Device {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A terminal named by path.
    #[error("is a terminal ({major}:{minor}); a terminal reaches a guest only as the supervisor's own /dev/stdin, /dev/stdout or /dev/stderr")]
    Terminal {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A socket named by path.
    #[error("is a Unix socket, which cannot be opened as a file; {HINT}")]
    SocketPath,
    /// On (or through a directory on) a kernel file system.
    #[error("is on {fs} ({at}), a kernel file system, not an ordinary one; {HINT}")]
    KernelFs {
        /// The file system.
        fs: &'static str,
        /// The file or directory found on it.
        at: String,
    },
    /// On (or through a directory on) a file system not in [`ORDINARY`].
    #[error("is on a file system with magic {magic:#x} ({at}) that is not a known ordinary one; {HINT}")]
    UnknownFs {
        /// Its `f_type`.
        magic: u32,
        /// The file or directory found on it.
        at: String,
    },
    /// A symbolic link another user planted in a sticky world-writable directory.
    #[error("goes through the symbolic link {link}, owned by uid {owner} in the sticky world-writable directory {dir} (owned by uid {dir_owner}); such a link is followed only when it belongs to the supervisor's user (uid {me}) or the directory's owner")]
    PlantedSymlink {
        /// The link.
        link: String,
        /// Its owner.
        owner: u32,
        /// The directory holding it.
        dir: String,
        /// The directory's owner.
        dir_owner: u32,
        /// The supervisor's effective uid.
        me: u32,
    },
    /// An existing output another user owns in a sticky directory others can write.
    #[error("is a {kind} owned by uid {owner} in the sticky directory {dir} that others can write (owned by uid {dir_owner}); an output there must be new or belong to the supervisor's user (uid {me}) or the directory's owner")]
    PlantedFile {
        /// `regular file` or `FIFO`.
        kind: &'static str,
        /// Its owner.
        owner: u32,
        /// The directory holding it.
        dir: String,
        /// The directory's owner.
        dir_owner: u32,
        /// The supervisor's effective uid.
        me: u32,
    },
    /// A regular file with several links in a sticky directory others can write.
    #[error("is a regular file with {links} hard links in the sticky directory {dir} that others can write; a link there may have been planted to reach a file elsewhere, so name the file where it lives")]
    HardLinked {
        /// Its link count.
        links: u64,
        /// The directory holding it.
        dir: String,
    },
    /// Anything else (an anonymous inode such as an eventfd).
    #[error("is a special file; {HINT}")]
    Special,
}

/// Why a source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A readable source that does not exist.
    #[error("{path} does not exist")]
    Missing {
        /// The path.
        path: String,
    },
    /// Not a source a channel may be (code 93).
    #[error("{path} {what}")]
    Refused {
        /// The path.
        path: String,
        /// What it is.
        what: Refusal,
    },
    /// A write-only FIFO had no reader before the deadline.
    #[error("no reader opened the FIFO {path} in time")]
    NoReader {
        /// The path.
        path: String,
    },
    /// The open failed.
    #[error("cannot open {path}")]
    Open {
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl SourceError {
    /// The ZeroVM return code: 93 for a refusal, 14 otherwise.
    pub fn code(&self) -> ReturnCode {
        match self {
            SourceError::Refused { .. } => ReturnCode::UnsupportedSource,
            _ => ReturnCode::Malformed,
        }
    }
}

/// What a source is opened for. A write-only source is an output: if it does
/// not exist it is created (mode 0644), if it is a regular file it is truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Opened for reading.
    pub read: bool,
    /// Opened for writing.
    pub write: bool,
}

impl Access {
    /// Read only.
    pub const READ: Access = Access { read: true, write: false };
    /// Write only: an output.
    pub const WRITE: Access = Access { read: false, write: true };

    /// Whether this is an output (created if missing, truncated if regular).
    pub fn output(self) -> bool {
        self.write && !self.read
    }

    /// The open(2) access mode.
    pub(crate) fn mode(self) -> libc::c_int {
        match (self.read, self.write) {
            (true, true) => libc::O_RDWR,
            (false, true) => libc::O_WRONLY,
            _ => libc::O_RDONLY,
        }
    }
}

/// A failure before the path is known to the message.
#[derive(Debug)]
pub(crate) enum Fail {
    Missing,
    Refused(Refusal),
    NoReader,
    Io(io::Error),
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Fail {
        Fail::Refused(r)
    }
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Io(e.into())
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

impl Fail {
    pub(crate) fn at(self, path: String) -> SourceError {
        match self {
            Fail::Missing => SourceError::Missing { path },
            Fail::Refused(what) => SourceError::Refused { path, what },
            Fail::NoReader => SourceError::NoReader { path },
            Fail::Io(source) => SourceError::Open { path, source },
        }
    }
}

/// Opens a host path as a channel source with the supervisor's credentials: the
/// path walked one component at a time without following another user's link
/// out of a sticky world-writable directory (see `walk.rs`), the result checked
/// as the module doc says. `deadline` bounds waiting for a write-only FIFO's
/// reader. The node agent opens its `node:` paths with this too.
pub fn open_path(path: &Path, access: Access, deadline: Instant) -> Result<(File, Kind), SourceError> {
    super::walk::open(path, access, deadline)
        .map(|(fd, kind)| (File::from(fd), kind))
        .map_err(|f| f.at(path.display().to_string()))
}

/// The supervisor's own descriptor `fd` (0, 1 or 2) as a source, duplicated and
/// checked like any source, except that a socket or a terminal is accepted; it
/// must be open for `access`. `shown` names it in errors.
pub fn inherit(fd: RawFd, shown: &str, access: Access) -> Result<(File, Kind), SourceError> {
    let fail = |f: Fail| f.at(shown.to_owned());
    // Raw: `fd` may be closed (then EBADF), which nix's `fcntl` would need a
    // `BorrowedFd` for, and a borrowed descriptor must be open.
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor table; a closed `fd` is EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        let e = io::Error::last_os_error();
        return Err(fail(Fail::Io(io::Error::new(e.kind(), format!("the supervisor's descriptor {fd} is not open")))));
    }
    // SAFETY: fcntl just returned this new descriptor, owned by nobody else.
    let dup = unsafe { OwnedFd::from_raw_fd(dup) };
    let st = nix::sys::stat::fstat(&dup).map_err(|e| fail(e.into()))?;
    let kind = classify(dup.as_fd(), &st, true, &format!("descriptor {fd}")).map_err(fail)?;
    let flags = nix::fcntl::fcntl(&dup, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| fail(e.into()))?;
    let mode = OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE;
    let missing = if access.read && mode == OFlag::O_WRONLY {
        Some("reading")
    } else if access.write && mode == OFlag::O_RDONLY {
        Some("writing")
    } else {
        None
    };
    if let Some(what) = missing {
        let e = io::Error::new(io::ErrorKind::PermissionDenied, format!("descriptor {fd} is not open for {what}"));
        return Err(fail(Fail::Io(e)));
    }
    Ok((File::from(dup), kind))
}

/// Whether the file system `magic` is in [`ORDINARY`].
fn ordinary(magic: u32) -> bool {
    ORDINARY.iter().any(|(m, _)| *m == magic)
}

/// Refuses `fd` unless it is on an ordinary file system; `at` names it.
pub(crate) fn on_ordinary_fs(fd: BorrowedFd<'_>, at: &dyn Fn() -> String) -> Result<(), Fail> {
    // `f_type` is a C long holding a 32-bit magic number.
    let magic = nix::sys::statfs::fstatfs(fd)?.filesystem_type().0 as u32;
    if ordinary(magic) {
        return Ok(());
    }
    Err(match KERNEL.iter().find(|(m, _)| *m == magic) {
        Some((_, fs)) => Refusal::KernelFs { fs, at: at() }.into(),
        None => Refusal::UnknownFs { magic, at: at() }.into(),
    })
}

fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// What `fd` (with status `st`) is, or why it may not be a channel. `inherited`:
/// one of the supervisor's standard descriptors. `at` names it.
pub(crate) fn classify(fd: BorrowedFd<'_>, st: &FileStat, inherited: bool, at: &str) -> Result<Kind, Fail> {
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    match kind {
        SFlag::S_IFREG => on_ordinary_fs(fd, &|| at.to_owned()).map(|()| Kind::Regular),
        SFlag::S_IFIFO => Ok(Kind::Fifo),
        SFlag::S_IFSOCK if inherited => Ok(Kind::Socket),
        SFlag::S_IFSOCK => Err(Refusal::SocketPath.into()),
        SFlag::S_IFCHR => {
            // Linux device numbers are 12 and 20 bits wide: both fit in u32.
            let (major, minor) = (stat::major(st.st_rdev) as u32, stat::minor(st.st_rdev) as u32);
            if DEVICES.iter().any(|(ma, mi, _)| (*ma, *mi) == (major, minor)) {
                Ok(Kind::Device)
            } else if inherited && is_terminal(fd) {
                Ok(Kind::Terminal)
            } else if terminal_major(major) {
                Err(Refusal::Terminal { major, minor }.into())
            } else {
                Err(Refusal::Device { major, minor }.into())
            }
        }
        SFlag::S_IFDIR => Err(Refusal::Directory.into()),
        SFlag::S_IFBLK => Err(Refusal::BlockDevice.into()),
        _ => Err(Refusal::Special.into()),
    }
}
