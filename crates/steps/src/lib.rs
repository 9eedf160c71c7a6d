//! opsplan-steps: the built-in step types, one file each, and [`builtin`], the registry
//! that lists them. Each family that needs a service client (docker, k8s, object, pg) is
//! behind a default-on cargo feature.
//!
//! Adding a type touches its file and one line of [`builtin`].

pub mod assert;
pub mod confirm;
#[cfg(feature = "docker")]
pub mod docker;
pub mod exec;
pub mod fs;
pub mod generation;
pub mod http;
#[cfg(feature = "k8s")]
pub mod k8s;
#[cfg(feature = "object")]
pub mod object;
#[cfg(feature = "pg")]
pub mod pg;
pub mod process;
pub mod shell;
pub mod wait;

pub use opsplan_plan::step::*;

/// Every built-in step type, in the order the reference lists them.
pub fn builtin() -> Registry {
    let mut r = Registry::new();
    r.register::<exec::Exec>()
        .register::<shell::Shell>()
        .register::<http::Http>()
        .register::<wait::Wait>()
        .register::<assert::Assert>()
        .register::<confirm::Confirm>();
    #[cfg(feature = "docker")]
    r.register::<docker::exec::DockerExec>()
        .register::<docker::run::DockerRun>()
        .register::<docker::stop::DockerStop>()
        .register::<docker::start::DockerStart>()
        .register::<docker::restart::DockerRestart>()
        .register::<docker::copy::DockerCopy>()
        .register::<docker::volume::DockerVolume>();
    #[cfg(feature = "k8s")]
    r.register::<k8s::kubectl::Kubectl>()
        .register::<k8s::scale::Scale>()
        .register::<k8s::exec::K8sExec>()
        .register::<k8s::job::Job>()
        .register::<k8s::wait::K8sWait>();
    #[cfg(feature = "object")]
    r.register::<object::sync::ObjectSync>()
        .register::<object::stat::ObjectStat>();
    r.register::<fs::sync::FsSync>()
        .register::<fs::archive::Archive>()
        .register::<fs::manifest::Manifest>()
        .register::<fs::verify::Verify>()
        .register::<fs::facts::FactsCompare>()
        .register::<fs::remove::FsRemove>()
        .register::<generation::begin::GenerationBegin>()
        .register::<generation::commit::GenerationCommit>()
        .register::<generation::prune::GenerationPrune>()
        .register::<generation::select::GenerationSelect>();
    #[cfg(feature = "pg")]
    r.register::<pg::sql::Sql>()
        .register::<pg::dump::PgDump>()
        .register::<pg::restore::PgRestore>();
    r
}
