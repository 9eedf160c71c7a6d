//! `opsplan runs` (one line per run) and `opsplan runs show RUN` (the timeline of one run),
//! both rendered from the folded journal state.

use super::console::{fmt_duration, note_of};
use opsplan_run::exec::events::{Phase, StepStatus};
use opsplan_run::journal::format::Meta;
use opsplan_run::journal::state::{PhaseState, RunState};
pub(crate) use opsplan_run::journal::store::Liveness;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunRow {
    pub run_id: String,
    pub status: String,
    pub plan: String,
    pub started: String,
    pub duration_ms: u64,
}

pub(crate) fn row(meta: &Meta, state: &RunState, live: Liveness) -> RunRow {
    RunRow {
        run_id: meta.run_id.clone(),
        status: live.label().into(),
        plan: meta.plan.name.clone(),
        started: meta.started.clone(),
        duration_ms: state.duration_ms,
    }
}

/// One line per run: id, status, plan, start (local time), duration.
pub(crate) fn list_text(rows: &[RunRow]) -> String {
    crate::tables::table(
        crate::tables::Stream::Stdout,
        &["run", "status", "plan", "started", "duration"],
        &["duration"],
        rows.iter()
            .map(|r| {
                vec![
                    r.run_id.clone(),
                    r.status.clone(),
                    r.plan.clone(),
                    crate::tables::date(&r.started),
                    fmt_duration(Duration::from_millis(r.duration_ms)),
                ]
            })
            .collect(),
    )
}

fn status_text(p: &PhaseState) -> String {
    match p.status {
        None => "IN DOUBT (started, no finish record)".into(),
        Some(StepStatus::Succeeded) => "ok".into(),
        Some(StepStatus::Skipped) => "skipped".into(),
        Some(StepStatus::Cancelled) => "cancelled".into(),
        // Its `refused_when` matched: the other side refused, so nothing was acquired and
        // the release did not run (it would free what someone else holds).
        Some(StepStatus::Failed) if p.refused => {
            "FAILED, refused (nothing acquired; its release does not run)".into()
        }
        Some(StepStatus::Failed) => "FAILED".into(),
    }
}

fn phase_lines(o: &mut String, label: &str, p: &PhaseState) {
    let attempts = p.attempts.len();
    let _ = writeln!(
        o,
        "  {label}  {}  ({} attempt{}, {})",
        status_text(p),
        attempts,
        if attempts == 1 { "" } else { "s" },
        fmt_duration(Duration::from_millis(p.duration_ms))
    );
    for a in &p.attempts {
        let _ = writeln!(
            o,
            "      attempt {} at {}: {}",
            a.number,
            a.at,
            a.action.lines().next().unwrap_or_default()
        );
        if let Some(e) = &a.error {
            let _ = writeln!(o, "        error: {}", note_of(e));
        }
    }
    if let Some(out) = &p.outputs {
        let mut keys: Vec<String> = Vec::new();
        for (k, v) in out {
            let mut text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if text.chars().count() > 60 {
                text = format!("{}…", text.chars().take(60).collect::<String>());
            }
            keys.push(format!("{k}={}", text.replace('\n', "\\n")));
        }
        if !keys.is_empty() {
            let _ = writeln!(o, "      outputs: {}", keys.join(", "));
        }
    }
}

/// What a run-time fan-out expanded into, from its journaled items.
fn fan_out_text(items: &[serde_json::Value]) -> String {
    if items.is_empty() {
        return "fan-out: no items (its `for_each` gave an empty list), nothing ran".into();
    }
    let shown: Vec<String> = items
        .iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    format!(
        "fan-out: one step per item, {} item(s): {}",
        items.len(),
        shown.join(", ")
    )
}

/// The timeline of one run: its steps in plan order with every phase they went through.
pub(crate) fn timeline_text(
    meta: &Meta,
    state: &RunState,
    live: Liveness,
    notes: &[String],
) -> String {
    let mut o = String::new();
    let version = meta
        .plan
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "run {}: plan {}{version}, {}",
        meta.run_id,
        meta.plan.name,
        live.label()
    );
    let _ = writeln!(
        o,
        "started {} by {} on {} (pid {}), {} session{}, {}",
        meta.started,
        meta.user,
        meta.host,
        meta.pid,
        state.sessions,
        if state.sessions == 1 { "" } else { "s" },
        fmt_duration(Duration::from_millis(state.duration_ms))
    );
    let _ = writeln!(
        o,
        "plan file {} ({})",
        meta.plan.path, meta.plan.content_hash
    );
    if !meta.params.is_empty() {
        let params: Vec<String> = meta
            .params
            .iter()
            .map(|(k, p)| {
                let v = match &p.value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{k}={v}")
            })
            .collect();
        let _ = writeln!(o, "params {}", params.join(", "));
    }
    if !meta.locks.is_empty() {
        let _ = writeln!(o, "locks {}", meta.locks.join(", "));
    }
    for n in notes {
        let _ = writeln!(o, "note: {n}");
    }
    let _ = writeln!(o, "\nsteps:");
    let w = state
        .steps
        .keys()
        .map(std::string::String::len)
        .max()
        .unwrap_or(4);
    for (id, s) in &state.steps {
        match &s.forward {
            None => {
                let _ = writeln!(o, "  {id:w$}  not run");
            }
            Some(p) => phase_lines(&mut o, &format!("{id:w$}"), p),
        }
        if let Some(items) = state.fan_outs.get(id) {
            let _ = writeln!(o, "      {}", fan_out_text(items));
        }
        if let Some(p) = &s.check {
            phase_lines(&mut o, &format!("{:w$}", format!("  check {id}")), p);
        }
    }
    if let Some(rb) = &state.rollback {
        let _ = writeln!(
            o,
            "\nrollback ({}): undo [{}], cleanup [{}]",
            note_of(&rb.reason),
            rb.undo.join(", "),
            rb.cleanup.join(", ")
        );
        for phase in [Phase::Undo, Phase::Cleanup] {
            for (id, s) in &state.steps {
                if let Some(p) = s.phase(phase) {
                    let name = match phase {
                        Phase::Undo => format!("undo {id}"),
                        _ => format!("cleanup {id}"),
                    };
                    phase_lines(&mut o, &name, p);
                }
            }
        }
    }
    for sig in &state.signals {
        let _ = writeln!(o, "\nsignal {}: {}", sig.signal, sig.action);
    }
    let end = match live {
        Liveness::Finished(_) => format!(
            "\nfinished {} ({})",
            state.finished.as_deref().unwrap_or("?"),
            live.label()
        ),
        Liveness::Running => "\nstill running".into(),
        Liveness::Interrupted => {
            let doubt: Vec<String> = state.in_doubt().into_iter().map(|(id, _)| id).collect();
            let doubt = if doubt.is_empty() {
                String::new()
            } else {
                format!("; in doubt: {}", doubt.join(", "))
            };
            format!(
                "\ninterrupted (the process is gone{doubt}): finish it with `opsplan resume {}`",
                meta.run_id
            )
        }
    };
    let _ = writeln!(o, "{end}");
    o
}
