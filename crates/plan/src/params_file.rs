//! Params files checked against their plan before the night they are needed
//! (`opsplan validate PLAN --params FILE|DIR…`): every problem is positioned in the params
//! file, with the plan's declaration as a second place.
//!
//! Found: keys that are no param (E042, with did-you-mean), values of the wrong type
//! (E040), values outside `choices` (E040), required values missing (E041: a required param
//! or secret with no default and no `env:`, `file:` or `command:` to take it from at run
//! time), and secrets written in clear in the file (E048; the value is masked in what is
//! shown, including the quoted source line).

use crate::diagnostic::{self, Code, Diagnostic};
use crate::params;
use crate::plan::{LoadedPlan, ParamDecl, ParamType};
use crate::source::{FileId, Node, NodeValue, SourceFile, Sources, Span};
use std::path::{Path, PathBuf};

/// Params files under the given paths: a file as given, a folder's `*.yaml`, `*.yml` and
/// `*.json` files (one per environment, not recursive), sorted.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|e| {
                Diagnostic::new(Code::Io, format!("cannot read folder {}: {e}", p.display()))
            })?;
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.is_file()
                        && matches!(
                            f.extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            if found.is_empty() {
                return Err(Diagnostic::new(
                    Code::Io,
                    format!(
                        "{}: no params files (*.yaml, *.yml, *.json) here",
                        p.display()
                    ),
                ));
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Diagnostic::new(
                Code::Io,
                format!("{}: no such params file or folder", p.display()),
            ));
        }
    }
    Ok(out)
}

/// Checks one params file against the plan's params. The file is added to `sources` (with
/// secret values masked) so the diagnostics render with the plan's.
pub fn check(plan: &LoadedPlan, path: &Path, sources: &mut Sources) -> Vec<Diagnostic> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Diagnostic::new(
                Code::Io,
                format!("cannot read params file {}: {e}", path.display()),
            )]
        }
    };
    let decls = &plan.doc.params;
    // The id the file gets, so its nodes carry it before its (masked) text is added.
    let id = FileId(sources.files().count() as u32);
    let plain = SourceFile::new(path, text);
    let root = match Node::parse(id, &plain.text) {
        Ok(root) => root,
        Err(e) => {
            sources.add(plain);
            let help = e.help.unwrap_or("fix the YAML syntax of the params file");
            return vec![e.to_diagnostic(id, " in params file").help(help)];
        }
    };
    let entries: &[(Node, Node)] = match &root.value {
        NodeValue::Map(entries) => entries,
        NodeValue::Null => &[],
        _ => {
            sources.add(plain);
            return vec![Diagnostic::new(
                Code::WrongType,
                format!(
                    "a params file must be a mapping of param names to values, found {}",
                    root.kind_name()
                ),
            )
            .label(root.span, "not a mapping")];
        }
    };
    let secret_spans: Vec<Span> = entries
        .iter()
        .filter(|(k, _)| {
            decls
                .get(&k.scalar_text())
                .is_some_and(|d| d.ty.value == ParamType::Secret)
        })
        .map(|(_, v)| v.span)
        .collect();
    let added = sources.add(SourceFile::new(path, mask(&plain.text, &secret_spans)));
    debug_assert_eq!(added, id);

    let file_name = path.display().to_string();
    let mut diags = Vec::new();
    for (key, value) in entries {
        let name = key.scalar_text();
        let Some(decl) = decls.get(&name) else {
            diags.push(
                Diagnostic::new(
                    Code::ParamUnknown,
                    format!(
                        "{file_name} gives a value for `{name}`, which is not a param of the plan"
                    ),
                )
                .label(key.span, "unknown param")
                .suggest(
                    &name,
                    decls.keys().map(String::as_str),
                    format!(
                        "the plan's params: {}",
                        decls.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
            );
            continue;
        };
        if decl.ty.value == ParamType::Secret {
            diags.push(secret_in_clear(&name, decl, key, value));
            continue;
        }
        match params::from_node(decl.ty.value, value, &name) {
            Err(d) => diags.push(d.label(decl.ty.span, "declared here")),
            Ok(v) => {
                if let Some(choices) = &decl.choices {
                    let allowed: Vec<serde_json::Value> =
                        choices.iter().map(Node::to_json).collect();
                    if !allowed.contains(&v) {
                        diags.push(
                            Diagnostic::new(
                                Code::ParamType,
                                format!("param `{name}` is {v}, not one of the choices"),
                            )
                            .label(value.span, "not one of the choices")
                            .label(decl.ty.span, "declared here")
                            .help(format!(
                                "choose one of {}",
                                allowed
                                    .iter()
                                    .map(serde_json::Value::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        );
                    }
                }
            }
        }
    }
    let start = entries.first().map_or(Span::new(id, 0, 0), |(k, _)| {
        Span::new(id, k.span.offset, 0)
    });
    for (name, decl) in decls {
        if entries.iter().any(|(k, _)| k.scalar_text() == *name) || has_source(decl) {
            continue;
        }
        diags.push(
            Diagnostic::new(
                Code::ParamMissing,
                format!("{file_name} gives no value for required param `{name}`"),
            )
            .label(start, format!("no `{name}:` in this file"))
            .label(decl.ty.span, "declared here")
            .help(if decl.ty.value == ParamType::Secret {
                format!("a secret does not belong in the file: declare where `{name}` comes from on the param (`env:`, `file:` or `command:`)")
            } else {
                format!("add `{name}: …` to the file, or declare `env:` on the param to take it from the environment at run time")
            }),
        );
    }
    diagnostic::sort(&mut diags);
    diags
}

/// Whether the param needs no value from the file: it is optional, has a default, or is
/// read at run time from the environment, a file or a command.
fn has_source(decl: &ParamDecl) -> bool {
    let secret = decl.ty.value == ParamType::Secret;
    (!decl.required && !secret)
        || decl.default.is_some()
        || decl.env.is_some()
        || (secret && (decl.file.is_some() || decl.command.is_some()))
}

fn secret_in_clear(name: &str, decl: &ParamDecl, key: &Node, value: &Node) -> Diagnostic {
    let from = if let Some(env) = &decl.env {
        format!(
            "the plan reads it from the environment variable {}",
            env.value
        )
    } else if let Some(file) = &decl.file {
        format!("the plan reads it from the file {}", file.value)
    } else if decl.command.is_some() {
        "the plan reads it from its `command:`".to_string()
    } else {
        "declare where it comes from on the param (`env:`, `file:` or `command:`)".to_string()
    };
    Diagnostic::new(
        Code::SecretInParamsFile,
        format!("secret `{name}` is written in clear in the params file"),
    )
    .label(
        Span::new(
            key.span.file,
            key.span.offset,
            value.span.end() - key.span.offset,
        ),
        "a secret value (masked here)",
    )
    .label(decl.ty.span, "declared here")
    .help(format!(
        "remove it from the file (and rotate it: it is in the repository's history); {from}"
    ))
}

/// The text with every character of the given spans but whitespace replaced by `*` (as
/// many bytes as it had, so every offset stays valid).
fn mask(text: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if !c.is_whitespace() && spans.iter().any(|s| i >= s.offset && i < s.end()) {
            out.extend(std::iter::repeat_n('*', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}
