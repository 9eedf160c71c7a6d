//! `opsplan new plan FILE` and `opsplan new ops-repo DIR`: the work is in
//! `opsplan_plan::scaffold`; this parses and prints.

use super::plans::fail;
use clap::{Args, Subcommand};
use opsplan_plan::scaffold::{self, Options, Written};
use opsplan_plan::step::Registry;
use opsplan_run::exit;
use std::path::PathBuf;

/// `opsplan new`: a file to start from, that validates as written.
#[derive(Args)]
#[command(after_help = super::examples::NEW)]
pub(super) struct NewCli {
    #[command(subcommand)]
    what: NewWhat,
}

#[derive(Subcommand)]
enum NewWhat {
    /// Write a starter plan: metadata, params (a secret from `env:`), a confirmed
    /// destructive step, a resource released on every path, the `$schema` line.
    #[command(after_help = super::examples::NEW_PLAN)]
    Plan {
        /// The plan file to write.
        file: PathBuf,
        #[command(flatten)]
        options: NewArgs,
    },
    /// Write an ops repository like opsplan's examples/ops-repo/: a starter plan and two
    /// environments' params, CI, pre-commit, a systemd timer and a Kubernetes CronJob.
    #[command(after_help = super::examples::NEW_OPS_REPO)]
    OpsRepo {
        /// The folder to write the repository into.
        dir: PathBuf,
        #[command(flatten)]
        options: NewArgs,
    },
}

#[derive(Args)]
struct NewArgs {
    /// The plan's `metadata.name` (default: the file's name without `.yaml`; for
    /// `ops-repo`, also the starter plan's file and params folder).
    #[arg(long)]
    name: Option<String>,
    /// The plan's `metadata.system`.
    #[arg(long)]
    system: Option<String>,
    /// Overwrite files that exist (otherwise nothing is written).
    #[arg(long)]
    force: bool,
}

impl From<NewArgs> for Options {
    fn from(a: NewArgs) -> Self {
        Options {
            name: a.name,
            system: a.system,
            force: a.force,
        }
    }
}

pub(super) fn cmd(n: NewCli, registry: &Registry) -> i32 {
    match n.what {
        NewWhat::Plan { file, options } => {
            match scaffold::new_plan(&file, &options.into(), registry) {
                Ok(w) => {
                    wrote(&w);
                    match &w.schema_found {
                        Some(s) => errln!("its $schema line names {}", s.display()),
                        None => errln!("its $schema line names the schema written beside it"),
                    }
                    errln!(
                        "next: opsplan validate {f} --deny-warnings; opsplan preview {f}",
                        f = file.display()
                    );
                    exit::OK
                }
                Err(d) => fail(&d),
            }
        }
        NewWhat::OpsRepo { dir, options } => {
            match scaffold::new_ops_repo(&dir, &options.into(), registry) {
                Ok(w) => {
                    wrote(&w);
                    errln!(
                        "next: cd {} && git init && ci/check.sh   # OPSPLAN=/path/to/opsplan if it is not on PATH",
                        dir.display()
                    );
                    exit::OK
                }
                Err(d) => fail(&d),
            }
        }
    }
}

fn wrote(w: &Written) {
    for f in &w.files {
        errln!("wrote {}", f.display());
    }
    errln!("plan `{}` for system `{}`", w.name, w.system);
}
