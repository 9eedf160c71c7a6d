//! opsplan-run: runs a compiled plan.
