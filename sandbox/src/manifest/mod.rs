//! The manifest: the text file that configures one session (ZeroVM format `20130611`).
//!
//! [`parse`] turns manifest bytes into a [`Manifest`] (the program, its memory and
//! timeout, and its [`ChannelSpec`]s) or a [`ManifestError`] carrying the ZeroVM return
//! code and the 1-based line at fault. [`Manifest::render`] writes the canonical text
//! back (zvsh generates manifests with it), and [`Manifest::validate`] applies the same
//! rules to a manifest built in code. `docs/manifest.md` is the user-facing page.
//!
//! Key decisions:
//! - The rules are ZeroVM's code, not its docs (see `zerovm-reference.md` §1): lines
//!   without exactly one `=` and unknown keys are ignored, numbers read like
//!   `strtoll(.., 0)`, and the first error in line order wins; whole-file checks
//!   (missing keys, the standard channels, the channel count) come after the line scan.
//! - Parsing is pure: it never looks at the file system. Whether `Program` exists and
//!   what kind of file a channel path is are the runtime's questions; it can report
//!   them against the channel's line with [`ManifestError::new`].
//! - Every rule about content lives in one function shared by [`parse`] and
//!   [`Manifest::validate`], so a manifest built in code cannot dodge a rule that a
//!   written one must obey. Only the text limits (size, lines, tokens) are parse-only.
//!   Code 23 (too many channels) is therefore reachable only through `validate`: 8192
//!   lines cannot hold 10915 channels.
//! - `Arg` and `Env` are zerolab's extension (ZeroVM ignores unknown keys); their values
//!   are percent-decoded so that any string survives [`Manifest::render`].

use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use crate::codes::ReturnCode;

mod parse;
mod render;
#[cfg(test)]
mod tests;

pub use parse::parse;

/// The only manifest version accepted.
pub const VERSION: &str = "20130611";
/// Largest manifest accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 512 * 1024;
/// Largest number of lines in a manifest (a final newline does not start a line).
pub const MAX_LINES: usize = 8192;
/// Largest number of comma-separated tokens in one value (and of `;`-joined sources).
pub const MAX_TOKENS: usize = 16;
/// Largest number of channels ("fewer than 10915"); more is return code 23.
pub const MAX_CHANNELS: usize = 10914;
/// Largest `Memory`: 4 GiB.
pub const MAX_MEMORY: u64 = 4 << 30;
/// Largest `Timeout`, in seconds (about 68 years): a deadline this far away is still
/// representable as an `Instant`, a CPU-time limit and a 32-bit time value.
pub const MAX_TIMEOUT: u64 = i32::MAX as u64;
/// Largest channel limit (`gets`, `get_size`, `puts`, `put_size`): the guest reads its
/// limits as signed 64-bit numbers.
pub const MAX_LIMIT: u64 = i64::MAX as u64;
/// The channels every manifest must have, in the guest indices they take (0, 1, 2).
pub const STD_ALIASES: [&str; 3] = ["/dev/stdin", "/dev/stdout", "/dev/stderr"];

/// A parsed manifest: what one session runs, with which resources and channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Host path of the guest executable (`Program`); not checked for existence here.
    pub program: PathBuf,
    /// Guest memory in bytes, `1 ..= 4 GiB` (`Memory`, first token).
    pub memory: u64,
    /// Whether the memory etag is computed (`Memory`, second token).
    pub memory_etag: bool,
    /// Session timeout in seconds, `1 ..= MAX_TIMEOUT` (`Timeout`).
    pub timeout: u64,
    /// The channels, in file order (see [`Manifest::guest_order`] for the guest's order).
    pub channels: Vec<ChannelSpec>,
    /// This node's id in a multi-node job (`Node`), at least 1.
    pub node: Option<u32>,
    /// The name server resolving node ids (`NameServer = udp:<ipv4>:<port>`).
    pub name_server: Option<SocketAddrV4>,
    /// Unix socket path for daemon (fork) mode (`Job`).
    pub job: Option<PathBuf>,
    /// The `Etag` value, stored and unused.
    pub etag: Option<String>,
    /// Guest arguments (zerolab's `Arg` lines, in order). Empty means the runtime uses
    /// the program's file name as `argv[0]`.
    pub args: Vec<String>,
    /// Guest environment (zerolab's `Env = NAME, VALUE` lines, in order).
    pub env: Vec<(String, String)>,
}

/// One `Channel` line: where the data comes from, the guest's name for it, and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    /// The host file or the network endpoints behind the channel.
    pub source: ChannelSource,
    /// The name the guest sees (`/dev/stdin`, `/dev/in/map-1`, ...).
    pub alias: String,
    /// Sequential or random access for gets and puts.
    pub access: AccessType,
    /// Whether the channel's etag is computed.
    pub etag: bool,
    /// Call and byte limits for gets and puts.
    pub limits: Limits,
    /// 1-based manifest line this channel came from, 0 if built in code.
    pub line: usize,
}

/// Where a channel's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSource {
    /// An absolute host path.
    Path(PathBuf),
    /// One or more `tcp:` endpoints (replicas, joined by `;` in the manifest).
    Network(Vec<NetEndpoint>),
}

/// A `tcp:<host>:<port>` endpoint. The port may be empty (`tcp:2:`) when the name server
/// supplies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEndpoint {
    /// An IPv4 address or a node id.
    pub host: NetHost,
    /// The port, if written.
    pub port: Option<u16>,
}

/// The host part of an endpoint: one containing `.` is an IPv4 address, else a node id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetHost {
    /// A literal IPv4 address.
    Ip(Ipv4Addr),
    /// A node id, resolved through the name server (needs `Node`).
    Node(u32),
}

/// A channel's access type (the manifest's `type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessType {
    /// 0: sequential get, sequential put.
    SeqGetSeqPut = 0,
    /// 1: random get, sequential put (append).
    RandGetSeqPut = 1,
    /// 2: sequential get, random put.
    SeqGetRandPut = 2,
    /// 3: random get, random put.
    RandGetRandPut = 3,
}

impl AccessType {
    /// Whether reads take an offset (types 1 and 3).
    pub fn random_get(self) -> bool {
        matches!(self, Self::RandGetSeqPut | Self::RandGetRandPut)
    }

    /// Whether writes take an offset (types 2 and 3).
    pub fn random_put(self) -> bool {
        matches!(self, Self::SeqGetRandPut | Self::RandGetRandPut)
    }

    /// The manifest's number for this type.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The type a manifest number stands for, if any (0 ..= 3).
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Self::SeqGetSeqPut),
            1 => Some(Self::RandGetSeqPut),
            2 => Some(Self::SeqGetRandPut),
            3 => Some(Self::RandGetRandPut),
            _ => None,
        }
    }
}

/// A channel's limits: number of get calls, bytes got, number of put calls, bytes put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest number of get (read) calls.
    pub gets: u64,
    /// Largest total of bytes read.
    pub get_size: u64,
    /// Largest number of put (write) calls.
    pub puts: u64,
    /// Largest total of bytes written.
    pub put_size: u64,
}

impl Limits {
    /// 4294967296 for all four: ZeroVM's own default, which zerolab treats as no limit.
    pub const UNLIMITED: Limits = Limits { gets: 1 << 32, get_size: 1 << 32, puts: 1 << 32, put_size: 1 << 32 };
    /// Readable without limit, not writable.
    pub const READ_ONLY: Limits = Limits::read_only(1 << 32, 1 << 32);
    /// Writable without limit, not readable.
    pub const WRITE_ONLY: Limits = Limits::write_only(1 << 32, 1 << 32);
    /// Neither side (a channel like this is ZeroVM's code 22).
    pub const NONE: Limits = Limits { gets: 0, get_size: 0, puts: 0, put_size: 0 };

    /// Readable with these limits, not writable.
    pub const fn read_only(gets: u64, get_size: u64) -> Limits {
        Limits { gets, get_size, puts: 0, put_size: 0 }
    }

    /// Writable with these limits, not readable.
    pub const fn write_only(puts: u64, put_size: u64) -> Limits {
        Limits { gets: 0, get_size: 0, puts, put_size }
    }

    /// Readable iff `gets > 0 && get_size > 0`.
    pub fn readable(&self) -> bool {
        self.gets > 0 && self.get_size > 0
    }

    /// Writable iff `puts > 0 && put_size > 0`.
    pub fn writable(&self) -> bool {
        self.puts > 0 && self.put_size > 0
    }
}

impl ChannelSpec {
    /// A channel built in code: no etag, line 0.
    pub fn new(source: ChannelSource, alias: impl Into<String>, access: AccessType, limits: Limits) -> Self {
        ChannelSpec { source, alias: alias.into(), access, etag: false, limits, line: 0 }
    }
}

/// A manifest the rules reject: the ZeroVM return code, the 1-based line when one is at
/// fault, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MANIFEST{}: {message}", line_tag(.line))]
pub struct ManifestError {
    /// The ZeroVM return code (14 for most errors).
    pub code: ReturnCode,
    /// The manifest line at fault, if any.
    pub line: Option<usize>,
    /// What is wrong, lowercase, no final period.
    pub message: String,
}

fn line_tag(line: &Option<usize>) -> String {
    line.map(|n| format!(" {n}")).unwrap_or_default()
}

impl ManifestError {
    /// An error with any code; the runtime uses it for checks parsing cannot make
    /// (a missing readable channel path, an unsupported file type), naming the line.
    pub fn new(code: ReturnCode, line: Option<usize>, message: impl Into<String>) -> Self {
        ManifestError { code, line, message: message.into() }
    }

    /// A malformed-manifest error (code 14).
    fn malformed(line: Option<usize>, message: impl Into<String>) -> Self {
        Self::new(ReturnCode::Malformed, line, message)
    }
}

impl Manifest {
    /// Checks a manifest (typically built in code) against every rule [`parse`] applies
    /// to content, in the order of [`Manifest::render`]'s lines. The text limits (file
    /// size, lines, tokens per value) are not checked: they belong to text, and a
    /// manifest with more channels than 8192 lines can hold is valid to run.
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_text("Program", self.program.to_str(), Text::Value, None)?;
        check_memory(self.memory.into(), None)?;
        check_timeout(self.timeout.into(), None)?;
        if let Some(node) = self.node {
            check_node(node.into(), None)?;
        }
        if let Some(ns) = self.name_server {
            check_name_server_port(ns.port().into(), None)?;
        }
        if let Some(job) = &self.job {
            check_text("Job", job.to_str(), Text::Value, None)?;
        }
        if let Some(etag) = &self.etag {
            check_text("Etag", Some(etag), Text::MaybeEmpty, None)?;
        }
        let mut aliases = HashSet::new();
        for channel in &self.channels {
            check_channel(channel, &mut aliases)?;
        }
        for arg in &self.args {
            check_arg(arg, None)?;
        }
        for (name, value) in &self.env {
            check_env(name, value, None)?;
        }
        check_whole(self, None)
    }

    /// Indices into `channels` in the order the guest sees them: `/dev/stdin`,
    /// `/dev/stdout`, `/dev/stderr` first (0, 1, 2), the rest sorted by alias (byte
    /// order, ties in file order).
    pub fn guest_order(&self) -> Vec<usize> {
        let mut taken = vec![false; self.channels.len()];
        let mut order = Vec::with_capacity(self.channels.len());
        for alias in STD_ALIASES {
            if let Some(i) = self.channels.iter().position(|c| c.alias == alias) {
                taken[i] = true;
                order.push(i);
            }
        }
        let mut rest: Vec<usize> = (0..self.channels.len()).filter(|&i| !taken[i]).collect();
        rest.sort_by(|&a, &b| self.channels[a].alias.cmp(&self.channels[b].alias));
        order.extend(rest);
        order
    }
}

impl fmt::Display for NetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetHost::Ip(ip) => write!(f, "{ip}"),
            NetHost::Node(id) => write!(f, "{id}"),
        }
    }
}

impl fmt::Display for NetEndpoint {
    /// `tcp:<host>:<port>`, the port empty when absent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp:{}:", self.host)?;
        match self.port {
            Some(port) => write!(f, "{port}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for ChannelSource {
    /// The manifest's `uri` field: the path, or the endpoints joined by `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelSource::Path(path) => write!(f, "{}", path.display()),
            ChannelSource::Network(endpoints) => {
                for (i, endpoint) in endpoints.iter().enumerate() {
                    if i > 0 {
                        f.write_str(";")?;
                    }
                    write!(f, "{endpoint}")?;
                }
                Ok(())
            }
        }
    }
}

// ---- Rules shared by `parse` and `Manifest::validate` ------------------------------
//
// Numbers arrive as i128 so one check covers both a parsed i64 (possibly negative) and
// a stored u64 (possibly beyond what a manifest can spell).

/// Whitespace as C's `isspace` sees it: what the manifest format trims.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// What a free-text field may hold so that it is written and read back unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Text {
    /// A whole value (`Program`, `Job`): non-empty, commas allowed.
    Value,
    /// A whole value that may be empty (`Etag`).
    MaybeEmpty,
    /// A channel field (alias): non-empty, no `,`.
    Field,
    /// A channel path: non-empty, no `,` or `;`.
    Source,
}

/// Refuses text that is empty (unless allowed), not UTF-8 (`None`), holds a NUL, or
/// that a manifest line could not carry back unchanged.
fn check_text(what: &str, text: Option<&str>, kind: Text, line: Option<usize>) -> Result<(), ManifestError> {
    let fail = |why: &str| Err(ManifestError::malformed(line, format!("{what} {why}")));
    let Some(text) = text else {
        return fail("is not valid UTF-8");
    };
    if text.is_empty() {
        return if kind == Text::MaybeEmpty { Ok(()) } else { fail("is empty") };
    }
    if text.contains('\0') {
        return fail("contains a NUL byte");
    }
    if text.contains(['\n', '=']) {
        return fail("contains a line break or '='");
    }
    if text.starts_with(is_space) || text.ends_with(is_space) {
        return fail("has leading or trailing whitespace");
    }
    let forbidden: &[char] = match kind {
        Text::Value | Text::MaybeEmpty => &[],
        Text::Field => &[','],
        Text::Source => &[',', ';'],
    };
    if text.contains(forbidden) {
        return fail("contains ',' or ';'");
    }
    if text.matches(',').count() >= MAX_TOKENS {
        return fail(&format!("has more than {MAX_TOKENS} comma-separated tokens"));
    }
    Ok(())
}

/// `Memory` in `1 ..= MAX_MEMORY` (code 12). Also the rule for zvsh's settings and for
/// guests built in code.
pub(crate) fn check_memory(size: i128, line: Option<usize>) -> Result<(), ManifestError> {
    if (1..=i128::from(MAX_MEMORY)).contains(&size) {
        return Ok(());
    }
    Err(ManifestError::new(
        ReturnCode::BadMemory,
        line,
        format!("invalid memory size {size}: must be 1 to {MAX_MEMORY} bytes"),
    ))
}

/// `Timeout` in `1 ..= MAX_TIMEOUT` (code 14): every deadline is `now + Timeout`, so a
/// larger one would overflow the clock arithmetic instead of being refused here.
pub(crate) fn check_timeout(seconds: i128, line: Option<usize>) -> Result<(), ManifestError> {
    if seconds > i128::from(MAX_TIMEOUT) {
        return Err(ManifestError::malformed(
            line,
            format!("Timeout {seconds} is more than the largest supported ({MAX_TIMEOUT} seconds)"),
        ));
    }
    if seconds < 1 {
        return Err(ManifestError::malformed(
            line,
            format!("invalid Timeout {seconds}: must be 1 to {MAX_TIMEOUT} seconds"),
        ));
    }
    Ok(())
}

/// Each of a channel's four limits at most `MAX_LIMIT` (code 14); `what` names the channel.
pub(crate) fn check_limits(limits: &Limits, what: &str, line: Option<usize>) -> Result<(), ManifestError> {
    let l = limits;
    for (name, value) in [("gets", l.gets), ("get_size", l.get_size), ("puts", l.puts), ("put_size", l.put_size)] {
        check_limit(&format!("{what} {name}"), value, line)?;
    }
    Ok(())
}

/// One channel limit at most `MAX_LIMIT` (code 14).
pub(crate) fn check_limit(what: &str, value: u64, line: Option<usize>) -> Result<(), ManifestError> {
    if value > MAX_LIMIT {
        return Err(ManifestError::malformed(
            line,
            format!("{what} {value} is more than the largest supported ({MAX_LIMIT})"),
        ));
    }
    Ok(())
}

fn check_node(node: i128, line: Option<usize>) -> Result<(), ManifestError> {
    if (1..=i128::from(u32::MAX)).contains(&node) {
        return Ok(());
    }
    Err(ManifestError::malformed(line, format!("invalid Node {node}: must be 1 to {}", u32::MAX)))
}

fn check_name_server_port(port: i128, line: Option<usize>) -> Result<(), ManifestError> {
    if (1..=i128::from(u16::MAX)).contains(&port) {
        return Ok(());
    }
    Err(ManifestError::malformed(line, format!("invalid NameServer port {port}: must be 1 to 65535")))
}

/// A channel's own rules, and that its alias is new. Errors name `channel.line`.
fn check_channel(channel: &ChannelSpec, aliases: &mut HashSet<String>) -> Result<(), ManifestError> {
    let line = (channel.line != 0).then_some(channel.line);
    let alias = channel.alias.as_str();
    let fail = |message: String| Err(ManifestError::malformed(line, message));
    check_text("channel alias", Some(alias), Text::Field, line)?;
    match &channel.source {
        ChannelSource::Path(path) => {
            check_text("channel path", path.to_str(), Text::Source, line)?;
            if !path.is_absolute() {
                return fail(format!("only absolute path channels are allowed: '{}'", path.display()));
            }
        }
        ChannelSource::Network(endpoints) => {
            if endpoints.is_empty() || endpoints.len() > MAX_TOKENS {
                return fail(format!("{alias} needs 1 to {MAX_TOKENS} network endpoints"));
            }
            for endpoint in endpoints {
                if endpoint.host == NetHost::Node(0) {
                    return fail(format!("invalid node id 0 in {alias}"));
                }
            }
        }
    }
    check_limits(&channel.limits, alias, line)?;
    let l = channel.limits;
    // ZeroVM's test is "neither side" (its CH_RW_TYPE == 0); all four zero is the usual case.
    if !l.readable() && !l.writable() {
        return Err(ManifestError::new(
            ReturnCode::InvalidIoType,
            line,
            format!("invalid i/o type: {alias} is neither readable nor writable"),
        ));
    }
    if l.readable() && l.writable() && !channel.access.random_get() {
        return fail(format!(
            "{alias} is readable and writable, which needs type 1 or 3 (not {})",
            channel.access.code()
        ));
    }
    if !aliases.insert(alias.to_owned()) {
        return fail(format!("duplicate channel alias {alias}"));
    }
    Ok(())
}

fn check_arg(arg: &str, line: Option<usize>) -> Result<(), ManifestError> {
    if arg.contains('\0') {
        return Err(ManifestError::malformed(line, "Arg contains a NUL byte"));
    }
    Ok(())
}

fn check_env(name: &str, value: &str, line: Option<usize>) -> Result<(), ManifestError> {
    let fail = |why: &str| Err(ManifestError::malformed(line, format!("Env {why}")));
    if name.is_empty() {
        return fail("name is empty");
    }
    if name.contains('=') {
        return fail("name contains '='");
    }
    if name.contains('\0') || value.contains('\0') {
        return fail("contains a NUL byte");
    }
    Ok(())
}

/// Rules over the whole manifest, after every line: `Node` for node-id endpoints and the
/// name server (first in line order), the standard channels, the channel count.
fn check_whole(manifest: &Manifest, name_server_line: Option<usize>) -> Result<(), ManifestError> {
    if manifest.channels.is_empty() {
        return Err(ManifestError::malformed(None, "Channel not specified"));
    }
    if manifest.node.is_none() {
        let mut needs_node: Vec<(usize, Option<usize>, String)> = Vec::new();
        if manifest.name_server.is_some() {
            let message = "NameServer needs Node".to_string();
            needs_node.push((name_server_line.unwrap_or(0), name_server_line, message));
        }
        let by_id = manifest.channels.iter().find(|c| match &c.source {
            ChannelSource::Network(eps) => eps.iter().any(|e| matches!(e.host, NetHost::Node(_))),
            ChannelSource::Path(_) => false,
        });
        if let Some(c) = by_id {
            let message = format!("{} names a node id, which needs Node", c.alias);
            needs_node.push((c.line, (c.line != 0).then_some(c.line), message));
        }
        if let Some((_, line, message)) = needs_node.into_iter().min_by_key(|n| n.0) {
            return Err(ManifestError::malformed(line, message));
        }
    }
    for alias in STD_ALIASES {
        if !manifest.channels.iter().any(|c| c.alias == alias) {
            return Err(ManifestError::malformed(None, format!("{alias} channel not specified")));
        }
    }
    if manifest.channels.len() > MAX_CHANNELS {
        return Err(ManifestError::new(
            ReturnCode::TooManyChannels,
            None,
            format!("too many channels: {} (at most {MAX_CHANNELS})", manifest.channels.len()),
        ));
    }
    Ok(())
}
