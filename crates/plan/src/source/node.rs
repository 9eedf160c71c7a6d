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
            NodeValue::Map(entries) => entries.iter().for_each(|(k, v)| {
                // A templated key (`min_size: {"{{ params.dump }}": 1024}`) is rendered like a
                // value, so it is checked like one; plain keys are field names, not strings.
                if let NodeValue::Str(s) = &k.value {
                    if crate::source::de::is_template(s) {
                        f(k, s);
                    }
                }
                v.walk_strings(f);
            }),
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
        // serde-saphyr's default budget (250,000 nodes, 1,000,000 events) stops a plan at
        // about 20,000 steps; operators generate plans with 100,000 (one step per partition
        // or prefix). Plans are the operator's own files, not untrusted input, so the size
        // caps are raised to fit 1,000,000 steps; the guards against alias bombs and deep
        // nesting keep their defaults.
        //
        // What aliases may add is bounded on its own: every scalar byte beyond the file's own
        // size can only come from replayed aliases, so the scalar budget is the file's size
        // plus ALIAS_SCALAR_BYTES, and replays are capped at ALIAS_REPLAYED_EVENTS events; an
        // alias bomb ("billion laughs") stops at a few tens of megabytes, not gigabytes.
        let scalar_bytes = text.len().saturating_add(ALIAS_SCALAR_BYTES).min(1 << 30);
        // YAML 1.2 core: only true/false (any case form) are booleans; `n`, `y`, `yes`, `no`,
        // `on`, `off` stay the strings they were written as (a param named `n`, `argv: [echo,
        // n, y]`, `default: NO`). validate warns where a YAML 1.1 reader would differ (W106).
        let options = serde_saphyr::options! {
            strict_booleans: true,
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
            budget: serde_saphyr::budget! {
                max_nodes: MAX_YAML_NODES,
                max_events: 4 * MAX_YAML_NODES,
                max_total_scalar_bytes: scalar_bytes,
                max_reader_input_bytes: Some(1 << 30),
            },
            alias_limits: serde_saphyr::alias_limits! {
                max_total_replayed_events: ALIAS_REPLAYED_EVENTS,
            },
        };
        let raw: Spanned<Raw> =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                let location = e.location();
                let offset = location.and_then(|l| {
                    l.span()
                        .byte_offset()
                        .map(|o| o as usize)
                        .or_else(|| offset_of(text, l.line(), l.column()))
                });
                // serde-saphyr appends a rendered snippet; the first line is the message.
                let message = e.to_string();
                let message = message.lines().next().unwrap_or("invalid YAML");
                YamlError::new(text, offset, message)
            })?;
        let mut node = Node::from(raw);
        fix_spans(&mut node, file, text);
        if let Some(e) = typed_duplicate_key(&node, text) {
            return Err(e);
        }
        Ok(node)
    }
}

/// Scalar bytes aliases may add beyond the file's own text.
const ALIAS_SCALAR_BYTES: usize = 16 << 20;
/// Events aliases may replay in one file.
const ALIAS_REPLAYED_EVENTS: usize = 250_000;

/// Two keys of one mapping that differ only in YAML type (`1` and `"1"`, `true` and
/// `"true"`): serde-saphyr keeps them apart, but every key becomes text (a field name, an
/// env variable, a JSON key), where they are the same key and one would silently win.
fn typed_duplicate_key(root: &Node, text: &str) -> Option<YamlError> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match &node.value {
            NodeValue::Seq(items) => stack.extend(items.iter()),
            NodeValue::Map(entries) => {
                let mut seen: std::collections::HashMap<String, &Node> =
                    std::collections::HashMap::new();
                for (k, v) in entries {
                    stack.push(v);
                    if matches!(k.value, NodeValue::Seq(_) | NodeValue::Map(_)) {
                        continue;
                    }
                    let key = k.scalar_text();
                    if let Some(first) = seen.get(&key) {
                        let at = k.span.offset.min(text.len());
                        return Some(YamlError {
                            offset: Some(at),
                            len: k.span.len.max(1),
                            message: format!(
                                "duplicate key `{key}` ({} here, {} before: the same key once read as text)",
                                k.kind_name(),
                                first.kind_name()
                            ),
                            label: "this key appears earlier in the same mapping",
                            related: Some((
                                first.span.offset,
                                first.span.len.max(1),
                                "first here".to_string(),
                            )),
                            help: Some("each key may appear once in a mapping; remove or rename one of them"),
                        });
                    }
                    seen.insert(key, k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Most YAML nodes (mappings, sequences, scalars) a file may hold: about 15 per step for
/// a plan of 1,000,000 steps.
pub(crate) const MAX_YAML_NODES: usize = 16_000_000;

/// The byte offset of a 1-based line and column (in characters).
fn offset_of(text: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let start = if line == 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(usize::try_from(line - 2).ok()?)?
            .0
            + 1
    };
    let rest = &text[start..];
    let rest = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let col = usize::try_from(column.saturating_sub(1)).ok()?;
    Some(start + rest.char_indices().nth(col).map_or(rest.len(), |(i, _)| i))
}

/// A YAML syntax error: where the parser stopped, what it says, and (when the cause can
/// be recognized) a better place, a second place and a hint.
#[derive(Debug)]
pub struct YamlError {
    pub offset: Option<usize>,
    /// Length of the labelled token (at least 1).
    pub len: usize,
    pub message: String,
    pub label: &'static str,
    /// Another place that explains the error (an unclosed bracket), with its label.
    pub related: Option<(usize, usize, String)>,
    pub help: Option<&'static str>,
}

impl YamlError {
    fn new(text: &str, offset: Option<usize>, raw: &str) -> YamlError {
        // `error: line 10 column 6: while parsing …`: the position is shown by the label.
        let mut message = raw.trim_start_matches("error: ").to_string();
        if let Some(rest) = message.strip_prefix("line ") {
            let mut parts = rest.splitn(2, ": ");
            let position = parts.next().unwrap_or_default();
            if position.split_whitespace().count() == 3 {
                message = parts.next().unwrap_or_default().to_string();
            }
        }
        let mut err = YamlError {
            offset,
            len: 1,
            message,
            label: "here",
            related: None,
            help: None,
        };
        let at = offset.unwrap_or(0).min(text.len());
        if let Some(key) = err.message.strip_prefix("duplicate mapping key: ") {
            let key = key
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(key)
                .to_string();
            if text[at..].starts_with(key.as_str()) {
                err.len = key.len().max(1);
            }
            err.related =
                first_key(text, at, &key).map(|o| (o, key.len().max(1), "first here".to_string()));
            err.message = format!("duplicate key `{key}`");
            err.label = "this key appears earlier in the same mapping";
            err.help = Some("each key may appear once in a mapping; remove or rename one of them");
        } else if err.message.contains("tab") {
            // The parser stops after the tab; point at the tab itself.
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            if let Some(tab) = text[line_start..line_end].find('\t') {
                err.offset = Some(line_start + tab);
            }
            err.label = "a tab";
            err.help = Some("indent with spaces; YAML does not allow tabs in indentation");
        } else if let Some(open) = unclosed_flow(text, at) {
            let list = text[open..].starts_with('[');
            err.related = Some((at, 1, format!("the parser stopped here: {}", err.message)));
            err.message = format!("`{}` is never closed", if list { '[' } else { '{' });
            err.offset = Some(open);
            (err.label, err.help) = if list {
                ("this `[` has no matching `]`", Some("close it with `]`; a flow list may span lines only until the next key or item"))
            } else {
                ("this `{` has no matching `}`", Some("close it with `}`; a flow mapping may span lines only until the next key or item"))
            };
        } else if err.message.contains("did not find expected key")
            || err.message.contains("mapping values are not allowed")
        {
            err.label = "unexpected indentation";
            err.help = Some("check the indentation of this line: keys of one mapping must start in the same column");
        } else if at < text.len() {
            err.len = token_len(text, at)
                .min(text[at..].find(char::is_whitespace).unwrap_or(usize::MAX))
                .max(1);
        }
        err
    }
}

/// The earlier `key:` of the same block mapping as the key at `at`: the nearest line above
/// with the same indentation, before any line indented less.
fn first_key(text: &str, at: usize, key: &str) -> Option<usize> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let column = at - line_start;
    let mut end = line_start;
    while end > 0 {
        let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..end - 1];
        end = start;
        let indent = line.chars().take_while(|c| *c == ' ').count();
        let rest = line.trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') || indent > column {
            continue;
        }
        // `- key:` opens the item's mapping at the column after the dash.
        let (indent, rest) = match rest.strip_prefix("- ") {
            Some(r) => (
                indent + 2 + r.chars().take_while(|c| *c == ' ').count(),
                r.trim_start_matches(' '),
            ),
            None => (indent, rest),
        };
        if indent < column {
            return None;
        }
        if indent == column
            && rest
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            return Some(start + (line.len() - rest.len()));
        }
    }
    None
}

/// The offset of a `[` or `{` that opened a flow collection before `at` and was not closed
/// by the time block structure resumes (a line starting at or left of the opener's line's
/// indentation, before `at`). Quoted strings and comments are skipped.
fn unclosed_flow(text: &str, at: usize) -> Option<usize> {
    let mut stack: Vec<usize> = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = '\n';
    let mut prev_significant = '\n';
    for (i, c) in text[..at.min(text.len())].char_indices() {
        if c == '\n' {
            comment = false;
            prev = c;
            prev_significant = c;
            continue;
        }
        if comment {
            continue;
        }
        if let Some(q) = quote {
            if c == q && !(q == '"' && prev == '\\') {
                quote = None;
            }
            prev = c;
            continue;
        }
        match c {
            '#' if prev.is_whitespace() => comment = true,
            '"' | '\'' if !prev_significant.is_alphanumeric() => quote = Some(c),
            // In block context a bracket opens a flow collection only where a value starts.
            '[' | '{' if !stack.is_empty() || matches!(prev_significant, ':' | '-' | '\n') => {
                stack.push(i);
            }
            ']' | '}' if !stack.is_empty() => {
                stack.pop();
            }
            _ => {}
        }
        prev = c;
        if !c.is_whitespace() {
            prev_significant = c;
        }
    }
    let open = *stack.last()?;
    let indent = |line_start: usize| text[line_start..].chars().take_while(|c| *c == ' ').count();
    let open_line = text[..open].rfind('\n').map_or(0, |i| i + 1);
    let at_line = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    (at_line > open_line && indent(at_line) <= indent(open_line)).then_some(open)
}

/// A node straight from serde-saphyr: its children are already [`Node`]s (converted as the
/// parser reads them, so no second tree of serde-saphyr's larger `Spanned` values is built
/// for a large plan), with spans as the parser gave them: [`fix_spans`] then sets the file
/// and the lengths the parser leaves out.
struct Raw(NodeValue);

impl From<Spanned<Raw>> for Node {
    fn from(raw: Spanned<Raw>) -> Node {
        let span = raw.referenced.span();
        let offset = span.byte_offset().unwrap_or(0) as usize;
        let len = span.byte_len().unwrap_or(0) as usize;
        Node {
            span: Span::new(FileId::default(), offset, len),
            value: raw.value.0,
        }
    }
}

/// Sets every node's file, and the lengths the parser gave none for: a flow collection
/// spans to its closing bracket, a block one (or a token without a length) to its line end.
fn fix_spans(root: &mut Node, file: FileId, text: &str) {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        node.span.file = file;
        let offset = node.span.offset;
        match &mut node.value {
            NodeValue::Seq(items) => {
                node.span.len = flow_len(text, offset).unwrap_or(node.span.len);
                stack.extend(items.iter_mut());
            }
            NodeValue::Map(entries) => {
                node.span.len = flow_len(text, offset).unwrap_or(node.span.len);
                for (k, v) in entries.iter_mut() {
                    stack.push(k);
                    stack.push(v);
                }
            }
            _ => {}
        }
        if node.span.len == 0 {
            node.span.len = token_len(text, offset);
        }
    }
}

/// Length of the flow collection (`[…]` or `{…}`) starting at `offset`, brackets included.
fn flow_len(text: &str, offset: usize) -> Option<usize> {
    let rest = text.get(offset..)?;
    if !rest.starts_with(['[', '{']) {
        return None;
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in rest.char_indices() {
        match quote {
            Some(q) => {
                if c == q && !(q == '"' && prev == '\\') {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' if matches!(prev, ' ' | '[' | '{' | ',' | ':' | '\n') => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            },
        }
        prev = c;
    }
    None
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
                Ok(Raw(NodeValue::Null))
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                d.deserialize_any(RawVisitor)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
                i64::try_from(v)
                    .map(|i| Raw(NodeValue::Int(i)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Str(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw(NodeValue::Str(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
                    items.push(Node::from(item));
                }
                items.shrink_to_fit();
                Ok(Raw(NodeValue::Seq(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<Raw>>()? {
                    let value = map.next_value::<Spanned<Raw>>()?;
                    entries.push((Node::from(key), Node::from(value)));
                }
                entries.shrink_to_fit();
                Ok(Raw(NodeValue::Map(entries)))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large plan is mostly mappings and lists: each holds exactly its items, with no
    /// spare capacity from growing while parsed, and spans point at the file's own text.
    #[test]
    fn parsed_collections_hold_exactly_their_items() {
        let text = "steps:\n  - id: a\n    type: exec\n    description: one\n    with: {argv: [cp, x, y]}\n    needs: [b, c, d, e, f]\n";
        let root = Node::parse(FileId(3), text).expect("valid YAML");
        let mut stack = vec![&root];
        let mut collections = 0;
        while let Some(node) = stack.pop() {
            assert_eq!(node.span.file, FileId(3));
            assert!(node.span.end() <= text.len(), "{node:?}");
            match &node.value {
                NodeValue::Seq(items) => {
                    assert_eq!(items.capacity(), items.len(), "{node:?}");
                    stack.extend(items);
                    collections += 1;
                }
                NodeValue::Map(entries) => {
                    assert_eq!(entries.capacity(), entries.len(), "{node:?}");
                    stack.extend(entries.iter().flat_map(|(k, v)| [k, v]));
                    collections += 1;
                }
                _ => assert!(node.span.len > 0, "{node:?}"),
            }
        }
        assert_eq!(collections, 6);
        // A flow collection spans to its closing bracket.
        let with = root.at_path("steps.0.with").expect("with");
        assert_eq!(
            &text[with.span.offset..with.span.end()],
            "{argv: [cp, x, y]}"
        );
    }
}
