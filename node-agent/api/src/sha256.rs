//! [`Sha256`]: a SHA-256 digest, the name of a blob and the checksum of an input.
//!
//! The API spells a digest one way only: 64 lowercase hex digits, as `sha256sum`
//! prints it. [`Sha256`] holds the 32 bytes; parsing ([`str::parse`], serde) checks the
//! spelling once, where text comes in, so everything past that point holds a digest
//! that cannot be a path (`../etc/passwd`) or a typo. [`Sha256::of_bytes`],
//! [`Sha256::of_reader`] and [`Hasher`] are the tree's one way of computing one (the
//! `sha2` crate underneath).
//!
//! ```
//! use zerolab_agent_api::Sha256;
//! let digest = Sha256::of_bytes(b"hello");
//! assert_eq!(digest.to_string(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
//! assert_eq!(digest.to_string().parse::<Sha256>(), Ok(digest));
//! assert!("../etc/passwd".parse::<Sha256>().is_err());
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest;

/// A SHA-256 digest: 32 bytes, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256([u8; 32]);

/// Text that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a sha256; give the 64 lowercase hex digits sha256sum prints")]
pub struct ParseSha256Error {
    /// What was given (its first 80 characters).
    pub given: String,
}

impl Sha256 {
    /// The digest with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Sha256 {
        Sha256(bytes)
    }

    /// Its 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SHA-256 of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Sha256 {
        Sha256(sha2::Sha256::digest(bytes).into())
    }

    /// The SHA-256 of everything `reader` yields, read in pieces (never held whole).
    pub fn of_reader(reader: &mut impl Read) -> std::io::Result<Sha256> {
        let mut hasher = Hasher::default();
        std::io::copy(reader, &mut hasher)?;
        Ok(hasher.finish())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({self})")
    }
}

impl FromStr for Sha256 {
    type Err = ParseSha256Error;

    fn from_str(text: &str) -> Result<Sha256, ParseSha256Error> {
        let nibble = |digit: u8| match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        };
        let refused = || ParseSha256Error { given: text.chars().take(80).collect() };
        if text.len() != 64 {
            return Err(refused());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = (nibble(pair[0]).ok_or_else(refused)? << 4) | nibble(pair[1]).ok_or_else(refused)?;
        }
        Ok(Sha256(bytes))
    }
}

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sha256, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A SHA-256 computed piece by piece; also an [`std::io::Write`], so `std::io::copy`
/// can feed it.
#[derive(Debug, Clone, Default)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Sha256 {
        Sha256(self.0.finalize().into())
    }
}

impl Write for Hasher {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn hashes_bytes_readers_and_pieces_alike() {
        let whole = Sha256::of_bytes(b"hello");
        assert_eq!(whole.to_string(), HELLO);
        assert_eq!(Sha256::of_reader(&mut &b"hello"[..]).unwrap(), whole);
        let mut hasher = Hasher::default();
        hasher.update(b"hel");
        hasher.update(b"lo");
        assert_eq!(hasher.finish(), whole);
    }

    #[test]
    fn parses_only_64_lowercase_hex_digits() {
        assert_eq!(HELLO.parse::<Sha256>().unwrap().to_string(), HELLO);
        for bad in [&HELLO.to_uppercase(), &HELLO[1..], &format!("{HELLO}0"), "../etc/passwd", &"g".repeat(64), ""] {
            let err = bad.parse::<Sha256>().unwrap_err();
            assert!(err.to_string().contains("is not a sha256"), "{bad}: {err}");
        }
        assert_eq!("é".repeat(32).parse::<Sha256>().unwrap_err().given, "é".repeat(32));
    }

    #[test]
    fn serde_is_the_hex_text() {
        let digest: Sha256 = HELLO.parse().unwrap();
        assert_eq!(serde_json::to_string(&digest).unwrap(), format!("\"{HELLO}\""));
        assert_eq!(serde_json::from_str::<Sha256>(&format!("\"{HELLO}\"")).unwrap(), digest);
        let err = serde_json::from_str::<Sha256>("\"abc\"").unwrap_err().to_string();
        assert!(err.contains("\"abc\" is not a sha256"), "{err}");
        assert_eq!(format!("{digest:?}"), format!("Sha256({HELLO})"));
    }
}
