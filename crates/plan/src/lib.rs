//! opsplan-plan: from plan text to a compiled plan, with no runtime and no service client.
//!
//! The pipeline, one module per stage:
//! [`source`] (text, spans, YAML nodes) → [`plan`] (typed model, fragments) →
//! [`validate`] (static checks) → [`params`] and [`template`] → [`compile`] (params,
//! `for_each`, the DAG). [`rollback`] says what runs after a failure; [`preview`] and [`graph`] interpret the compiled plan without
//! running it. [`step`] is the seam step types plug into, through a [`step::Registry`]
//! value passed to every stage; [`pipeline`] chains the stages; [`fields`] holds the argument checks both validate and the
//! step types use; [`params_file`] checks params files against a plan; [`library`] holds the shipped plans, embedded at build time; [`scaffold`]
//! writes a starter plan or ops repository (`opsplan new`).

pub mod compile;
pub mod diagnostic;
pub mod fields;
pub mod graph;
pub mod library;
pub mod params;
pub mod params_file;
pub mod pipeline;
pub mod plan;
pub mod preview;
pub mod reference;
pub mod refusal;
pub mod rollback;
pub mod scaffold;
pub mod schema;
pub mod source;
pub mod step;
pub mod template;
pub mod validate;
