//! Plan files: the typed model, loading with positions, and fragment inlining.

mod load;
pub mod model;

pub use load::{de_diagnostic, load_plan, LoadedPlan, Scope, ScopedStep};
pub use model::*;
