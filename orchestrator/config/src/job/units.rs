//! Sizes and durations as job files write them: `memory: 64MiB` and `timeout: 2m`.
//!
//! Both end up in a ZeroVM manifest, so both follow its limits: `Memory` is 1 byte to
//! 4 GiB, `Timeout` whole seconds of at least 1. Units are binary and spelled the IEC
//! way (`KiB`, `MiB`, `GiB`): `64MB` is refused rather than guessed at, since it would
//! mean 64,000,000 bytes to some readers and 64 MiB to others.

use std::fmt;

/// The largest guest memory: ZeroVM's 4 GiB.
pub const MAX_MEMORY: u64 = 4 << 30;

/// Why a size was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// Not a number followed by an optional unit.
    Syntax,
    /// A unit that is not `B`, `KiB`, `MiB` or `GiB`.
    Unit(String),
    /// Zero bytes.
    Zero,
    /// Over [`MAX_MEMORY`].
    TooLarge,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Syntax => f.write_str("not a whole number with an optional unit"),
            SizeError::Unit(unit) => write!(f, "`{unit}` is not a unit here (units are KiB, MiB and GiB)"),
            SizeError::Zero => f.write_str("it is zero"),
            SizeError::TooLarge => f.write_str("it is over 4GiB"),
        }
    }
}

/// Why a duration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// Not a whole number followed by an optional unit.
    Syntax,
    /// A unit that is not `s`, `m` or `h`.
    Unit(String),
    /// Zero seconds.
    Zero,
    /// More seconds than fit in 64 bits.
    TooLarge,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Syntax => f.write_str("not a whole number with an optional unit"),
            TimeError::Unit(unit) => write!(f, "`{unit}` is not a unit here (units are s, m and h)"),
            TimeError::Zero => f.write_str("it is zero"),
            TimeError::TooLarge => f.write_str("it is too long"),
        }
    }
}

/// Splits `12MiB` into 12 and `MiB` (spaces between are allowed).
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, rest) = (text[..digits].parse().ok()?, &text[digits..]);
    // A fraction (`1.5m`) is not a whole number, not a unit `.5m`.
    if rest.starts_with(['.', ',']) {
        return None;
    }
    Some((number, rest.trim_start()))
}

/// Parses a memory size: bytes, or a whole number of `KiB`, `MiB` or `GiB`.
pub fn parse_memory(text: &str) -> Result<u64, SizeError> {
    let (number, unit) = number_and_unit(text).ok_or(SizeError::Syntax)?;
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        unit => return Err(SizeError::Unit(unit.to_owned())),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(SizeError::Zero),
        Some(bytes) if bytes <= MAX_MEMORY => Ok(bytes),
        _ => Err(SizeError::TooLarge),
    }
}

/// Parses a timeout into whole seconds: seconds, or a whole number of `s`, `m` or `h`.
pub fn parse_timeout(text: &str) -> Result<u64, TimeError> {
    let (number, unit) = number_and_unit(text).ok_or(TimeError::Syntax)?;
    let scale: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        unit => return Err(TimeError::Unit(unit.to_owned())),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(TimeError::Zero),
        Some(seconds) => Ok(seconds),
        None => Err(TimeError::TooLarge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_sizes() {
        let cases: &[(&str, Result<u64, SizeError>)] = &[
            ("1048576", Ok(1 << 20)),
            ("64MiB", Ok(64 << 20)),
            ("64 MiB", Ok(64 << 20)),
            ("1GiB", Ok(1 << 30)),
            ("4GiB", Ok(4 << 30)),
            ("512KiB", Ok(512 << 10)),
            ("100B", Ok(100)),
            ("5GiB", Err(SizeError::TooLarge)),
            ("99999999999999999999GiB", Err(SizeError::Syntax)),
            ("18446744073709551615GiB", Err(SizeError::TooLarge)),
            ("0", Err(SizeError::Zero)),
            ("64MB", Err(SizeError::Unit("MB".to_owned()))),
            ("-1", Err(SizeError::Syntax)),
            ("", Err(SizeError::Syntax)),
            ("MiB", Err(SizeError::Syntax)),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_memory(text), want, "{text:?}");
        }
    }

    #[test]
    fn parses_timeouts_in_whole_seconds() {
        let cases: &[(&str, Result<u64, TimeError>)] = &[
            ("30", Ok(30)),
            ("30s", Ok(30)),
            ("2m", Ok(120)),
            ("1h", Ok(3600)),
            ("0s", Err(TimeError::Zero)),
            ("1500ms", Err(TimeError::Unit("ms".to_owned()))),
            ("1.5m", Err(TimeError::Syntax)),
            ("18446744073709551615h", Err(TimeError::TooLarge)),
            ("soon", Err(TimeError::Syntax)),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_timeout(text), want, "{text:?}");
        }
    }
}
