use super::{FileId, Span};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A YAML value with the span of the token (or collection) it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys keep their own spans so "unknown field" can point at the key.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(span: Span, value: NodeValue) -> Self {
        Node { span, value }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry of a mapping, with the key node.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The node at a dotted path (`with.query.sql`, `items.2`); used to place diagnostics.
    pub fn at_path(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = match &node.value {
                NodeValue::Map(_) => node.get(part)?,
                NodeValue::Seq(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Short name of the YAML kind, for "expected X, found Y" messages.
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Every string in this tree, with its node (templates are checked this way).
    pub fn walk_strings<'a>(&'a self, f: &mut dyn FnMut(&'a Node, &'a str)) {
        match &self.value {
            NodeValue::Str(s) => f(self, s),
            NodeValue::Seq(items) => items.iter().for_each(|n| n.walk_strings(f)),
            NodeValue::Map(entries) => entries.iter().for_each(|(_, v)| v.walk_strings(f)),
            _ => {}
        }
    }

    /// Converts to JSON (mapping keys become strings); used for outputs and previews.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            NodeValue::Null => J::Null,
            NodeValue::Bool(b) => J::Bool(*b),
            NodeValue::Int(i) => J::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            NodeValue::Str(s) => J::String(s.clone()),
            NodeValue::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a node from JSON, every part carrying `span` (the template that produced it).
    pub fn from_json(value: &serde_json::Value, span: Span) -> Node {
        use serde_json::Value as J;
        let value = match value {
            J::Null => NodeValue::Null,
            J::Bool(b) => NodeValue::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => NodeValue::Int(i),
                None => NodeValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => NodeValue::Str(s.clone()),
            J::Array(items) => {
                NodeValue::Seq(items.iter().map(|v| Node::from_json(v, span)).collect())
            }
            J::Object(map) => NodeValue::Map(
                map.iter()
                    .map(|(k, v)| {
                        (
                            Node::new(span, NodeValue::Str(k.clone())),
                            Node::from_json(v, span),
                        )
                    })
                    .collect(),
            ),
        };
        Node { span, value }
    }

    /// Text of a scalar (mapping keys, messages); collections print as YAML-ish flow.
    pub fn scalar_text(&self) -> String {
        match &self.value {
            NodeValue::Null => "null".into(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Str(s) => s.clone(),
            _ => self.to_json().to_string(),
        }
    }

    /// Parses YAML text into a node tree; the error carries the position serde-saphyr found.
    pub fn parse(file: FileId, text: &str) -> Result<Node, YamlError> {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        };
        let raw: Spanned<Raw> =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                let offset = e
                    .location()
                    .and_then(|l| l.span().byte_offset())
                    .map(|o| o as usize);
                let message = e.to_string();
                // serde-saphyr appends a rendered snippet; the first line is the message.
                let message = message.lines().next().unwrap_or("invalid YAML").to_string();
                YamlError { offset, message }
            })?;
        Ok(raw.into_node(file, text))
    }
}

/// A YAML syntax error with the byte offset where the parser stopped.
#[derive(Debug)]
pub struct YamlError {
    pub offset: Option<usize>,
    pub message: String,
}

/// Intermediate tree straight from serde-saphyr, positions as its `Location`s.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

trait IntoNode {
    fn into_node(self, file: FileId, text: &str) -> Node;
}

impl IntoNode for Spanned<Raw> {
    fn into_node(self, file: FileId, text: &str) -> Node {
        let span = self.referenced.span();
        let offset = span.byte_offset().unwrap_or(0) as usize;
        let mut len = span.byte_len().unwrap_or(0) as usize;
        let value = match self.value {
            Raw::Null => NodeValue::Null,
            Raw::Bool(b) => NodeValue::Bool(b),
            Raw::Int(i) => NodeValue::Int(i),
            Raw::Float(f) => NodeValue::Float(f),
            Raw::Str(s) => NodeValue::Str(s),
            Raw::Seq(items) => {
                NodeValue::Seq(items.into_iter().map(|n| n.into_node(file, text)).collect())
            }
            Raw::Map(entries) => NodeValue::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.into_node(file, text), v.into_node(file, text)))
                    .collect(),
            ),
        };
        if len == 0 {
            len = token_len(text, offset);
        }
        Node {
            span: Span::new(file, offset, len),
            value,
        }
    }
}

/// Length of the token at `offset` when the parser gave none (collections): up to line end.
fn token_len(text: &str, offset: usize) -> usize {
    text.get(offset..)
        .map(|rest| rest.find('\n').unwrap_or(rest.len()))
        .unwrap_or(0)
        .max(1)
        .min(text.len().saturating_sub(offset))
}

impl<'de> de::Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                d.deserialize_any(RawVisitor)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
                i64::try_from(v)
                    .map(Raw::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Raw>>()? {
                    let value = map.next_value::<Spanned<Raw>>()?;
                    entries.push((key, value));
                }
                Ok(Raw::Map(entries))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}
