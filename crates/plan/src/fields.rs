//! Typed checks of step argument fields (durations, globs), shared by `validate` and the
//! step types; they sit below both so neither depends on the other.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::de::is_template;
use crate::source::{Node, NodeValue, Span};

/// Checks a duration-valued field of a step's `with:` (used by step types).
pub fn check_duration_field(with: &Node, field: &str) -> Option<Diagnostic> {
    let node = with.get(field)?;
    let text = node.as_str()?;
    if is_template(text) || parse_duration(text).is_ok() {
        return None;
    }
    Some(bad_duration(node.span, text, field))
}

/// The longest duration a plan may give (timeouts, backoffs, intervals): 366 days. Longer
/// ones are mistakes, and near `u64::MAX` seconds they overflow clocks and deadlines.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

/// Parses a plan's duration text, refusing one longer than [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err(format!(
            "`{}` is longer than 366 days, the longest duration a plan may give",
            text.trim()
        ));
    }
    Ok(d)
}

pub(crate) fn bad_duration(span: Span, text: &str, what: &str) -> Diagnostic {
    if let Ok(d) = humantime::parse_duration(text.trim()) {
        if d > MAX_DURATION {
            return Diagnostic::new(
                Code::BadDuration,
                format!("duration `{}` in `{what}` is out of range", text.trim()),
            )
            .label(span, "longer than 366 days")
            .help("durations are at most 366 days; write e.g. `12h` or `7d`");
        }
    }
    if humantime::parse_duration(text.trim())
        .err()
        .is_some_and(|e| matches!(e, humantime::DurationError::NumberOverflow))
    {
        return Diagnostic::new(
            Code::BadDuration,
            format!("duration `{}` in `{what}` is out of range", text.trim()),
        )
        .label(span, "too large a number")
        .help("durations are at most 366 days; write e.g. `12h` or `7d`");
    }
    let d = Diagnostic::new(
        Code::BadDuration,
        format!("bad duration `{text}` in `{what}`"),
    )
    .label(span, "not a duration");
    if text.trim().parse::<f64>().is_ok() {
        d.help(format!(
            "a duration needs a unit, e.g. `{0}ms`, `{0}s` or `{0}m`",
            text.trim()
        ))
    } else {
        d.help("write a duration such as 500ms, 30s, 5m, 2h or 1h 30m")
    }
}

/// Checks a glob-valued field (a string or a list of strings) of a step's `with:`.
pub fn check_glob_field(with: &Node, field: &str) -> Vec<Diagnostic> {
    let Some(node) = with.get(field) else {
        return Vec::new();
    };
    let items: Vec<&Node> = match &node.value {
        NodeValue::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    items
        .into_iter()
        .filter_map(|n| {
            let text = n.as_str()?;
            if is_template(text) {
                return None;
            }
            let e = globset::Glob::new(text).err()?;
            Some(
                Diagnostic::new(
                    Code::BadGlob,
                    format!("bad glob `{text}` in `{field}`: {}", e.kind()),
                )
                .label(n.span, "invalid pattern")
                .help("globs use *, **, ?, [abc] and {a,b}; close every bracket and brace"),
            )
        })
        .collect()
}
