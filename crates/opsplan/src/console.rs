//! What a run shows. Progress goes to stderr: a live view on a terminal (indicatif: a
//! spinner per running step with its time and attempt, the run's count and total time,
//! lines above them for what happened), plain lines when stderr is not a terminal, or JSON
//! Lines with `--log-format json` (one event object per line and nothing else on stderr:
//! every other message goes out as a `message` object). The result goes to stdout: the
//! summary table, or one JSON object, so `opsplan run … >> backup.log` keeps it.
//!
//! While a question waits for its answer the live view is paused (hidden, its lines held
//! back), so the question is not drawn over; see [`pause`].

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use opsplan_run::exec::events::{EventSink, Phase, RunEvent, StepStatus};
use opsplan_run::exec::RunReport;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Set once `--log-format json` is chosen: stderr then carries JSON Lines only.
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// The live view being drawn, if any: messages printed meanwhile go above it.
static LIVE: Mutex<Option<Arc<Live>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes stderr JSON Lines for the rest of the process (`--log-format json`).
pub(crate) fn set_json_lines() {
    JSON_LINES.store(true, Ordering::Relaxed);
}

/// Whether stderr carries JSON Lines only.
pub(crate) fn json_lines() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

/// Writes `text` to stderr the way the current output mode wants it: as a `message` object
/// with `--log-format json`, above the live view when one is drawn, else as it is.
pub(crate) fn eprint(text: &str) {
    if JSON_LINES.load(Ordering::Relaxed) {
        let text = text.trim_end_matches('\n');
        if !text.trim().is_empty() {
            json_line(&message_object(text));
        }
        return;
    }
    let live = lock(&LIVE).clone();
    match live {
        Some(live) => live.println(text.trim_end_matches('\n')),
        None => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// `{"event":"message","level":…,"message":…}` for a line of text; the level is read from
/// its `error:`/`warning:`/`note:` prefix (the prefix is then left out), else `info`.
pub(crate) fn message_object(text: &str) -> Value {
    let (level, message) = ["error", "warning", "note"]
        .iter()
        .find_map(|l| {
            text.strip_prefix(l)
                .and_then(|r| r.strip_prefix(':'))
                .map(|r| (*l, r.trim_start()))
        })
        .unwrap_or(("info", text));
    serde_json::json!({"event": "message", "level": level, "message": message})
}

/// One JSON Lines record on stderr, written at once so that lines never interleave.
pub(crate) fn json_line(value: &Value) {
    let mut value = value.clone();
    unnest_json(&mut value);
    let mut line = serde_json::to_string(&value).unwrap_or_default();
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// No JSON inside JSON strings: a string value that is itself a JSON object or array (a
/// step's output line, a captured stdout) is replaced by that value.
pub(crate) fn unnest_json(value: &mut Value) {
    match value {
        Value::String(s) => {
            let t = s.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(mut inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    unnest_json(&mut inner);
                    *value = inner;
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unnest_json),
        Value::Object(map) => map.values_mut().for_each(unnest_json),
        _ => {}
    }
}

/// Pauses the live view while a question waits (hidden, its lines held back) and brings it
/// back when the returned guard is dropped; nothing to do without a live view.
pub(crate) fn pause() -> Paused {
    let live = lock(&LIVE).clone();
    if let Some(live) = &live {
        // The bars are still (no ticks, no updates: those hold `running`) from the moment
        // they are cleared until the view is hidden, so nothing is drawn in between.
        let running = lock(&live.running);
        let mut held = lock(&live.held);
        if held.is_none() {
            for bar in running.values().chain([&live.total]) {
                bar.disable_steady_tick();
            }
            let _ = live.multi.clear();
            live.multi.set_draw_target(ProgressDrawTarget::hidden());
            *held = Some(Vec::new());
        }
    }
    Paused(live)
}

pub(crate) struct Paused(Option<Arc<Live>>);

impl Drop for Paused {
    fn drop(&mut self) {
        let Some(live) = &self.0 else {
            return;
        };
        let running = lock(&live.running);
        let mut held = lock(&live.held);
        live.multi.set_draw_target(ProgressDrawTarget::stderr());
        for line in held.take().unwrap_or_default() {
            let _ = live.multi.println(line);
        }
        for bar in running.values().chain([&live.total]) {
            bar.enable_steady_tick(TICK);
        }
    }
}

/// The indicatif view: a bar for the run (steps done of all, total time) under a spinner
/// per running step.
struct Live {
    multi: MultiProgress,
    total: ProgressBar,
    /// The running steps' spinners, by phase and step. Bars are changed only with this
    /// held (lock order: `running`, then `held`).
    running: Mutex<HashMap<String, ProgressBar>>,
    /// While paused: the lines to print once the view is back.
    held: Mutex<Option<Vec<String>>>,
}

/// How often the spinners turn and the times are redrawn.
const TICK: Duration = Duration::from_millis(120);

impl Live {
    fn new(steps: u64) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(steps));
        total.set_style(
            ProgressStyle::with_template("[{pos}/{len}] {elapsed:>4} total  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        total.enable_steady_tick(TICK);
        Live {
            multi,
            total,
            running: Mutex::new(HashMap::new()),
            held: Mutex::new(None),
        }
    }

    fn println(&self, text: &str) {
        let mut held = lock(&self.held);
        match &mut *held {
            Some(lines) => lines.push(text.to_string()),
            None => {
                let _ = self.multi.println(text);
            }
        }
    }

    fn spinner(&self) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new_spinner());
        let template = if console::colors_enabled_stderr() {
            "  {spinner:.cyan} {prefix:.bold} {elapsed:>4}  {wide_msg:.dim}"
        } else {
            "  {spinner} {prefix} {elapsed:>4}  {wide_msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if lock(&self.held).is_none() {
            bar.enable_steady_tick(TICK);
        }
        bar
    }
}

pub(crate) struct Console {
    format: LogFormat,
    /// Whether to draw the live view (a terminal, text format).
    draw: bool,
    /// The live view, from the run's start (nothing to draw before it).
    live: std::sync::OnceLock<Arc<Live>>,
    state: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    done: u64,
    total: u64,
    /// `run ID: plan NAME …`, the first line of the result on stdout.
    heading: Option<String>,
}

impl Console {
    /// A console for `format`; `live` draws the live view (stderr is a terminal).
    pub(crate) fn new(format: LogFormat, live: bool) -> Self {
        Console {
            format,
            draw: live && format == LogFormat::Text,
            live: std::sync::OnceLock::new(),
            state: Mutex::new(ViewState::default()),
        }
    }

    fn live(&self) -> Option<&Arc<Live>> {
        self.live.get()
    }

    /// Takes the live view down (the run ended, or never started); messages go straight
    /// to stderr again.
    pub(crate) fn finish(&self) {
        let Some(live) = self.live() else {
            return;
        };
        let _state = lock(&self.state);
        for (_, bar) in lock(&live.running).drain() {
            bar.finish_and_clear();
        }
        live.total.finish_and_clear();
        let _ = live.multi.clear();
        let mut current = lock(&LIVE);
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, live)) {
            *current = None;
        }
    }

    fn line(&self, text: &str) {
        match self.live() {
            Some(live) => live.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }

    /// The result of a run: the summary table under the run's heading, or one JSON object
    /// with `--log-format json`; on stdout, or on stderr when the run is a part of a larger
    /// command's result (a drill's phase: then it is a `run_summary` event).
    pub(crate) fn print_result(&self, run_id: &str, report: &RunReport, on_stdout: bool) {
        if self.format == LogFormat::Json {
            let steps: Vec<Value> = report
                .records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "step": r.id, "phase": r.phase, "status": r.status,
                        "attempts": r.attempts,
                        "duration_ms": u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                        "error": r.error,
                    })
                })
                .collect();
            let mut result = serde_json::json!({
                "run_id": run_id,
                "status": report.status,
                "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                "steps": steps,
            });
            if !on_stdout {
                result["event"] = "run_summary".into();
                json_line(&result);
                return;
            }
            unnest_json(&mut result);
            outln!("{}", serde_json::to_string(&result).unwrap_or_default());
            return;
        }
        let heading = lock(&self.state)
            .heading
            .clone()
            .unwrap_or_else(|| format!("run {run_id}"));
        let stream = if on_stdout {
            crate::tables::Stream::Stdout
        } else {
            crate::tables::Stream::Stderr
        };
        let text = format!("{heading}{}", crate::tables::run_summary(report, stream));
        if on_stdout {
            out!("{text}");
        } else {
            eprint(&text);
        }
    }

    fn text_event(&self, event: &RunEvent) {
        let mut state = lock(&self.state);
        let state = &mut *state;
        match event {
            RunEvent::RunStarted {
                run_id,
                plan,
                version,
                steps,
                at,
                ..
            } => {
                state.total = steps.len() as u64;
                let version = version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                state.heading = Some(format!("run {run_id}: plan {plan}{version}, started {at}"));
                if self.draw {
                    let live = self
                        .live
                        .get_or_init(|| Arc::new(Live::new(state.total)))
                        .clone();
                    live.total.set_message(format!("plan {plan}, run {run_id}"));
                    *lock(&LIVE) = Some(live);
                }
                self.line(&format!(
                    "run {run_id}: plan {plan}{version}, {} steps",
                    steps.len()
                ));
            }
            RunEvent::StepStarted {
                step,
                phase,
                attempt,
                action,
                ..
            } => {
                let name = format!("{}{step}", phase_prefix(*phase));
                let first = first_line(action);
                let tries = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                if let Some(live) = self.live() {
                    let mut running = lock(&live.running);
                    let bar = running
                        .entry(name.clone())
                        .or_insert_with(|| live.spinner());
                    bar.set_prefix(format!("{name}{tries}"));
                    bar.set_message(first.to_string());
                }
                self.line(&format!(
                    "{} {name}{tries}: {first}",
                    style(">").for_stderr().cyan()
                ));
            }
            // Recorded for resume; nothing an operator needs to see.
            RunEvent::ChildStarted { .. } => {}
            RunEvent::StepLog { step, stream, line } => {
                let tag = match stream {
                    opsplan_plan::step::Stream::Stdout => "|",
                    opsplan_plan::step::Stream::Stderr => "!",
                };
                self.line(&format!(
                    "  {step} {} {line}",
                    style(tag).for_stderr().dim()
                ));
            }
            RunEvent::AttemptFailed {
                step,
                phase,
                attempt,
                error,
                retry_in_ms,
            } => {
                let wait = retry_in_ms
                    .map(|ms| fmt_duration(Duration::from_millis(ms)))
                    .unwrap_or_default();
                let name = format!("{}{step}", phase_prefix(*phase));
                if let Some(live) = self.live() {
                    if let Some(bar) = lock(&live.running).get(&name) {
                        bar.set_message(format!(
                            "attempt {attempt} failed; retrying in {wait}: {}",
                            note_of(error)
                        ));
                    }
                }
                let retry = if wait.is_empty() {
                    String::new()
                } else {
                    format!("; retrying in {wait}")
                };
                self.line(&format!(
                    "{} {name}: attempt {attempt} failed: {}{retry}",
                    style("~").for_stderr().yellow(),
                    note_of(error)
                ));
            }
            RunEvent::StepFinished {
                step,
                phase,
                status,
                attempts,
                duration_ms,
                error,
                refused,
                ..
            } => {
                let name = format!("{}{step}", phase_prefix(*phase));
                if *phase == Phase::Forward {
                    state.done += 1;
                }
                if let Some(live) = self.live() {
                    let mut running = lock(&live.running);
                    if let Some(bar) = running.remove(&name) {
                        bar.finish_and_clear();
                        live.multi.remove(&bar);
                    }
                    live.total.set_position(state.done);
                }
                let d = fmt_duration(Duration::from_millis(*duration_ms));
                let tries = if *attempts > 1 {
                    format!(", {attempts} attempts")
                } else {
                    String::new()
                };
                let text = match status {
                    StepStatus::Succeeded => {
                        format!("{} {name} ({d}{tries})", style("ok").for_stderr().green())
                    }
                    StepStatus::Skipped => format!(
                        "{} {name} (`when` is false)",
                        style("skip").for_stderr().dim()
                    ),
                    StepStatus::Cancelled => {
                        format!("{} {name} ({d})", style("cancelled").for_stderr().yellow())
                    }
                    StepStatus::Failed => format!(
                        "{} {name} ({d}{tries}){}: {}",
                        style("FAILED").for_stderr().red().bold(),
                        if *refused {
                            ", refused: nothing acquired"
                        } else {
                            ""
                        },
                        error.clone().unwrap_or_default()
                    ),
                };
                self.line(&text);
            }
            RunEvent::RollbackStarted {
                reason,
                undo,
                cleanup,
                not_released,
            } => {
                self.line(&format!(
                    "{} ({}): undo [{}], cleanup [{}]",
                    style("rolling back").for_stderr().yellow(),
                    note_of(reason),
                    undo.join(", "),
                    cleanup.join(", ")
                ));
                for r in not_released {
                    self.line(&format!("{r} not released: its acquire was refused"));
                }
            }
            RunEvent::FanOut { step, list, items } => {
                state.total += items.len() as u64;
                if let Some(live) = self.live() {
                    live.total.inc_length(items.len() as u64);
                }
                let what = if items.is_empty() {
                    "no items: nothing to run".to_string()
                } else {
                    format!("{} item(s)", items.len())
                };
                self.line(&format!("{step}: one step per item of {list}: {what}"));
            }
            RunEvent::Signal { signal, action } => self.line(&format!("{signal}: {action}")),
            RunEvent::RunFinished { .. } => {}
        }
    }
}

pub(crate) fn phase_prefix(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "",
        Phase::Check => "check ",
        Phase::Undo => "undo ",
        Phase::Cleanup => "cleanup ",
    }
}

impl EventSink for Console {
    fn emit(&self, event: &RunEvent) {
        match self.format {
            LogFormat::Json => {
                if let Ok(value) = serde_json::to_value(event) {
                    json_line(&value);
                }
            }
            LogFormat::Text => self.text_event(event),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// The summary's note of a failed step: the error's first line, and when that line only
/// introduces what follows (`…; stderr:`), the last line that follows, usually the error
/// itself (`…; stderr: … pg_dump: error: connection refused`).
pub(crate) fn note_of(error: &str) -> String {
    let first = first_line(error).trim_end();
    if !first.ends_with(':') {
        return first.to_string();
    }
    match error
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .last()
    {
        Some(last) => format!("{first} … {last}"),
        None => first.trim_end_matches(':').to_string(),
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    crate::tables::duration(d)
}
