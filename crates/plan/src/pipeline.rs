//! The whole pipeline in two calls: [`check_file`] (load and validate) and [`load_compiled`]
//! (check, read params, compile). Nothing here prints: failures carry their diagnostics and
//! the sources they point into, and each caller (CLI, drill, language server) shows them.

use crate::compile::{self, CompiledPlan};
use crate::diagnostic::{self, Code, Diagnostic};
use crate::params::{self, MissingValues, ParamInputs};
use crate::plan::{self, Kind, LoadedPlan};
use crate::source::{Node, Sources};
use crate::step::Registry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A plan file after [`check_file`].
pub struct Checked {
    /// The plan, when it could be read (it may still have errors among `diagnostics`).
    pub plan: Option<LoadedPlan>,
    /// Every problem found, sorted by place.
    pub diagnostics: Vec<Diagnostic>,
    /// The file is a fragment: it is checked where a plan uses it.
    pub fragment: bool,
}

/// Loads and statically checks one plan; fragments alone are reported as such.
pub fn check_file(path: &Path, sources: &mut Sources, registry: &Arc<Registry>) -> Checked {
    let (loaded, mut diags) = plan::load_plan(path, sources, registry);
    let fragment = loaded
        .as_ref()
        .is_some_and(|l| l.doc.kind.value == Kind::Fragment);
    if fragment {
        // A fragment is checked where a plan uses it.
        diags.retain(|d| d.code != Code::InvalidValue || !d.message.contains("fragment"));
        return Checked {
            plan: None,
            diagnostics: diags,
            fragment: true,
        };
    }
    if let Some(l) = &loaded {
        // One pass: the checks run on whatever could be read. When a part had to be left
        // out (or a fragment could not be read), only the checks of single fields and
        // steps run; those that relate parts would report what is missing.
        let complete = !l.incomplete
            && diags
                .iter()
                .filter(|d| d.is_error())
                .all(|d| d.code == Code::UnknownField);
        diags.extend(
            crate::validate::check(l, sources)
                .into_iter()
                .filter(|d| complete || local_check(d.code)),
        );
    }
    diagnostic::sort(&mut diags);
    Checked {
        plan: loaded,
        diagnostics: diags,
        fragment: false,
    }
}

/// Codes of checks that look at one field or one step, and stay right when other parts of
/// the plan could not be read.
fn local_check(code: Code) -> bool {
    matches!(
        code,
        Code::UnknownStepType
            | Code::DuplicateStepId
            | Code::InvalidStepId
            | Code::Cycle
            | Code::SelfNeeds
            | Code::TemplateSyntax
            | Code::SecretLiteral
            | Code::ParamDefaultType
            | Code::SecretUnmaskable
            | Code::ShortSecret
            | Code::BadDuration
            | Code::BadGlob
            | Code::BadRetry
            | Code::StepArgs
            | Code::UnreachableUndo
            | Code::UnquotedShellTemplate
            | Code::SecretInShellScript
    )
}

/// Why [`load_compiled`] gave no plan.
#[derive(Debug)]
pub enum LoadError {
    /// The plan (or its params) has errors; `diagnostics` says which, in `sources`.
    Invalid {
        diagnostics: Vec<Diagnostic>,
        sources: Arc<Sources>,
    },
    /// The file is a fragment, which cannot run alone.
    Fragment { path: PathBuf },
}

/// Warnings found on the way to a compiled plan, to be shown beside it.
pub struct Compiled {
    pub plan: CompiledPlan,
    pub warnings: Vec<Diagnostic>,
    pub sources: Arc<Sources>,
}

/// Check, read the params (`inputs`, plus values already in nodes: a resumed run's journal)
/// and compile.
pub fn load_compiled(
    path: &Path,
    inputs: &ParamInputs,
    extra: Vec<(Node, Node)>,
    registry: &Arc<Registry>,
) -> Result<Compiled, LoadError> {
    load_compiled_with(path, inputs, extra, registry, MissingValues::Refuse)
}

/// [`load_compiled`] for preview and graph: a param without a value (secrets included)
/// becomes a placeholder `⟨params.NAME⟩` instead of an error, and the plan says which
/// ([`CompiledPlan::not_given`]). Such a plan is [`CompiledPlan::preview_only`].
pub fn load_for_preview(
    path: &Path,
    inputs: &ParamInputs,
    registry: &Arc<Registry>,
) -> Result<Compiled, LoadError> {
    load_compiled_with(
        path,
        inputs,
        Vec::new(),
        registry,
        MissingValues::Placeholder,
    )
}

fn load_compiled_with(
    path: &Path,
    inputs: &ParamInputs,
    extra: Vec<(Node, Node)>,
    registry: &Arc<Registry>,
    missing: MissingValues,
) -> Result<Compiled, LoadError> {
    let mut sources = Sources::default();
    let checked = check_file(path, &mut sources, registry);
    if checked.fragment {
        return Err(LoadError::Fragment {
            path: path.to_path_buf(),
        });
    }
    let has_errors = checked.diagnostics.iter().any(Diagnostic::is_error);
    let Some(loaded) = checked.plan.filter(|_| !has_errors) else {
        return Err(LoadError::Invalid {
            diagnostics: checked.diagnostics,
            sources: Arc::new(sources),
        });
    };
    let warnings = checked.diagnostics;
    let given = match &inputs.file {
        Some(f) => match params::read_params_file(f, &mut sources) {
            Ok(g) => g,
            Err(d) => {
                return Err(LoadError::Invalid {
                    diagnostics: [warnings, vec![d]].concat(),
                    sources: Arc::new(sources),
                })
            }
        },
        None => Vec::new(),
    };
    let given = [given, extra].concat();
    let sources = Arc::new(sources);
    match compile::compile_with(&loaded, sources.clone(), inputs, &given, missing) {
        Ok(plan) => Ok(Compiled {
            plan,
            warnings,
            sources,
        }),
        Err(mut diags) => {
            // Warnings of the checks first, as they were found, then what compile found.
            diagnostic::sort(&mut diags);
            Err(LoadError::Invalid {
                diagnostics: [warnings, diags].concat(),
                sources,
            })
        }
    }
}
