//! ZeroVM return codes: the errno of the first error of a session.
//!
//! `zvsh --manifest` exits with these, the report's exit state explains them,
//! and every error type in this crate maps to exactly one of them through
//! [`ReturnCode`]. The numbers are ZeroVM's (see `docs/manifest.md`).

use std::fmt;

/// A ZeroVM return code. `Ok` (0) means the guest exited by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReturnCode {
    /// The session ran and the guest exited by itself.
    Ok = 0,
    /// `Program` names a file that does not exist.
    ProgramMissing = 2,
    /// The guest was killed: a signal, a forbidden call, or `Timeout`.
    Killed = 4,
    /// `Program` is not a regular file of sane size.
    ProgramNotRegular = 5,
    /// Not a valid executable, or validation failed.
    BadExecutable = 8,
    /// `Memory` is invalid or too small for the program.
    BadMemory = 12,
    /// Malformed manifest (most manifest errors).
    Malformed = 14,
    /// A channel with neither a readable nor a writable side.
    InvalidIoType = 22,
    /// Too many channels.
    TooManyChannels = 23,
    /// Network channel data corrupted (etag mismatch).
    Corrupted = 32,
    /// Unsupported channel source: a socket or directory path, a file on a kernel
    /// file system, a device not allowed, a link or output another user planted.
    UnsupportedSource = 93,
}

impl ReturnCode {
    /// The numeric code, as `zvsh` exits with it.
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}
