//! [`ProgramRef`]: which program a session runs, as the request names it.
//!
//! Two forms, one grammar, parsed here and printed here for both sides:
//!
//! | Text          | Meaning                                                             |
//! |---------------|---------------------------------------------------------------------|
//! | `<64 hex>`    | [`ProgramRef::Blob`]: an uploaded blob, by its [`Sha256`]           |
//! | `image:PATH`  | [`ProgramRef::Image`]: the file `PATH` inside the session's `image` |
//!
//! `PATH` is as stored in the tar, with or without a leading `./`, and not empty. On
//! the wire a program is that text (a JSON string), as it always was.
//!
//! ```
//! use zerolab_agent_api::ProgramRef;
//! let program: ProgramRef = "image:bin/wc".parse().unwrap();
//! assert_eq!(program, ProgramRef::Image("bin/wc".into()));
//! assert_eq!(program.to_string(), "image:bin/wc");
//! assert!("image:".parse::<ProgramRef>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sha256::{ParseSha256Error, Sha256};

/// The prefix of a program inside the session's image.
pub const IMAGE_PREFIX: &str = "image:";

/// The program a session runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProgramRef {
    /// An uploaded blob.
    Blob(Sha256),
    /// A regular file inside the session's `image` device (a tar): its path there.
    Image(String),
}

/// Text that names no program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseProgramError {
    /// `image:` with nothing after it.
    #[error("program \"image:\" names no file; give image:PATH, a file inside the session's image")]
    EmptyImagePath,
    /// Neither form.
    #[error("program {:?} is neither a blob's sha256 (64 lowercase hex digits) nor image:PATH", .0.given)]
    Neither(ParseSha256Error),
}

impl FromStr for ProgramRef {
    type Err = ParseProgramError;

    fn from_str(text: &str) -> Result<ProgramRef, ParseProgramError> {
        match text.strip_prefix(IMAGE_PREFIX) {
            Some("") => Err(ParseProgramError::EmptyImagePath),
            Some(path) => Ok(ProgramRef::Image(path.to_owned())),
            None => text.parse().map(ProgramRef::Blob).map_err(ParseProgramError::Neither),
        }
    }
}

impl fmt::Display for ProgramRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProgramRef::Blob(sha256) => sha256.fmt(f),
            ProgramRef::Image(path) => write!(f, "{IMAGE_PREFIX}{path}"),
        }
    }
}

impl From<Sha256> for ProgramRef {
    fn from(sha256: Sha256) -> ProgramRef {
        ProgramRef::Blob(sha256)
    }
}

impl Serialize for ProgramRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProgramRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ProgramRef, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_both_forms() {
        let sha = "ab".repeat(32);
        for text in [sha.as_str(), "image:bin/wc", "image:./bin/wc"] {
            let program: ProgramRef = text.parse().unwrap();
            assert_eq!(program.to_string(), text);
            assert_eq!(serde_json::to_string(&program).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(sha.parse::<ProgramRef>().unwrap(), ProgramRef::Blob(sha.parse().unwrap()));
    }

    #[test]
    fn refuses_text_that_names_no_program() {
        assert_eq!("image:".parse::<ProgramRef>(), Err(ParseProgramError::EmptyImagePath));
        let err = "wc".parse::<ProgramRef>().unwrap_err().to_string();
        assert_eq!(err, "program \"wc\" is neither a blob's sha256 (64 lowercase hex digits) nor image:PATH");
        assert!(serde_json::from_str::<ProgramRef>("\"../x\"").is_err());
    }
}
