//! Param values: from `--set`, `--params FILE`, the environment, a secret file or command,
//! or the default (in that order), converted to the declared type.

use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{ParamDecl, ParamType};
use crate::source::{Node, NodeValue, SourceFile, Sources};
use crate::template::MASK;
use indexmap::IndexMap;
use serde_json::Value;
use std::path::Path;

/// Where values come from besides the plan.
#[derive(Debug, Default, Clone)]
pub struct ParamInputs {
    /// `--set name=value`, later ones win.
    pub set: Vec<(String, String)>,
    /// `--params FILE` (YAML or JSON mapping).
    pub file: Option<std::path::PathBuf>,
    /// Read secret files and run secret commands (a run); a preview leaves them unread.
    pub read_secrets: bool,
}

/// What a declared param without any value becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingValues {
    /// An error (`E041 missing-param`): a run needs every value.
    #[default]
    Refuse,
    /// A placeholder `⟨params.NAME⟩` with the source [`NOT_GIVEN`]: preview and graph need
    /// no values (a change ticket or a CI job has no production secrets).
    Placeholder,
}

/// The `source` of a param that got a placeholder instead of a value.
pub const NOT_GIVEN: &str = "not given";

/// How a param without a value is shown: `⟨params.backup_dir⟩`.
pub fn placeholder_text(name: &str) -> String {
    format!("{}params.{name}⟩", crate::template::PLACEHOLDER_OPEN)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamValue {
    pub value: Value,
    pub secret: bool,
    /// `default`, `env:NAME`, `--set`, `--params`, `file`, `command`.
    pub source: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResolvedParams(pub IndexMap<String, ParamValue>);

impl ResolvedParams {
    /// Values for templates; secrets masked unless `real` (a placeholder stays as it is).
    pub fn to_json(&self, real: bool) -> serde_json::Map<String, Value> {
        self.0
            .iter()
            .map(|(k, p)| {
                let v = if p.secret && !real && p.source != NOT_GIVEN {
                    Value::String(MASK.into())
                } else {
                    p.value.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
    /// The params without a value (placeholders), in declaration order.
    pub fn not_given(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, p)| p.source == NOT_GIVEN)
            .map(|(k, _)| k.clone())
            .collect()
    }
    pub fn secret_values(&self) -> impl Iterator<Item = String> + '_ {
        self.0
            .values()
            .filter(|p| p.secret && p.source != NOT_GIVEN)
            .filter_map(|p| p.value.as_str().map(str::to_string))
    }
}

pub use crate::template::MIN_SECRET_CHARS;

fn too_short(text: &str) -> bool {
    text.chars().count() < MIN_SECRET_CHARS
}

/// Reads a `--params` file into name → node.
pub fn read_params_file(
    path: &Path,
    sources: &mut Sources,
) -> Result<Vec<(Node, Node)>, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            Code::Io,
            format!("cannot read params file {}: {e}", path.display()),
        )
    })?;
    let file = sources.add(SourceFile::new(path, text));
    let text = sources.get(file).text.clone();
    let root = Node::parse(file, &text).map_err(|e| {
        let help = e.help.unwrap_or("fix the YAML syntax of the params file");
        e.to_diagnostic(file, " in params file").help(help)
    })?;
    match root.value {
        NodeValue::Map(entries) => Ok(entries),
        NodeValue::Null => Ok(Vec::new()),
        _ => Err(Diagnostic::new(
            Code::WrongType,
            "a params file must be a mapping of param names to values",
        )
        .label(root.span, "not a mapping")),
    }
}

/// Resolves every declared param. `given` are values already in nodes (params file, or a
/// fragment's `with:` rendered); `set` are `--set` strings.
pub fn resolve(
    decls: &IndexMap<String, ParamDecl>,
    given: &[(Node, Node)],
    set: &[(String, String)],
    read_secrets: bool,
    what: &str,
) -> Result<ResolvedParams, Vec<Diagnostic>> {
    resolve_with(decls, given, set, read_secrets, what, MissingValues::Refuse)
}

/// [`resolve`], with `missing` saying what a param without a value becomes. With
/// [`MissingValues::Placeholder`] a given value that holds a placeholder (a fragment's
/// `with:` rendered from a parent param without a value) is kept as it is, whatever the
/// declared type: it stands for a value only a run has.
pub fn resolve_with(
    decls: &IndexMap<String, ParamDecl>,
    given: &[(Node, Node)],
    set: &[(String, String)],
    read_secrets: bool,
    what: &str,
    missing: MissingValues,
) -> Result<ResolvedParams, Vec<Diagnostic>> {
    let placeholders = missing == MissingValues::Placeholder;
    let mut diags = Vec::new();
    let mut out = IndexMap::new();
    for (key, _) in given {
        let name = key.scalar_text();
        if !decls.contains_key(&name) {
            let d = Diagnostic::new(
                Code::ParamUnknown,
                format!("{what} gives a value for `{name}`, which is not a param"),
            )
            .label(key.span, "unknown param");
            diags.push(
                match crate::diagnostic::did_you_mean(&name, decls.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "declared params: {}",
                        decls.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                },
            );
        }
    }
    for (name, _) in set {
        if !decls.contains_key(name) {
            let d = Diagnostic::new(
                Code::ParamUnknown,
                format!("--set {name}=…: the plan has no param `{name}`"),
            );
            diags.push(
                match crate::diagnostic::did_you_mean(name, decls.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "declared params: {}",
                        decls.keys().cloned().collect::<Vec<_>>().join(", ")
                    )),
                },
            );
        }
    }
    for (name, decl) in decls {
        let ty = decl.ty.value;
        let secret = ty == ParamType::Secret;
        let here = decl.ty.span;
        let from_set = set.iter().rev().find(|(k, _)| k == name);
        let from_given = given.iter().find(|(k, _)| k.scalar_text() == *name);
        let from_env = decl
            .env
            .as_ref()
            .and_then(|e| std::env::var(&e.value).ok().map(|v| (e, v)));
        let result: Option<Result<(Value, String), Diagnostic>> = if let Some((_, v)) = from_set {
            Some(from_string(ty, v, name).map(|v| (v, "--set".into())))
        } else if let Some((_, node)) = from_given {
            match node.as_str() {
                Some(s) if placeholders && s.contains(crate::template::PLACEHOLDER_OPEN) => {
                    Some(Ok((Value::String(s.to_string()), what.to_string())))
                }
                _ => Some(from_node(ty, node, name).map(|v| (v, what.to_string()))),
            }
        } else if let Some((env, v)) = from_env {
            Some(from_string(ty, &v, name).map(|v| (v, format!("env:{}", env.value))))
        } else if let (true, Some(file)) = (secret, &decl.file) {
            Some(if read_secrets {
                std::fs::read_to_string(&file.value)
                    .map(|s| {
                        (
                            Value::String(s.trim_end_matches(['\n', '\r']).to_string()),
                            "file".into(),
                        )
                    })
                    .map_err(|e| {
                        Diagnostic::new(
                            Code::ParamMissing,
                            format!("cannot read secret `{name}` from {}: {e}", file.value),
                        )
                        .label(file.span, "secret file")
                    })
            } else {
                Ok((Value::String(MASK.into()), "file".into()))
            })
        } else if let (true, Some(cmd)) = (secret, &decl.command) {
            Some(if read_secrets {
                secret_from_command(cmd)
                    .map(|v| (Value::String(v), "command".into()))
                    .map_err(|e| {
                        Diagnostic::new(
                            Code::ParamMissing,
                            format!("the command for secret `{name}` failed: {e}"),
                        )
                        .label(here, "declared here")
                    })
            } else {
                Ok((Value::String(MASK.into()), "command".into()))
            })
        } else {
            decl.default
                .as_ref()
                .map(|d| from_node(ty, d, name).map(|v| (v, "default".into())))
        };
        match result {
            Some(Ok((value, source)))
                if placeholders
                    && value
                        .as_str()
                        .is_some_and(|s| s.contains(crate::template::PLACEHOLDER_OPEN)) =>
            {
                out.insert(
                    name.clone(),
                    ParamValue {
                        value,
                        secret,
                        source,
                    },
                );
            }
            Some(Ok((value, source))) => {
                if let Some(text) = value.as_str().filter(|t| secret && too_short(t)) {
                    diags.push(
                        Diagnostic::new(
                            Code::ShortSecret,
                            format!(
                                "secret `{name}` ({source}) is {} character(s) long; a secret needs at least {MIN_SECRET_CHARS}",
                                text.chars().count()
                            ),
                        )
                        .label(here, "declared here")
                        .help(
                            "a value this short cannot be masked: hiding it everywhere in the output would hide unrelated text and show where it appears; use a longer secret (16 or more random characters)",
                        ),
                    );
                    continue;
                }
                if let Some(choices) = &decl.choices {
                    let allowed: Vec<Value> = choices.iter().map(Node::to_json).collect();
                    if !allowed.contains(&value) {
                        diags.push(
                            Diagnostic::new(
                                Code::ParamType,
                                format!("param `{name}` is {value}, not one of the choices"),
                            )
                            .label(here, "declared here")
                            .help(format!(
                                "choose one of {}",
                                allowed
                                    .iter()
                                    .map(Value::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )),
                        );
                        continue;
                    }
                }
                out.insert(
                    name.clone(),
                    ParamValue {
                        value,
                        secret,
                        source,
                    },
                );
            }
            Some(Err(mut d)) => {
                if d.labels.is_empty() {
                    d = d.label(here, "declared here");
                }
                diags.push(d);
            }
            None if placeholders && (decl.required || secret) => {
                out.insert(
                    name.clone(),
                    ParamValue {
                        value: Value::String(placeholder_text(name)),
                        secret,
                        source: NOT_GIVEN.into(),
                    },
                );
            }
            None if decl.required || secret => {
                let mut how = vec![format!("--set {name}=…"), "--params FILE".to_string()];
                if let Some(env) = &decl.env {
                    how.push(format!("the environment variable {}", env.value));
                }
                diags.push(
                    Diagnostic::new(
                        Code::ParamMissing,
                        format!("missing value for required param `{name}`"),
                    )
                    .label(here, "declared here")
                    .help(format!("give it with {}", how.join(", or "))),
                );
            }
            None => {
                out.insert(
                    name.clone(),
                    ParamValue {
                        value: Value::Null,
                        secret,
                        source: "unset".into(),
                    },
                );
            }
        }
    }
    if diags.is_empty() {
        Ok(ResolvedParams(out))
    } else {
        Err(diags)
    }
}

fn secret_from_command(argv: &[String]) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{program}` exited with {}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim_end_matches(['\n', '\r'])
        .to_string())
}

fn type_error(ty: ParamType, name: &str, shown: &str) -> Diagnostic {
    Diagnostic::new(
        Code::ParamType,
        format!("param `{name}` must be {}, got {shown}", describe(ty)),
    )
    .help(match ty {
        ParamType::Int => "write a whole number, e.g. 3",
        ParamType::Bool => "write true or false",
        ParamType::Duration => "write a duration such as 30s, 5m, 2h or 1h 30m",
        ParamType::Url => "write an absolute URL, e.g. http://localhost:9000",
        ParamType::List => "write a list, e.g. [mimir, loki] or mimir,loki",
        _ => "write a string",
    })
}

fn describe(ty: ParamType) -> &'static str {
    match ty {
        ParamType::Int => "an integer",
        ParamType::Bool => "a boolean",
        ParamType::Duration => "a duration",
        ParamType::Url => "a URL",
        ParamType::List => "a list",
        ParamType::Path => "a path",
        ParamType::Secret => "a secret string",
        ParamType::String => "a string",
    }
}

/// Converts a string from the command line or environment.
pub fn from_string(ty: ParamType, s: &str, name: &str) -> Result<Value, Diagnostic> {
    let shown = if ty == ParamType::Secret {
        MASK.to_string()
    } else {
        format!("\"{s}\"")
    };
    match ty {
        ParamType::Int => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| type_error(ty, name, &shown)),
        ParamType::Bool => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "no" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(type_error(ty, name, &shown)),
        },
        ParamType::List => {
            let t = s.trim();
            if t.starts_with('[') {
                let node =
                    Node::parse(Default::default(), t).map_err(|_| type_error(ty, name, &shown))?;
                from_node(ty, &node, name)
            } else if t.is_empty() {
                Ok(Value::Array(vec![]))
            } else {
                Ok(Value::Array(
                    t.split(',')
                        .map(|p| Value::String(p.trim().to_string()))
                        .collect(),
                ))
            }
        }
        _ => check_scalar(ty, s, name, &shown),
    }
}

fn check_scalar(ty: ParamType, s: &str, name: &str, shown: &str) -> Result<Value, Diagnostic> {
    match ty {
        ParamType::Url if url::Url::parse(s).is_err() => Err(type_error(ty, name, shown)),
        ParamType::Duration if humantime::parse_duration(s).is_err() => {
            Err(type_error(ty, name, shown))
        }
        _ => Ok(Value::String(s.to_string())),
    }
}

/// Converts a YAML value (default, params file, fragment argument).
pub fn from_node(ty: ParamType, node: &Node, name: &str) -> Result<Value, Diagnostic> {
    let shown = if ty == ParamType::Secret {
        MASK.to_string()
    } else {
        node.kind_name().to_string()
    };
    let err = |d: Diagnostic| d.label(node.span, format!("expected {}", describe(ty)));
    match (ty, &node.value) {
        (ParamType::Int, NodeValue::Int(i)) => Ok(Value::from(*i)),
        (ParamType::Bool, NodeValue::Bool(b)) => Ok(Value::Bool(*b)),
        (ParamType::List, NodeValue::Seq(items)) => items
            .iter()
            .map(|i| match &i.value {
                NodeValue::Str(_)
                | NodeValue::Int(_)
                | NodeValue::Bool(_)
                | NodeValue::Float(_) => Ok(Value::String(i.scalar_text())),
                _ => Err(err(type_error(ty, name, "a list with a nested value"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (
            ParamType::String
            | ParamType::Path
            | ParamType::Url
            | ParamType::Duration
            | ParamType::Secret,
            NodeValue::Str(s),
        ) => check_scalar(ty, s, name, &format!("\"{s}\"")).map_err(err),
        (
            ParamType::String | ParamType::Path,
            NodeValue::Int(_) | NodeValue::Float(_) | NodeValue::Bool(_),
        ) => Ok(Value::String(node.scalar_text())),
        // A rendered template gives strings; convert them like command-line values.
        (_, NodeValue::Str(s)) => from_string(ty, s, name).map_err(err),
        _ => Err(err(type_error(ty, name, &shown))),
    }
}
