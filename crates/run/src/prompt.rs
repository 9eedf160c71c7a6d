//! The terminal's prompter: questions on stderr, answers from stdin, one question at a time
//! however many steps ask at once.

use opsplan_plan::step::{BoxFuture, Prompter};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
pub struct TerminalPrompter {
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl Prompter for TerminalPrompter {
    fn can_ask(&self) -> bool {
        std::io::stdin().is_terminal()
    }
    fn ask(&self, question: &str) -> BoxFuture<bool> {
        let question = question.to_string();
        let lock = self.one_at_a_time.clone();
        Box::pin(async move {
            let _turn = lock.lock().await;
            tokio::task::spawn_blocking(move || ask_blocking(&question))
                .await
                .unwrap_or(false)
        })
    }
}

/// True only for an explicit yes.
fn ask_blocking(message: &str) -> bool {
    use std::io::Write;
    // A closed stderr must not panic: the answer is then read blind, as before.
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "\n? {message} [y/N] ");
    let _ = stderr.flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}
