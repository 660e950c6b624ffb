//! Parsers for the six-line [`Report`] and the guests' `key=value` output, and test data.

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};

/// Calls and bytes, as on the accounting line (the library's own type).
pub use zerolab_sandbox::report::Traffic;

/// The six-line report, parsed strictly.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Line 1: 0 passed, 1 failed, 2 not run.
    pub validator: u8,
    /// Line 2.
    pub daemon: u8,
    /// Line 3.
    pub user_code: i64,
    /// Line 4.
    pub etags: String,
    /// Line 5, fields 1–2.
    pub sys_s: f64,
    /// Line 5, field 2.
    pub user_s: f64,
    /// Line 5, fields 3–6.
    pub local: Traffic,
    /// Line 5, fields 7–10.
    pub net: Traffic,
    /// Line 6.
    pub exit_state: String,
}

impl Report {
    /// Parses exactly six lines; panics, showing the text, on anything else.
    #[track_caller]
    pub fn parse(text: &str) -> Report {
        let fail = |why: &str| -> ! { panic!("bad report ({why}):\n{text}") };
        let lines: Vec<&str> = text.strip_suffix('\n').unwrap_or(text).split('\n').collect();
        if lines.len() != 6 {
            fail("not six lines");
        }
        let acct: Vec<&str> = lines[4].split(' ').collect();
        if acct.len() != 10 {
            fail("accounting is not 10 fields");
        }
        let secs = |s: &str| -> f64 {
            let ok = s.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && b.len() == 2 && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
            if !ok {
                fail("a time is not N.NN");
            }
            s.parse().unwrap_or_else(|_| fail("time"))
        };
        let int = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| fail("accounting count")) };
        let traffic =
            |f: &[&str]| Traffic { gets: int(f[0]), get_bytes: int(f[1]), puts: int(f[2]), put_bytes: int(f[3]) };
        Report {
            validator: lines[0].parse().unwrap_or_else(|_| fail("validator state")),
            daemon: lines[1].parse().unwrap_or_else(|_| fail("daemon state")),
            user_code: lines[2].parse().unwrap_or_else(|_| fail("user code")),
            etags: lines[3].to_string(),
            sys_s: secs(acct[0]),
            user_s: secs(acct[1]),
            local: traffic(&acct[2..6]),
            net: traffic(&acct[6..10]),
            exit_state: lines[5].to_string(),
        }
    }

    /// A report for a session that never ran: validator `validator`, nothing
    /// counted, etags disabled, user code 0.
    #[track_caller]
    pub fn assert_never_ran(&self, validator: u8) {
        assert_eq!(self.validator, validator, "validator state in {self:?}");
        assert_eq!((self.daemon, self.user_code, self.etags.as_str()), (0, 0, "disabled"), "{self:?}");
        assert_eq!((self.local, self.net), (Traffic::default(), Traffic::default()), "{self:?}");
        assert_ne!(self.exit_state, "ok");
    }
}

/// `key=value` lines (split at the first `=`); other lines are ignored.
pub fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Checks that the guest printed exactly these keys with these values, and
/// lists every difference at once.
#[track_caller]
pub fn assert_kv(text: &str, expected: &[(&str, &dyn Display)]) {
    let actual = kv(text);
    let mut diffs = String::new();
    for (k, v) in expected {
        let want = v.to_string();
        match actual.get(*k) {
            Some(got) if *got == want => {}
            Some(got) => {
                let _ = writeln!(diffs, "  {k}: expected {want:?}, got {got:?}");
            }
            None => {
                let _ = writeln!(diffs, "  {k}: expected {want:?}, missing");
            }
        }
    }
    for (k, v) in &actual {
        if !expected.iter().any(|(e, _)| e == k) {
            let _ = writeln!(diffs, "  {k}: unexpected, = {v:?}");
        }
    }
    assert!(diffs.is_empty(), "guest output differs:\n{diffs}--- output\n{text}");
}

/// Lower-case hex, as the guests print data.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic pseudo-random bytes (xorshift), for bulk data.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
