//! opsplan: declarative runbooks for operating data systems.
//!
//! The pipeline, one module per stage:
//! [`source`] (text, spans, YAML nodes) → [`plan`] (typed model, fragments) →
//! [`validate`] (static checks) → [`compile`] (params, `for_each`, the DAG) →
//! [`exec`] (scheduler, retries, rollback; emits events) → [`report`] (preview, graph,
//! console). Step types live in [`steps`], one file each. [`journal`] records every run
//! and resumes it after a crash; [`lock`] holds the plan's locks for the run.

pub mod cli;
pub mod compile;
pub mod diagnostic;
pub mod exec;
pub mod journal;
pub mod lock;
pub mod params;
pub mod plan;
pub mod reference;
pub mod report;
pub mod schema;
pub mod source;
pub mod steps;
pub mod template;
pub mod validate;
