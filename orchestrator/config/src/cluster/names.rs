//! Naming rules: lab names, node names and name patterns, label keys and values, user
//! names. Each check returns why a name is refused, so the message can say it.
//!
//! Lab and node names end up in namespace, bridge and host names, so they are kept to
//! lowercase letters, digits and inner hyphens. Label keys and values must not contain
//! the characters the node selector gives meaning to (`,` `=` `*` `?`).

use std::fmt;

/// The longest lab name (it prefixes namespace and bridge names).
pub const MAX_LAB_NAME: usize = 32;
/// The longest node name (a host name label).
pub const MAX_NODE_NAME: usize = 63;
/// The longest label key or value.
pub const MAX_LABEL: usize = 63;
/// Where the number goes in a node name pattern (`rack1-{n}`).
pub const PLACEHOLDER: &str = "{n}";

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    /// The name is empty.
    Empty,
    /// The name is longer than allowed.
    TooLong { len: usize, max: usize },
    /// The name holds a character that is not allowed.
    Char(char),
    /// The name starts or ends with a character allowed only inside.
    Edge(char),
    /// A pattern holds `{n}` more than once.
    Placeholders,
    /// `{n}` without `count`.
    PlaceholderWithoutCount,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("it is empty"),
            NameError::TooLong { len, max } => write!(f, "it is {len} characters long, over {max}"),
            NameError::Char(c) => write!(f, "{c:?} is not allowed"),
            NameError::Edge(c) => write!(f, "it starts or ends with {c:?}"),
            NameError::Placeholders => write!(f, "`{PLACEHOLDER}` appears more than once"),
            NameError::PlaceholderWithoutCount => write!(f, "`{PLACEHOLDER}` needs `count`"),
        }
    }
}

/// Checks a name made of `allowed` characters whose first and last must be
/// alphanumeric.
fn check(name: &str, max: usize, allowed: impl Fn(char) -> bool) -> Result<(), NameError> {
    let len = name.chars().count();
    if len == 0 {
        return Err(NameError::Empty);
    }
    if len > max {
        return Err(NameError::TooLong { len, max });
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(NameError::Char(c));
    }
    for c in [name.chars().next(), name.chars().last()].into_iter().flatten() {
        if !c.is_ascii_alphanumeric() {
            return Err(NameError::Edge(c));
        }
    }
    Ok(())
}

fn lower_or_digit_or_hyphen(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// A lab name: `[a-z0-9-]`, at most 32 characters, no hyphen at either end.
pub fn check_lab_name(name: &str) -> Result<(), NameError> {
    check(name, MAX_LAB_NAME, lower_or_digit_or_hyphen)
}

/// A node name: `[a-z0-9-]`, at most 63 characters, no hyphen at either end.
pub fn check_node_name(name: &str) -> Result<(), NameError> {
    check(name, MAX_NODE_NAME, lower_or_digit_or_hyphen)
}

/// The names a `nodes:` entry stands for: itself without `count`; with `count` N the
/// pattern with `{n}` replaced by 1..=N, or without `{n}` the pattern followed by
/// `-1`..`-N`.
pub fn expand_pattern(pattern: &str, count: Option<u32>) -> impl Iterator<Item = String> + '_ {
    let numbers = count.map(|count| 1..=count);
    let single = numbers.is_none().then(|| pattern.to_owned());
    single.into_iter().chain(numbers.into_iter().flatten().map(move |n| name_at(pattern, n)))
}

fn name_at(pattern: &str, n: u32) -> String {
    if pattern.contains(PLACEHOLDER) {
        pattern.replacen(PLACEHOLDER, &n.to_string(), 1)
    } else {
        format!("{pattern}-{n}")
    }
}

/// Checks a node name, or with `count` a name pattern, by checking the longest name it
/// expands to.
pub fn check_node_pattern(pattern: &str, count: Option<u32>) -> Result<(), NameError> {
    match (pattern.matches(PLACEHOLDER).count(), count) {
        (0, None) => check_node_name(pattern),
        (_, None) => Err(NameError::PlaceholderWithoutCount),
        (2.., Some(_)) => Err(NameError::Placeholders),
        (_, Some(count)) => check_node_name(&name_at(pattern, count.max(1))),
    }
}

/// A label key: letters, digits, `.`, `_`, `-` and `/` (for a `domain/name` prefix),
/// starting and ending with a letter or digit, at most 63 characters.
pub fn check_label_key(key: &str) -> Result<(), NameError> {
    check(key, MAX_LABEL, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

/// A label value: empty, or letters, digits, `.`, `_` and `-`, starting and ending with
/// a letter or digit, at most 63 characters.
pub fn check_label_value(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Ok(());
    }
    check(value, MAX_LABEL, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A login user name: letters, digits, `.`, `_` and `-`, not starting with `-` (so it
/// cannot be read as an option), at most 32 characters.
pub fn check_user(user: &str) -> Result<(), NameError> {
    let len = user.chars().count();
    if len == 0 {
        return Err(NameError::Empty);
    }
    if len > 32 {
        return Err(NameError::TooLong { len, max: 32 });
    }
    if let Some(c) = user.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(NameError::Char(c));
    }
    if user.starts_with('-') {
        return Err(NameError::Edge('-'));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_lab_names() {
        let long = "a".repeat(33);
        let cases: &[(&str, Result<(), NameError>)] = &[
            ("demo", Ok(())),
            ("lab-2", Ok(())),
            ("", Err(NameError::Empty)),
            (&long, Err(NameError::TooLong { len: 33, max: 32 })),
            ("Demo", Err(NameError::Char('D'))),
            ("my_lab", Err(NameError::Char('_'))),
            ("-lab", Err(NameError::Edge('-'))),
            ("lab-", Err(NameError::Edge('-'))),
        ];
        for (name, want) in cases {
            assert_eq!(&check_lab_name(name), want, "{name:?}");
        }
    }

    #[test]
    fn expands_names_and_patterns() {
        let names = |pattern, count| expand_pattern(pattern, count).collect::<Vec<_>>();
        assert_eq!(names("edge", None), ["edge"]);
        assert_eq!(names("node", Some(3)), ["node-1", "node-2", "node-3"]);
        assert_eq!(names("rack1-n{n}", Some(2)), ["rack1-n1", "rack1-n2"]);
        assert!(names("node", Some(0)).is_empty());
    }

    #[test]
    fn checks_patterns_by_their_longest_name() {
        assert_eq!(check_node_pattern("node", Some(1000)), Ok(()));
        assert_eq!(check_node_pattern("n{n}", Some(5)), Ok(()));
        assert_eq!(check_node_pattern("n{n}", None), Err(NameError::PlaceholderWithoutCount));
        assert_eq!(check_node_pattern("{n}-{n}", Some(5)), Err(NameError::Placeholders));
        assert_eq!(check_node_pattern(&"a".repeat(62), Some(10)), Err(NameError::TooLong { len: 65, max: 63 }));
        assert_eq!(check_node_pattern("Node", Some(2)), Err(NameError::Char('N')));
    }

    #[test]
    fn checks_labels_and_users() {
        assert_eq!(check_label_key("zerolab.dev/role"), Ok(()));
        assert_eq!(check_label_key("a=b"), Err(NameError::Char('=')));
        assert_eq!(check_label_key("_x"), Err(NameError::Edge('_')));
        assert_eq!(check_label_value(""), Ok(()));
        assert_eq!(check_label_value("eu-west_1.a"), Ok(()));
        assert_eq!(check_label_value("a,b"), Err(NameError::Char(',')));
        assert_eq!(check_user("vagrant"), Ok(()));
        assert_eq!(check_user("-oProxyCommand"), Err(NameError::Edge('-')));
        assert_eq!(check_user("a b"), Err(NameError::Char(' ')));
    }
}
