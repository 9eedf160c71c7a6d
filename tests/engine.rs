//! The engine, driven through the real binary: runs, the journal and resume after kills,
//! secrets, every step type against real services, the drill command, the bench harness.

// Test helpers are `pub` inside their modules; the binary exports nothing.
#![allow(unreachable_pub)]

// Helpers the modules share, compiled once.
#[path = "durable_common/mod.rs"]
mod durable_common;
#[path = "steps_common/mod.rs"]
mod steps_common;

#[path = "bench_smoke.rs"]
mod bench_smoke;
#[path = "crash_matrix.rs"]
mod crash_matrix;
#[path = "drill_cmd.rs"]
mod drill_cmd;
#[path = "durable.rs"]
mod durable;
#[path = "faults.rs"]
mod faults;
#[path = "generations.rs"]
mod generations;
#[path = "injection.rs"]
mod injection;
#[path = "inproc.rs"]
mod inproc;
#[path = "journal_syncs.rs"]
mod journal_syncs;
#[path = "library_resume.rs"]
mod library_resume;
#[path = "live.rs"]
mod live;
#[path = "refusal.rs"]
mod refusal;
#[path = "run.rs"]
mod run;
#[path = "secrets.rs"]
mod secrets;
#[path = "state_dir.rs"]
mod state_dir;
#[path = "steps_docker.rs"]
mod steps_docker;
#[path = "steps_facts.rs"]
mod steps_facts;
#[path = "steps_fs.rs"]
mod steps_fs;
#[path = "steps_k8s.rs"]
mod steps_k8s;
#[path = "steps_object.rs"]
mod steps_object;
#[path = "steps_pg.rs"]
mod steps_pg;
