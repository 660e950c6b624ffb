//! Checking a session's channel requests before anything is registered.
//!
//! Every rule gives one line naming the channel (its index and alias), what
//! is wrong and what to send instead. A request that passes is [`Checked`]:
//! the key decoded, the address parsed, the peer kind matched to the
//! direction (across nodes the reader listens and the writer connects).

use std::collections::HashSet;
use std::net::SocketAddr;

use super::registry::ChannelId;
use super::wire::{ChannelKey, MAX_ID};
use crate::api::{ChannelDirection, ChannelPeer, ChannelSpec};

/// Most channels one session may ask for.
pub const MAX_SESSION_CHANNELS: usize = 1024;
/// Longest `channel_wait_secs` accepted (an hour).
pub const MAX_WAIT_SECS: u64 = 3600;

/// A channel request that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// The guest's name for it.
    pub alias: String,
    /// Reads or writes.
    pub direction: ChannelDirection,
    /// Job and channel.
    pub id: ChannelId,
    /// The shared key.
    pub key: ChannelKey,
    /// Where the other end is.
    pub peer: Peer,
}

/// [`ChannelPeer`] with the address parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A session on this agent.
    Local,
    /// Another agent connects here.
    Listen,
    /// Connect to this agent.
    Connect(SocketAddr),
}

/// Printable ASCII without spaces, 1 to 255 bytes.
fn is_id(s: &str) -> bool {
    (1..=MAX_ID).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks a session's channels and its wait; the error is one line.
pub fn check(specs: &[ChannelSpec], wait_secs: u64) -> Result<Vec<Checked>, String> {
    if specs.len() > MAX_SESSION_CHANNELS {
        return Err(format!(
            "{} channels: a session may have at most {MAX_SESSION_CHANNELS}; split the instance",
            specs.len()
        ));
    }
    if !specs.is_empty() && !(1..=MAX_WAIT_SECS).contains(&wait_secs) {
        return Err(format!("channel_wait_secs {wait_secs} is out of range; give 1 to {MAX_WAIT_SECS} seconds"));
    }
    let mut aliases = HashSet::new();
    let mut ids = HashSet::new();
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let at = |why: String| format!("channel {i} ({}): {why}", s.alias.escape_debug());
            let checked = one(s).map_err(at)?;
            if !aliases.insert(s.alias.as_str()) {
                return Err(at("another channel has this alias; give each its own".into()));
            }
            if !ids.insert(checked.id.clone()) {
                return Err(at(format!("{} is asked for twice; a session holds one end of a channel", checked.id)));
            }
            Ok(checked)
        })
        .collect()
}

fn one(s: &ChannelSpec) -> Result<Checked, String> {
    let alias = &s.alias;
    if !(alias.starts_with("/dev/") && alias.len() > 5 && is_id(alias)) {
        return Err("the alias must be /dev/ and a name of printable ASCII (255 bytes at most), \
                    e.g. /dev/in/map-1"
            .into());
    }
    if zerolab_sandbox::manifest::STD_ALIASES.contains(&alias.as_str()) {
        return Err("/dev/stdin, /dev/stdout and /dev/stderr are the session's own; name the channel \
                    /dev/in/<writer> or /dev/out/<reader>"
            .into());
    }
    for (what, value) in [("job", &s.job), ("channel", &s.channel)] {
        if !is_id(value) {
            return Err(format!(
                "{what} id {:?} must be 1 to {MAX_ID} bytes of printable ASCII without spaces",
                value.chars().take(40).collect::<String>()
            ));
        }
    }
    let key = ChannelKey::from_hex(&s.key)
        .ok_or("the key must be 64 hex digits (32 random bytes per job and channel, the same on both ends)")?;
    let peer = match (&s.peer, s.direction) {
        (ChannelPeer::Local, _) => Peer::Local,
        (ChannelPeer::Listen, ChannelDirection::In) => Peer::Listen,
        (ChannelPeer::Connect { address }, ChannelDirection::Out) => Peer::Connect(address.parse().map_err(|_| {
            format!(
                "peer address {:?} is not IP:PORT; give the reading end's node address and its agent's \
                     channel_port, e.g. 10.77.0.3:7700",
                address.chars().take(60).collect::<String>()
            )
        })?),
        (ChannelPeer::Listen, ChannelDirection::Out) => {
            return Err("a writing end cannot listen: across nodes the reader listens and the writer connects \
                        (peer connect with the reader's agent address)"
                .into())
        }
        (ChannelPeer::Connect { .. }, ChannelDirection::In) => {
            return Err("a reading end cannot connect: across nodes the reader listens (peer listen) and the \
                        writer connects to it"
                .into())
        }
    };
    let id = ChannelId { job: s.job.clone(), channel: s.channel.clone() };
    Ok(Checked { alias: alias.clone(), direction: s.direction, id, key, peer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(alias: &str, direction: ChannelDirection, peer: ChannelPeer) -> ChannelSpec {
        ChannelSpec {
            alias: alias.into(),
            direction,
            job: "job-1".into(),
            channel: format!("ch{alias}"),
            key: "0f".repeat(32),
            peer,
        }
    }

    fn connect(address: &str) -> ChannelPeer {
        ChannelPeer::Connect { address: address.into() }
    }

    #[test]
    fn accepts_the_three_peers() {
        use ChannelDirection::{In, Out};
        let specs = [
            spec("/dev/in/a", In, ChannelPeer::Listen),
            spec("/dev/out/b", Out, connect("10.0.0.2:7700")),
            spec("/dev/out/c", Out, ChannelPeer::Local),
            spec("/dev/in/d", In, ChannelPeer::Local),
        ];
        let checked = check(&specs, 30).unwrap();
        let peers: Vec<Peer> = checked.iter().map(|c| c.peer).collect();
        assert_eq!(peers, [Peer::Listen, Peer::Connect("10.0.0.2:7700".parse().unwrap()), Peer::Local, Peer::Local]);
    }

    #[test]
    fn each_bad_request_names_its_channel_and_the_fix() {
        use ChannelDirection::{In, Out};
        let good = || spec("/dev/in/a", In, ChannelPeer::Listen);
        let cases: Vec<(ChannelSpec, &str)> = vec![
            (spec("in/a", In, ChannelPeer::Listen), "must be /dev/"),
            (spec("/dev/", In, ChannelPeer::Listen), "must be /dev/"),
            (spec("/dev/in/a b", In, ChannelPeer::Listen), "printable ASCII"),
            (spec("/dev/stdin", In, ChannelPeer::Listen), "session's own"),
            (ChannelSpec { job: String::new(), ..good() }, "job id"),
            (ChannelSpec { channel: "x".repeat(256), ..good() }, "channel id"),
            (ChannelSpec { key: "0f".repeat(31), ..good() }, "64 hex digits"),
            (ChannelSpec { key: "zz".repeat(32), ..good() }, "64 hex digits"),
            (spec("/dev/out/a", Out, connect("node-3:7700")), "not IP:PORT"),
            (spec("/dev/out/a", Out, ChannelPeer::Listen), "writing end cannot listen"),
            (spec("/dev/in/a", In, connect("10.0.0.2:7700")), "reading end cannot connect"),
        ];
        for (s, want) in cases {
            let err = check(std::slice::from_ref(&s), 30).unwrap_err();
            assert!(err.starts_with("channel 0 (") && err.contains(want), "{s:?}: {err}");
        }
    }

    #[test]
    fn refuses_duplicates_counts_and_waits() {
        use ChannelDirection::In;
        let a = spec("/dev/in/a", In, ChannelPeer::Listen);
        let err = check(&[a.clone(), a.clone()], 30).unwrap_err();
        assert!(err.starts_with("channel 1") && err.contains("alias"), "{err}");
        let same_id = ChannelSpec { alias: "/dev/in/b".into(), ..a.clone() };
        assert!(check(&[a.clone(), same_id], 30).unwrap_err().contains("asked for twice"));
        assert!(check(std::slice::from_ref(&a), 0).unwrap_err().contains("channel_wait_secs"));
        assert!(check(std::slice::from_ref(&a), MAX_WAIT_SECS + 1).is_err());
        assert!(check(&[], 0).unwrap().is_empty(), "the wait matters only with channels");
        let many: Vec<ChannelSpec> = (0..=MAX_SESSION_CHANNELS)
            .map(|i| ChannelSpec { alias: format!("/dev/in/{i}"), channel: format!("c{i}"), ..a.clone() })
            .collect();
        assert!(check(&many, 30).unwrap_err().contains("at most"));
    }
}
