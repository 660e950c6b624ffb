//! [`Manifest`] to canonical manifest text, and the percent-encoding of `Arg`/`Env`.
//!
//! The output is what [`parse`](super::parse) reads back into an equal manifest (line
//! numbers aside) whenever [`Manifest::validate`] accepts the manifest and it fits the
//! text limits. Paths, aliases and `Etag` are written as they are: `validate` is what
//! refuses the ones a manifest cannot spell.

use std::fmt::Write as _;

use super::{Manifest, VERSION};

impl Manifest {
    /// The manifest as text, one `Key = value` a line, in the canonical order: `Version`,
    /// `Program`, `Memory`, `Timeout`, then `Node`, `NameServer`, `Job`, `Etag` when set,
    /// the `Channel` lines in `channels` order, the `Arg` lines, the `Env` lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        push(&mut out, "Version", VERSION);
        push(&mut out, "Program", &self.program.display().to_string());
        let memory = format!("{}, {}", self.memory, u8::from(self.memory_etag));
        push(&mut out, "Memory", &memory);
        push(&mut out, "Timeout", &self.timeout.to_string());
        if let Some(node) = self.node {
            push(&mut out, "Node", &node.to_string());
        }
        if let Some(ns) = self.name_server {
            push(&mut out, "NameServer", &format!("udp:{}:{}", ns.ip(), ns.port()));
        }
        if let Some(job) = &self.job {
            push(&mut out, "Job", &job.display().to_string());
        }
        if let Some(etag) = &self.etag {
            push(&mut out, "Etag", etag);
        }
        for c in &self.channels {
            let l = c.limits;
            let value = format!(
                "{}, {}, {}, {}, {}, {}, {}, {}",
                c.source,
                c.alias,
                c.access.code(),
                u8::from(c.etag),
                l.gets,
                l.get_size,
                l.puts,
                l.put_size
            );
            push(&mut out, "Channel", &value);
        }
        for arg in &self.args {
            push(&mut out, "Arg", &encode(arg));
        }
        for (name, value) in &self.env {
            push(&mut out, "Env", &format!("{}, {}", encode(name), encode(value)));
        }
        out
    }
}

/// Appends `Key = value` (`Key =` for an empty value) and a newline.
fn push(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(" =");
    if !value.is_empty() {
        out.push(' ');
        out.push_str(value);
    }
    out.push('\n');
}

/// Percent-encodes what the line syntax would eat: `%`, `,`, `=`, control characters
/// (line breaks among them), and a space at either end (values are trimmed).
pub(super) fn encode(text: &str) -> String {
    let last = text.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        let edge_space = c == ' ' && (i == 0 || i == last);
        if matches!(c, '%' | ',' | '=') || c.is_ascii_control() || edge_space {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{:02X}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}
