//! Manifest text to [`Manifest`]: the text limits, the line scan and the value syntax.
//!
//! The scan stops at the first error in line order. Content rules shared with
//! [`Manifest::validate`] (ranges, channel sides, aliases) are called per line so their
//! errors name the line too; whole-file rules run once every line has been read.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use super::{
    check_arg, check_channel, check_env, check_memory, check_name_server_port, check_node, check_text, check_timeout,
    check_whole, is_space, AccessType, ChannelSource, ChannelSpec, Limits, Manifest, ManifestError, NetEndpoint,
    NetHost, Text, MAX_FILE_BYTES, MAX_LINES, MAX_TOKENS, VERSION,
};

/// Keys that may appear once.
const ONCE: [&str; 8] = ["Version", "Program", "Memory", "Timeout", "Node", "NameServer", "Job", "Etag"];
/// Keys that may repeat (`Arg` and `Env` are zerolab's extension).
const REPEATABLE: [&str; 3] = ["Channel", "Arg", "Env"];

/// Parses manifest text.
///
/// The size limit is checked on the bytes, before any decoding; a line that is not
/// UTF-8 is an error naming it. Nothing outside `text` is read.
pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ManifestError::malformed(None, format!("manifest is larger than {MAX_FILE_BYTES} bytes")));
    }
    // A final newline ends the last line rather than starting an empty one.
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if lines.len() > MAX_LINES {
        return Err(ManifestError::malformed(None, format!("manifest has more than {MAX_LINES} lines")));
    }
    if text.iter().all(|&b| is_space(char::from(b))) {
        return Err(ManifestError::malformed(None, "empty manifest"));
    }

    let mut scan = Scan::default();
    for (i, raw) in lines.into_iter().enumerate() {
        let n = i + 1;
        let line =
            std::str::from_utf8(raw).map_err(|_| ManifestError::malformed(Some(n), "line is not valid UTF-8"))?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Only `key = value` with exactly one `=` counts; anything else is ignored.
        let mut parts = line.split('=');
        if let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) {
            scan.line(n, trim(key), value)?;
        }
    }
    scan.finish()
}

/// What the scan has collected so far.
#[derive(Default)]
struct Scan {
    seen: HashSet<&'static str>,
    version: bool,
    program: Option<PathBuf>,
    memory: Option<(u64, bool)>,
    timeout: Option<u64>,
    node: Option<u32>,
    name_server: Option<(SocketAddrV4, usize)>,
    job: Option<PathBuf>,
    etag: Option<String>,
    channels: Vec<ChannelSpec>,
    aliases: HashSet<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Scan {
    /// One `key = value` line; unknown keys are ignored.
    fn line(&mut self, n: usize, key: &str, value: &str) -> Result<(), ManifestError> {
        let Some(key) = ONCE.iter().chain(&REPEATABLE).copied().find(|k| *k == key) else {
            return Ok(());
        };
        let at = Some(n);
        if ONCE.contains(&key) && !self.seen.insert(key) {
            return Err(ManifestError::malformed(at, format!("duplicate {key} keyword")));
        }
        let tokens: Vec<&str> = value.split(',').map(trim).collect();
        if tokens.len() > MAX_TOKENS {
            return Err(ManifestError::malformed(at, format!("{key} value has more than {MAX_TOKENS} tokens")));
        }
        let value = trim(value);
        match key {
            "Version" => {
                if value != VERSION {
                    return Err(ManifestError::malformed(
                        at,
                        format!("invalid manifest version '{value}' (expected {VERSION})"),
                    ));
                }
                self.version = true;
            }
            "Program" => {
                check_text("Program", Some(value), Text::Value, at)?;
                self.program = Some(PathBuf::from(value));
            }
            "Memory" => self.memory = Some(memory(&tokens, n)?),
            "Timeout" => {
                let seconds = int(value, "Timeout", n)?;
                check_timeout(seconds.into(), at)?;
                self.timeout = Some(seconds.unsigned_abs());
            }
            "Node" => {
                let node = int(value, "Node", n)?;
                check_node(node.into(), at)?;
                self.node = u32::try_from(node).ok();
            }
            "NameServer" => self.name_server = Some((name_server(value, n)?, n)),
            "Job" => {
                check_text("Job", Some(value), Text::Value, at)?;
                self.job = Some(PathBuf::from(value));
            }
            "Etag" => {
                check_text("Etag", Some(value), Text::MaybeEmpty, at)?;
                self.etag = Some(value.to_owned());
            }
            "Channel" => {
                let channel = channel(&tokens, n)?;
                check_channel(&channel, &mut self.aliases)?;
                self.channels.push(channel);
            }
            "Arg" => {
                if tokens.len() != 1 {
                    return Err(ManifestError::malformed(at, "Arg takes one token: write ',' as %2C"));
                }
                let arg = decode(value, "Arg", n)?;
                check_arg(&arg, at)?;
                self.args.push(arg);
            }
            "Env" => {
                let [name, value] = tokens[..] else {
                    return Err(ManifestError::malformed(
                        at,
                        format!("Env needs 2 tokens (NAME, VALUE), found {}", tokens.len()),
                    ));
                };
                let name = decode(name, "Env name", n)?;
                let value = decode(value, "Env value", n)?;
                check_env(&name, &value, at)?;
                self.env.push((name, value));
            }
            _ => unreachable!("every listed key has a branch"),
        }
        Ok(())
    }

    /// The whole-file checks: required keys, then [`check_whole`].
    fn finish(self) -> Result<Manifest, ManifestError> {
        let missing = |key: &str| ManifestError::malformed(None, format!("{key} not specified"));
        if !self.version {
            return Err(missing("Version"));
        }
        let program = self.program.ok_or_else(|| missing("Program"))?;
        let (memory, memory_etag) = self.memory.ok_or_else(|| missing("Memory"))?;
        let timeout = self.timeout.ok_or_else(|| missing("Timeout"))?;
        if self.channels.is_empty() {
            return Err(missing("Channel"));
        }
        let manifest = Manifest {
            program,
            memory,
            memory_etag,
            timeout,
            channels: self.channels,
            node: self.node,
            name_server: self.name_server.map(|(addr, _)| addr),
            job: self.job,
            etag: self.etag,
            args: self.args,
            env: self.env,
        };
        check_whole(&manifest, self.name_server.map(|(_, line)| line))?;
        Ok(manifest)
    }
}

/// Trims what C's `isspace` trims (ASCII only, unlike [`str::trim`]).
fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Reads a number as `strtoll(s, .., 0)` does: optional sign, then `0x` hex, `0` octal
/// or decimal; it must fit in an `i64`. Unlike `strtoll`, an empty string is not 0.
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let s = trim(s);
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(hex) = unsigned.strip_prefix("0x").or_else(|| unsigned.strip_prefix("0X")) {
        (16, hex)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    // `from_str_radix` would also take a sign; only digits may follow the prefix.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from(u64::from_str_radix(digits, radix).ok()?);
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A number, or code 14 naming what it was for.
fn int(token: &str, what: &str, line: usize) -> Result<i64, ManifestError> {
    parse_int(token)
        .ok_or_else(|| ManifestError::malformed(Some(line), format!("invalid number '{}' in {what}", trim(token))))
}

/// `Memory = size, etag`: the etag is checked (14) before the size range (12), as in
/// ZeroVM, which only sized the memory after parsing.
fn memory(tokens: &[&str], line: usize) -> Result<(u64, bool), ManifestError> {
    let at = Some(line);
    let [size, etag] = tokens[..] else {
        return Err(ManifestError::malformed(
            at,
            format!("Memory needs 2 tokens (size, etag), found {}", tokens.len()),
        ));
    };
    let size = int(size, "Memory size", line)?;
    let etag = int(etag, "Memory etag", line)?;
    if etag != 0 && etag != 1 {
        return Err(ManifestError::malformed(at, "invalid memory etag token"));
    }
    check_memory(size.into(), at)?;
    Ok((size.unsigned_abs(), etag == 1))
}

/// `NameServer = udp:<ipv4>:<port>`.
fn name_server(value: &str, line: usize) -> Result<SocketAddrV4, ManifestError> {
    let bad =
        || ManifestError::malformed(Some(line), format!("invalid NameServer '{value}': expected udp:<ipv4>:<port>"));
    let fields: Vec<&str> = value.split(':').map(trim).collect();
    let [proto, ip, port] = fields[..] else {
        return Err(bad());
    };
    if !proto.eq_ignore_ascii_case("udp") {
        return Err(bad());
    }
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let port = int(port, "NameServer port", line)?;
    check_name_server_port(port.into(), Some(line))?;
    Ok(SocketAddrV4::new(ip, port.unsigned_abs() as u16))
}

/// `Channel = uri, alias, type, etag, gets, get_size, puts, put_size` (tokens trimmed).
fn channel(tokens: &[&str], line: usize) -> Result<ChannelSpec, ManifestError> {
    let at = Some(line);
    let [uri, alias, access, etag, gets, get_size, puts, put_size] = tokens[..] else {
        return Err(ManifestError::malformed(
            at,
            format!(
                "Channel needs 8 fields (uri, alias, type, etag, gets, get_size, puts, \
                 put_size), found {}",
                tokens.len()
            ),
        ));
    };
    let source = source(uri, line)?;
    let access = int(access, "Channel type", line)?;
    let access = AccessType::from_code(access)
        .ok_or_else(|| ManifestError::malformed(at, format!("invalid channel type {access}: must be 0 to 3")))?;
    let etag = int(etag, "Channel etag", line)?;
    if etag != 0 && etag != 1 {
        return Err(ManifestError::malformed(at, format!("invalid channel etag token {etag}: must be 0 or 1")));
    }
    let mut limits = [0u64; 4];
    let fields = [(gets, "gets"), (get_size, "get_size"), (puts, "puts"), (put_size, "put_size")];
    for (slot, (token, name)) in limits.iter_mut().zip(fields) {
        let value = int(token, &format!("Channel {name}"), line)?;
        if value < 0 {
            return Err(ManifestError::malformed(at, format!("negative limits for {alias}")));
        }
        *slot = value.unsigned_abs();
    }
    let [gets, get_size, puts, put_size] = limits;
    Ok(ChannelSpec {
        source,
        alias: alias.to_owned(),
        access,
        etag: etag == 1,
        limits: Limits { gets, get_size, puts, put_size },
        line,
    })
}

/// The `uri` field: one absolute path, or one or more `tcp:` endpoints joined by `;`.
/// A part starting with `/` is a path (so paths may contain `:`); any other part with a
/// `:` is an endpoint.
fn source(uri: &str, line: usize) -> Result<ChannelSource, ManifestError> {
    let at = Some(line);
    let parts: Vec<&str> = uri.split(';').map(trim).collect();
    if parts.len() > MAX_TOKENS {
        return Err(ManifestError::malformed(at, format!("Channel has more than {MAX_TOKENS} sources")));
    }
    let is_url = |part: &str| !part.starts_with('/') && part.contains(':');
    if let [part] = parts[..] {
        if part.starts_with('/') {
            return Ok(ChannelSource::Path(PathBuf::from(part)));
        }
        if !is_url(part) {
            return Err(ManifestError::malformed(at, format!("only absolute path channels are allowed: '{part}'")));
        }
    }
    let mut endpoints = Vec::with_capacity(parts.len());
    for part in parts {
        if !is_url(part) {
            return Err(ManifestError::malformed(at, format!("only tcp: endpoints can be joined with ';': '{part}'")));
        }
        endpoints.push(endpoint(part, line)?);
    }
    Ok(ChannelSource::Network(endpoints))
}

/// `tcp:<host>:<port>`: a host with a `.` is an IPv4 address, else a node id; the port
/// may be empty.
fn endpoint(part: &str, line: usize) -> Result<NetEndpoint, ManifestError> {
    let at = Some(line);
    let fields: Vec<&str> = part.split(':').map(trim).collect();
    let [proto, host, port] = fields[..] else {
        return Err(ManifestError::malformed(at, format!("invalid channel url '{part}': expected tcp:<host>:<port>")));
    };
    if !proto.eq_ignore_ascii_case("tcp") {
        return Err(ManifestError::malformed(at, format!("unsupported channel protocol '{proto}' (only tcp)")));
    }
    let host = if host.contains('.') {
        NetHost::Ip(host.parse().map_err(|_| ManifestError::malformed(at, format!("malformed ip '{host}'")))?)
    } else {
        let id = int(host, "Channel node id", line)?;
        // Node 0 passes here and is refused by `check_channel`, which also sees channels
        // built in code.
        NetHost::Node(u32::try_from(id).map_err(|_| ManifestError::malformed(at, format!("invalid node id {id}")))?)
    };
    let port = if port.is_empty() {
        None
    } else {
        let port = int(port, "Channel port", line)?;
        Some(
            u16::try_from(port)
                .map_err(|_| ManifestError::malformed(at, format!("invalid port {port}: must be 0 to 65535")))?,
        )
    };
    Ok(NetEndpoint { host, port })
}

/// Percent-decodes an `Arg` or `Env` token (already trimmed); the result must be UTF-8.
fn decode(token: &str, what: &str, line: usize) -> Result<String, ManifestError> {
    let fail = |why: &str| ManifestError::malformed(Some(line), format!("{what} {why}"));
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|&b| char::from(b).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                return Err(fail("has an invalid percent escape (expected %XX)"));
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| fail("is not valid UTF-8 after percent-decoding"))
}
