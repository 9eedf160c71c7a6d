//! The console sink: plain lines (always), a live status line of running steps on a
//! terminal, or JSON lines through tracing with `--log-format json`; then a summary table.

use opsplan_run::exec::events::{EventSink, Phase, RunEvent, StepStatus};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

pub(crate) struct Console {
    format: LogFormat,
    live: bool,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    running: BTreeMap<String, (Instant, u32)>,
    done: usize,
    total: usize,
    status_shown: bool,
}

impl Console {
    pub(crate) fn new(format: LogFormat, live: bool) -> Self {
        Console {
            format,
            live: live && format == LogFormat::Text,
            state: Mutex::new(LiveState::default()),
        }
    }

    fn line(&self, state: &mut LiveState, text: &str) {
        let mut err = std::io::stderr().lock();
        if state.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            state.status_shown = false;
        }
        let _ = writeln!(err, "{text}");
    }

    /// Redraws the status line (called by a ticker on terminals).
    pub(crate) fn tick(&self) {
        if !self.live {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.running.is_empty() {
            return;
        }
        let parts: Vec<String> = state
            .running
            .iter()
            .take(4)
            .map(|(id, (t, attempt))| {
                let retry = if *attempt > 1 {
                    format!(" try {attempt}")
                } else {
                    String::new()
                };
                format!("{id} {}s{retry}", t.elapsed().as_secs())
            })
            .collect();
        let more = state.running.len().saturating_sub(4);
        let more = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        let text = format!(
            "[{}/{}] running: {}{more}",
            state.done,
            state.total,
            parts.join(", ")
        );
        let width = terminal_width();
        let text: String = text.chars().take(width.saturating_sub(1)).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{text}");
        let _ = err.flush();
        state.status_shown = true;
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
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
        if self.format == LogFormat::Json {
            let json = serde_json::to_string(event).unwrap_or_default();
            tracing::info!(target: "opsplan::run", event = %json);
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let state = &mut *state;
        match event {
            RunEvent::RunStarted {
                run_id,
                plan,
                steps,
                ..
            } => {
                state.total = steps.len();
                self.line(
                    state,
                    &format!("run {run_id}: plan {plan}, {} steps", steps.len()),
                );
            }
            RunEvent::StepStarted {
                step,
                phase,
                attempt,
                action,
                ..
            } => {
                state
                    .running
                    .insert(step.clone(), (Instant::now(), *attempt));
                let first = action.lines().next().unwrap_or_default();
                let attempt = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                self.line(
                    state,
                    &format!("> {}{step}{attempt}: {first}", phase_prefix(*phase)),
                );
            }
            // Recorded for resume; nothing an operator needs to see.
            RunEvent::ChildStarted { .. } => {}
            RunEvent::StepLog { step, stream, line } => {
                let tag = match stream {
                    opsplan_plan::step::Stream::Stdout => "|",
                    opsplan_plan::step::Stream::Stderr => "!",
                };
                self.line(state, &format!("  {step} {tag} {line}"));
            }
            RunEvent::AttemptFailed {
                step,
                attempt,
                error,
                retry_in_ms,
                ..
            } => {
                let retry = retry_in_ms
                    .map(|ms| format!("; retrying in {}", fmt_duration(Duration::from_millis(ms))))
                    .unwrap_or_default();
                self.line(
                    state,
                    &format!(
                        "~ {step}: attempt {attempt} failed: {}{retry}",
                        first_line(error)
                    ),
                );
            }
            RunEvent::StepFinished {
                step,
                phase,
                status,
                duration_ms,
                error,
                ..
            } => {
                state.running.remove(step);
                if *phase == Phase::Forward {
                    state.done += 1;
                }
                let d = fmt_duration(Duration::from_millis(*duration_ms));
                let p = phase_prefix(*phase);
                let text = match status {
                    StepStatus::Succeeded => format!("ok {p}{step} ({d})"),
                    StepStatus::Skipped => format!("skip {p}{step} (`when` is false)"),
                    StepStatus::Cancelled => format!("cancelled {p}{step} ({d})"),
                    StepStatus::Failed => format!(
                        "FAILED {p}{step} ({d}): {}",
                        error.clone().unwrap_or_default()
                    ),
                };
                self.line(state, &text);
            }
            RunEvent::RollbackStarted {
                reason,
                undo,
                cleanup,
            } => {
                self.line(
                    state,
                    &format!(
                        "rolling back ({}): undo [{}], cleanup [{}]",
                        first_line(reason),
                        undo.join(", "),
                        cleanup.join(", ")
                    ),
                );
            }
            RunEvent::Signal { signal, action } => self.line(state, &format!("{signal}: {action}")),
            RunEvent::RunFinished { .. } => {}
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    crate::tables::duration(d)
}
