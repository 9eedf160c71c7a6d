//! The one test kit the test binaries share: where the repository is, the built-in
//! registry, the plan pipeline as the tests call it, and the service harnesses the test
//! binaries share ([`postgres`], [`moto`]), and the binary under test ([`bin`]).

pub mod bin;
pub mod docker;
pub mod kubectl;
pub mod moto;
pub mod postgres;
pub mod pty;

use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::plan::LoadedPlan;
use opsplan_plan::source::Sources;
use opsplan_plan::step::Registry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The built-in step types, built once.
pub fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Arc::new(opsplan_steps::builtin()))
        .clone()
}

/// Loads and validates a plan against the built-in types: (plan, diagnostics, fragment).
pub fn check_file(
    path: &Path,
    sources: &mut Sources,
) -> (Option<LoadedPlan>, Vec<Diagnostic>, bool) {
    let c = opsplan_plan::pipeline::check_file(path, sources, &registry());
    (c.plan, c.diagnostics, c.fragment)
}

/// A free TCP port on loopback (bound and released; a service binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The test runs as root (CI does).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
