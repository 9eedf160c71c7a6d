//! `generation.begin`: start a backup's new generation in a backup location.
//!
//! Creates `<dir>/<UTC time>-<run id>` with a marker that says `incomplete`, under a
//! temporary name first and renamed into place, so a generation folder always has its
//! marker. The folder takes the location's mode (and owner, as root). Never touches another generation. Outputs the new folder and the latest
//! verified one (`previous`), which a copy may reuse (`rsync --link-dest`, `fs.sync`'s
//! `link_dest`) without writing into it.
//!
//! Name order is creation order: a second backup within the same second waits for the next
//! one, and a clock far behind the newest generation is refused (see `start_after`).
//!
//! Run again by the same run (a resume), it returns that run's incomplete generation
//! instead of starting another: the copies that follow are incremental and finish it.

use super::{
    format_name, list, now_secs, valid_run_id, write_marker, Marker, State, FORMAT, FORMAT_VERSION,
};
use crate::fs::{blocking, io_error, sync_dir};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::fs;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub struct GenerationBegin;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationBeginSpec {
    /// The backup location: a local folder holding one folder per generation (created
    /// when missing).
    pub dir: String,
    /// Names the generation after this id instead of the run's (`run.id`); letters,
    /// digits, `.`, `_` and `-`.
    #[serde(default)]
    pub run_id: Option<String>,
}

impl StepType for GenerationBegin {
    const NAME: &'static str = "generation.begin";
    const SUMMARY: &'static str =
        "Start a new backup generation `<dir>/<UTC time>-<run id>`, marked incomplete until `generation.commit`.";
    type Spec = GenerationBeginSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the new generation's folder (`<dir>/<name>`)",
            },
            OutputDecl {
                name: "name",
                description: "its folder name, `<UTC time>-<run id>`",
            },
            OutputDecl {
                name: "previous",
                description:
                    "folder of the latest verified generation, to reuse (empty when there is none)",
            },
            OutputDecl {
                name: "previous_name",
                description: "its folder name (empty when there is none)",
            },
            OutputDecl {
                name: "resumed",
                description: "whether this run's own incomplete generation was taken up again",
            },
        ]
    }
    fn check(spec: &GenerationBeginSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = crate::fs::check_nonempty_path(with, "dir", &spec.dir)
            .into_iter()
            .collect();
        if let Some(id) = &spec.run_id {
            if !is_template(id) && !valid_run_id(id) {
                diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        format!("`run_id` `{id}` cannot be part of a folder name"),
                    )
                    .label(
                        with.get("run_id").map_or(with.span, |n| n.span),
                        "letters, digits, `.`, `_` and `-` only",
                    )
                    .help("leave `run_id` out to use the run's id"),
                );
            }
        }
        diags
    }
    fn idempotent(_spec: &GenerationBeginSpec) -> bool {
        true
    }
    fn describe(spec: &GenerationBeginSpec) -> Action {
        Action::new(format!(
            "start generation {}/<UTC time>-{} (marked incomplete until committed; the latest \
             verified generation is offered as `previous` for reuse, never written)",
            spec.dir.trim_end_matches('/'),
            spec.run_id.as_deref().unwrap_or("<run id>")
        ))
    }
    async fn run(spec: GenerationBeginSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let run_id = spec
            .run_id
            .clone()
            .unwrap_or_else(|| ctx.plan.run_id.clone());
        let plan = ctx.plan.name.clone();
        blocking(&ctx, move |token| begin(&spec.dir, &run_id, &plan, token)).await
    }
}

/// How far the clock may be behind the newest generation's start before `begin` refuses
/// rather than waits.
const CLOCK_SLACK_SECS: i64 = 5;

/// A start time whose name sorts after every generation already in the location, so that
/// name order is creation order (`latest` only moves forward by name, and retention keeps
/// "the newest"). Two backups within one second, or a clock stepped back a little, wait for
/// the clock; a clock far behind the newest generation is refused, naming both times.
fn start_after(
    newest: Option<&super::Generation>,
    token: &CancellationToken,
) -> Result<i64, StepError> {
    let Some(newest) = newest else {
        return Ok(now_secs());
    };
    loop {
        let now = now_secs();
        if now > newest.time {
            return Ok(now);
        }
        if newest.time - now >= CLOCK_SLACK_SECS {
            return Err(StepError::fatal(format!(
                "generation {} began at {}, after this machine's clock ({}): a new generation \
                 would sort before it and never become latest; fix the clock (or move that \
                 generation aside) and run again",
                newest.name,
                newest.started,
                crate::fs::rfc3339(now, 0)
            )));
        }
        crate::fs::check_cancel(token)?;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn begin(
    dir: &str,
    run_id: &str,
    plan: &str,
    token: &CancellationToken,
) -> Result<Outputs, StepError> {
    if !valid_run_id(run_id) {
        return Err(StepError::fatal(format!(
            "run id `{run_id}` cannot name a generation folder; give `run_id`"
        )));
    }
    let root = PathBuf::from(dir);
    fs::create_dir_all(&root).map_err(|e| io_error("create the backup location", &root, &e))?;
    let listing = list(&root)?;
    let previous = listing.latest_verified().cloned();
    let mut out = Outputs::new();
    let prev_path = previous
        .as_ref()
        .map(|g| g.path.display().to_string())
        .unwrap_or_default();
    let prev_name = previous
        .as_ref()
        .map(|g| g.name.clone())
        .unwrap_or_default();
    out.insert("previous".into(), prev_path.into());
    out.insert("previous_name".into(), prev_name.into());

    if let Some(own) = listing.generations.iter().find(|g| g.run_id == run_id) {
        if own.state != State::Incomplete {
            return Err(StepError::fatal(format!(
                "this run's generation {} is already {}; a run begins one generation",
                own.path.display(),
                own.state
            )));
        }
        out.insert("path".into(), own.path.display().to_string().into());
        out.insert("name".into(), own.name.clone().into());
        out.insert("resumed".into(), true.into());
        return Ok(out);
    }

    let now = start_after(listing.generations.iter().max_by_key(|g| g.time), token)?;
    let name = format_name(now, run_id);
    let final_path = root.join(&name);
    let temp = root.join(format!(".{name}.opsplan-{:08x}", rand::random::<u32>()));
    fs::create_dir(&temp).map_err(|e| io_error("create a folder in", &root, &e))?;
    if let Err(e) = like_location(&temp, &root) {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    let marker = Marker {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        name: name.clone(),
        run_id: run_id.into(),
        plan: plan.into(),
        started: crate::fs::rfc3339(now, 0),
        previous: previous.map(|g| g.name),
        state: State::Incomplete,
        committed: None,
        manifest: None,
        manifest_sha256: None,
        problem: None,
    };
    let placed = write_marker(&temp, &marker).and_then(|()| {
        fs::rename(&temp, &final_path).map_err(|e| io_error("create", &final_path, &e))
    });
    if let Err(e) = placed {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    sync_dir(&root)?;
    out.insert("path".into(), final_path.display().to_string().into());
    out.insert("name".into(), name.into());
    out.insert("resumed".into(), false.into());
    Ok(out)
}

/// A new generation takes the location's mode and, as root, its owner: a copy that runs as
/// another user (COSMOS 6's `mc` as uid 501) writes into it as it wrote into the location.
fn like_location(gen: &std::path::Path, root: &std::path::Path) -> Result<(), StepError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(root).map_err(|e| io_error("read", root, &e))?;
    if crate::fs::running_as_root() {
        std::os::unix::fs::chown(gen, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| io_error("change the owner of", gen, &e))?;
    }
    fs::set_permissions(gen, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| io_error("change the mode of", gen, &e))
}
