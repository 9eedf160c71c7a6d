//! The restore drills: each shipped plan against its system's lab (real services where
//! they can run here, contract stand-ins where they cannot). The drills share Docker images
//! and host tools, so each takes `common::one_at_a_time()` first.

// Test helpers are `pub` inside their modules; the binary exports nothing.
#![allow(unreachable_pub)]

// Helpers the drills share, compiled once.
#[path = "lab/common.rs"]
mod common;
#[path = "steps_common/mod.rs"]
mod steps_common;

#[path = "drill_cosmos.rs"]
mod drill_cosmos;
#[path = "drill_dop.rs"]
mod drill_dop;
#[path = "drill_hoss.rs"]
mod drill_hoss;
#[path = "drill_stackstate.rs"]
mod drill_stackstate;
