//! Tables for people (the run summary, `opsplan runs`, `opsplan plans`, `opsplan generations`)
//! through comfy-table, fitted to the terminal's width when there is one; durations and dates
//! through jiff. Machine formats (`--format json`) do not come here.

use crate::console::{note_of, phase_prefix};
use comfy_table::{presets, Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table};
use jiff::fmt::friendly::{Designator, FractionalUnit, SpanPrinter};
use opsplan_run::exec::events::{RunStatus, StepStatus};
use opsplan_run::exec::{RunReport, StepRecord};
use std::time::Duration;

/// The table printed after a run: every step, what failed, what was rolled back; then the
/// verdict.
pub(crate) fn run_summary(report: &RunReport, stream: Stream) -> String {
    let rows = report
        .records
        .iter()
        .map(
            |StepRecord {
                 id,
                 phase,
                 status,
                 attempts,
                 duration: took,
                 error,
                 refused,
                 note: extra,
             }| {
                let status = match status {
                    StepStatus::Succeeded => "ok",
                    StepStatus::Failed => "FAILED",
                    StepStatus::Skipped => "skipped",
                    StepStatus::Cancelled => "cancelled",
                };
                let mut note = error.as_deref().map(note_of).unwrap_or_default();
                if *refused {
                    note = format!("refused, nothing acquired: {note}");
                }
                if let Some(extra) = extra {
                    note = if note.is_empty() {
                        extra.clone()
                    } else {
                        format!("{extra}; {note}")
                    };
                }
                vec![
                    format!("{}{id}", phase_prefix(*phase)),
                    status.to_string(),
                    attempts.to_string(),
                    duration(*took),
                    note,
                ]
            },
        )
        .collect();
    let verdict = match report.status {
        RunStatus::Succeeded => "succeeded".to_string(),
        RunStatus::Failed => "FAILED; rolled back".to_string(),
        RunStatus::Cancelled => "CANCELLED; rolled back".to_string(),
        // Only what no release gave back is named as held: a failed undo or a failed
        // `always` step after releases that all succeeded holds nothing.
        RunStatus::RollbackFailed if report.held.is_empty() => "FAILED and the ROLLBACK FAILED: check the steps marked FAILED above; every resource was released".to_string(),
        RunStatus::RollbackFailed => format!(
            "FAILED and the ROLLBACK FAILED: check the steps marked FAILED above; still held: {}",
            report
                .held
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let not_released: String = report
        .not_released
        .iter()
        .map(|r| format!("{r} not released: its acquire was refused\n"))
        .collect();
    format!(
        "\n{}{not_released}\nrun {verdict} in {}\n",
        table(
            stream,
            &["step", "status", "attempts", "time", "note"],
            &["attempts", "time"],
            rows
        ),
        duration(report.duration)
    )
}

/// Where a table is printed: its width is that stream's terminal's, when it is one.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// A borderless table: a header line, one line per row, two spaces between columns. When
/// `stream` is a terminal, long cells wrap so the table fits its width; in a file or a pipe
/// nothing wraps. Columns named in `right` are right-aligned (numbers, durations).
pub(crate) fn table(
    stream: Stream,
    header: &[&str],
    right: &[&str],
    rows: Vec<Vec<String>>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(Cell::new));
    let size = match stream {
        Stream::Stdout => terminal_size::terminal_size_of(std::io::stdout()),
        Stream::Stderr => terminal_size::terminal_size_of(std::io::stderr()),
    };
    match size {
        Some((terminal_size::Width(w), _)) => t.set_width(w),
        // Not a terminal: as wide as the cells (comfy-table would otherwise guess 80).
        None => t.set_content_arrangement(ContentArrangement::Disabled),
    };
    for row in rows {
        t.add_row(row);
    }
    for (i, h) in header.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            // Two spaces between columns, none before the first.
            c.set_padding((if i == 0 { 0 } else { 1 }, 1));
            if right.contains(h) {
                c.set_cell_alignment(CellAlignment::Right);
            }
            // Names, states and numbers keep their width; the last column (a description or
            // a note) is the one that wraps.
            if i + 1 < header.len() {
                c.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A duration for people: `0.4s`, `12.5s` under a minute, `1m 5s`, `2h 3m 4s` above.
pub(crate) fn duration(d: Duration) -> String {
    let printer = SpanPrinter::new().designator(Designator::Compact);
    if d < Duration::from_secs(60) {
        let tenths = jiff::SignedDuration::from_millis((d.as_millis() as i64 + 50) / 100 * 100);
        printer
            .fractional(Some(FractionalUnit::Second))
            .precision(Some(1))
            .duration_to_string(&tenths)
    } else {
        let secs = jiff::SignedDuration::from_secs(d.as_secs() as i64);
        printer.duration_to_string(&secs)
    }
}

/// An RFC 3339 time from the journal, for people: `2026-12-07 13:06:48 UTC` in the local time
/// zone (the journal keeps UTC); a text that does not parse is shown as it is.
pub(crate) fn date(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => t
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => rfc3339.to_string(),
    }
}
