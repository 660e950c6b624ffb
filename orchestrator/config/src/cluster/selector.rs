//! Node selectors, as commands will take them (`--nodes SELECTOR`): comma-separated
//! terms, each a node name (`edge`), a glob over names (`node-*`, `web-?`), or a label
//! test (`zone=a`, whose value may be a glob too: `zone=eu-*`). A node is selected when
//! any term matches it.
//!
//! Names and label keys cannot contain `,`, `=`, `*` or `?` ([`names`](super::names)
//! forbids them), so a term's meaning never depends on the lab it is used with.

use std::fmt;
use std::str::FromStr;

use super::Node;

/// A parsed `--nodes` selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSelector {
    terms: Vec<Term>,
}

/// One comma-separated part of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    /// An exact node name.
    Name(String),
    /// A glob over node names (`*` any run of characters, `?` one character).
    Glob(String),
    /// A label whose value matches a glob (a plain value matches only itself).
    Label {
        /// The label key.
        key: String,
        /// The value, possibly a glob.
        value: String,
    },
}

/// Why a selector was refused, or selected nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Nothing but commas and spaces.
    #[error("empty node selector; expected node names, patterns such as node-* or label=value, separated by commas")]
    Empty,
    /// `=value` or `key=`'s missing half.
    #[error("invalid label term `{term}`; expected label=value with a non-empty label")]
    Label {
        /// The term as written.
        term: String,
    },
    /// A name that is no node of the lab.
    #[error("no node named `{name}`; expected {}", suggestion.as_ref().map_or_else(|| "one of the lab's node names".to_owned(), |s| format!("a node name such as `{s}`")))]
    UnknownNode {
        /// The name as written.
        name: String,
        /// The closest node name, when one is close.
        suggestion: Option<String>,
    },
    /// A well-formed selector that matches no node.
    #[error("node selector `{selector}` matches no node; expected at least one node to select")]
    NoMatch {
        /// The selector as written.
        selector: NodeSelector,
    },
}

impl FromStr for NodeSelector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<NodeSelector, SelectorError> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|term| !term.is_empty()) {
            terms.push(match term.split_once('=') {
                Some((key, value)) => {
                    let (key, value) = (key.trim(), value.trim());
                    if key.is_empty() || value.is_empty() {
                        return Err(SelectorError::Label { term: term.to_owned() });
                    }
                    Term::Label { key: key.to_owned(), value: value.to_owned() }
                }
                None if term.contains(['*', '?']) => Term::Glob(term.to_owned()),
                None => Term::Name(term.to_owned()),
            });
        }
        if terms.is_empty() {
            return Err(SelectorError::Empty);
        }
        Ok(NodeSelector { terms })
    }
}

impl NodeSelector {
    /// The selector's terms, in the order written.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Whether any term matches `node`.
    pub fn matches(&self, node: &Node) -> bool {
        self.terms.iter().any(|term| term.matches(node))
    }

    /// The nodes selected, in `nodes`' order. An exact name that is no node is an
    /// error (a typo must not silently shrink a fan-out), and so is selecting nothing.
    pub fn select<'a>(&self, nodes: &'a [Node]) -> Result<Vec<&'a Node>, SelectorError> {
        for term in &self.terms {
            let Term::Name(name) = term else { continue };
            if !nodes.iter().any(|node| &node.name == name) {
                let known: Vec<String> = nodes.iter().map(|node| node.name.clone()).collect();
                let suggestion = crate::document::closest(name, &known);
                return Err(SelectorError::UnknownNode { name: name.clone(), suggestion });
            }
        }
        let selected: Vec<&Node> = nodes.iter().filter(|node| self.matches(node)).collect();
        if selected.is_empty() {
            return Err(SelectorError::NoMatch { selector: self.clone() });
        }
        Ok(selected)
    }
}

impl Term {
    /// Whether this term matches `node`.
    pub fn matches(&self, node: &Node) -> bool {
        match self {
            Term::Name(name) => &node.name == name,
            Term::Glob(pattern) => glob(pattern, &node.name),
            Term::Label { key, value } => node.labels.get(key).is_some_and(|actual| glob(value, actual)),
        }
    }
}

impl fmt::Display for NodeSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match term {
                Term::Name(text) | Term::Glob(text) => f.write_str(text)?,
                Term::Label { key, value } => write!(f, "{key}={value}")?,
            }
        }
        Ok(())
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?`
/// any one character. Linear backtracking over the last `*`: no exponential cases. Job
/// files use it for wildcard inputs (`data/part-*`).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::net::NodeAddress;
    use crate::cluster::testing;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            name: name.to_owned(),
            address: NodeAddress::Host(name.to_owned()),
            user: "root".to_owned(),
            key: None,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            settings: testing::local_settings(),
            entry: 0,
        }
    }

    fn lab() -> Vec<Node> {
        vec![
            node("node-1", &[("zone", "a"), ("pool", "workers")]),
            node("node-2", &[("zone", "b"), ("pool", "workers")]),
            node("node-10", &[("zone", "eu-west")]),
            node("edge", &[]),
        ]
    }

    fn selected(selector: &str) -> Result<Vec<String>, SelectorError> {
        let nodes = lab();
        let selector: NodeSelector = selector.parse()?;
        Ok(selector.select(&nodes)?.into_iter().map(|node| node.name.clone()).collect())
    }

    #[test]
    fn selects_by_name_glob_and_label() {
        let cases: &[(&str, &[&str])] = &[
            ("edge", &["edge"]),
            ("node-*", &["node-1", "node-2", "node-10"]),
            ("node-?", &["node-1", "node-2"]),
            ("*-1*", &["node-1", "node-10"]),
            ("zone=a", &["node-1"]),
            ("zone=eu-*", &["node-10"]),
            ("pool=workers, edge", &["node-1", "node-2", "edge"]),
            ("edge,node-1,edge", &["node-1", "edge"]),
            ("*", &["node-1", "node-2", "node-10", "edge"]),
        ];
        for (selector, want) in cases {
            assert_eq!(selected(selector).unwrap(), *want, "{selector}");
        }
    }

    #[test]
    fn matches_one_node() {
        let selector: NodeSelector = "zone=b,edge".parse().unwrap();
        let matched: Vec<bool> = lab().iter().map(|node| selector.matches(node)).collect();
        assert_eq!(matched, [false, true, false, true]);
    }

    #[test]
    fn refuses_bad_selectors_with_the_fix() {
        let cases: &[(&str, &str)] = &[
            (
                " , ",
                "empty node selector; expected node names, patterns such as node-* or label=value, separated by commas",
            ),
            ("=a", "invalid label term `=a`; expected label=value with a non-empty label"),
            ("zone=", "invalid label term `zone=`; expected label=value with a non-empty label"),
            ("node-3", "no node named `node-3`; expected a node name such as `node-1`"),
            ("db", "no node named `db`; expected one of the lab's node names"),
            ("db-*,zone=c", "node selector `db-*,zone=c` matches no node; expected at least one node to select"),
        ];
        for (selector, want) in cases {
            assert_eq!(selected(selector).unwrap_err().to_string(), *want, "{selector}");
        }
    }

    #[test]
    fn globs_without_blowing_up() {
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("", ""));
        assert!(!glob("", "a"));
        assert!(glob("**", ""));
        assert!(!glob(&"*a".repeat(30), &"a".repeat(29)));
    }
}
