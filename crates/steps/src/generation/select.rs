//! `generation.select`: the generation a restore reads, the latest verified one by default
//! or one named; an incomplete or unverified generation is refused, naming the usable
//! ones ([`GenerationError`]).

use super::{list, GenerationError, Listing};
use crate::fs::blocking;
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;

pub struct GenerationSelect;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationSelectSpec {
    /// The backup location (the backup plan's `backup_dir`).
    pub dir: String,
    /// A generation's folder name (`opsplan generations DIR` lists them); empty or
    /// `latest`: the latest verified one.
    #[serde(default)]
    pub generation: String,
}

impl StepType for GenerationSelect {
    const NAME: &'static str = "generation.select";
    const SUMMARY: &'static str =
        "Pick the generation a restore reads: the latest verified, or a named one; refuses an incomplete or unverified one.";
    type Spec = GenerationSelectSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the selected generation's folder",
            },
            OutputDecl {
                name: "name",
                description: "its folder name",
            },
            OutputDecl {
                name: "started",
                description: "when its backup began (UTC, RFC 3339)",
            },
            OutputDecl {
                name: "run_id",
                description: "the backup run that wrote it",
            },
            OutputDecl {
                name: "latest",
                description: "whether it is the latest verified generation",
            },
        ]
    }
    fn check(spec: &GenerationSelectSpec, with: &Node) -> Vec<Diagnostic> {
        crate::fs::check_nonempty_path(with, "dir", &spec.dir)
            .into_iter()
            .collect()
    }
    fn idempotent(_spec: &GenerationSelectSpec) -> bool {
        true
    }
    fn describe(spec: &GenerationSelectSpec) -> Action {
        let dir = spec.dir.trim_end_matches('/');
        Action::new(if wants_latest(&spec.generation) {
            format!("select the latest complete and verified generation in {dir}")
        } else {
            format!(
                "select generation {dir}/{} (refused unless complete and verified)",
                spec.generation
            )
        })
    }
    async fn run(spec: GenerationSelectSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        blocking(&ctx, move |_token| {
            let listing = list(Path::new(&spec.dir))?;
            let name = select(&listing, &spec.generation)?;
            let Some(g) = listing.get(&name) else {
                return Err(StepError::fatal(
                    "internal error: selected generation vanished",
                ));
            };
            let latest = listing.latest_verified().is_some_and(|l| l.name == g.name);
            let mut out = Outputs::new();
            out.insert("path".into(), g.path.display().to_string().into());
            out.insert("name".into(), g.name.clone().into());
            out.insert("started".into(), g.started.clone().into());
            out.insert("run_id".into(), g.run_id.clone().into());
            out.insert("latest".into(), latest.into());
            Ok(out)
        })
        .await
    }
}

fn wants_latest(generation: &str) -> bool {
    let g = generation.trim();
    g.is_empty() || g == super::LATEST
}

/// The name of the generation `wanted` selects in `listing` (empty or `latest`: the latest
/// verified one), or why none can be used.
pub fn select(listing: &Listing, wanted: &str) -> Result<String, GenerationError> {
    let usable = listing.usable_names();
    if wants_latest(wanted) {
        return listing
            .latest_verified()
            .map(|g| g.name.clone())
            .ok_or_else(|| GenerationError::NoneVerified {
                dir: listing.dir.clone(),
                others: listing
                    .generations
                    .iter()
                    .map(|g| (g.name.clone(), g.state))
                    .collect(),
            });
    }
    let wanted = wanted.trim().trim_end_matches('/');
    match listing.get(wanted) {
        Some(g) if g.usable() => Ok(g.name.clone()),
        Some(g) => Err(GenerationError::Unusable {
            dir: listing.dir.clone(),
            name: g.name.clone(),
            state: g.state,
            reason: g.reason.clone(),
            usable,
        }),
        None => Err(GenerationError::NotFound {
            dir: listing.dir.clone(),
            name: wanted.to_string(),
            usable,
        }),
    }
}
