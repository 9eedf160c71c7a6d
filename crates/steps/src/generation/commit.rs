//! `generation.commit`: verify a finished generation against its manifest and, only when
//! it matches, mark it verified and move `latest` to it.
//!
//! Runs after `manifest`, as the backup's last step. It checks the generation itself (the
//! same comparison as `verify`: every listed file with its size and SHA-256, nothing
//! extra), so no generation is ever marked verified without having been verified. On a
//! mismatch the marker says `verify-failed` with the differences and the step fails;
//! `latest` is not moved. It writes only the generation's marker and the `latest` pointer:
//! never another generation, never the content.

use super::{
    list, read_marker, set_latest, split_generation, write_marker, Marker, State, FORMAT,
    FORMAT_VERSION,
};
use crate::fs::manifest::{self, check_manifest_file};
use crate::fs::verify::{compare, differences, read_manifest};
use crate::fs::{blocking, require_dir};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub struct GenerationCommit;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationCommitSpec {
    /// The generation to commit: `generation.begin`'s `path` output.
    pub generation: String,
    /// File name of the manifest inside the generation (default `opsplan-manifest.json`).
    #[serde(default = "manifest::default_file")]
    pub file: String,
    /// Compare SHA-256 checksums (default); `false` compares sizes only.
    #[serde(default = "yes")]
    pub checksum: bool,
}

fn yes() -> bool {
    true
}

impl StepType for GenerationCommit {
    const NAME: &'static str = "generation.commit";
    const SUMMARY: &'static str =
        "Verify a generation against its manifest; only then mark it verified and point `latest` at it.";
    type Spec = GenerationCommitSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the committed generation's folder",
            },
            OutputDecl {
                name: "name",
                description: "its folder name",
            },
            OutputDecl {
                name: "status",
                description: "`verified` (the step fails otherwise)",
            },
            OutputDecl {
                name: "files",
                description: "listed entries found and checked",
            },
            OutputDecl {
                name: "bytes",
                description: "bytes checked",
            },
            OutputDecl {
                name: "previous_latest",
                description: "the generation `latest` pointed at before (empty when none)",
            },
        ]
    }
    fn check(spec: &GenerationCommitSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> =
            crate::fs::check_nonempty_path(with, "generation", &spec.generation)
                .into_iter()
                .collect();
        diags.extend(check_manifest_file(with, &spec.file));
        diags
    }
    fn idempotent(_spec: &GenerationCommitSpec) -> bool {
        true
    }
    fn describe(spec: &GenerationCommitSpec) -> Action {
        let g = spec.generation.trim_end_matches('/');
        Action::new(format!(
            "verify {g}/ against {g}/{} ({}); if it matches mark it verified and point \
             latest at it, else mark it verify-failed and fail",
            spec.file,
            if spec.checksum {
                "sizes and sha256"
            } else {
                "sizes only"
            }
        ))
    }
    async fn run(spec: GenerationCommitSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        blocking(&ctx, move |token| commit(&spec, token)).await
    }
}

fn commit(spec: &GenerationCommitSpec, token: &CancellationToken) -> Result<Outputs, StepError> {
    let (root, name) = split_generation(&spec.generation)?;
    let path = root.join(&name);
    require_dir(&path, "generation")?;
    let marker = read_marker(&path).map_err(StepError::fatal)?;
    let Some(mut marker) = marker else {
        return Err(StepError::fatal(format!(
            "{} has no {}: it was not begun by generation.begin",
            path.display(),
            super::MARKER
        )));
    };
    if marker.format != FORMAT || marker.format_version != FORMAT_VERSION {
        return Err(StepError::fatal(format!(
            "{} has an unknown marker format",
            path.display()
        )));
    }
    let manifest_path = path.join(&spec.file);
    let Some(doc) = read_manifest(&manifest_path)? else {
        marker.problem = Some(format!("no manifest {}", spec.file));
        write_marker(&path, &marker)?;
        return Err(StepError::fatal(format!(
            "generation {} has no manifest {}: write it (step type `manifest`) before \
             committing; the generation stays incomplete",
            path.display(),
            spec.file
        )));
    };
    let report = compare(&path, doc, &spec.file, None, spec.checksum, token)?;
    if report.status != "complete" {
        let problem = differences(&report);
        marker.state = State::VerifyFailed;
        marker.problem = Some(problem.clone());
        marker.committed = None;
        write_marker(&path, &marker)?;
        return Err(StepError::fatal(format!(
            "generation {} does not match its manifest: {problem}; it is marked verify-failed \
             and latest still points at the previous generation",
            path.display()
        )));
    }
    let text = std::fs::read(&manifest_path)
        .map_err(|e| crate::fs::io_error("read", &manifest_path, &e))?;
    marker = Marker {
        state: State::Verified,
        committed: Some(crate::fs::now_rfc3339()),
        manifest: Some(spec.file.clone()),
        manifest_sha256: Some(hex::encode(Sha256::digest(&text))),
        problem: None,
        ..marker
    };
    write_marker(&path, &marker)?;
    // Move `latest` forward only: a late commit of an older generation leaves it alone.
    let before = list(&root)?.latest;
    if before.as_deref().is_none_or(|l| l < name.as_str()) {
        set_latest(&root, &name)?;
    }
    let mut out = Outputs::new();
    out.insert("path".into(), path.display().to_string().into());
    out.insert("name".into(), name.into());
    out.insert("status".into(), "verified".into());
    out.insert("files".into(), report.files.into());
    out.insert("bytes".into(), report.bytes.into());
    out.insert("previous_latest".into(), before.unwrap_or_default().into());
    Ok(out)
}
