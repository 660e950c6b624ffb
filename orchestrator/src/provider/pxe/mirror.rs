//! The Debian mirror the preseed installer uses, derived from this host's own apt
//! sources (deb822 `*.sources` first, then one-line `sources.list`): the first `deb`
//! entry for suite `bookworm` with component `main`. zerolab never names a mirror.

use std::path::Path;

/// The suite the installer installs.
const SUITE: &str = "bookworm";

/// The mirror URL (`http://HOST/PATH`) of this host's apt sources, if one serves
/// `bookworm main` over http.
pub fn host_mirror() -> Option<String> {
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "sources")) {
        if let Some(uri) = std::fs::read_to_string(path).ok().and_then(|text| from_deb822(&text)) {
            return Some(uri);
        }
    }
    let list = std::fs::read_to_string("/etc/apt/sources.list").ok()?;
    from_one_line(&list)
}

/// The first matching URI of a deb822 file.
fn from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
                .map(str::trim)
        };
        let types = field("Types")?;
        let suites = field("Suites")?;
        let components = field("Components")?;
        let ok = types.split_whitespace().any(|t| t == "deb")
            && suites.split_whitespace().any(|s| s == SUITE)
            && components.split_whitespace().any(|c| c == "main");
        let uri = field("URIs")?.split_whitespace().find(|u| u.starts_with("http://"))?;
        ok.then(|| uri.trim_end_matches('/').to_owned())
    })
}

/// The first matching URI of a one-line sources.list.
fn from_one_line(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[')).collect();
        match words.as_slice() {
            ["deb", uri, suite, components @ ..]
                if *suite == SUITE && components.contains(&"main") && uri.starts_with("http://") =>
            {
                Some(uri.trim_end_matches('/').to_owned())
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bookworm_main_entry_is_found_in_either_format() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n\
                      Types: deb\n# note\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(from_deb822(deb822).as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(from_deb822("Types: deb-src\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n"), None);
        let list = "# comment\ndeb [arch=amd64] http://m.example/debian bookworm main contrib\n";
        assert_eq!(from_one_line(list).as_deref(), Some("http://m.example/debian"));
        assert_eq!(from_one_line("deb https://m/debian bookworm main\n"), None);
    }
}
