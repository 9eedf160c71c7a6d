//! `generation.prune`: apply a retention policy to a backup location, after this run's
//! generation was committed.
//!
//! `keep.count` keeps the newest N verified generations, `keep.age` every verified one
//! younger than that (both: a generation goes only when both would let it go, as
//! StackState's count-and-age retention). Never deleted: the generation this run
//! committed (`committed`, which must be verified and the latest, so prune cannot run
//! before commit), the one `latest` points at, and anything newer than the committed one.
//! Incomplete and verify-failed generations older than the committed one are deleted:
//! they can never be restored. A generation is deleted by renaming it to a temporary name
//! first (it stops being a generation at once), then removing it; leftovers of an
//! interrupted prune are removed by the next one.
//!
//! Preview reads the folder (read-only) and lists what the policy would delete if this
//! run's generation were committed now; the run decides again after the commit.

use super::{list, now_secs, split_generation, Listing, State};
use crate::fs::{blocking, check_cancel, io_error};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::fs;
use std::path::Path;
use tokio_util::sync::CancellationToken;

pub struct GenerationPrune;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationPruneSpec {
    /// The backup location.
    pub dir: String,
    /// The generation this run committed: `generation.commit`'s `path` output. Prune
    /// refuses unless it is verified and the latest.
    pub committed: String,
    /// Which verified generations to keep.
    pub keep: KeepSpec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepSpec {
    /// Keep the newest N verified generations (the committed one counts); at least 1.
    #[serde(default)]
    pub count: Option<u32>,
    /// Keep every verified generation younger than this (`30d`, `12h`), by the start time
    /// in its name.
    #[serde(default)]
    pub age: Option<String>,
}

/// One generation the policy deletes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    pub name: String,
    pub why: String,
}

impl StepType for GenerationPrune {
    const NAME: &'static str = "generation.prune";
    const SUMMARY: &'static str =
        "Delete old generations by a keep policy (count and/or age) after commit; never the latest verified one.";
    type Spec = GenerationPruneSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "deleted",
                description: "names of the generations deleted",
            },
            OutputDecl {
                name: "kept",
                description: "names of the generations left, newest first",
            },
        ]
    }
    fn check(spec: &GenerationPruneSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = crate::fs::check_nonempty_path(with, "dir", &spec.dir)
            .into_iter()
            .collect();
        let keep = with.get("keep");
        let span = keep.map_or(with.span, |n| n.span);
        if spec.keep.count.is_none() && spec.keep.age.is_none() {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`keep` sets neither `count` nor `age`")
                    .label(span, "keeps everything")
                    .help("e.g. `keep: {count: 7, age: 30d}`; leave the step out to keep every generation"),
            );
        }
        let count_pending = keep.is_some_and(|k| crate::templated(k, "count"));
        if spec.keep.count == Some(0) && !count_pending {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`keep.count` is 0")
                    .label(
                        keep.and_then(|k| k.get("count")).map_or(span, |n| n.span),
                        "at least 1",
                    )
                    .help("the committed generation is always kept; count it"),
            );
        }
        if let Some(d) = keep.and_then(|k| opsplan_plan::fields::check_duration_field(k, "age")) {
            diags.push(d);
        }
        diags
    }
    fn describe(spec: &GenerationPruneSpec) -> Action {
        let dir = spec.dir.trim_end_matches('/');
        let mut s = format!(
            "prune generations in {dir}: keep {}",
            policy_text(&spec.keep)
        );
        s.push_str(", and never the latest verified one; delete incomplete and verify-failed ones older than the committed one");
        s.push_str(&format!("; {}", preview_decision(spec)));
        Action::new(s)
    }
    async fn run(spec: GenerationPruneSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        blocking(&ctx, move |token| prune(&spec, token)).await
    }
}

fn policy_text(keep: &KeepSpec) -> String {
    let mut parts = Vec::new();
    if let Some(c) = keep.count {
        parts.push(format!("the newest {c} verified"));
    }
    if let Some(a) = keep.age.as_deref().filter(|a| !zero(a)) {
        parts.push(format!("every verified one younger than {a}"));
    }
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join(" and ")
    }
}

/// `0s`: no age rule (a plan's param default that turns it off).
fn zero(age: &str) -> bool {
    opsplan_plan::fields::parse_duration(age).is_ok_and(|d| d.is_zero())
}

fn age_secs(age: Option<&str>) -> Result<Option<i64>, StepError> {
    age.filter(|a| !zero(a))
        .map(|a| {
            opsplan_plan::fields::parse_duration(a)
                .map(|d| d.as_secs() as i64)
                .map_err(|e| StepError::fatal(format!("`keep.age` `{a}`: {e}")))
        })
        .transpose()
}

/// What preview says: the folder read now, this run's generation counted as committed now.
fn preview_decision(spec: &GenerationPruneSpec) -> String {
    let runtime = "which ones: decided at run time";
    if is_template(&spec.dir) || spec.dir.contains('⟨') {
        return runtime.into();
    }
    let Ok(listing) = list(Path::new(&spec.dir)) else {
        return "nothing to delete now (the location does not exist yet)".into();
    };
    let Ok(age) = age_secs(spec.keep.age.as_deref()) else {
        return runtime.into();
    };
    let committed = split_generation(&spec.committed).ok().map(|(_, n)| n);
    let result = match committed {
        Some(name) if listing.get(&name).is_some() => {
            decide(&listing, &name, spec.keep.count, age, now_secs())
        }
        // Not committed yet (preview): as if a new generation were committed now.
        _ => decide_with_new(&listing, spec.keep.count, age, now_secs()),
    };
    match result {
        Ok(d) if d.is_empty() => "would delete nothing now (checked again after commit)".into(),
        Ok(d) => format!(
            "would delete now: {} (checked again after commit)",
            d.iter()
                .map(|x| format!("{} ({})", x.name, x.why))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(_) => runtime.into(),
    }
}

fn decide_with_new(
    listing: &Listing,
    count: Option<u32>,
    age: Option<i64>,
    now: i64,
) -> Result<Vec<Doomed>, StepError> {
    let mut l = listing.clone();
    for g in &mut l.generations {
        g.latest = false;
    }
    let name = super::format_name(now, "preview");
    l.generations.push(super::Generation {
        name: name.clone(),
        path: l.dir.join(&name),
        time: now,
        started: String::new(),
        run_id: "preview".into(),
        state: State::Verified,
        reason: None,
        latest: true,
        marker: None,
    });
    l.latest = Some(name.clone());
    decide(&l, &name, count, age, now)
}

/// The generations the policy deletes, given the committed one. Pure: tests feed it
/// listings with generations of any age.
pub fn decide(
    listing: &Listing,
    committed: &str,
    count: Option<u32>,
    age: Option<i64>,
    now: i64,
) -> Result<Vec<Doomed>, StepError> {
    let Some(c) = listing.get(committed) else {
        return Err(StepError::fatal(format!(
            "the committed generation {committed} is not in {}",
            listing.dir.display()
        )));
    };
    if c.state != State::Verified {
        return Err(StepError::fatal(format!(
            "generation {committed} is {}, not committed: prune runs only after \
             generation.commit verified this run's generation",
            c.state
        )));
    }
    if listing.latest.as_deref() != Some(committed) {
        return Err(StepError::fatal(format!(
            "latest does not point at the committed generation {committed} ({}); refusing \
             to prune",
            listing.latest.as_deref().unwrap_or("it is not set")
        )));
    }
    let mut doomed = Vec::new();
    let mut verified_rank = 0u32;
    for g in listing.generations.iter().rev() {
        if g.name.as_str() > committed {
            continue;
        }
        if g.state == State::Verified {
            verified_rank += 1;
        }
        if g.name == committed {
            continue;
        }
        match g.state {
            State::Verified => {
                let by_count = count.is_some_and(|n| verified_rank <= n);
                let by_age = age.is_some_and(|a| now - g.time < a);
                if !by_count && !by_age {
                    let mut why = Vec::new();
                    if let Some(n) = count {
                        why.push(format!("not among the newest {n} verified"));
                    }
                    if age.is_some() {
                        why.push(format!("{} old", super::age_text(now - g.time)));
                    }
                    doomed.push(Doomed {
                        name: g.name.clone(),
                        why: why.join(", "),
                    });
                }
            }
            other => doomed.push(Doomed {
                name: g.name.clone(),
                why: other.words().into(),
            }),
        }
    }
    doomed.reverse();
    Ok(doomed)
}

fn prune(spec: &GenerationPruneSpec, token: &CancellationToken) -> Result<Outputs, StepError> {
    let (root, committed) = split_generation(&spec.committed)?;
    let dir = Path::new(&spec.dir);
    if fs::canonicalize(&root).ok() != fs::canonicalize(dir).ok() {
        return Err(StepError::fatal(format!(
            "the committed generation {} is not in {}",
            spec.committed,
            dir.display()
        )));
    }
    let listing = list(dir)?;
    // Leftovers of an interrupted prune or begin: folders under a temporary name.
    for left in &listing.leftovers {
        let p = dir.join(left);
        if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&p).map_err(|e| io_error("remove", &p, &e))?;
        }
    }
    let age = age_secs(spec.keep.age.as_deref())?;
    let doomed = decide(&listing, &committed, spec.keep.count, age, now_secs())?;
    let mut deleted = Vec::new();
    for d in &doomed {
        check_cancel(token)?;
        let from = dir.join(&d.name);
        let to = dir.join(format!(".{}.opsplan-{:08x}", d.name, rand::random::<u32>()));
        fs::rename(&from, &to).map_err(|e| io_error("retire", &from, &e))?;
        fs::remove_dir_all(&to).map_err(|e| io_error("remove", &to, &e))?;
        deleted.push(d.name.clone());
    }
    crate::fs::sync_dir(dir)?;
    let kept: Vec<String> = listing
        .generations
        .iter()
        .rev()
        .filter(|g| !deleted.contains(&g.name))
        .map(|g| g.name.clone())
        .collect();
    let mut out = Outputs::new();
    out.insert("deleted".into(), deleted.into());
    out.insert("kept".into(), kept.into());
    Ok(out)
}
