//! Files to a node over the keeper's exec channel: the keeper's requests carry no
//! standard input, so a file goes as base64 text in the command, in pieces well under the
//! kernel's limit on one argument (128 KiB), written to a temporary name and renamed into
//! place with its mode, so a node never sees half a file at its destination.

use crate::cluster::provision::StepFile;

/// Raw bytes per command (base64 makes 4/3 of it).
const PIECE: usize = 48 * 1024;

/// The shell commands that put `file` in place on a node, in order.
pub fn commands(file: &StepFile) -> Vec<String> {
    let dest = quote(&file.dest);
    let partial = quote(&format!("{}.zerolab-partial", file.dest));
    let mut commands = vec![format!("mkdir -p \"$(dirname {dest})\" && : > {partial}")];
    for piece in file.contents.chunks(PIECE) {
        commands.push(format!("printf %s {} | base64 -d >> {partial}", base64(piece)));
    }
    commands.push(format!("chmod {:o} {partial} && mv -f {partial} {dest}", file.mode));
    commands
}

/// Quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63])),
                false => out.push('='),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn a_file_goes_in_pieces_to_a_partial_name_then_into_place() {
        let file = StepFile { src: "a".into(), contents: vec![7; PIECE + 1], dest: "/etc/it's".into(), mode: 0o600 };
        let commands = commands(&file);
        assert_eq!(commands.len(), 4);
        assert!(commands[0].starts_with("mkdir -p \"$(dirname '/etc/it'\\''s')\""));
        assert_eq!(
            commands[3],
            "chmod 600 '/etc/it'\\''s.zerolab-partial' && mv -f '/etc/it'\\''s.zerolab-partial' '/etc/it'\\''s'"
        );
    }
}
