//! A serde `Deserializer` over [`Node`]s that keeps positions.
//!
//! serde's derive reports errors without places; this deserializer attaches the span of the
//! key or value being read to every error, keeps "unknown field" structured so validation can
//! suggest the closest name, and lets typed fields capture their own span ([`Sp`]) or the raw
//! subtree ([`Node`]) for later templating.

use super::{Node, NodeValue, Span};
use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::Deserialize;
use std::cell::RefCell;
use std::fmt;

/// A deserialization problem at a place.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub span: Option<Span>,
    pub kind: DeErrorKind,
    /// Where the error is inside the decoded value: keys and list indexes, outermost first
    /// (`["retry", "backoff", "factor"]`, `["argv", "2"]`); empty at its top.
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeErrorKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    MissingField(&'static str),
    InvalidType {
        expected: String,
        found: String,
    },
    Custom(String),
}

impl DeError {
    fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }
    fn inside(mut self, part: String) -> Self {
        self.path.insert(0, part);
        self
    }
    /// The path as written in a plan: `retry.backoff.factor`, `argv[2]`.
    pub fn path_text(&self) -> String {
        let mut out = String::new();
        for part in &self.path {
            if part.parse::<usize>().is_ok() {
                out.push_str(&format!("[{part}]"));
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(part);
            }
        }
        out
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.kind {
            DeErrorKind::UnknownField { field, .. } => write!(f, "unknown field `{field}`"),
            DeErrorKind::UnknownVariant { variant, expected } => write!(
                f,
                "unknown value `{variant}`, expected one of {}",
                quote_list(expected)
            ),
            DeErrorKind::MissingField(field) => write!(f, "missing field `{field}`"),
            DeErrorKind::InvalidType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            DeErrorKind::Custom(msg) => f.write_str(msg),
        }
    }
}

pub fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind: DeErrorKind::Custom(msg.to_string()),
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind: DeErrorKind::UnknownField {
                field: field.to_string(),
                expected,
            },
        }
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind: DeErrorKind::UnknownVariant {
                variant: variant.to_string(),
                expected,
            },
        }
    }
    fn missing_field(field: &'static str) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind: DeErrorKind::MissingField(field),
        }
    }
    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError {
            span: None,
            path: Vec::new(),
            kind: DeErrorKind::InvalidType {
                expected: exp.to_string(),
                found: unexpected_name(&unexp),
            },
        }
    }
}

fn unexpected_name(u: &de::Unexpected) -> String {
    use de::Unexpected::*;
    match u {
        Bool(b) => format!("boolean `{b}`"),
        Unsigned(n) => format!("integer `{n}`"),
        Signed(n) => format!("integer `{n}`"),
        Float(n) => format!("number `{n}`"),
        Str(s) => format!("string \"{s}\""),
        Unit => "null".into(),
        Seq => "a list".into(),
        Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// Deserializes `T` from a node. `templates_pending` is true at validation time, when
/// `{{ … }}` strings have not been rendered yet and may stand for any scalar.
pub fn from_node<'a, T: Deserialize<'a>>(
    node: &'a Node,
    templates_pending: bool,
) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer {
        node,
        templates_pending,
        pending_bool: false,
    })
    .map_err(|e| e.at(node.span))
}

/// Like [`from_node`] before rendering, but every templated flag reads as `true`: the worst
/// case, for questions such as "may this step destroy data?" whose answer must not depend on
/// a param's current value.
pub fn from_node_flags_set<'a, T: Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer {
        node,
        templates_pending: true,
        pending_bool: true,
    })
    .map_err(|e| e.at(node.span))
}

#[derive(Clone, Copy)]
pub struct NodeDeserializer<'a> {
    node: &'a Node,
    templates_pending: bool,
    /// What a pending template reads as where a bool is wanted.
    pending_bool: bool,
}

pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

impl<'a> NodeDeserializer<'a> {
    fn child(&self, node: &'a Node) -> Self {
        NodeDeserializer {
            node,
            templates_pending: self.templates_pending,
            pending_bool: self.pending_bool,
        }
    }
    /// A not-yet-rendered template where a non-string is wanted.
    fn pending_template(&self) -> bool {
        self.templates_pending
            && self
                .node
                .as_str()
                .is_some_and(|s| is_template(s) || s.contains('⟨'))
    }
    fn invalid(&self, expected: &str) -> DeError {
        DeError {
            span: Some(self.node.span),
            path: Vec::new(),
            kind: DeErrorKind::InvalidType {
                expected: expected.to_string(),
                found: found_name(self.node),
            },
        }
    }
}

fn found_name(node: &Node) -> String {
    match &node.value {
        NodeValue::Str(s) => format!("string \"{s}\""),
        NodeValue::Int(i) => format!("integer `{i}`"),
        NodeValue::Bool(b) => format!("boolean `{b}`"),
        NodeValue::Float(f) => format!("number `{f}`"),
        _ => node.kind_name().to_string(),
    }
}

pub const NODE_MARKER: &str = "$opsplan::Node";
pub const SPAN_MARKER: &str = "$opsplan::Sp";

thread_local! {
    static CAPTURED_NODE: RefCell<Option<Node>> = const { RefCell::new(None) };
    static CAPTURED_SPAN: RefCell<Option<Span>> = const { RefCell::new(None) };
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            if self.pending_template() {
                return visitor
                    .$visit::<DeError>(<$ty>::default())
                    .map_err(|e| e.at(self.node.span));
            }
            match &self.node.value {
                NodeValue::Int(i) => match <$ty>::try_from(*i) {
                    Ok(v) => visitor
                        .$visit::<DeError>(v)
                        .map_err(|e| e.at(self.node.span)),
                    Err(_) => Err(DeError {
                        span: Some(self.node.span),
                        path: Vec::new(),
                        kind: DeErrorKind::Custom(format!(
                            "integer `{i}` is out of range for {}",
                            stringify!($ty)
                        )),
                    }),
                },
                _ => Err(self.invalid("an integer")),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(b) => visitor.visit_bool(*b),
            NodeValue::Int(i) => visitor.visit_i64(*i),
            NodeValue::Float(f) => visitor.visit_f64(*f),
            NodeValue::Str(s) => visitor.visit_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                parent: self,
            }),
            NodeValue::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
                parent: self,
            }),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.pending_template() {
            return visitor.visit_bool(self.pending_bool);
        }
        match self.node.value {
            NodeValue::Bool(b) => visitor
                .visit_bool::<DeError>(b)
                .map_err(|e| e.at(self.node.span)),
            _ => Err(self.invalid("a boolean (true or false)")),
        }
    }

    int_method!(deserialize_i8, visit_i8, i8);
    int_method!(deserialize_i16, visit_i16, i16);
    int_method!(deserialize_i32, visit_i32, i32);
    int_method!(deserialize_i64, visit_i64, i64);
    int_method!(deserialize_u8, visit_u8, u8);
    int_method!(deserialize_u16, visit_u16, u16);
    int_method!(deserialize_u32, visit_u32, u32);
    int_method!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.pending_template() {
            return visitor.visit_f64(0.0);
        }
        match self.node.value {
            NodeValue::Float(f) => visitor.visit_f64::<DeError>(f),
            NodeValue::Int(i) => visitor.visit_f64::<DeError>(i as f64),
            _ => Err(self.invalid("a number")),
        }
        .map_err(|e: DeError| e.at(self.node.span))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Str(s) => visitor.visit_str(s),
            // YAML types unquoted scalars; a string field accepts them as written.
            NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_) => {
                visitor.visit_string(self.node.scalar_text())
            }
            _ => return Err(self.invalid("a string")),
        }
        .map_err(|e: DeError| e.at(self.node.span))
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(self.node.span))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            _ => Err(self.invalid("null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == NODE_MARKER {
            CAPTURED_NODE.with(|c| *c.borrow_mut() = Some(self.node.clone()));
            return visitor.visit_unit();
        }
        if name == SPAN_MARKER {
            CAPTURED_SPAN.with(|c| *c.borrow_mut() = Some(self.node.span));
        }
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(self.node.span))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter().enumerate(),
                parent: self,
            }),
            _ if self.pending_template() => visitor.visit_seq(SeqAccess {
                items: [].iter().enumerate(),
                parent: self,
            }),
            _ => return Err(self.invalid("a list")),
        }
        .map_err(|e| e.at(self.node.span))
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
                parent: self,
            }),
            _ if self.pending_template() => visitor.visit_map(MapAccess {
                entries: [].iter(),
                value: None,
                parent: self,
            }),
            _ => return Err(self.invalid("a mapping")),
        }
        .map_err(|e| e.at(self.node.span))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            NodeValue::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumAccess {
                key: &entries[0].0,
                value: &entries[0].1,
                parent: self,
            }),
            _ => return Err(self.invalid("a name or a single-key mapping")),
        }
        .map_err(|e| e.at(self.node.span))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    parent: NodeDeserializer<'a>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some((i, node)) => seed
                .deserialize(self.parent.child(node))
                .map(Some)
                .map_err(|e| e.at(node.span).inside(i.to_string())),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
    parent: NodeDeserializer<'a>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some((key, value));
                seed.deserialize(self.parent.child(key))
                    .map(Some)
                    .map_err(|e| e.at(key.span))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(self.parent.child(value))
            .map_err(|e| e.at(value.span).inside(key.scalar_text()))
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
    parent: NodeDeserializer<'a>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let v = seed
            .deserialize(self.parent.child(self.key))
            .map_err(|e| e.at(self.key.span))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self.parent.child(self.value))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self.parent.child(self.value), visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self.parent.child(self.value), visitor)
    }
}

/// Lets a typed struct keep a subtree as a [`Node`] (a step's `with:`), spans intact.
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                CAPTURED_NODE
                    .with(|c| c.borrow_mut().take())
                    .ok_or_else(|| E::custom("a YAML node can only be read from a plan file"))
            }
        }
        d.deserialize_newtype_struct(NODE_MARKER, NodeVisitor)
    }
}

impl JsonSchema for Node {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::default()
    }
}

/// A value with the span it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Sp<T>, D::Error> {
                let span = CAPTURED_SPAN
                    .with(|c| c.borrow_mut().take())
                    .unwrap_or_default();
                Ok(Sp {
                    value: T::deserialize(d)?,
                    span,
                })
            }
        }
        d.deserialize_newtype_struct(SPAN_MARKER, SpVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
