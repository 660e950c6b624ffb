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
    #[error(
        "no node named `{name}`; expected one of {known}{}",
        suggestion.as_ref().map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
    )]
    UnknownNode {
        /// The name as written.
        name: String,
        /// The closest node name, when one is close.
        suggestion: Option<String>,
        /// The lab's node names, quoted and comma-separated (the first few, then how
        /// many more). Boxed, as the lists below: errors stay small to move around.
        known: Box<str>,
    },
    /// A well-formed selector that matches no node: what it could have matched is
    /// listed, so a wrong label or pattern is fixed without opening the cluster file.
    #[error(
        "node selector `{selector}` matches no node; expected names or patterns over the lab's nodes ({nodes}) \
         or label=value with one of its labels ({})",
        if labels.is_empty() { "it has none" } else { &**labels }
    )]
    NoMatch {
        /// The selector as written.
        selector: NodeSelector,
        /// The lab's node names, quoted and comma-separated (the first few, then how
        /// many more).
        nodes: Box<str>,
        /// The lab's labels as `key=value`, sorted, quoted and comma-separated (likewise).
        labels: Box<str>,
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
                return Err(unknown_node(name, nodes));
            }
        }
        let selected: Vec<&Node> = nodes.iter().filter(|node| self.matches(node)).collect();
        if selected.is_empty() {
            let names = nodes.iter().map(|node| node.name.clone());
            let labels: std::collections::BTreeSet<String> =
                nodes.iter().flat_map(|node| node.labels.iter().map(|(key, value)| format!("{key}={value}"))).collect();
            return Err(SelectorError::NoMatch {
                selector: self.clone(),
                nodes: listed(names),
                labels: listed(labels.into_iter()),
            });
        }
        Ok(selected)
    }
}

/// [`SelectorError::UnknownNode`] for `name`, with the closest of `nodes`' names.
pub(crate) fn unknown_node(name: &str, nodes: &[Node]) -> SelectorError {
    let known: Vec<String> = nodes.iter().map(|node| node.name.clone()).collect();
    let suggestion = crate::document::closest(name, &known);
    SelectorError::UnknownNode { name: name.to_owned(), suggestion, known: listed(known.into_iter()) }
}

/// The most names an error lists of each kind.
const LISTED: usize = 12;

/// `` `a`, `b`, `c` ``, or `` `a`, `b`, ... and 30 more `` past [`LISTED`] items.
fn listed(items: impl ExactSizeIterator<Item = String>) -> Box<str> {
    let total = items.len();
    let shown: Vec<String> = items.take(LISTED).map(|item| format!("`{item}`")).collect();
    match total - shown.len() {
        0 => shown.join(", ").into(),
        more => format!("{}, ... and {more} more", shown.join(", ")).into(),
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
            (
                "node-3",
                "no node named `node-3`; expected one of `node-1`, `node-2`, `node-10`, `edge` (did you mean `node-1`?)",
            ),
            ("node-01", "no node named `node-01`; expected one of `node-1`, `node-2`, `node-10`, `edge` (did you mean `node-1`?)"),
            ("db", "no node named `db`; expected one of `node-1`, `node-2`, `node-10`, `edge`"),
            (
                "db-*,zone=c",
                "node selector `db-*,zone=c` matches no node; expected names or patterns over the lab's nodes \
                 (`node-1`, `node-2`, `node-10`, `edge`) or label=value with one of its labels (`pool=workers`, \
                 `zone=a`, `zone=b`, `zone=eu-west`)",
            ),
        ];
        for (selector, want) in cases {
            assert_eq!(selected(selector).unwrap_err().to_string(), *want, "{selector}");
        }
    }

    #[test]
    fn no_match_lists_a_few_nodes_and_says_when_there_are_no_labels() {
        let nodes: Vec<Node> = (1..=14).map(|i| node(&format!("n-{i}"), &[])).collect();
        let selector: NodeSelector = "zone=a".parse().unwrap();
        assert_eq!(
            selector.select(&nodes).unwrap_err().to_string(),
            "node selector `zone=a` matches no node; expected names or patterns over the lab's nodes (`n-1`, `n-2`, \
             `n-3`, `n-4`, `n-5`, `n-6`, `n-7`, `n-8`, `n-9`, `n-10`, `n-11`, `n-12`, ... and 2 more) or label=value \
             with one of its labels (it has none)"
        );
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
