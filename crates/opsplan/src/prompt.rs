//! The terminal's prompter: dialoguer's yes/no question on stderr, answered on the terminal,
//! one question at a time however many steps ask at once. The live view is paused while a
//! question waits, so it does not draw over the question or the answer.

use opsplan_plan::step::{BoxFuture, Prompter};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
pub(crate) struct TerminalPrompter {
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Prompter for TerminalPrompter {
    /// The question is drawn on stderr and read from the terminal: both must be one.
    fn can_ask(&self) -> bool {
        std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
    }
    fn ask(&self, question: &str) -> BoxFuture<bool> {
        let question = question.to_string();
        let lock = self.one_at_a_time.clone();
        Box::pin(async move {
            let _turn = lock.lock().await;
            let _paused = crate::console::pause();
            tokio::task::spawn_blocking(move || ask_blocking(&question))
                .await
                .unwrap_or(false)
        })
    }
}

/// True only for an explicit yes (`y`, then Enter); no, Escape, `q`, end of input or an
/// error are a no.
fn ask_blocking(question: &str) -> bool {
    let term = console::Term::stderr();
    let colorful = dialoguer::theme::ColorfulTheme::default();
    let theme: &dyn dialoguer::theme::Theme = if crate::color::stderr() {
        &colorful
    } else {
        &dialoguer::theme::SimpleTheme
    };
    let answer = dialoguer::Confirm::with_theme(theme)
        .with_prompt(question)
        .default(false)
        .wait_for_newline(true)
        .interact_on_opt(&term);
    if !matches!(answer, Ok(Some(_))) {
        // Escape, Ctrl-C or an error leave the question's line open: end it, so that what
        // follows starts on a line of its own.
        let _ = term.show_cursor();
        let _ = term.write_line("");
    }
    let _ = term.flush();
    matches!(answer, Ok(Some(true)))
}
