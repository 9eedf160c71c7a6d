//! Templates: minijinja with strict undefined, applied to individual string fields after
//! parsing (never to the raw file), with errors mapped back to the field's position.
//!
//! A string that is exactly one `{{ expression }}` keeps the expression's type (a list for
//! `for_each`, an int for `replicas`); any other template string renders to a string.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::de::is_template;
use crate::source::{Node, NodeValue, Sources, Span};
use minijinja::value::{Object, Value};
use minijinja::{Environment, UndefinedBehavior};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// The shortest secret value accepted. Masking replaces every occurrence of a secret in
/// what is shown and stored; a value of one to three characters occurs by chance in any
/// output, so masking it would hide unrelated text and reveal where it appears.
pub const MIN_SECRET_CHARS: usize = 4;

/// What a secret looks like anywhere but in the call that uses it.
pub const MASK: &str = "********";

/// Replaces every known secret value in text that leaves the process (logs, errors, journal).
///
/// It masks what is shown and stored, never values passed between steps (those stay
/// real). Each secret is masked in the forms a server or child echoes back: as it is; each
/// line of a multi-line secret on its own (output is masked line by line); percent-encoded
/// (URLs, form bodies, errors quoting them); JSON-escaped; and base64, found by decoding
/// every base64-looking word, so `base64(user:secret)` in an echoed Basic header is masked
/// as well as `base64(secret)`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Every form of every secret, longest first.
    forms: Vec<String>,
    /// The secrets themselves, to look for in decoded base64.
    secrets: Vec<String>,
}

/// Shortest base64 word decoded to look for a secret (a secret of 4 characters is at
/// least 6 base64 characters).
const MIN_BASE64_WORD: usize = 6;

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let mut forms = Vec::new();
        for s in &secrets {
            forms.push(s.clone());
            let lines: Vec<&str> = s.lines().map(|l| l.trim_end_matches('\r')).collect();
            if lines.len() > 1 {
                // Lines too short to mask on their own by the secret-length rule are left.
                forms.extend(
                    lines
                        .iter()
                        .filter(|l| l.chars().count() >= MIN_SECRET_CHARS)
                        .map(std::string::ToString::to_string),
                );
            }
            forms.push(percent_encode(s, false));
            forms.push(percent_encode(s, true));
            forms.push(percent_encode(s, false).to_lowercase_hex());
            let every: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
            forms.push(every.to_lowercase_hex());
            forms.push(every);
            if let Ok(json) = serde_json::to_string(s) {
                forms.push(json[1..json.len() - 1].to_string());
            }
        }
        forms.retain(|f| !f.is_empty());
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Redactor { forms, secrets }
    }
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.contains_secret(text) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for s in &self.forms {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        if !self.secrets.is_empty() {
            out = self.mask_base64(&out);
        }
        Cow::Owned(out)
    }
    /// Whether `text` holds a secret as a value of its own: an occurrence that is not part
    /// of a longer word (`--password=hunter2`, `user:hunter2@host`, but not the secret `pass`
    /// inside `--password`). Command lines are refused on this, since a secret rendered into
    /// an argv is readable by every local user in /proc, while a word that merely contains
    /// the secret's letters is not a leak.
    pub fn holds_secret(&self, text: &str) -> bool {
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        self.forms.iter().any(|f| {
            text.match_indices(f.as_str()).any(|(at, m)| {
                !word(text[..at].chars().next_back()) && !word(text[at + m.len()..].chars().next())
            })
        }) || (!self.secrets.is_empty()
            && !base64_words_with_secret(text, &self.secrets).is_empty())
    }

    pub fn contains_secret(&self, text: &str) -> bool {
        self.forms.iter().any(|s| text.contains(s.as_str()))
            || (!self.secrets.is_empty()
                && !base64_words_with_secret(text, &self.secrets).is_empty())
    }
    /// Masks every base64 word whose decoded bytes hold a secret.
    fn mask_base64(&self, text: &str) -> String {
        let hits = base64_words_with_secret(text, &self.secrets);
        if hits.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for r in hits {
            out.push_str(&text[at..r.start]);
            out.push_str(MASK);
            at = r.end;
        }
        out.push_str(&text[at..]);
        out
    }
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) if self.contains_secret(s) => {
                *s = self.redact(s).into_owned();
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.redact_json(v)),
            _ => {}
        }
    }
}

/// Percent-encoding of every byte but the unreserved ones (RFC 3986), upper-case hex;
/// `plus`: a space as `+`, as in form bodies.
fn percent_encode(s: &str, plus: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            b' ' if plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

trait LowerHex {
    fn to_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// `%2F` → `%2f`, leaving the other characters as they are.
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut chars = self.chars();
        while let Some(c) = chars.next() {
            out.push(c);
            if c == '%' {
                for h in chars.by_ref().take(2) {
                    out.push(h.to_ascii_lowercase());
                }
            }
        }
        out
    }
}

fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decodes standard or URL-safe base64 (padding optional) from `start` on, for every one
/// of the four bit alignments a secret can sit at inside a longer encoded text.
fn base64_decode(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in word {
        let Some(v) = base64_value(c) else { break };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Byte ranges of the base64-looking words of `text` that decode to bytes holding one of
/// `secrets`. A word is a run of base64 characters (with `=` padding) of at least
/// MIN_BASE64_WORD characters; it is decoded from each of its first four offsets, so a
/// secret inside a longer encoded value (`user:secret`) is found too.
fn base64_words_with_secret(text: &str, secrets: &[String]) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut hits = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if base64_value(bytes[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && base64_value(bytes[i]).is_some() {
            i += 1;
        }
        let mut end = i;
        while end < bytes.len() && bytes[end] == b'=' {
            end += 1;
        }
        let word = &bytes[start..i];
        if word.len() >= MIN_BASE64_WORD {
            let found = (0..4.min(word.len())).any(|skip| {
                let decoded = base64_decode(&word[skip..]);
                secrets.iter().any(|s| {
                    let s = s.as_bytes();
                    decoded.windows(s.len()).any(|w| w == s)
                })
            });
            if found {
                hits.push(start..end);
            }
        }
        i = end.max(i);
    }
    hits
}

pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("version", version_filter);
        env.add_filter("major", major_filter);
        env.add_filter("shell_quote", shell_quote_filter);
        env
    })
}

/// The expression inside a string that is exactly `{{ expr }}`.
pub fn whole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%"))
        .then_some(inner.trim())
}

/// A `when:` condition may be written bare (`params.x == 1`) or in braces.
pub fn condition_expression(s: &str) -> &str {
    whole_expression(s).unwrap_or(s.trim())
}

/// The span of the part of a template string an error names, when the YAML scalar holds
/// the string verbatim (plain or simply quoted); else the whole scalar.
pub fn sub_span(
    span: Span,
    text: &str,
    range: Option<std::ops::Range<usize>>,
    sources: Option<&Sources>,
) -> Span {
    let (Some(range), Some(sources)) = (range, sources) else {
        return span;
    };
    let raw = sources.get(span.file).slice(span);
    let base = if raw == text {
        0
    } else if raw.len() >= 2 && raw.get(1..raw.len() - 1) == Some(text) {
        1
    } else {
        return span;
    };
    span.sub(
        base + range.start,
        range.end.saturating_sub(range.start).max(1),
    )
}

fn template_error(
    e: &minijinja::Error,
    span: Span,
    text: &str,
    sources: Option<&Sources>,
    code: Code,
) -> Diagnostic {
    let mut detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        detail = format!("undefined value ({detail})");
    }
    let help = if code == Code::TemplateSyntax {
        "templates use Jinja syntax: `{{ params.dest }}`, `{{ steps.dump.outputs.stdout | trim }}`, `{% if … %}…{% endif %}`"
    } else {
        "the template failed with the values of this run; check the params and step outputs it reads"
    };
    Diagnostic::new(code, format!("template error: {detail}"))
        .label(sub_span(span, text, e.range(), sources), "in this template")
        .help(help)
}

/// Every variable path a template or expression reads (`params.x`, `steps.a.outputs.b`).
pub fn variables(
    node: &Node,
    text: &str,
    is_expression: bool,
    sources: Option<&Sources>,
) -> Result<BTreeSet<String>, Diagnostic> {
    let env = environment();
    let vars = if is_expression {
        env.compile_expression(text)
            .map_err(|e| template_error(&e, node.span, text, sources, Code::TemplateSyntax))?
            .undeclared_variables(true)
    } else {
        env.template_from_str(text)
            .map_err(|e| template_error(&e, node.span, text, sources, Code::TemplateSyntax))?
            .undeclared_variables(true)
    };
    Ok(vars.into_iter().collect())
}

/// The string of `node` whose span is `span`, as its path under `node` (`.argv[1]`,
/// `.env.DIR`; empty for `node` itself) and its text: where a render error happened.
pub fn locate(node: &Node, span: Span) -> Option<(String, String)> {
    match &node.value {
        NodeValue::Str(s) if node.span == span => Some((String::new(), s.clone())),
        NodeValue::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, n)| locate(n, span).map(|(p, t)| (format!("[{i}]{p}"), t))),
        NodeValue::Map(entries) => entries.iter().find_map(|(k, v)| {
            locate(v, span).map(|(p, t)| (format!(".{}{p}", k.scalar_text()), t))
        }),
        _ => None,
    }
}

/// Renders every template string in a node tree.
pub fn render_node(
    node: &Node,
    ctx: &Value,
    sources: Option<&Sources>,
) -> Result<Node, Diagnostic> {
    Ok(match &node.value {
        NodeValue::Str(s) if is_template(s) => render_string(node, s, ctx, sources)?,
        NodeValue::Seq(items) => Node::new(
            node.span,
            NodeValue::Seq(
                items
                    .iter()
                    .map(|n| render_node(n, ctx, sources))
                    .collect::<Result<_, _>>()?,
            ),
        ),
        NodeValue::Map(entries) => Node::new(
            node.span,
            NodeValue::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((render_key(k, ctx, sources)?, render_node(v, ctx, sources)?)))
                    .collect::<Result<_, Diagnostic>>()?,
            ),
        ),
        _ => node.clone(),
    })
}

/// A mapping key that is a template (`{"{{ params.dump }}": 1024}`) renders to its text: keys
/// stay strings, whatever an expression would evaluate to.
fn render_key(key: &Node, ctx: &Value, sources: Option<&Sources>) -> Result<Node, Diagnostic> {
    match &key.value {
        NodeValue::Str(s) if is_template(s) => {
            let text = environment()
                .render_str(s, ctx)
                .map_err(|e| template_error(&e, key.span, s, sources, Code::TemplateRender))?;
            Ok(Node::new(key.span, NodeValue::Str(text)))
        }
        _ => Ok(key.clone()),
    }
}

fn render_string(
    node: &Node,
    s: &str,
    ctx: &Value,
    sources: Option<&Sources>,
) -> Result<Node, Diagnostic> {
    let env = environment();
    if let Some(expr) = whole_expression(s) {
        let value = env
            .compile_expression(expr)
            .and_then(|e| e.eval(ctx))
            .map_err(|e| {
                // Ranges are relative to the expression; shift them to the string.
                let offset = s.find(expr).unwrap_or(0);
                let mut d = template_error(&e, node.span, s, None, Code::TemplateRender);
                if let (Some(r), Some(src)) = (e.range(), sources) {
                    d.labels[0].span = sub_span(
                        node.span,
                        s,
                        Some(r.start + offset..r.end + offset),
                        Some(src),
                    );
                }
                d
            })?;
        // Strict, as `{{ x }}` inside text is: an undefined value is an error, not a null
        // (`{{ steps.x.outputs.y }}` of a skipped step). `| default(…)` gives a value.
        if value.is_undefined() {
            return Err(Diagnostic::new(
                Code::TemplateRender,
                format!("template error: undefined value (`{expr}` is undefined)"),
            )
            .label(node.span, "in this template")
            .help("the template failed with the values of this run; check the params and step outputs it reads"));
        }
        return Ok(value_to_node(&value, node.span));
    }
    let text = env
        .render_str(s, ctx)
        .map_err(|e| template_error(&e, node.span, s, sources, Code::TemplateRender))?;
    Ok(Node::new(node.span, NodeValue::Str(text)))
}

/// Evaluates a `when:` condition to a bool (Jinja truthiness).
pub fn eval_condition(node_span: Span, text: &str, ctx: &Value) -> Result<bool, Diagnostic> {
    let expr = condition_expression(text);
    environment()
        .compile_expression(expr)
        .and_then(|e| e.eval(ctx))
        .map(|v| v.is_true())
        .map_err(|e| template_error(&e, node_span, text, None, Code::TemplateRender))
}

/// `"it's" | shell_quote` → `'it'\''s'`: a value as one shell word, whatever it holds, so
/// a param spliced into a `shell` script is data, never code. A list becomes its items as
/// separate quoted words (`['a b', 'c'] | shell_quote` → `'a b' 'c'`).
fn shell_quote_filter(value: Value) -> Value {
    if let Some(p) = value.downcast_object_ref::<Placeholder>() {
        return Value::from_object(Placeholder(format!("{} | shell_quote", p.0)));
    }
    if value.kind() == minijinja::value::ValueKind::Seq {
        if let Ok(items) = value.try_iter() {
            let words: Vec<String> = items.map(|v| shell_quote(&as_text(&v))).collect();
            return Value::from(words.join(" "));
        }
    }
    Value::from(shell_quote(&as_text(&value)))
}

/// A value as `{{ value }}` renders it (`true`, not Rust's or Python's spelling).
fn as_text(value: &Value) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None if value.kind() == minijinja::value::ValueKind::Bool => value.is_true().to_string(),
        None => environment()
            .render_str("{{ v }}", minijinja::context! { v => value.clone() })
            .unwrap_or_else(|_| value.to_string()),
    }
}

/// POSIX single quoting: `'` + text with each `'` written `'\''` + `'`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `"Build Information: QuestDB 9.1.0, JDK 17" | version` → `"9.1.0"`: the first dotted
/// number in a text, for plans that compare the version a system reports.
fn version_filter(value: Value) -> Value {
    if let Some(p) = value.downcast_object_ref::<Placeholder>() {
        return Value::from_object(Placeholder(format!("{} | version", p.0)));
    }
    Value::from(find_version(&value.to_string()).unwrap_or_default())
}

/// `"9.1.0" | major` → `9`: the major version, the unit of backup compatibility for most
/// systems (QuestDB, PostgreSQL dumps); none when the text holds no version.
fn major_filter(value: Value) -> Value {
    if let Some(p) = value.downcast_object_ref::<Placeholder>() {
        return Value::from_object(Placeholder(format!("{} | major", p.0)));
    }
    find_version(&value.to_string())
        .and_then(|v| v.split('.').next().and_then(|m| m.parse::<i64>().ok()))
        .map_or(Value::from(()), Value::from)
}

fn find_version(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let candidate = text[start..i].trim_end_matches('.');
            if candidate.contains('.') || i == bytes.len() || !bytes[i].is_ascii_alphabetic() {
                return Some(candidate.to_string());
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod holds_secret {
    use super::Redactor;

    #[test]
    fn a_secret_standing_alone_is_found_and_a_word_that_contains_it_is_not() {
        let r = Redactor::new(["pass".to_string(), "hunter2".to_string()]);
        assert!(!r.holds_secret("--password"));
        assert!(!r.holds_secret("bypass"));
        assert!(r.holds_secret("pass"));
        assert!(r.holds_secret("--token=pass"));
        assert!(r.holds_secret("https://user:hunter2@db"));
        assert!(r.holds_secret("hunter2"));
        assert!(!r.holds_secret("hunter22"));
    }
}

#[cfg(test)]
mod render_node_tests {
    use super::render_node;
    use crate::source::{FileId, Node};

    #[test]
    fn renders_templates_in_mapping_keys() {
        let node =
            Node::parse(FileId(0), "min_size: {\"{{ archive }}\": \"{{ bytes }}\"}").expect("yaml");
        let ctx = minijinja::context! { archive => "/b/x.tar.gz", bytes => 1024 };
        let out = render_node(&node, &ctx, None).expect("render");
        assert_eq!(
            out.to_json(),
            serde_json::json!({"min_size": {"/b/x.tar.gz": 1024}})
        );
    }
}

#[cfg(test)]
mod version_filter_tests {
    use super::find_version;

    #[test]
    fn finds_the_first_dotted_number() {
        assert_eq!(
            find_version("Build Information: QuestDB 9.1.0, JDK 17.0.9").as_deref(),
            Some("9.1.0")
        );
        assert_eq!(find_version("v15").as_deref(), Some("15"));
        assert_eq!(
            find_version("PostgreSQL 15.18 (Debian)").as_deref(),
            Some("15.18")
        );
        assert_eq!(find_version("no version here"), None);
    }

    /// Plans write JSON for later steps (the cosmos7 partition-detach plan's schema file);
    /// `tojson` needs minijinja's `json` feature, without which the filter is unknown at run
    /// time while `validate` accepts the plan.
    #[test]
    fn tojson_writes_json() {
        let ctx = minijinja::context! { cols => vec![vec![
        minijinja::Value::from("TS"), minijinja::Value::from("TIMESTAMP"),
        minijinja::Value::from(false), minijinja::Value::from(())]] };
        let text = super::environment()
            .render_str("{{ {'questdb': '9.1.0', 'columns': cols} | tojson }}", ctx)
            .expect("tojson renders");
        let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            json,
            serde_json::json!({"questdb": "9.1.0", "columns": [["TS", "TIMESTAMP", false, null]]})
        );
    }
}

/// JSON (params, outputs) as a template value.
pub fn json_to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::from(items.iter().map(json_to_value).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

pub fn value_to_node(value: &Value, span: Span) -> Node {
    if let Some(p) = value.downcast_object_ref::<Placeholder>() {
        return Node::new(span, NodeValue::Str(p.to_string()));
    }
    match serde_json::to_value(value) {
        Ok(json) => Node::from_json(&json, span),
        Err(_) => Node::new(span, NodeValue::Str(value.to_string())),
    }
}

/// Stands for a value only known at run time (a step output) in previews: renders as
/// `⟨steps.x.outputs.y⟩`, and any attribute of it is another placeholder.
#[derive(Debug)]
pub struct Placeholder(pub String);

pub const PLACEHOLDER_OPEN: char = '⟨';

impl std::fmt::Display for Placeholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "⟨{}⟩", self.0)
    }
}

impl Object for Placeholder {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from_object(Placeholder(format!("{}.{key}", self.0))))
    }
    fn call_method(
        self: &Arc<Self>,
        _state: &mut minijinja::State,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, minijinja::Error> {
        Ok(Value::from_object(Placeholder(format!(
            "{}.{method}(…)",
            self.0
        ))))
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.as_ref(), f)
    }
}

#[cfg(test)]
mod key_tests {
    use super::render_node;
    use crate::source::{FileId, Node};

    #[test]
    fn templated_mapping_keys_are_rendered_and_walked() {
        let node = Node::parse(
            FileId::default(),
            "min_size: {\"{{ params.dump }}\": \"{{ params.n }}\", plain: 1}\n",
        )
        .expect("yaml");
        let mut seen = Vec::new();
        node.walk_strings(&mut |_, s| seen.push(s.to_string()));
        assert_eq!(seen, ["{{ params.dump }}", "{{ params.n }}"]);
        let ctx =
            minijinja::context! { params => minijinja::context! { dump => "/b/d.gz", n => 1024 } };
        let out = render_node(&node, &ctx, None).expect("render");
        assert_eq!(
            out.to_json(),
            serde_json::json!({"min_size": {"/b/d.gz": 1024, "plain": 1}})
        );
    }
}
