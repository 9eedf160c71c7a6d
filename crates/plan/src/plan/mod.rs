//! Plan files: the typed model, loading with positions, and fragment inlining.

mod load;
pub mod model;

pub use crate::diagnostic::de_diagnostic;
pub use load::{load_plan, LoadedPlan, Scope, ScopedStep};
pub use model::*;
