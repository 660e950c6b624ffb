//! The session report in ZeroVM's release format, and its return code.
//!
//! Six lines, one value each: validator state, daemon state, user return code,
//! etags (or `disabled`), accounting (`sys_s user_s` then local and network
//! gets/bytes/puts/bytes), exit state. [`Report::return_code`] is the errno of
//! the first error, 0 when the guest exited by itself.

use std::fmt;

use crate::codes::ReturnCode;

/// Whether the validator ran and what it said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidatorState {
    /// Validation passed (or a cached pass was reused).
    Passed = 0,
    /// Validation failed.
    Failed = 1,
    /// The session ended before validation.
    NotRun = 2,
}

/// Calls and bytes on one class of channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Read calls.
    pub gets: u64,
    /// Bytes read.
    pub get_bytes: u64,
    /// Write calls.
    pub puts: u64,
    /// Bytes written.
    pub put_bytes: u64,
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Self) {
        self.gets += o.gets;
        self.get_bytes += o.get_bytes;
        self.puts += o.puts;
        self.put_bytes += o.put_bytes;
    }
}

/// The report's accounting line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accounting {
    /// System CPU seconds.
    pub sys_s: f64,
    /// User CPU seconds.
    pub user_s: f64,
    /// Local channels (files, devices, pipes, Unix sockets), and the calls
    /// of direct network channels (the kernel counts a guest's direct calls
    /// on all its channels together).
    pub local: Traffic,
    /// Network channels (TCP sockets): mediated ones' calls and bytes, direct
    /// ones' bytes.
    pub net: Traffic,
}

/// The result of one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Validator state (line 1).
    pub validator: ValidatorState,
    /// Daemon state (line 2); 0 outside daemon mode.
    pub daemon: u8,
    /// What the guest passed to `zvm_exit` (line 3).
    pub user_code: i64,
    /// Channel etags as `alias hash` (line 4); `None` prints `disabled`.
    pub etags: Option<Vec<String>>,
    /// Line 5.
    pub accounting: Accounting,
    /// Line 6: `ok` or the cause.
    pub exit_state: String,
    /// The ZeroVM return code.
    pub return_code: ReturnCode,
}

impl Report {
    /// A report for a session that failed with `code` before or while running.
    pub fn failed(code: ReturnCode, validator: ValidatorState, exit_state: impl Into<String>) -> Self {
        Report {
            validator,
            daemon: 0,
            user_code: 0,
            etags: None,
            accounting: Accounting::default(),
            exit_state: exit_state.into(),
            return_code: code,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.accounting;
        writeln!(f, "{}", self.validator as u8)?;
        writeln!(f, "{}", self.daemon)?;
        writeln!(f, "{}", self.user_code)?;
        match &self.etags {
            Some(tags) if !tags.is_empty() => writeln!(f, "{}", tags.join(" "))?,
            _ => writeln!(f, "disabled")?,
        }
        writeln!(
            f,
            "{:.2} {:.2} {} {} {} {} {} {} {} {}",
            a.sys_s,
            a.user_s,
            a.local.gets,
            a.local.get_bytes,
            a.local.puts,
            a.local.put_bytes,
            a.net.gets,
            a.net.get_bytes,
            a.net.puts,
            a.net.put_bytes
        )?;
        writeln!(f, "{}", self.exit_state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_six_lines_in_zerovm_order() {
        let mut r = Report::failed(ReturnCode::Ok, ValidatorState::Passed, "ok");
        r.user_code = 3;
        r.accounting.sys_s = 0.011;
        r.accounting.local = Traffic { gets: 1, get_bytes: 2, puts: 3, put_bytes: 4 };
        assert_eq!(r.to_string(), "0\n0\n3\ndisabled\n0.01 0.00 1 2 3 4 0 0 0 0\nok\n");
    }
}
