//! The channel handshake on the wire: frames, messages, keys and proofs.
//!
//! Every message is one frame: a big-endian `u16` length (1 to
//! [`MAX_FRAME`]) and that many bytes, the first of which is the message
//! type. Nothing is read past a frame's end, so bytes the peer's guest sends
//! right after the handshake stay in the kernel for our guest.
//!
//! | type | message | sender | body after the type byte |
//! |---|---|---|---|
//! | 1 | [`Message::Hello`] | connector | `ZLCH`, version, nonce (32), job and channel (each a length byte and bytes) |
//! | 2 | [`Message::Challenge`] | listener | its nonce (32) |
//! | 3 | [`Message::Proof`] | connector | HMAC-SHA256 (32) with the `connect` label |
//! | 4 | [`Message::Accept`] | listener | HMAC-SHA256 (32) with the `accept` label |
//! | 5 | [`Message::Confirm`] | connector | nothing: it checked the listener's proof |
//! | 6 | [`Message::NotYet`] | listener | nothing: no session waits for that channel yet; retry |
//! | 7 | [`Message::Refused`] | listener | a [`Refusal`] byte |
//!
//! A proof is `HMAC-SHA256(key, label || 0 || len(job) || job || len(channel)
//! || channel || connector nonce || listener nonce)` where the label is
//! `zerolab-channel connect` or `zerolab-channel accept`: a proof covers one
//! job, one channel and one pair of fresh nonces, and neither side's proof
//! can be replayed or reflected as the other's. Proofs are checked in
//! constant time (`ring::hmac::verify`).

use std::io;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// The protocol version this agent speaks.
pub const VERSION: u8 = 1;
/// The first bytes of a hello.
pub const MAGIC: [u8; 4] = *b"ZLCH";
/// Largest frame body accepted (a hello with two 255-byte ids is 554).
pub const MAX_FRAME: usize = 600;
/// Bytes in a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes in a proof.
pub const MAC_LEN: usize = 32;
/// Longest job or channel id, in bytes.
pub const MAX_ID: usize = 255;

/// A nonce.
pub type Nonce = [u8; NONCE_LEN];

/// A channel's shared key: 32 bytes, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey([u8; 32]);

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelKey(<hidden>)")
    }
}

impl ChannelKey {
    /// A key from its 64 hex digits (either case); `None` if it is not that.
    pub fn from_hex(hex: &str) -> Option<ChannelKey> {
        let digits = hex.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            *byte = (hi * 16 + lo) as u8;
        }
        Some(ChannelKey(key))
    }
}

/// Which side's proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The connector's (sent first).
    Connect,
    /// The listener's (sent only after it checked the connector's).
    Accept,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Connect => b"zerolab-channel connect",
            Role::Accept => b"zerolab-channel accept",
        }
    }
}

/// What a proof covers.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// Job id.
    pub job: &'a str,
    /// Channel id.
    pub channel: &'a str,
    /// The connector's nonce.
    pub connector: &'a Nonce,
    /// The listener's nonce.
    pub listener: &'a Nonce,
}

impl Transcript<'_> {
    fn bytes(&self, role: Role) -> Vec<u8> {
        let mut b = Vec::with_capacity(40 + self.job.len() + self.channel.len() + 2 * NONCE_LEN);
        b.extend_from_slice(role.label());
        b.push(0);
        for id in [self.job, self.channel] {
            b.push(id.len().min(MAX_ID) as u8);
            b.extend_from_slice(&id.as_bytes()[..id.len().min(MAX_ID)]);
        }
        b.extend_from_slice(self.connector);
        b.extend_from_slice(self.listener);
        b
    }

    /// The proof `role` sends.
    pub fn proof(&self, key: &ChannelKey, role: Role) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key.0), &self.bytes(role));
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `mac` is `role`'s proof, compared in constant time.
    pub fn verify(&self, key: &ChannelKey, role: Role, mac: &[u8; MAC_LEN]) -> bool {
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key.0), &self.bytes(role), mac).is_ok()
    }
}

/// A fresh random nonce from the kernel.
pub fn nonce() -> io::Result<Nonce> {
    let mut n = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut n).map_err(|_| io::Error::other("the kernel gave no random bytes"))?;
    Ok(n)
}

/// Why a listener refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It does not speak the hello's version.
    Version = 1,
    /// The proof was wrong: the two ends hold different keys.
    Key = 2,
}

/// One handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Connector: which channel, and its nonce.
    Hello {
        /// Connector's nonce.
        nonce: Nonce,
        /// Job id.
        job: String,
        /// Channel id.
        channel: String,
    },
    /// Listener: its nonce.
    Challenge(Nonce),
    /// Connector: its proof.
    Proof([u8; MAC_LEN]),
    /// Listener: its proof.
    Accept([u8; MAC_LEN]),
    /// Connector: the listener's proof is good; data follows.
    Confirm,
    /// Listener: no session waits for that channel yet.
    NotYet,
    /// Listener: no.
    Refused(Refusal),
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("connection lost")]
    Io(#[from] io::Error),
    /// The deadline passed.
    #[error("no answer in time")]
    Timeout,
    /// A length outside 1 to [`MAX_FRAME`].
    #[error("frame of {0} bytes (at most {MAX_FRAME})")]
    Length(usize),
    /// Not a message this version knows.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A hello of another version.
    #[error("protocol version {0} (this agent speaks {VERSION})")]
    Version(u8),
}

impl Message {
    /// The frame: length, type, body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        match self {
            Message::Hello { nonce, job, channel } => {
                b.push(1);
                b.extend_from_slice(&MAGIC);
                b.push(VERSION);
                b.extend_from_slice(nonce);
                for id in [job, channel] {
                    let id = &id.as_bytes()[..id.len().min(MAX_ID)];
                    b.push(id.len() as u8);
                    b.extend_from_slice(id);
                }
            }
            Message::Challenge(n) => {
                b.push(2);
                b.extend_from_slice(n);
            }
            Message::Proof(m) => {
                b.push(3);
                b.extend_from_slice(m);
            }
            Message::Accept(m) => {
                b.push(4);
                b.extend_from_slice(m);
            }
            Message::Confirm => b.push(5),
            Message::NotYet => b.push(6),
            Message::Refused(r) => b.extend_from_slice(&[7, *r as u8]),
        }
        let mut frame = (b.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&b);
        frame
    }

    /// A message from a frame's body (without the length).
    pub fn decode(body: &[u8]) -> Result<Message, WireError> {
        let (&kind, rest) = body.split_first().ok_or(WireError::Length(0))?;
        let fixed = |what| -> Result<[u8; 32], WireError> { rest.try_into().map_err(|_| WireError::Malformed(what)) };
        match kind {
            1 => decode_hello(rest),
            2 => Ok(Message::Challenge(fixed("challenge")?)),
            3 => Ok(Message::Proof(fixed("proof")?)),
            4 => Ok(Message::Accept(fixed("accept")?)),
            5 if rest.is_empty() => Ok(Message::Confirm),
            6 if rest.is_empty() => Ok(Message::NotYet),
            7 => match rest {
                [1] => Ok(Message::Refused(Refusal::Version)),
                [2] => Ok(Message::Refused(Refusal::Key)),
                _ => Err(WireError::Malformed("refusal")),
            },
            _ => Err(WireError::Malformed("message type")),
        }
    }
}

fn decode_hello(rest: &[u8]) -> Result<Message, WireError> {
    let bad = WireError::Malformed("hello");
    let (magic, rest) = rest.split_first_chunk::<4>().ok_or(WireError::Malformed("hello"))?;
    if *magic != MAGIC {
        return Err(bad);
    }
    let (&version, rest) = rest.split_first().ok_or(WireError::Malformed("hello"))?;
    if version != VERSION {
        return Err(WireError::Version(version));
    }
    let (nonce, mut rest) = rest.split_first_chunk::<NONCE_LEN>().ok_or(WireError::Malformed("hello"))?;
    let mut ids = Vec::with_capacity(2);
    for _ in 0..2 {
        let (&len, tail) = rest.split_first().ok_or(WireError::Malformed("hello"))?;
        let (id, tail) = tail.split_at_checked(len as usize).ok_or(WireError::Malformed("hello"))?;
        let id = std::str::from_utf8(id).map_err(|_| WireError::Malformed("hello"))?;
        ids.push(id.to_string());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad);
    }
    let channel = ids.pop().unwrap_or_default();
    let job = ids.pop().unwrap_or_default();
    Ok(Message::Hello { nonce: *nonce, job, channel })
}

/// Reads one frame, all of it by `deadline`.
pub async fn read(stream: &mut TcpStream, deadline: Instant) -> Result<Message, WireError> {
    let body = timeout_at(deadline, async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let len = usize::from(u16::from_be_bytes(len));
        if len == 0 || len > MAX_FRAME {
            return Err(WireError::Length(len));
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Ok(body)
    })
    .await
    .map_err(|_| WireError::Timeout)??;
    Message::decode(&body)
}

/// Writes one frame by `deadline`.
pub async fn write(stream: &mut TcpStream, msg: &Message, deadline: Instant) -> Result<(), WireError> {
    timeout_at(deadline, stream.write_all(&msg.encode())).await.map_err(|_| WireError::Timeout)??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(m: Message) {
        let frame = m.encode();
        assert_eq!(usize::from(u16::from_be_bytes([frame[0], frame[1]])), frame.len() - 2);
        assert!(frame.len() - 2 <= MAX_FRAME);
        assert_eq!(Message::decode(&frame[2..]).unwrap(), m);
    }

    #[test]
    fn every_message_survives_encoding() {
        let long = "x".repeat(MAX_ID);
        roundtrip(Message::Hello { nonce: [7; 32], job: long.clone(), channel: long });
        roundtrip(Message::Hello { nonce: [0; 32], job: "j".into(), channel: "map-1>reduce-1".into() });
        roundtrip(Message::Challenge([1; 32]));
        roundtrip(Message::Proof([2; 32]));
        roundtrip(Message::Accept([3; 32]));
        roundtrip(Message::Confirm);
        roundtrip(Message::NotYet);
        for r in [Refusal::Version, Refusal::Key] {
            roundtrip(Message::Refused(r));
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        let hello = Message::Hello { nonce: [0; 32], job: "j".into(), channel: "c".into() }.encode();
        let body = &hello[2..];
        for bad in [
            &body[..body.len() - 1],                        // cut short
            &[body, b"x"].concat()[..],                     // trailing byte
            &[&[1], &b"ZLCX"[..], &body[5..]].concat()[..], // wrong magic
            &[9][..],                                       // unknown type
            &[5, 0][..],                                    // confirm with a body
            &[3, 1, 2][..],                                 // short proof
            &[7, 9][..],                                    // unknown refusal
            &[][..],                                        // empty
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
        let mut other = body.to_vec();
        other[5] = 2;
        assert!(matches!(Message::decode(&other), Err(WireError::Version(2))));
    }

    #[test]
    fn keys_are_64_hex_digits() {
        assert!(ChannelKey::from_hex(&"aB".repeat(32)).is_some());
        assert!(ChannelKey::from_hex(&"a".repeat(63)).is_none());
        assert!(ChannelKey::from_hex(&"g".repeat(64)).is_none());
        assert!(ChannelKey::from_hex(&"é".repeat(32)).is_none());
        assert_eq!(format!("{:?}", ChannelKey::from_hex(&"ab".repeat(32)).unwrap()), "ChannelKey(<hidden>)");
    }

    #[test]
    fn proofs_bind_key_role_ids_and_both_nonces() {
        let key = ChannelKey::from_hex(&"11".repeat(32)).unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let t = Transcript { job: "j", channel: "c", connector: &a, listener: &b };
        let mac = t.proof(&key, Role::Connect);
        assert!(t.verify(&key, Role::Connect, &mac));
        assert!(!t.verify(&key, Role::Accept, &mac), "reflected as the other role");
        let other_key = ChannelKey::from_hex(&"12".repeat(32)).unwrap();
        assert!(!t.verify(&other_key, Role::Connect, &mac));
        for changed in [
            Transcript { job: "k", ..t },
            Transcript { channel: "d", ..t },
            Transcript { connector: &b, ..t },
            Transcript { listener: &a, ..t },
            // The same bytes split differently between job and channel.
            Transcript { job: "jc", channel: "", ..t },
        ] {
            assert!(!changed.verify(&key, Role::Connect, &mac), "{changed:?}");
        }
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce().unwrap(), nonce().unwrap());
    }
}
