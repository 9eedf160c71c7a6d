//! The plan specification: fixtures in, diagnostics, previews, graphs and schema out.

// Test helpers are `pub` inside their modules; the binary exports nothing.
#![allow(unreachable_pub)]

#[path = "architecture.rs"]
mod architecture;
#[path = "cli_docs.rs"]
mod cli_docs;
#[path = "diagnostics.rs"]
mod diagnostics;
#[path = "fuzz_loader.rs"]
mod fuzz_loader;
#[path = "help.rs"]
mod help;
#[path = "library.rs"]
mod library;
#[path = "no_values.rs"]
mod no_values;
#[path = "plan_file_errors.rs"]
mod plan_file_errors;
#[path = "plans.rs"]
mod plans;
#[path = "preview.rs"]
mod preview;
#[path = "scaffold.rs"]
mod scaffold;
#[path = "schema.rs"]
mod schema;
#[path = "types_cmd.rs"]
mod types_cmd;
#[path = "validate.rs"]
mod validate;
