//! [`Manifest`]: manifest text built as intent, with the library's channel [`Limits`].

use std::fmt::{Display, Write as _};
use std::path::Path;

pub use zerolab_sandbox::manifest::Limits;

/// Manifest text, built as intent.
#[derive(Debug, Clone)]
pub struct Manifest {
    program: String,
    memory: String,
    timeout: String,
    /// (alias, value) in manifest order.
    channels: Vec<(String, String)>,
    tail: Vec<String>,
}

impl Manifest {
    /// `Version`, `Program`, `Memory = 32 MiB`, `Timeout = 5`, no channels.
    pub fn new(program: impl AsRef<Path>) -> Manifest {
        Manifest {
            program: program.as_ref().display().to_string(),
            memory: (32u64 << 20).to_string(),
            timeout: "5".into(),
            channels: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// `Memory = bytes, 0`.
    pub fn memory(mut self, bytes: impl Display) -> Self {
        self.memory = bytes.to_string();
        self
    }

    /// `Timeout = secs`.
    pub fn timeout(mut self, secs: impl Display) -> Self {
        self.timeout = secs.to_string();
        self
    }

    /// A `Channel` line; replaces an earlier channel with the same alias (in
    /// its place), so tests can swap one standard channel.
    pub fn channel(mut self, path: impl AsRef<Path>, alias: &str, ty: u8, l: Limits) -> Self {
        let value = format!(
            "{}, {alias}, {ty}, 0, {}, {}, {}, {}",
            path.as_ref().display(),
            l.gets,
            l.get_size,
            l.puts,
            l.put_size
        );
        match self.channels.iter_mut().find(|(a, _)| a == alias) {
            Some(c) => c.1 = value,
            None => self.channels.push((alias.to_string(), value)),
        }
        self
    }

    /// Turns on the etag of the channel named `alias` (declared earlier).
    pub fn etag(mut self, alias: &str) -> Self {
        let c = self.channels.iter_mut().find(|(a, _)| a == alias).expect("channel declared before its etag");
        let mut fields: Vec<&str> = c.1.split(", ").collect();
        fields[3] = "1";
        c.1 = fields.join(", ");
        self
    }

    /// An `Arg` line (percent-encoded as needed).
    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.tail.push(format!("Arg = {}", encode(a.as_ref())));
        self
    }

    /// `Arg` lines.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, a: I) -> Self {
        for a in a {
            self = self.arg(a);
        }
        self
    }

    /// An `Env` line.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.tail.push(format!("Env = {}, {}", encode(name), encode(value)));
        self
    }

    /// `Job = socket`: daemon mode.
    pub fn job(mut self, socket: impl AsRef<Path>) -> Self {
        self.tail.push(format!("Job = {}", socket.as_ref().display()));
        self
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Version = 20130611");
        let _ = writeln!(s, "Program = {}", self.program);
        let _ = writeln!(s, "Memory = {}, 0", self.memory);
        let _ = writeln!(s, "Timeout = {}", self.timeout);
        for (_, v) in &self.channels {
            let _ = writeln!(s, "Channel = {v}");
        }
        for l in &self.tail {
            let _ = writeln!(s, "{l}");
        }
        s
    }
}

/// The manifest's percent-encoding for `Arg`/`Env` values (docs/manifest.md).
fn encode(text: &str) -> String {
    let n = text.chars().count();
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if matches!(c, '%' | ',' | '=') || c.is_ascii_control() || (c == ' ' && (i == 0 || i + 1 == n)) {
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}
