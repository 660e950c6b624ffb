//! The portal's browser files, all served at `/assets/NAME` from memory: ours (embedded in
//! the binary from `static/`: small, hand-written, no build step) and the terminal's
//! xterm.js with its fit add-on, third-party code never committed, fetched by
//! `scripts/web-assets` (run by `scripts/setup`) into
//! `${ZEROLAB_CACHE:-~/.cache/zerolab}/web/KEY/`, KEY being the first 16 hex digits of the
//! sha256 of `assets.pins` (the packages, versions and tarball hashes). Loading them once at
//! start makes a missing fetch one error before anyone joins, not a broken page later.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use zerolab_agent_api::Sha256;

/// The pins: npm package, version, sha512, files served (see the file).
const PINS: &str = include_str!("assets.pins");

/// Our own files: name, content type, text.
const OURS: [(&str, &str, &str); 4] = [
    ("portal.css", "text/css; charset=utf-8", include_str!("static/portal.css")),
    ("portal.js", "text/javascript; charset=utf-8", include_str!("static/portal.js")),
    ("terminal.js", "text/javascript; charset=utf-8", include_str!("static/terminal.js")),
    ("instructor.js", "text/javascript; charset=utf-8", include_str!("static/instructor.js")),
];

/// The browser files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    /// A fetched file is not in the cache.
    #[error(
        "the portal's browser terminal files are not in {dir} ({file} is missing); fetch them with scripts/web-assets"
    )]
    Missing {
        /// The cache directory looked in.
        dir: PathBuf,
        /// The file not found there.
        file: String,
    },
    /// A fetched file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One file to serve.
#[derive(Clone)]
struct Asset {
    content_type: &'static str,
    body: Bytes,
}

/// Every file the portal's pages load, by name (`/assets/NAME`).
#[derive(Clone)]
pub struct Assets {
    files: HashMap<String, Asset>,
}

impl Assets {
    /// Loads the fetched files from their cache directory ([`Assets::dir`]) and ours.
    pub fn load() -> Result<Assets, AssetsError> {
        Assets::load_from(&Assets::dir())
    }

    /// Loads the fetched files from `dir` and ours.
    pub fn load_from(dir: &Path) -> Result<Assets, AssetsError> {
        let mut files = HashMap::new();
        for (name, content_type, text) in OURS {
            files.insert(name.to_owned(), Asset { content_type, body: Bytes::from_static(text.as_bytes()) });
        }
        for file in fetched_files() {
            let path = dir.join(&file);
            let body = match std::fs::read(&path) {
                Ok(body) => body,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(AssetsError::Missing { dir: dir.to_path_buf(), file });
                }
                Err(source) => return Err(AssetsError::Read { path, source }),
            };
            files.insert(file.clone(), Asset { content_type: content_type(&file), body: body.into() });
        }
        Ok(Assets { files })
    }

    /// Where `scripts/web-assets` puts the fetched files for these pins.
    pub fn dir() -> PathBuf {
        let base = match std::env::var_os("ZEROLAB_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => {
                std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into()).join(".cache/zerolab")
            }
        };
        let key = Sha256::of_bytes(PINS.as_bytes()).to_string();
        base.join("web").join(&key[..16])
    }

    /// The file `name` and its content type, if it is one of the portal's.
    pub fn get(&self, name: &str) -> Option<(&'static str, Bytes)> {
        self.files.get(name).map(|asset| (asset.content_type, asset.body.clone()))
    }
}

/// The names of the fetched files (the base names of the pins' files).
fn fetched_files() -> Vec<String> {
    PINS.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.split_whitespace().skip(3))
        .filter_map(|file| file.rsplit('/').next().map(str::to_owned))
        .collect()
}

/// The content type of a fetched file, by its extension.
fn content_type(file: &str) -> &'static str {
    if file.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_name_xterm_and_its_fit_addon() {
        assert_eq!(fetched_files(), ["xterm.js", "xterm.css", "addon-fit.js"]);
    }

    #[test]
    fn a_missing_fetch_names_the_command_that_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let err = Assets::load_from(dir.path()).err().unwrap().to_string();
        assert!(err.ends_with("(xterm.js is missing); fetch them with scripts/web-assets"), "{err}");
    }

    #[test]
    fn serves_ours_and_the_fetched_files() {
        let dir = tempfile::tempdir().unwrap();
        for file in fetched_files() {
            std::fs::write(dir.path().join(&file), b"x").unwrap();
        }
        let assets = Assets::load_from(dir.path()).unwrap();
        assert_eq!(assets.get("xterm.css").unwrap().0, "text/css; charset=utf-8");
        assert!(assets.get("portal.js").is_some());
        assert!(assets.get("../etc/passwd").is_none());
    }
}
