//! `opsplan drill BACKUP_PLAN RESTORE_PLAN`: a restore drill against a scratch target.
//!
//! A backup nobody has restored is a hope, not a backup. The drill runs the whole cycle the
//! way an operator would, with the same plans and the same gates as `opsplan run`:
//!
//! 1. **backup**: the backup plan runs (journaled, like `run`);
//! 2. **verify**: every manifest the backup wrote (the `path` output of its `manifest`
//!    steps, and `--backup-folder`) is checked against its folder, as `verify` does;
//! 3. **restore**: the restore plan runs against the scratch target its params name;
//! 4. **compare**: each `--compare DIR[=PATH]` folder is compared with the backup's manifest
//!    (sizes and SHA-256 of every file), naming what differs;
//! 5. **check**: an optional `--check PLAN` runs last (row counts, LDAP entries, anything a
//!    plan can assert).
//!
//! The first phase that fails ends the drill; what ran is in the one-line result on stdout
//! and in the `--report` JSON. Nothing is run unless every plan compiles with its params,
//! the restore target differs from the backup source (`--target-param`), and the
//! destructive gate of `run` passes for every plan.

use crate::exec::events::{EventSink, Phase, RunEvent, StepStatus};
use crate::exit;
use opsplan_plan::compile::CompiledPlan;
use opsplan_plan::params::ParamInputs;
use opsplan_plan::step::{Outputs, StepError, StepType};
use opsplan_steps::fs::{manifest, verify};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub const REPORT_FORMAT: &str = "opsplan-drill-report";
pub const REPORT_VERSION: u32 = 1;

pub struct DrillArgs {
    pub backup_plan: PathBuf,
    pub restore_plan: PathBuf,
    pub backup_params: ParamInputs,
    pub restore_params: ParamInputs,
    pub check_plan: Option<PathBuf>,
    pub check_params: ParamInputs,
    /// `NAME` or `BACKUP_NAME=RESTORE_NAME`, as given.
    pub target_params: Vec<String>,
    /// `DIR` or `DIR=PATH`, as given.
    pub compare: Vec<String>,
    pub backup_folder: Option<PathBuf>,
    pub manifest_file: String,
    /// `PARAM=STEP.OUTPUT`, as given: the restore param set from a backup step's output.
    pub restore_from_backup: Vec<String>,
    /// `--verified-by STEP`: the restore plan's `verify` step that verifies the backup.
    pub verified_by: Option<String>,
    pub report: Option<PathBuf>,
    /// `--force`: destructive steps of the drill's plans run without asking.
    pub force: bool,
}

/// What the drill needs from its caller: loading a plan (showing its diagnostics) and
/// running one the way `opsplan run` does (journal, locks, console), so a drill phase is a
/// run like any other. Both return the exit code of [`crate::exit`] on failure.
/// What the drill tells as it goes; the host decides where it is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrillNotice {
    /// A phase's plan started as run `run_id`.
    PhaseStarted {
        phase: &'static str,
        plan: PathBuf,
        run_id: String,
    },
    /// A phase's files were checked against the manifest.
    PhaseChecked {
        phase: &'static str,
        files: u64,
        bytes: u64,
    },
    /// SIGINT or SIGTERM during a check: the drill stops.
    Signal,
    /// Why nothing (more) could be run: a refusal, or a report that could not be written.
    Error(String),
    /// The one-line result (`drill ok: …`, `drill FAILED at …`, `drill REFUSED …`).
    Result(String),
}

impl std::fmt::Display for DrillNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrillNotice::PhaseStarted {
                phase,
                plan,
                run_id,
            } => {
                write!(
                    f,
                    "drill: {phase}: running {} (run {run_id})",
                    plan.display()
                )
            }
            DrillNotice::PhaseChecked {
                phase,
                files,
                bytes,
            } => write!(
                f,
                "drill: {phase}: {files} files, {} match the manifest",
                human_bytes(*bytes)
            ),
            DrillNotice::Signal => f.write_str("drill: signal received: stopping"),
            DrillNotice::Error(message) => write!(f, "error: {message}"),
            DrillNotice::Result(line) => f.write_str(line),
        }
    }
}

pub trait DrillHost {
    /// Tells the operator how the drill goes (the CLI prints the result on stdout, the rest on
    /// stderr).
    fn notice(&self, notice: &DrillNotice);
    fn load(&self, path: &Path, params: &ParamInputs) -> Result<CompiledPlan, i32>;
    /// Runs `plan` as run `run_id`, telling `observer` every event; returns the exit code.
    fn execute(&self, plan: Arc<CompiledPlan>, run_id: String, observer: Arc<dyn EventSink>)
        -> i32;
}

/// The JSON report (`--report FILE`), format `opsplan-drill-report` version 1.
#[derive(Debug, Serialize)]
struct Report {
    format: &'static str,
    format_version: u32,
    /// `ok`, `failed` (a phase failed or found a difference) or `refused` (nothing ran).
    result: &'static str,
    exit_code: i32,
    /// The phase that failed or refused; null when the drill passed.
    failed_phase: Option<String>,
    /// The one-line result, as printed.
    summary: String,
    started: String,
    finished: String,
    duration_ms: u64,
    /// Files and bytes whose size and SHA-256 were checked (backup and restored copies).
    files_checked: u64,
    bytes_checked: u64,
    target: Vec<TargetPair>,
    phases: Vec<PhaseReport>,
}

#[derive(Debug, Serialize)]
struct TargetPair {
    backup_param: String,
    restore_param: String,
    /// The values (secrets masked).
    backup_value: Value,
    restore_value: Value,
}

#[derive(Debug, Serialize, Default)]
struct PhaseReport {
    /// `backup`, `verify`, `restore`, `compare` or `check`.
    phase: &'static str,
    /// `succeeded`, `failed`, `interrupted` or `not_run`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_name: Option<String>,
    /// The journaled run (`opsplan runs show RUN_ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Folders checked (verify, compare).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checked: Vec<Checked>,
    /// verify with `--verified-by`: the restore run's step that verified the backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified_by_step: Option<String>,
}

#[derive(Debug, Serialize)]
struct Checked {
    folder: String,
    manifest: String,
    /// For compare: the manifest path the folder stands for (null: the whole backup).
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_path: Option<String>,
    status: &'static str,
    files: u64,
    bytes: u64,
    missing: Vec<String>,
    extra: Vec<String>,
    changed: Vec<String>,
}

/// What a phase ends with when it does not succeed.
struct Failure {
    code: i32,
    message: String,
    /// A refusal is told as an error line before the result; a failed phase was already
    /// told by its run's own events.
    refusal: bool,
}

/// Reads what the drill needs from a run's events: forward outputs and the first failure.
#[derive(Default)]
struct Observed {
    outputs: Mutex<HashMap<String, Outputs>>,
    failure: Mutex<Option<(String, String)>>,
}

impl EventSink for Observed {
    fn emit(&self, event: &RunEvent) {
        let RunEvent::StepFinished {
            step,
            phase,
            status,
            outputs,
            error,
            ..
        } = event
        else {
            return;
        };
        match (phase, status) {
            (Phase::Forward, StepStatus::Succeeded) => {
                if let (Some(o), Ok(mut all)) = (outputs, self.outputs.lock()) {
                    all.insert(step.clone(), o.clone());
                }
            }
            (_, StepStatus::Failed) => {
                if let Ok(mut f) = self.failure.lock() {
                    if f.is_none() {
                        *f = Some((step.clone(), error.clone().unwrap_or_default()));
                    }
                }
            }
            _ => {}
        }
    }
}

struct Drill<'h> {
    host: &'h dyn DrillHost,
    args: DrillArgs,
    started: String,
    clock: Instant,
    phases: Vec<PhaseReport>,
    target: Vec<TargetPair>,
    run_ids: Vec<String>,
    files_checked: u64,
    bytes_checked: u64,
}

/// Runs the drill; returns the exit code (docs/reference/drill.md).
pub fn drill(args: DrillArgs, host: &dyn DrillHost) -> i32 {
    let mut d = Drill {
        host,
        args,
        started: crate::exec::events::now(),
        clock: Instant::now(),
        phases: Vec::new(),
        target: Vec::new(),
        run_ids: Vec::new(),
        files_checked: 0,
        bytes_checked: 0,
    };
    let result = d.drive();
    d.finish(result)
}

impl Drill<'_> {
    fn drive(&mut self) -> Result<(), (&'static str, Failure)> {
        // Everything is checked before anything runs: a typo in the restore params must not
        // be found after a two-hour backup.
        let backup = self
            .load("backup", &self.args.backup_plan, &self.args.backup_params)
            .map_err(|f| ("load", f))?;
        let from_backup =
            parse_from_backup(&self.args.restore_from_backup).map_err(|f| ("arguments", f))?;
        // A param the backup will give is loaded now with a stand-in value, so the restore
        // plan and the rest of its params are checked before the backup runs.
        let mut restore_params = self.args.restore_params.clone();
        for (param, step, output) in &from_backup {
            restore_params.set.push((
                param.clone(),
                format!("/opsplan-drill/from-backup/{step}.{output}"),
            ));
        }
        let restore = self
            .load("restore", &self.args.restore_plan, &restore_params)
            .map_err(|f| ("load", f))?;
        let check = match &self.args.check_plan {
            Some(p) => Some(
                self.load("check", p, &self.args.check_params)
                    .map_err(|f| ("load", f))?,
            ),
            None => None,
        };
        self.check_target(&backup, &restore)
            .map_err(|f| ("target", f))?;
        let compare = parse_compare(&self.args.compare).map_err(|f| ("arguments", f))?;
        self.check_wiring(&backup, &restore, &from_backup, &compare)
            .map_err(|f| ("arguments", f))?;
        let manifest_steps: Vec<String> = backup
            .steps
            .iter()
            .filter(|s| s.kind.name() == manifest::Manifest::NAME)
            .map(|s| s.id.clone())
            .collect();
        if manifest_steps.is_empty()
            && self.args.backup_folder.is_none()
            && self.args.verified_by.is_none()
        {
            return Err((
                "arguments",
                refuse(format!(
                    "the backup plan {} has no `manifest` step, so the drill has nothing to verify \
                     the backup against; nothing was run\n  help: end the backup plan with a \
                     `manifest` step, or name a folder holding a manifest with --backup-folder",
                    self.args.backup_plan.display()
                )),
            ));
        }
        self.destructive_gate(&backup, &restore, check.as_ref())
            .map_err(|f| ("gate", f))?;

        // 1. backup
        let observed = self.run_phase("backup", &self.args.backup_plan.clone(), backup)?;
        // 2. verify
        let mut manifests: Vec<PathBuf> = Vec::new();
        for id in &manifest_steps {
            let path = observed
                .outputs
                .lock()
                .ok()
                .and_then(|o| o.get(id).and_then(|o| o.get("path")).cloned());
            if let Some(Value::String(p)) = path {
                manifests.push(PathBuf::from(p));
            }
        }
        if let Some(folder) = &self.args.backup_folder {
            let path = folder.join(&self.args.manifest_file);
            if !manifests.contains(&path) {
                manifests.push(path);
            }
        }
        let restore = if from_backup.is_empty() {
            restore
        } else {
            self.restore_with_outputs(&observed, &from_backup)?
        };
        if self.args.verified_by.is_none() {
            self.verify(&manifests)?;
        }
        // 3. restore
        let restored = self.run_phase("restore", &self.args.restore_plan.clone(), restore)?;
        if let Some(step) = self.args.verified_by.clone() {
            self.verified_by_restore(&restored, &step)?;
        }
        // 4. compare
        self.compare(&compare, &manifests)?;
        // 5. check
        if let (Some(plan), Some(path)) = (check, self.args.check_plan.clone()) {
            self.run_phase("check", &path, plan)?;
        }
        Ok(())
    }

    /// `--restore-from-backup` names steps of the backup plan, `--verified-by` a `verify`
    /// step of the restore plan; `--compare` needs the drill's own verify of a manifest.
    fn check_wiring(
        &self,
        backup: &CompiledPlan,
        restore: &CompiledPlan,
        from_backup: &[(String, String, String)],
        compare: &[(PathBuf, Option<String>)],
    ) -> Result<(), Failure> {
        for (param, step, _) in from_backup {
            if find_step(backup, step).is_none() {
                let ids: Vec<&str> = backup.steps.iter().map(|s| s.id.as_str()).collect();
                return Err(refuse(format!(
                    "--restore-from-backup {param}: the backup plan {} has no step `{step}` \
                     (its steps: {}); nothing was run",
                    self.args.backup_plan.display(),
                    ids.join(", ")
                )));
            }
        }
        if let Some(step) = &self.args.verified_by {
            let ok =
                find_step(restore, step).is_some_and(|s| s.kind.name() == verify::Verify::NAME);
            if !ok {
                let ids: Vec<&str> = restore
                    .steps
                    .iter()
                    .filter(|s| s.kind.name() == verify::Verify::NAME)
                    .map(|s| s.id.as_str())
                    .collect();
                return Err(refuse(format!(
                    "--verified-by {step}: the restore plan {} has no `verify` step `{step}` \
                     (its verify steps: {}); nothing was run",
                    self.args.restore_plan.display(),
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids.join(", ")
                    }
                )));
            }
            if !compare.is_empty() {
                return Err(refuse(
                    "--compare compares with the manifest the drill verified itself; with \
                     --verified-by the restore plan verifies the backup, so use a --check plan \
                     instead; nothing was run"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The restore plan loaded again with the backup's outputs its params take.
    fn restore_with_outputs(
        &mut self,
        observed: &Observed,
        from_backup: &[(String, String, String)],
    ) -> Result<Arc<CompiledPlan>, (&'static str, Failure)> {
        let mut params = self.args.restore_params.clone();
        for (param, step, output) in from_backup {
            let value = observed.outputs.lock().ok().and_then(|o| {
                o.iter()
                    .find(|(id, _)| same_id(id, step))
                    .and_then(|(_, out)| out.get(output).cloned())
            });
            let value = match value {
                Some(Value::String(v)) => v.trim_end_matches(['\n', '\r']).to_string(),
                Some(Value::Null) | None => {
                    let failure = Failure {
                        code: exit::RUN_FAILED,
                        refusal: false,
                        message: format!(
                            "the backup's step `{step}` gave no output `{output}` for the \
                             restore param `{param}` (--restore-from-backup)"
                        ),
                    };
                    self.phases.push(PhaseReport {
                        phase: "restore",
                        status: "failed",
                        error: Some(failure.message.clone()),
                        ..PhaseReport::default()
                    });
                    return Err(("restore", failure));
                }
                Some(other) => other.to_string(),
            };
            params.set.push((param.clone(), value));
        }
        let path = self.args.restore_plan.clone();
        self.load("restore", &path, &params).map_err(|mut f| {
            f.refusal = false;
            ("restore", f)
        })
    }

    /// verify with `--verified-by`: the restore run's `verify` step must have succeeded
    /// (a skipped one verified nothing).
    fn verified_by_restore(
        &mut self,
        restored: &Observed,
        step: &str,
    ) -> Result<(), (&'static str, Failure)> {
        let clock = Instant::now();
        let mut report = PhaseReport {
            phase: "verify",
            verified_by_step: Some(step.to_string()),
            ..PhaseReport::default()
        };
        let outputs = restored.outputs.lock().ok().and_then(|o| {
            o.iter()
                .find(|(id, _)| same_id(id, step))
                .map(|(_, out)| out.clone())
        });
        if let Some(out) = outputs {
            // What the step checked counts as the drill's own verify would.
            let number = |k: &str| out.get(k).and_then(Value::as_u64).unwrap_or(0);
            let (files, bytes) = (number("files"), number("bytes"));
            self.files_checked += files;
            self.bytes_checked += bytes;
            self.host.notice(&DrillNotice::PhaseChecked {
                phase: "verify",
                files,
                bytes,
            });
            report.status = "succeeded";
            report.duration_ms = clock.elapsed().as_millis() as u64;
            self.phases.push(report);
            return Ok(());
        }
        let outcome = Err(Failure {
            code: exit::RUN_FAILED,
            refusal: false,
            message: format!(
                "the restore's verify step `{step}` did not run (skipped), so nothing verified \
                 the backup (--verified-by)"
            ),
        });
        self.close("verify", report, clock, outcome)
    }

    fn load(
        &self,
        role: &str,
        path: &Path,
        params: &ParamInputs,
    ) -> Result<Arc<CompiledPlan>, Failure> {
        self.host.load(path, params).map(Arc::new).map_err(|code| {
            let message = format!(
                "the {role} plan {} could not be loaded with its params (see the diagnostics \
                 above); nothing was run",
                path.display()
            );
            Failure {
                code,
                message,
                refusal: true,
            }
        })
    }

    /// Refuses a restore whose target is the backup's source: the values of the
    /// `--target-param` pairs, taken together, must differ (a path inside the other counts
    /// as the same place).
    fn check_target(
        &mut self,
        backup: &CompiledPlan,
        restore: &CompiledPlan,
    ) -> Result<(), Failure> {
        let mut same = Vec::new();
        let mut all_overlap = true;
        for spec in &self.args.target_params {
            let (b, r) = match spec.split_once('=') {
                Some((b, r)) => (b.trim(), r.trim()),
                None => (spec.trim(), spec.trim()),
            };
            let bv = param_value(backup, b, "backup", &self.args.backup_plan)?;
            let rv = param_value(restore, r, "restore", &self.args.restore_plan)?;
            let mask = |p: &opsplan_plan::params::ParamValue| {
                if p.secret {
                    Value::String(opsplan_plan::template::MASK.into())
                } else {
                    p.value.clone()
                }
            };
            self.target.push(TargetPair {
                backup_param: b.into(),
                restore_param: r.into(),
                backup_value: mask(bv),
                restore_value: mask(rv),
            });
            if let Some(overlap) = same_place(&bv.value, &rv.value) {
                let shown = if bv.secret || rv.secret {
                    String::new()
                } else {
                    format!(" ({} and {})", show(&bv.value), show(&rv.value))
                };
                let how = match overlap {
                    Overlap::Same => "name the same place",
                    Overlap::Nested => "name places one inside the other",
                };
                same.push(format!(
                    "backup param `{b}` and restore param `{r}` {how}{shown}"
                ));
            } else {
                all_overlap = false;
            }
        }
        if all_overlap {
            return Err(refuse(format!(
                "the restore target is the backup source: {}; a drill restores into a scratch \
                 target, never over what it backed up; nothing was run\n  help: give the restore \
                 plan a scratch target with --set-restore or --restore-params",
                same.join("; ")
            )));
        }
        Ok(())
    }

    /// `run`'s gate, for every plan at once, so the drill is refused before the backup
    /// rather than after it.
    fn destructive_gate(
        &self,
        backup: &CompiledPlan,
        restore: &CompiledPlan,
        check: Option<&Arc<CompiledPlan>>,
    ) -> Result<(), Failure> {
        if self.args.force || std::io::stdin().is_terminal() {
            return Ok(());
        }
        let mut named = Vec::new();
        let plans = [("backup", Some(backup)), ("restore", Some(restore))]
            .into_iter()
            .chain(std::iter::once((
                "check",
                check.map(std::convert::AsRef::as_ref),
            )));
        for (role, plan) in plans {
            let Some(plan) = plan else { continue };
            let ids: Vec<&str> = plan
                .steps
                .iter()
                .filter(|s| s.destructive)
                .map(|s| s.id.as_str())
                .collect();
            if !ids.is_empty() {
                named.push(format!("{role}: {}", ids.join(", ")));
            }
        }
        if named.is_empty() {
            return Ok(());
        }
        Err(refuse(format!(
            "the drill's plans have destructive steps ({}) and there is no terminal to confirm \
             them on; nothing was run. Check `opsplan preview` and pass --force to allow them.",
            named.join("; ")
        )))
    }

    fn run_phase(
        &mut self,
        phase: &'static str,
        path: &Path,
        plan: Arc<CompiledPlan>,
    ) -> Result<Arc<Observed>, (&'static str, Failure)> {
        let mut run_id = crate::run::new_run_id();
        while self.run_ids.contains(&run_id) {
            run_id = crate::run::new_run_id();
        }
        self.run_ids.push(run_id.clone());
        self.host.notice(&DrillNotice::PhaseStarted {
            phase,
            plan: path.to_path_buf(),
            run_id: run_id.clone(),
        });
        let observed = Arc::new(Observed::default());
        let clock = Instant::now();
        let mut report = PhaseReport {
            phase,
            plan: Some(path.display().to_string()),
            plan_name: Some(plan.name.clone()),
            run_id: Some(run_id.clone()),
            ..PhaseReport::default()
        };
        let code = self.host.execute(plan, run_id.clone(), observed.clone());
        report.duration_ms = clock.elapsed().as_millis() as u64;
        report.exit_code = Some(code);
        if code == exit::OK {
            report.status = "succeeded";
            self.phases.push(report);
            return Ok(observed);
        }
        let cause = match observed.failure.lock().ok().and_then(|f| f.clone()) {
            Some((step, error)) => format!(": step `{step}`: {error}"),
            None => String::new(),
        };
        let how = match code {
            exit::INTERRUPTED => "was interrupted".to_string(),
            exit::LOCKED => "did not start: a lock it needs is held (see above)".to_string(),
            exit::ROLLBACK_FAILED => "failed and its rollback failed too".to_string(),
            exit::INVALID => "was refused (see above)".to_string(),
            _ => "failed".to_string(),
        };
        let message = format!("{phase} run {run_id} {how}{cause}");
        report.status = if code == exit::INTERRUPTED {
            "interrupted"
        } else {
            "failed"
        };
        report.error = Some(message.clone());
        self.phases.push(report);
        Err((
            phase,
            Failure {
                code,
                message,
                refusal: false,
            },
        ))
    }

    fn verify(&mut self, manifests: &[PathBuf]) -> Result<(), (&'static str, Failure)> {
        let clock = Instant::now();
        let mut report = PhaseReport {
            phase: "verify",
            ..PhaseReport::default()
        };
        let outcome = if manifests.is_empty() {
            Err(Failure {
                code: exit::RUN_FAILED,
                refusal: false,
                message: "the backup wrote no manifest (its `manifest` steps did not run), so \
                          there is nothing to verify it against"
                    .into(),
            })
        } else {
            self.check_folders(&mut report, manifests.iter().map(|m| (parent(m), m, None)))
        };
        self.close("verify", report, clock, outcome)
    }

    fn compare(
        &mut self,
        compare: &[(PathBuf, Option<String>)],
        manifests: &[PathBuf],
    ) -> Result<(), (&'static str, Failure)> {
        if compare.is_empty() {
            return Ok(());
        }
        let clock = Instant::now();
        let mut report = PhaseReport {
            phase: "compare",
            ..PhaseReport::default()
        };
        let outcome = match manifests {
            [m] => self.check_folders(
                &mut report,
                compare.iter().map(|(dir, sub)| (dir.clone(), m, sub.as_deref())),
            ),
            _ => Err(Failure {
                code: exit::RUN_FAILED,
                refusal: false,
                message: format!(
                    "--compare needs exactly one backup manifest to compare with; the backup has {} ({})",
                    manifests.len(),
                    manifests
                        .iter()
                        .map(|m| m.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        };
        self.close("compare", report, clock, outcome)
    }

    /// Checks each folder against a manifest (its own for verify, the backup's for
    /// compare), stopping at the first that differs.
    fn check_folders<'a>(
        &mut self,
        report: &mut PhaseReport,
        items: impl Iterator<Item = (PathBuf, &'a PathBuf, Option<&'a str>)>,
    ) -> Result<(), Failure> {
        let verifying = report.phase == "verify";
        for (folder, manifest_path, sub) in items {
            let file = manifest_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(manifest::default_file);
            let mp = manifest_path.clone();
            let dir = folder.clone();
            let sub_owned = sub.map(str::to_string);
            let result = with_signals(move |token| {
                if verifying {
                    opsplan_steps::fs::require_dir(&dir, "backup folder")?;
                } else {
                    opsplan_steps::fs::require_dir(&dir, "restored folder")?;
                }
                let Some(doc) = verify::read_manifest(&mp)? else {
                    return Ok(None);
                };
                verify::compare(&dir, doc, &file, sub_owned.as_deref(), true, token).map(Some)
            });
            let r = match result {
                Err(Interrupted) => {
                    self.host.notice(&DrillNotice::Signal);
                    return Err(Failure {
                        code: exit::INTERRUPTED,
                        refusal: false,
                        message: format!("{} was interrupted", report.phase),
                    })
                }
                Ok(Err(e)) => {
                    return Err(Failure {
                        code: exit::RUN_FAILED,
                        refusal: false,
                        message: e.message,
                    })
                }
                Ok(Ok(None)) => {
                    return Err(Failure {
                        code: exit::RUN_FAILED,
                        refusal: false,
                        message: format!(
                            "backup {} is incomplete: it has no manifest {} (the backup did not finish)",
                            folder.display(),
                            manifest_path.display()
                        ),
                    })
                }
                Ok(Ok(Some(r))) => r,
            };
            self.files_checked += r.files;
            self.bytes_checked += r.bytes;
            report.checked.push(Checked {
                folder: folder.display().to_string(),
                manifest: manifest_path.display().to_string(),
                manifest_path: sub.map(str::to_string),
                status: r.status,
                files: r.files,
                bytes: r.bytes,
                missing: r.missing.clone(),
                extra: r.extra.clone(),
                changed: r.changed.iter().map(|(p, d)| format!("{p}: {d}")).collect(),
            });
            if r.status != "complete" {
                let message = if verifying {
                    format!(
                        "backup {} does not match its manifest: {}",
                        folder.display(),
                        verify::differences(&r)
                    )
                } else {
                    format!(
                        "the restored folder {} does not match the backup{} ({}): {}",
                        folder.display(),
                        sub.map(|s| format!("'s {s}/")).unwrap_or_default(),
                        manifest_path.display(),
                        verify::differences(&r)
                    )
                };
                return Err(Failure {
                    code: exit::RUN_FAILED,
                    refusal: false,
                    message,
                });
            }
        }
        Ok(())
    }

    fn close(
        &mut self,
        phase: &'static str,
        mut report: PhaseReport,
        clock: Instant,
        outcome: Result<(), Failure>,
    ) -> Result<(), (&'static str, Failure)> {
        report.duration_ms = clock.elapsed().as_millis() as u64;
        let files: u64 = report.checked.iter().map(|c| c.files).sum();
        let bytes: u64 = report.checked.iter().map(|c| c.bytes).sum();
        match outcome {
            Ok(()) => {
                report.status = "succeeded";
                self.host.notice(&DrillNotice::PhaseChecked {
                    phase,
                    files,
                    bytes,
                });
                self.phases.push(report);
                Ok(())
            }
            Err(f) => {
                report.status = if f.code == exit::INTERRUPTED {
                    "interrupted"
                } else {
                    "failed"
                };
                report.error = Some(f.message.clone());
                self.phases.push(report);
                Err((phase, f))
            }
        }
    }

    /// Prints the one-line result, writes the report, returns the exit code.
    fn finish(mut self, result: Result<(), (&'static str, Failure)>) -> i32 {
        let seconds = self.clock.elapsed().as_secs_f64();
        let runs: Vec<String> = self
            .phases
            .iter()
            .filter_map(|p| p.run_id.as_ref().map(|id| format!("{} {id}", p.phase)))
            .collect();
        let runs = if runs.is_empty() {
            String::new()
        } else {
            format!("; runs: {}", runs.join(", "))
        };
        let checked = format!(
            "{} files, {} checked",
            self.files_checked,
            human_bytes(self.bytes_checked)
        );
        if let Err((_, f)) = &result {
            if f.refusal {
                self.host.notice(&DrillNotice::Error(f.message.clone()));
            }
        }
        let (summary, code, failed, result_word) = match result {
            Ok(()) => (
                format!(
                    "drill ok: {} -> {} in {seconds:.1}s: {checked}{}{runs}",
                    self.args.backup_plan.display(),
                    self.args.restore_plan.display(),
                    if self.args.check_plan.is_some() {
                        ", check passed"
                    } else {
                        ""
                    }
                ),
                exit::OK,
                None,
                "ok",
            ),
            Err((phase, f)) => {
                let refused = self.phases.is_empty();
                let first_line = f.message.lines().next().unwrap_or_default().to_string();
                (
                    if refused {
                        format!("drill REFUSED ({phase}): {first_line}")
                    } else {
                        format!(
                            "drill FAILED at {phase} after {seconds:.1}s: {first_line}; {checked}{runs}"
                        )
                    },
                    f.code,
                    Some(phase.to_string()),
                    if refused { "refused" } else { "failed" },
                )
            }
        };
        // Phases never reached are listed as not run, so the report always has all of them.
        let mut all = Vec::new();
        let mut wanted = vec!["backup", "verify", "restore"];
        if !self.args.compare.is_empty() {
            wanted.push("compare");
        }
        if self.args.check_plan.is_some() {
            wanted.push("check");
        }
        for name in wanted {
            match self.phases.iter().position(|p| p.phase == name) {
                Some(i) => all.push(self.phases.remove(i)),
                None => all.push(PhaseReport {
                    phase: name,
                    status: "not_run",
                    ..PhaseReport::default()
                }),
            }
        }
        self.host.notice(&DrillNotice::Result(summary.clone()));
        let report = Report {
            format: REPORT_FORMAT,
            format_version: REPORT_VERSION,
            result: result_word,
            exit_code: code,
            failed_phase: failed,
            summary,
            started: self.started.clone(),
            finished: crate::exec::events::now(),
            duration_ms: self.clock.elapsed().as_millis() as u64,
            files_checked: self.files_checked,
            bytes_checked: self.bytes_checked,
            target: std::mem::take(&mut self.target),
            phases: all,
        };
        if let Some(path) = &self.args.report {
            if let Err(e) = write_report(path, &report) {
                self.host.notice(&DrillNotice::Error(format!(
                    "cannot write the drill report {}: {e}",
                    path.display()
                )));
                // A scheduled drill is judged by its report: a missing one is a failure.
                if code == exit::OK {
                    return exit::RUN_FAILED;
                }
            }
        }
        code
    }
}

fn refuse(message: String) -> Failure {
    Failure {
        code: exit::INVALID,
        message,
        refusal: true,
    }
}

fn param_value<'a>(
    plan: &'a CompiledPlan,
    name: &str,
    role: &str,
    path: &Path,
) -> Result<&'a opsplan_plan::params::ParamValue, Failure> {
    plan.params.0.get(name).ok_or_else(|| {
        let names: Vec<&str> = plan.params.0.keys().map(String::as_str).collect();
        let hint = opsplan_plan::diagnostic::did_you_mean(name, names.iter().copied())
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        refuse(format!(
            "--target-param: the {role} plan {} has no param `{name}`{hint} (its params: {}); \
             nothing was run",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}

enum Overlap {
    Same,
    Nested,
}

/// Whether two param values name the same place: equal, or, for absolute paths, one
/// inside the other (a restore into a folder below the source writes into the source).
fn same_place(a: &Value, b: &Value) -> Option<Overlap> {
    match (a, b) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = (a.trim(), b.trim());
            if a.starts_with('/') && b.starts_with('/') {
                let (a, b) = (normal_path(a), normal_path(b));
                if a == b {
                    Some(Overlap::Same)
                } else if a.starts_with(&b) || b.starts_with(&a) {
                    Some(Overlap::Nested)
                } else {
                    None
                }
            } else {
                (a.trim_end_matches('/') == b.trim_end_matches('/')).then_some(Overlap::Same)
            }
        }
        _ => (a == b).then_some(Overlap::Same),
    }
}

/// The path with symlinks resolved as far as it exists (the rest taken lexically).
fn normal_path(p: &str) -> PathBuf {
    let path = Path::new(p);
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return lexical(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return lexical(path),
        }
    }
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `PARAM=STEP.OUTPUT` -> (param, step, output).
fn parse_from_backup(items: &[String]) -> Result<Vec<(String, String, String)>, Failure> {
    let mut out = Vec::new();
    for item in items {
        let parsed = item.split_once('=').and_then(|(param, source)| {
            let (step, output) = source.rsplit_once('.')?;
            let ok = [param, step, output].iter().all(|p| !p.trim().is_empty());
            ok.then(|| {
                (
                    param.trim().into(),
                    step.trim().into(),
                    output.trim().into(),
                )
            })
        });
        match parsed {
            Some(p) => out.push(p),
            None => {
                return Err(refuse(format!(
                    "--restore-from-backup `{item}`: expected PARAM=STEP.OUTPUT (e.g. \
                     `archive=archive-path.stdout`); nothing was run"
                )))
            }
        }
    }
    Ok(out)
}

/// Step ids as plans write them (`archive-path`) or as templates do (`archive_path`).
fn same_id(id: &str, wanted: &str) -> bool {
    id == wanted || id.replace('-', "_") == wanted.replace('-', "_")
}

fn find_step<'p>(
    plan: &'p CompiledPlan,
    id: &str,
) -> Option<&'p opsplan_plan::compile::CompiledStep> {
    plan.steps.iter().find(|s| same_id(&s.id, id))
}

fn parse_compare(items: &[String]) -> Result<Vec<(PathBuf, Option<String>)>, Failure> {
    let mut out = Vec::new();
    for item in items {
        let (dir, sub) = match item.split_once('=') {
            Some((d, s)) => (d, Some(s.trim_matches('/').to_string())),
            None => (item.as_str(), None),
        };
        if dir.trim().is_empty()
            || sub
                .as_deref()
                .is_some_and(|s| s.split('/').any(|c| c == ".."))
        {
            return Err(refuse(format!(
                "--compare `{item}`: expected DIR or DIR=PATH (PATH inside the backup, as the \
                 manifest lists it, e.g. `--compare /scratch/db=data`); nothing was run"
            )));
        }
        out.push((PathBuf::from(dir), sub.filter(|s| !s.is_empty())));
    }
    Ok(out)
}

fn parent(manifest: &Path) -> PathBuf {
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

struct Interrupted;

/// Runs blocking file work with SIGINT/SIGTERM cancelling it: the phase runs that `run`
/// installed their handlers in have ended, so without this a signal during a long verify
/// would go unnoticed.
fn with_signals<T: Send + 'static>(
    work: impl FnOnce(&CancellationToken) -> Result<T, StepError> + Send + 'static,
) -> Result<Result<T, StepError>, Interrupted> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return Ok(Err(StepError::fatal(format!(
                "cannot start the runtime: {e}"
            ))))
        }
    };
    let token = CancellationToken::new();
    runtime.block_on(async {
        let watcher = token.clone();
        let listener = tokio::spawn(async move {
            if let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                watcher.cancel();
            }
        });
        let t = token.clone();
        let result = tokio::task::spawn_blocking(move || work(&t)).await;
        listener.abort();
        match result {
            _ if token.is_cancelled() => Err(Interrupted),
            Ok(r) => Ok(r),
            Err(e) => Ok(Err(StepError::fatal(format!(
                "internal error: the check stopped unexpectedly ({e})"
            )))),
        }
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "";
    for u in UNITS {
        v /= 1024.0;
        unit = u;
        if v < 1024.0 {
            break;
        }
    }
    format!("{v:.1} {unit} ({n} bytes)")
}

/// Written to a temporary name and renamed: a monitor never reads half a report.
fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "drill-report.json".into());
    let temp = path.with_file_name(format!(".{name}.opsplan-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
