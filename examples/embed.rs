//! Embedding opsplan: load a plan, run it with a journal, a file lock and a custom event
//! sink, through the public API only. CI runs it: `cargo run --example embed`.

use opsplan_plan::params::ParamInputs;
use opsplan_plan::pipeline;
use opsplan_run::exec::events::{EventSink, RunEvent};
use opsplan_run::lock::file::FileLocks;
use opsplan_run::{JournalTarget, RunBuilder, RunStatus};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts the steps that finished, and prints each one.
#[derive(Default)]
struct Counter(AtomicUsize);

impl EventSink for Counter {
    fn emit(&self, event: &RunEvent) {
        if let RunEvent::StepFinished { step, status, .. } = event {
            self.0.fetch_add(1, Ordering::SeqCst);
            println!("embed: step {step}: {status:?}");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir()?;
    let source = work.path().join("data");
    std::fs::create_dir_all(&source)?;
    std::fs::write(source.join("a.txt"), "hello")?;

    let registry = Arc::new(opsplan_steps::builtin());
    let inputs = ParamInputs {
        set: vec![
            ("source".into(), source.display().to_string()),
            ("dest".into(), work.path().join("out").display().to_string()),
        ],
        file: None,
        read_secrets: true,
    };
    let plan = pipeline::load_compiled(
        &root.join("plans/examples/archive-folder.yaml"),
        &inputs,
        Vec::new(),
        &registry,
    )
    .map_err(|e| format!("the plan did not compile: {e:?}"))?;

    let counter = Arc::new(Counter::default());
    let outcome = RunBuilder::new(Arc::new(plan.plan))
        .journal(JournalTarget::New(work.path().join("runs")))
        .locks(Arc::new(FileLocks::new(work.path().join("locks"))))
        .sink(counter.clone())
        .run()
        .await?;
    println!(
        "embed: run {} {:?}, {} steps finished, journal {}",
        outcome.run_id,
        outcome.status(),
        counter.0.load(Ordering::SeqCst),
        outcome
            .journal
            .as_deref()
            .map_or("none".into(), |p| p.display().to_string())
    );
    if outcome.status() != RunStatus::Succeeded {
        return Err("the run did not succeed".into());
    }
    Ok(())
}
