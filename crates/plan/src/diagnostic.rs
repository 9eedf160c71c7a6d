//! Diagnostics: every problem validation finds is a value with a stable code, a severity,
//! labelled spans and help, rendered by miette for people and as JSON for tools.

use crate::source::de::{quote_list, DeError, DeErrorKind};
use crate::source::{FileId, SourceFile, Sources, Span, YamlError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident = $code:literal, $name:literal, $sev:ident;)*) => {
        /// Stable diagnostic codes; docs/reference/diagnostics.md lists them. Never renumber.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum Code { $($variant),* }
        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code),* } }
            pub fn name(self) -> &'static str { match self { $(Code::$variant => $name),* } }
            pub fn severity(self) -> Severity { match self { $(Code::$variant => Severity::$sev),* } }
        }
    };
}

codes! {
    Io = "E001", "io", Error;
    YamlSyntax = "E002", "yaml-syntax", Error;
    ApiVersion = "E003", "api-version", Error;
    UnknownField = "E010", "unknown-field", Error;
    MissingField = "E011", "missing-field", Error;
    WrongType = "E012", "wrong-type", Error;
    InvalidValue = "E013", "invalid-value", Error;
    UnknownStepType = "E020", "unknown-step-type", Error;
    DuplicateStepId = "E021", "duplicate-step-id", Error;
    InvalidStepId = "E022", "invalid-step-id", Error;
    UnknownNeeds = "E023", "unknown-needs", Error;
    Cycle = "E024", "dependency-cycle", Error;
    SelfNeeds = "E025", "self-dependency", Error;
    TemplateSyntax = "E030", "template-syntax", Error;
    UndefinedVariable = "E031", "undefined-variable", Error;
    UnknownParam = "E032", "unknown-param", Error;
    UnknownStepRef = "E033", "unknown-step-reference", Error;
    StepNotUpstream = "E034", "output-not-available", Error;
    UnknownOutput = "E035", "unknown-output", Error;
    TemplateRender = "E036", "template-render", Error;
    ParamType = "E040", "param-type", Error;
    ParamMissing = "E041", "missing-param", Error;
    ParamUnknown = "E042", "unknown-param-value", Error;
    SecretLiteral = "E043", "secret-literal", Error;
    ParamDefaultType = "E044", "param-default-type", Error;
    SecretEnvCollision = "E045", "secret-env-collision", Error;
    SecretUnmaskable = "E046", "secret-unmaskable", Error;
    ShortSecret = "E047", "short-secret", Error;
    SecretInParamsFile = "E048", "secret-in-params-file", Error;
    ResourceNotReleased = "E050", "resource-not-released", Error;
    ReleaseWithoutAcquire = "E051", "release-without-acquire", Error;
    ReleaseNotAfterAcquire = "E052", "release-before-acquire", Error;
    ReleaseConditional = "E053", "release-conditional", Error;
    ResumePolicyIncomplete = "E054", "resume-policy", Error;
    RefusedWhen = "E055", "refused-when", Error;
    DestructiveUnguarded = "E060", "destructive-unguarded", Error;
    BadDuration = "E070", "bad-duration", Error;
    BadGlob = "E071", "bad-glob", Error;
    BadRetry = "E072", "bad-retry", Error;
    StepArgs = "E080", "step-arguments", Error;
    FragmentLoad = "E090", "fragment", Error;
    FragmentCycle = "E091", "fragment-cycle", Error;
    ForEach = "E092", "for-each", Error;
    BuiltinName = "E094", "builtin-name", Error;
    BuiltinVersion = "E095", "builtin-version", Error;
    UnusedParam = "W100", "unused-param", Warning;
    UnreachableUndo = "W102", "undo-on-cleanup", Warning;
    UnquotedShellTemplate = "W104", "unquoted-shell-template", Warning;
    SecretInShellScript = "W105", "secret-in-shell-script", Warning;
    Yaml11Boolean = "W106", "yaml-1.1-boolean", Warning;
    BuiltinUnversioned = "W107", "builtin-unversioned", Warning;
}

/// Codes that were declared but never emitted, removed so the reference lists only what a
/// check can report: (code, name, what it was meant for). They are never reused.
pub const RETIRED: &[(&str, &str, &str)] = &[
    (
        "E093",
        "bad-name",
        "a malformed lock or resource name; no check ever emitted it",
    ),
    (
        "W101",
        "missing-description",
        "a step without `description`; no check ever emitted it",
    ),
    (
        "W103",
        "no-timeout",
        "a step without `timeout`; no check ever emitted it",
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
        });
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Help naming the closest candidate to `name`, or `fallback` when none is close.
    pub fn suggest<'a>(
        self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        fallback: impl Into<String>,
    ) -> Self {
        match did_you_mean(name, candidates) {
            Some(c) => self.help(format!("did you mean `{c}`?")),
            None => self.help(fallback),
        }
    }

    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A set of diagnostics sorted by place so output is stable.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| {
        let s = d.primary_span().unwrap_or_default();
        (s.file, s.offset, d.code.as_str())
    });
}

/// The closest candidate to a misspelt name, for "did you mean".
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: Option<IndexedSource<'a>>,
}

/// A file's text for miette, borrowed (not copied per diagnostic) and read through the
/// file's line index. miette's own sources (`str`, `NamedSource`) find a label's lines by
/// scanning the text from its start, so rendering n diagnostics of one file took n scans of
/// it (20,000 diagnostics of one file: over 80 s). Here miette's scan starts at the line
/// `context_lines_before` above the span's line (found by binary search in the file's line
/// index): it sees the lines the full scan would keep, and its positions are shifted back by
/// where it started, so the snippet is the same (a unit test compares the two on every span).
struct IndexedSource<'a> {
    /// `file:line:col` of the first label.
    name: String,
    file: &'a SourceFile,
}

impl miette::SourceCode for IndexedSource<'_> {
    fn read_span<'b>(
        &'b self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let text = self.file.text.as_bytes();
        let starts = self.file.break_starts();
        // miette looks at the byte before an empty span: the scan must start before it.
        let anchor = if span.is_empty() {
            span.offset().saturating_sub(1)
        } else {
            span.offset()
        };
        let line = starts.partition_point(|&s| s <= anchor).saturating_sub(1);
        let first = line.saturating_sub(context_lines_before);
        let base = starts.get(first).copied().unwrap_or(0).min(text.len());
        let window = &text[base..];
        let inner = miette::SourceSpan::new(span.offset().saturating_sub(base).into(), span.len());
        let contents = <[u8] as miette::SourceCode>::read_span(
            window,
            &inner,
            context_lines_before,
            context_lines_after,
        )?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            miette::SourceSpan::new(
                (contents.span().offset() + base).into(),
                contents.span().len(),
            ),
            contents.line() + first,
            contents.column(),
            contents.line_count() + first,
        )))
    }
}

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}
impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(format!(
            "{}({})",
            self.diag.code.as_str(),
            self.diag.code.name()
        )))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let primary = self.diag.primary_span()?;
        Some(Box::new(
            self.diag
                .labels
                .iter()
                .enumerate()
                .filter(move |(_, l)| l.span.file == primary.file)
                .map(|(i, l)| {
                    if i == 0 {
                        miette::LabeledSpan::new_primary_with_span(Some(l.text.clone()), l.span)
                    } else {
                        miette::LabeledSpan::new_with_span(Some(l.text.clone()), l.span)
                    }
                }),
        ))
    }
}

/// Renders one diagnostic as miette's report, with `file:line:col` of its first label.
pub fn render(diag: &Diagnostic, sources: &Sources, color: bool) -> String {
    let source = diag.primary_span().map(|span| {
        let file = sources.get(span.file);
        let (line, col) = file.line_col(span.offset);
        IndexedSource {
            name: format!("{}:{line}:{col}", file.name),
            file,
        }
    });
    let rendered = Rendered { diag, source };
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    // The source name already carries `file:line:col` of the first label (columns in
    // characters), so miette must not append its own position.
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .without_primary_span_start();
    let mut out = String::new();
    if handler.render_report(&mut out, &rendered).is_err() {
        out = format!("{}: {}", diag.code.as_str(), diag.message);
    }
    // Labels in another file than the first (a fragment) are listed after the snippet.
    for label in diag.labels.iter().skip(1) {
        if Some(label.span.file) != diag.primary_span().map(|s| s.file) {
            let file = sources.get(label.span.file);
            let (line, col) = file.line_col(label.span.offset);
            out.push_str(&format!(
                "  also at {}:{line}:{col}: {}\n",
                file.name, label.text
            ));
        }
    }
    out
}

/// The JSON form of a diagnostic (`--format json`), with 1-based line and column.
pub fn to_json(diag: &Diagnostic, sources: &Sources) -> serde_json::Value {
    let place = |span: Span| {
        let file = sources.get(span.file);
        let (line, column) = file.line_col(span.offset);
        let (end_line, end_column) = file.line_col(span.end());
        serde_json::json!({
            "file": file.name, "line": line, "column": column,
            "end_line": end_line, "end_column": end_column,
        })
    };
    let mut value = serde_json::json!({
        "code": diag.code.as_str(),
        "name": diag.code.name(),
        "severity": diag.severity,
        "message": diag.message,
        "help": diag.help,
        "labels": diag.labels.iter().map(|l| {
            let mut p = place(l.span);
            p["text"] = l.text.clone().into();
            p
        }).collect::<Vec<_>>(),
    });
    if let Some(span) = diag.primary_span() {
        let p = place(span);
        value["file"] = p["file"].clone();
        value["line"] = p["line"].clone();
        value["column"] = p["column"].clone();
    }
    value
}

/// YAML syntax errors become diagnostics here, so that `source` (which finds them) does not
/// depend on `diagnostic` (which points into sources): the dependency goes one way.
impl YamlError {
    /// The diagnostic for this error in `file`.
    pub fn to_diagnostic(&self, file: FileId, what: &str) -> Diagnostic {
        let mut d = Diagnostic::new(
            Code::YamlSyntax,
            format!("invalid YAML{what}: {}", self.message),
        )
        .label(
            Span::new(file, self.offset.unwrap_or(0), self.len),
            self.label,
        );
        if let Some((offset, len, text)) = &self.related {
            d = d.label(Span::new(file, *offset, *len), text.clone());
        }
        d
    }
}

/// Turns a deserialization error into a diagnostic about `what` (`step`, `exec arguments`).
pub fn de_diagnostic(e: &DeError, what: &str, fallback: Span) -> Diagnostic {
    let span = e.span.unwrap_or(fallback);
    let path = e.path_text();
    // `retry` of step `upload`, or the whole step when the error is at its top.
    let place = if path.is_empty() {
        what.to_string()
    } else {
        format!("`{path}` in {what}")
    };
    match &e.kind {
        DeErrorKind::UnknownField { field, expected } => {
            let d = Diagnostic::new(
                Code::UnknownField,
                format!("unknown field `{field}` in {place}"),
            )
            .label(span, "unknown field");
            match did_you_mean(field, expected.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("expected one of {}", quote_list(expected))),
            }
        }
        DeErrorKind::UnknownVariant { variant, expected } => {
            let d = Diagnostic::new(
                Code::InvalidValue,
                format!("unknown value `{variant}` for {place}"),
            )
            .label(span, "not one of the accepted values");
            match did_you_mean(variant, expected.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("expected one of {}", quote_list(expected))),
            }
        }
        DeErrorKind::MissingField(field) => Diagnostic::new(
            Code::MissingField,
            format!("missing field `{field}` in {place}"),
        )
        .label(span, format!("this mapping has no `{field}`"))
        .help(format!("add `{field}:` to it")),
        DeErrorKind::InvalidType { expected, found } => {
            let target = if path.is_empty() {
                format!("in {what}")
            } else {
                format!("for {place}")
            };
            Diagnostic::new(
                Code::WrongType,
                format!("wrong type {target}: expected {expected}, found {found}"),
            )
            .label(span, format!("expected {expected}"))
            .help(type_help(expected, found))
        }
        DeErrorKind::Custom(msg) => Diagnostic::new(
            Code::InvalidValue,
            format!("invalid value for {place}: {msg}"),
        )
        .label(span, "invalid value")
        .help("see `opsplan schema` for the accepted values"),
    }
}

/// How to write a value of the expected type, for "wrong type" help.
fn type_help(expected: &str, found: &str) -> String {
    if found.contains("{{") || found.contains("{%") {
        "templates are rendered only in `with:`, `when:`, `for_each:`, `locks:` and durations; write a literal value here".into()
    } else if expected.contains("list") || expected.contains("sequence") {
        if found.starts_with("string") {
            "write a list, e.g. `[tar, -czf, out.tgz, data]`, or one `- item` per line; a string is not split into words".into()
        } else {
            "write a list, e.g. `[a, b]`, or one `- item` per line".into()
        }
    } else if expected.contains("string") {
        if found.contains("list") {
            "write a single string; for several lines use a block scalar (`key: |` then indented lines)".into()
        } else {
            "write a single string; quote it if it contains `: ` or starts with `[`, `{` or `*`"
                .into()
        }
    } else if expected.contains("mapping")
        || expected.contains("map")
        || expected.contains("struct")
    {
        "write a mapping of `key: value` lines, indented under this key".into()
    } else if expected.contains("bool") {
        "write true or false".into()
    } else if expected.contains("integer") || expected.contains("number") {
        "write a number without quotes".into()
    } else {
        format!("write {expected}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::{SourceCode, SpanContents};
    use std::path::Path;

    /// What a snippet shows: the name, the bytes and every position miette reads.
    fn contents(
        c: &dyn SpanContents<'_>,
    ) -> (Option<String>, Vec<u8>, usize, usize, usize, usize, usize) {
        (
            c.name().map(str::to_string),
            c.data().to_vec(),
            c.span().offset(),
            c.span().len(),
            c.line(),
            c.column(),
            c.line_count(),
        )
    }

    /// The indexed source reads every span, with every context, exactly as miette's
    /// `NamedSource` over the whole text does: line ends `\n`, `\r\n` and a lone `\r`, empty
    /// lines, spans of zero length, spans that cross lines, the first and the last line.
    #[test]
    fn indexed_source_reads_spans_as_miettes_own_source() {
        let texts = [
            "a: 1\nbb: [x, y]\n\nccc: {k: v}\nlast",
            "a: 1\r\nb: 2\r\n\r\nc: 3\r\n",
            "a\rb\r\r\nc\n\rd",
            "\n\nx",
            "one line, no end",
        ];
        for text in texts {
            let file = SourceFile::new(Path::new("t.yaml"), text.to_string());
            let indexed = IndexedSource {
                name: "t.yaml:1:1".to_string(),
                file: &file,
            };
            let named = miette::NamedSource::new("t.yaml:1:1", text.to_string());
            let n = text.len();
            // Spans inside the text, as labels are (miette's own source panics past the end).
            for offset in 0..=n {
                for len in [0, 1, 2, 5, n].into_iter().filter(|l| offset + l <= n) {
                    for before in 0..3 {
                        for after in 0..3 {
                            let span = miette::SourceSpan::new(offset.into(), len);
                            let ours = indexed.read_span(&span, before, after);
                            let theirs = named.read_span(&span, before, after);
                            match (ours, theirs) {
                                (Ok(a), Ok(b)) => assert_eq!(
                                    contents(a.as_ref()),
                                    contents(b.as_ref()),
                                    "{text:?} at {offset}+{len}, context {before}/{after}"
                                ),
                                (a, b) => assert_eq!(
                                    a.is_ok(),
                                    b.is_ok(),
                                    "{text:?} at {offset}+{len}, context {before}/{after}"
                                ),
                            }
                        }
                    }
                }
            }
        }
    }
}
