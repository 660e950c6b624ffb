//! Reading the parsed tree ([`yaml`](super::yaml)) into serde types: a
//! [`Deserializer`](serde::Deserializer) over [`Node`]s whose errors carry the path and
//! location of the node they arose at, and keep serde's own findings (an unknown field,
//! a missing one, an unknown variant) as data rather than text.
//!
//! Scalars resolve as YAML 1.2's core schema does, as serde_yaml did: a plain scalar is
//! null when empty or `~`/`null`, a boolean when `true`/`false` (three spellings each),
//! a number when it parses as one (`0x`, `0o`, `0b` prefixes, no leading zeros); quoted
//! scalars are strings. A string field takes any scalar's text (`rack: 2` is `"2"`),
//! and an empty plain scalar reads as an empty list or mapping where one is expected.

use std::fmt;

use serde::de::{self, DeserializeSeed, Expected, IntoDeserializer, Unexpected, Visitor};

use super::location::{Location, YamlPath};
use super::yaml::{Node, Value};

/// What reading a node into a serde type found wrong, and where.
#[derive(Debug)]
pub(crate) struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The path and location of the node it arose at (the innermost one).
    pub place: Option<(YamlPath, Location)>,
}

/// serde's findings, kept apart so messages can add a did-you-mean or a hint.
#[derive(Debug)]
pub(crate) enum ErrorKind {
    /// A field the type does not have (`deny_unknown_fields`), and the ones it has.
    UnknownField { field: String, known: Vec<String> },
    /// A value outside an enum's variants, and the variants.
    UnknownVariant { found: String, known: Vec<String> },
    /// A required field that is absent.
    MissingField { field: String },
    /// Anything else, in serde's words (`invalid type: string "x", expected u32`).
    Message(String),
}

impl Error {
    /// Places the error at `path` and `location` unless a node inside placed it already.
    fn at(mut self, path: &YamlPath, location: Location) -> Error {
        self.place.get_or_insert_with(|| (path.clone(), location));
        self
    }

    fn new(kind: ErrorKind) -> Error {
        Error { kind, place: None }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            ErrorKind::UnknownVariant { found, .. } => write!(f, "unknown variant `{found}`"),
            ErrorKind::MissingField { field } => write!(f, "missing field `{field}`"),
            ErrorKind::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Error {
        Error::new(ErrorKind::Message(message.to_string()))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Error {
        let known = expected.iter().map(|name| (*name).to_owned()).collect();
        Error::new(ErrorKind::UnknownField { field: field.to_owned(), known })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Error {
        let known = expected.iter().map(|name| (*name).to_owned()).collect();
        Error::new(ErrorKind::UnknownVariant { found: variant.to_owned(), known })
    }

    fn missing_field(field: &'static str) -> Error {
        Error::new(ErrorKind::MissingField { field: field.to_owned() })
    }
}

/// Reads `node`, found at `path`, into a `T`.
pub(crate) fn from_node<'de, T: de::Deserialize<'de>>(node: &Node, path: YamlPath) -> Result<T, Error> {
    T::deserialize(NodeDeserializer { node, path })
}

/// A deserializer for one node.
struct NodeDeserializer<'a> {
    node: &'a Node,
    path: YamlPath,
}

impl NodeDeserializer<'_> {
    fn placed<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|err| err.at(&self.path, self.node.location))
    }

    /// The plain scalar's text, when the node is one.
    fn plain(&self) -> Option<&str> {
        match &self.node.value {
            Value::Scalar { text, plain: true } => Some(text),
            _ => None,
        }
    }

    fn invalid_type(&self, expected: &dyn Expected) -> Error {
        let unexpected = match &self.node.value {
            Value::Sequence(_) => Unexpected::Seq,
            Value::Mapping(_) => Unexpected::Map,
            Value::Scalar { text, plain: false } => Unexpected::Str(text),
            Value::Scalar { text, plain: true } => match resolve(text) {
                Resolved::Null => Unexpected::Unit,
                Resolved::Bool(value) => Unexpected::Bool(value),
                Resolved::Unsigned(value) => Unexpected::Unsigned(value),
                Resolved::Signed(value) => Unexpected::Signed(value),
                Resolved::Float(value) => Unexpected::Float(value),
                Resolved::Str => Unexpected::Str(text),
            },
        };
        de::Error::invalid_type(unexpected, expected)
    }

    fn visit_sequence<'de, V: Visitor<'de>>(&self, items: &[Node], visitor: V) -> Result<V::Value, Error> {
        let mut access = Items { items, next: 0, path: &self.path };
        let value = visitor.visit_seq(&mut access)?;
        if access.next < items.len() {
            return Err(de::Error::invalid_length(items.len(), &Count(access.next, "sequence of", "element")));
        }
        Ok(value)
    }

    fn visit_mapping<'de, V: Visitor<'de>>(&self, entries: &[(Node, Node)], visitor: V) -> Result<V::Value, Error> {
        let mut access = Entries { entries, next: 0, path: &self.path };
        let value = visitor.visit_map(&mut access)?;
        if access.next < entries.len() {
            return Err(de::Error::invalid_length(entries.len(), &Count(access.next, "map containing", "entry")));
        }
        Ok(value)
    }
}

/// `sequence of 2 elements`, `map containing 1 entry`.
struct Count(usize, &'static str, &'static str);

impl Expected for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, what, noun) = *self;
        let noun = match (n, noun) {
            (1, noun) => noun.to_owned(),
            (_, "entry") => "entries".to_owned(),
            (_, noun) => format!("{noun}s"),
        };
        write!(f, "{what} {n} {noun}")
    }
}

/// What a plain scalar stands for.
enum Resolved {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Str,
}

fn resolve(text: &str) -> Resolved {
    if text.is_empty() || is_null(text) {
        Resolved::Null
    } else if let Some(value) = parse_bool(text) {
        Resolved::Bool(value)
    } else if let Some(value) = parse_unsigned(text) {
        Resolved::Unsigned(value)
    } else if let Some(value) = parse_signed(text) {
        Resolved::Signed(value)
    } else if let Some(value) = parse_float(text).filter(|_| !leading_zero_digits(text)) {
        Resolved::Float(value)
    } else {
        Resolved::Str
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `0x1f`, `0o17`, `0b11`, `+12`, `12`; not `012` (a string in YAML 1.2).
fn parse_unsigned(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = digits.strip_prefix(prefix) {
            return (!rest.starts_with(['+', '-'])).then(|| u64::from_str_radix(rest, radix).ok()).flatten();
        }
    }
    if digits.starts_with(['+', '-']) || leading_zero_digits(text) {
        return None;
    }
    digits.parse().ok()
}

/// A negative integer, in the same notations.
fn parse_signed(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('-')?;
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = rest.strip_prefix(prefix) {
            return i64::from_str_radix(&format!("-{digits}"), radix).ok();
        }
    }
    if leading_zero_digits(text) {
        return None;
    }
    text.parse().ok()
}

fn parse_float(text: &str) -> Option<f64> {
    let unsigned = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return None,
        Some(rest) => rest,
        None => text,
    };
    match (unsigned, text) {
        (".inf" | ".Inf" | ".INF", _) => Some(f64::INFINITY),
        (_, "-.inf" | "-.Inf" | "-.INF") => Some(f64::NEG_INFINITY),
        (_, ".nan" | ".NaN" | ".NAN") => Some(f64::NAN),
        _ => unsigned.parse::<f64>().ok().filter(|value| value.is_finite()),
    }
}

/// Leading zeros then digits (`007`): a string in YAML 1.2, not a number.
fn leading_zero_digits(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Sequence(items) => self.visit_sequence(items, visitor),
            Value::Mapping(entries) => self.visit_mapping(entries, visitor),
            Value::Scalar { text, plain: false } => visitor.visit_str(text),
            Value::Scalar { text, plain: true } => match resolve(text) {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(value) => visitor.visit_bool(value),
                Resolved::Unsigned(value) => visitor.visit_u64(value),
                Resolved::Signed(value) => visitor.visit_i64(value),
                Resolved::Float(value) => visitor.visit_f64(value),
                Resolved::Str => visitor.visit_str(text),
            },
        };
        self.placed(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.plain().and_then(parse_bool) {
            Some(value) => visitor.visit_bool(value),
            None => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.plain().map(resolve) {
            Some(Resolved::Signed(value)) => visitor.visit_i64(value),
            Some(Resolved::Unsigned(value)) => match i64::try_from(value) {
                Ok(value) => visitor.visit_i64(value),
                Err(_) => visitor.visit_u64(value),
            },
            _ => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.plain().and_then(parse_unsigned) {
            Some(value) => visitor.visit_u64(value),
            None => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.plain().filter(|text| !leading_zero_digits(text)).and_then(parse_float) {
            Some(value) => visitor.visit_f64(value),
            None => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Scalar { text, .. } => visitor.visit_str(text),
            _ => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        self.placed(Err(de::Error::custom("serialization and deserialization of bytes in YAML is not implemented")))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let none = self.plain().is_some_and(|text| text.is_empty() || is_null(text));
        if none {
            return self.placed(visitor.visit_none());
        }
        let (path, location) = (self.path.clone(), self.node.location);
        visitor.visit_some(self).map_err(|err| err.at(&path, location))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match (&self.node.value, self.plain()) {
            (_, Some(text)) if text.is_empty() || is_null(text) => visitor.visit_unit(),
            (Value::Scalar { text, .. }, _) => Err(de::Error::invalid_value(Unexpected::Str(text), &"null")),
            _ => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        let (path, location) = (self.path.clone(), self.node.location);
        visitor.visit_newtype_struct(self).map_err(|err| err.at(&path, location))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match (&self.node.value, self.plain()) {
            (Value::Sequence(items), _) => self.visit_sequence(items, visitor),
            (_, Some("")) => self.visit_sequence(&[], visitor),
            _ => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match (&self.node.value, self.plain()) {
            (Value::Mapping(entries), _) => self.visit_mapping(entries, visitor),
            (_, Some("")) => self.visit_mapping(&[], visitor),
            _ => Err(self.invalid_type(&visitor)),
        };
        self.placed(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    /// Only unit variants, written as a scalar (`strategy: pack`), are read.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Scalar { text, .. } => visitor.visit_enum(UnitVariant(text)),
            Value::Sequence(_) => Err(de::Error::invalid_type(Unexpected::Seq, &"a YAML tag starting with '!'")),
            Value::Mapping(_) => Err(de::Error::invalid_type(Unexpected::Map, &"a YAML tag starting with '!'")),
        };
        self.placed(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_u64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }
}

/// A sequence's items, each read at `PATH[i]`.
struct Items<'a> {
    items: &'a [Node],
    next: usize,
    path: &'a YamlPath,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        let Some(node) = self.items.get(self.next) else { return Ok(None) };
        let path = self.path.index(self.next);
        self.next += 1;
        seed.deserialize(NodeDeserializer { node, path }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

/// A mapping's entries: keys read at the mapping's path, values at `PATH.key`.
struct Entries<'a> {
    entries: &'a [(Node, Node)],
    next: usize,
    path: &'a YamlPath,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, _)) = self.entries.get(self.next) else { return Ok(None) };
        seed.deserialize(NodeDeserializer { node: key, path: self.path.clone() }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (key, value) = &self.entries[self.next];
        self.next += 1;
        let path = match &key.value {
            Value::Scalar { text, .. } => self.path.key(text),
            _ => self.path.key("?"),
        };
        seed.deserialize(NodeDeserializer { node: value, path })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

/// A unit variant written as a scalar.
struct UnitVariant<'a>(&'a str);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let deserializer: de::value::StrDeserializer<'_, Error> = self.0.into_deserializer();
        Ok((seed.deserialize(deserializer)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"newtype variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::UnitVariant, &"struct variant"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    fn read<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, String> {
        let root = super::super::yaml::parse(text).root.unwrap().unwrap();
        from_node(&root, YamlPath::root()).map_err(|err| {
            let (path, location) = err.place.clone().unwrap();
            format!("{location} {path}: {err}")
        })
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        count: Option<u32>,
        ratio: Option<f64>,
        on: Option<bool>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        items: Vec<i64>,
    }

    #[test]
    fn resolves_plain_scalars_as_the_core_schema_does() {
        let sample: Sample =
            read("count: 0x10\nratio: 1.5\non: True\nlabels: {rack: 2, tag: ~}\nitems: [-3, 0o7]\n").unwrap();
        let labels = BTreeMap::from([("rack".to_owned(), "2".to_owned()), ("tag".to_owned(), "~".to_owned())]);
        let want = Sample { count: Some(16), ratio: Some(1.5), on: Some(true), labels, items: vec![-3, 7] };
        assert_eq!(sample, want);
        let empty: Sample = read("count:\nlabels:\nitems:\n").unwrap();
        assert_eq!((empty.count, empty.labels.len(), empty.items.len()), (None, 0, 0));
    }

    #[test]
    fn places_errors_at_the_innermost_node() {
        assert_eq!(
            read::<Sample>("items: [1, x]\n").unwrap_err(),
            "1:12 items[1]: invalid type: string \"x\", expected i64"
        );
        assert_eq!(
            read::<Sample>("count: \"3\"\n").unwrap_err(),
            "1:8 count: invalid type: string \"3\", expected u32"
        );
        assert_eq!(
            read::<Sample>("count: 007\n").unwrap_err(),
            "1:8 count: invalid type: string \"007\", expected u32"
        );
        assert_eq!(
            read::<Sample>("on: 1\nnope: 2\n").unwrap_err(),
            "1:5 on: invalid type: integer `1`, expected a boolean"
        );
        assert_eq!(read::<Sample>("count: 1\nnope: 2\n").unwrap_err(), "2:1 .: unknown field `nope`");
        assert_eq!(read::<Sample>("- 1\n").unwrap_err(), "1:1 .: invalid type: sequence, expected struct Sample");
    }
}
