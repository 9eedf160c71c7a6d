//! `opsplan runs` and `opsplan runs show RUN`.

use crate::runs as runs_report;
use opsplan_run::exit;
use opsplan_run::journal::{state, store};
use std::path::Path;

pub(super) fn cmd_runs_list(root: &Path, json: bool) -> i32 {
    let mut rows = Vec::new();
    for dir in store::list_dirs(root) {
        match store::open(&dir) {
            Ok(j) => {
                let st = state::fold(&j.records);
                rows.push(runs_report::row(&j.meta, &st, store::liveness(&dir, &st)));
            }
            Err(e) => errln!("warning: {e}"),
        }
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if rows.is_empty() {
        errln!("no runs in {}", root.display());
    } else {
        out!("{}", runs_report::list_text(&rows));
    }
    exit::OK
}

pub(super) fn cmd_runs_show(root: &Path, run: &str, json: bool) -> i32 {
    let journal = match store::find(root, run).and_then(|d| store::open(&d)) {
        Ok(j) => j,
        Err(e) => {
            errln!("error: {e}");
            return exit::INVALID;
        }
    };
    let st = state::fold(&journal.records);
    let live = store::liveness(&journal.dir, &st);
    let mut notes: Vec<String> = journal.torn.iter().map(ToString::to_string).collect();
    notes.extend(journal.unknown.iter().map(|(line, kind)| {
        format!("line {line}: a `{kind}` record this opsplan does not know; skipped")
    }));
    if json {
        let v = serde_json::json!({
            "meta": journal.meta, "status": live.label(), "state": st, "notes": notes,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out!(
            "{}",
            runs_report::timeline_text(&journal.meta, &st, live, &notes)
        );
    }
    exit::OK
}
