//! The `opsplan` command line. Each subcommand is a thin driver over the library stages.

use crate::color::ColorChoice;
use crate::console::LogFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use opsplan_plan::compile::CompiledPlan;
use opsplan_plan::diagnostic::{self, Diagnostic, Severity};
use opsplan_plan::params::ParamInputs;
use opsplan_plan::pipeline::{self, LoadError};
use opsplan_plan::source::Sources;
use opsplan_plan::step::{Answers, Registry};
use opsplan_plan::{graph, preview};
use opsplan_run::drill;
use opsplan_run::exec::events::EventSink;
use opsplan_run::exit;

mod examples;
mod execute;
mod generated;
mod generations;
mod new;
mod plans;
mod resume;
mod runs;
mod validate;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use validate::ValidateFormat;

#[derive(Parser)]
#[command(
    name = "opsplan",
    version,
    about = "Validated, previewable, recoverable runbooks for backup and restore",
    after_help = examples::OPSPLAN
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour: auto (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE forces it),
    /// always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(flatten)]
    verbosity: Verbosity,
}

/// `-q` and `-v`, given before or after the command.
#[derive(Args, Clone, Copy)]
struct Verbosity {
    /// Print only results and errors: no progress, notes or per-file lines; logs at `warn`.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more: the journal and lock folders a run uses; logs at `debug`.
    #[arg(short, long, global = true)]
    verbose: bool,
}

/// How much the commands print besides their results, from `-q`/`-v`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Quiet,
    Normal,
    Verbose,
}

/// The level of this process, set once from the command line.
static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();

/// How much to print besides results (`Normal` until the command line is read).
pub(crate) fn level() -> Level {
    LEVEL.get().copied().unwrap_or(Level::Normal)
}

impl From<Verbosity> for Level {
    fn from(v: Verbosity) -> Level {
        match (v.quiet, v.verbose) {
            (true, _) => Level::Quiet,
            (false, true) => Level::Verbose,
            (false, false) => Level::Normal,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Check plan files (or folders of them) and report every problem found.
    #[command(after_help = examples::VALIDATE)]
    Validate {
        /// Plan files or folders, or shipped plans' names. A folder is searched for *.yaml and *.yml files that are
        /// opsplan files (`apiVersion: opsplan/…`); other YAML and hidden files are skipped
        /// and counted. No plan found is an error.
        #[arg(default_value = "plans")]
        paths: Vec<PathBuf>,
        /// Check these params files (or folders of them, one file per environment) against
        /// the plan: unknown keys, types, choices, missing values, secrets in clear.
        #[arg(long, value_name = "FILE|DIR", num_args = 1..)]
        params: Vec<PathBuf>,
        /// Fail on warnings too.
        #[arg(short = 'W', long)]
        deny_warnings: bool,
        /// text (stderr), json, sarif (SARIF 2.1.0) or github (workflow annotations), on
        /// stdout; the summary line is on stderr in every format.
        #[arg(short = 'o', long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// Show what a run would do, without touching anything.
    #[command(after_help = examples::PREVIEW)]
    Preview {
        /// The plan file, or a shipped plan's name (`opsplan plans` lists them).
        plan: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Show exactly what runs when this step fails; `STEP:refused` when its failure
        /// matches its `refused_when` (nothing acquired).
        #[arg(long, value_name = "STEP[:refused]")]
        fail_at: Option<String>,
        /// text for a terminal, markdown for a change ticket, json for a program.
        #[arg(short = 'o', long, value_enum, default_value_t = PreviewFormat::Text)]
        format: PreviewFormat,
    },
    /// Print the plan's DAG, with undo and cleanup edges.
    #[command(after_help = examples::GRAPH)]
    Graph {
        /// The plan file, or a shipped plan's name (`opsplan plans` lists them).
        plan: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// dot (Graphviz) or mermaid (Markdown pages that render Mermaid).
        #[arg(short = 'o', long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Run a plan.
    #[command(after_help = examples::RUN)]
    Run {
        /// The plan file, or a shipped plan's name (`opsplan plans` lists them).
        plan: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        durable: DurableArgs,
        /// Do not write a run journal (the run cannot be resumed after a crash).
        #[arg(long)]
        no_journal: bool,
    },
    /// Restore drill: run the backup plan, verify the backup against its manifest, run the
    /// restore plan against a scratch target, compare, check (docs/reference/drill.md).
    #[command(after_help = examples::DRILL)]
    Drill(Box<DrillCli>),
    /// Finish a run that a crash (or kill -9) interrupted, from its journal.
    #[command(after_help = examples::RESUME)]
    Resume {
        /// The run id, a unique prefix of it (as `opsplan runs` lists them), or `last`.
        run: String,
        /// Do not go forward: only undo and clean up what the run did.
        #[arg(long)]
        rollback: bool,
        /// Resume even though the plan file changed since the run started.
        #[arg(long)]
        allow_changed_plan: bool,
        /// Run this step again although the crash left it in doubt and its `on_resume` is
        /// `ask` (repeatable).
        #[arg(long, value_name = "STEP")]
        rerun: Vec<String>,
        /// Give a secret param again when its original source was `--set` (NAME=VALUE).
        #[arg(short, long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
        set: Vec<(String, String)>,
        #[command(flatten)]
        exec: ExecArgs,
        #[command(flatten)]
        durable: DurableArgs,
    },
    /// List the runs in the journal folder, or show one run's timeline.
    #[command(after_help = examples::RUNS)]
    Runs {
        #[command(subcommand)]
        action: Option<RunsAction>,
        /// Folder of run journals [default: $STATE_DIRECTORY, else $XDG_STATE_HOME/opsplan,
        /// else ~/.local/state/opsplan, else /var/lib/opsplan for root; then runs/].
        #[arg(long, global = true, env = "OPSPLAN_JOURNAL_DIR", hide_env_values = true, default_value_os_t = opsplan_run::journal::default_dir(), hide_default_value = true)]
        journal_dir: PathBuf,
        /// text (a table) or json.
        #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// The plans this opsplan ships: list them, show, export an editable copy, diff a copy.
    Plans(plans::PlansCli),
    /// List the backup generations in a backup location with their state and age.
    #[command(after_help = examples::GENERATIONS)]
    Generations {
        /// The backup location (a backup plan's `backup_dir`).
        dir: PathBuf,
        /// text (a table) or json.
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Write a plan or an ops repository to start from, that validates as written.
    New(new::NewCli),
    /// Print the JSON Schema of plan files (or check a committed copy).
    #[command(after_help = examples::SCHEMA)]
    Schema {
        /// Compare with this file instead of printing; exit 1 when it differs.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// List the step types with their outputs, or print one type's arguments and outputs.
    #[command(after_help = examples::TYPES)]
    Types {
        /// A step type (`fs.sync`): its arguments, their types and defaults, and its outputs.
        name: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell), or write the
    /// committed bash, zsh and fish scripts into a folder (or check them with --check).
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        /// The shell whose script is printed on stdout.
        #[arg(value_enum, required_unless_present = "dir")]
        shell: Option<clap_complete::Shell>,
        /// Write `opsplan.bash`, `_opsplan` and `opsplan.fish` into this folder instead.
        #[arg(long, value_name = "DIR", conflicts_with = "shell")]
        dir: Option<PathBuf>,
        /// With --dir: exit 1 when a script there differs from what would be generated.
        #[arg(long, requires = "dir")]
        check: bool,
    },
    /// Print the man page (roff), or write the pages of every command into a folder (or check
    /// them with --check).
    #[command(after_help = examples::MAN)]
    Man {
        /// Write `opsplan.1` and one `opsplan-COMMAND.1` per command into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// With --dir: exit 1 when a page there differs from what would be generated.
        #[arg(long, requires = "dir")]
        check: bool,
    },
    /// Write the generated reference pages into a folder (or check them with --check).
    #[command(after_help = examples::REFERENCE)]
    Reference {
        /// The folder of the reference pages.
        #[arg(default_value = "docs/reference")]
        dir: PathBuf,
        /// Exit 1 when a page in DIR differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
}

/// `opsplan drill` (boxed: it has more flags than every other command).
#[derive(Args)]
struct DrillCli {
    /// The backup plan; its `manifest` steps say which backups the drill verifies.
    backup_plan: PathBuf,
    /// The restore plan, run with params that point it at a scratch target.
    restore_plan: PathBuf,
    /// Read the backup plan's params from a YAML or JSON file.
    #[arg(long, value_name = "FILE")]
    backup_params: Option<PathBuf>,
    /// Set a backup plan param (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_set)]
    set_backup: Vec<(String, String)>,
    /// Read the restore plan's params from a YAML or JSON file.
    #[arg(long, value_name = "FILE")]
    restore_params: Option<PathBuf>,
    /// Set a restore plan param (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_set)]
    set_restore: Vec<(String, String)>,
    /// The param that names the target: the backup plan's value is the source, the
    /// restore plan's the scratch target, and they must differ. `NAME` when both plans
    /// call it the same, else `BACKUP_NAME=RESTORE_NAME`. Repeatable: the target is
    /// then all of them together (host and database).
    #[arg(long, value_name = "NAME|BACKUP=RESTORE", required = true)]
    target_param: Vec<String>,
    /// Compare this restored folder with the backup's manifest (sizes and SHA-256);
    /// `DIR=PATH` compares it with the manifest's entries below PATH. Repeatable.
    #[arg(long, value_name = "DIR[=PATH]")]
    compare: Vec<String>,
    /// A plan run last that checks the restored data (its failing step fails the drill).
    #[arg(long = "check", value_name = "PLAN")]
    check: Option<PathBuf>,
    /// Read the check plan's params from a YAML or JSON file.
    #[arg(long, value_name = "FILE")]
    check_params: Option<PathBuf>,
    /// Set a check plan param (repeatable).
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_set)]
    set_check: Vec<(String, String)>,
    /// Also verify this backup folder against its manifest (for backups whose plan
    /// has no `manifest` step of its own).
    #[arg(long, value_name = "DIR")]
    backup_folder: Option<PathBuf>,
    /// The manifest's file name in --backup-folder.
    #[arg(long, value_name = "NAME", default_value = opsplan_steps::fs::manifest::DEFAULT_FILE)]
    manifest_file: String,
    /// Set a restore param from an output of a backup step, once the backup ran (a
    /// backup named by its time: `archive=archive-path.stdout`). Repeatable.
    #[arg(long, value_name = "PARAM=STEP.OUTPUT")]
    restore_from_backup: Vec<String>,
    /// Let this `verify` step of the restore plan verify the backup, instead of the
    /// drill reading the backup's manifest steps (a backup that keeps its manifest
    /// elsewhere than the folder its `manifest` step wrote).
    #[arg(long, value_name = "STEP")]
    verified_by: Option<String>,
    /// Write the JSON report of the drill here (also when it fails).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    #[command(flatten)]
    exec: ExecArgs,
    #[command(flatten)]
    durable: DurableArgs,
}

#[derive(Subcommand)]
enum RunsAction {
    /// The timeline of one run: every step, attempt, output, error and what was rolled back.
    #[command(after_help = examples::RUNS_SHOW)]
    Show {
        /// The run id, a unique prefix of it, or `last`.
        run: String,
    },
}

/// How steps run (shared by `run` and `resume`).
#[derive(Args, Clone)]
struct ExecArgs {
    /// Most steps running at once.
    #[arg(short = 'j', long, default_value_t = 4)]
    max_parallel: usize,
    /// Answer every `confirm` step with yes.
    #[arg(short, long)]
    yes: bool,
    /// Allow destructive steps without asking.
    #[arg(short, long)]
    force: bool,
    /// Time a cancelled process gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// text (a line per event, a live view on a terminal) or json (JSON Lines on stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// Journal and lock places and lock behaviour (shared by `run` and `resume`).
#[derive(Args, Clone)]
struct DurableArgs {
    /// Folder of run journals, one sub-folder per run [default: $STATE_DIRECTORY, else
    /// $XDG_STATE_HOME/opsplan, else ~/.local/state/opsplan, else /var/lib/opsplan for root;
    /// then runs/].
    #[arg(long, env = "OPSPLAN_JOURNAL_DIR", hide_env_values = true, default_value_os_t = opsplan_run::journal::default_dir(), hide_default_value = true)]
    journal_dir: PathBuf,
    /// Folder of the local lock files [default: locks/ beside the default journal folder].
    #[arg(long, env = "OPSPLAN_LOCK_DIR", hide_env_values = true, default_value_os_t = opsplan_run::journal::default_lock_dir(), hide_default_value = true)]
    lock_dir: PathBuf,
    /// Take over a stale lock (its run's process is gone) after you checked that nothing
    /// that run held is left.
    #[arg(long)]
    break_lock: bool,
    /// Wait up to this long for a lock held by a running run, instead of refusing at once.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    wait_lock: Option<Duration>,
}

#[derive(Args, Clone, Default)]
struct ParamArgs {
    /// Set a param: --set name=value (repeatable).
    #[arg(short, long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// Read params from a YAML or JSON file.
    #[arg(short = 'p', long = "params", value_name = "FILE")]
    file: Option<PathBuf>,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PreviewFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

pub(crate) fn main() -> i32 {
    let registry = Arc::new(opsplan_steps::builtin());
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let color = ColorChoice::from_args(&args);
    crate::color::init(color);
    let parsed = <Cli as clap::CommandFactory>::command()
        .color(color.for_clap())
        .try_get_matches_from(args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            };
        }
    };
    let _ = LEVEL.set(cli.verbosity.into());
    match cli.command {
        Command::Validate {
            paths,
            params,
            deny_warnings,
            format,
        } if !params.is_empty() => match format {
            ValidateFormat::Text => plans::cmd_validate_params(
                &paths,
                &params,
                deny_warnings,
                OutputFormat::Text,
                &registry,
            ),
            ValidateFormat::Json => plans::cmd_validate_params(
                &paths,
                &params,
                deny_warnings,
                OutputFormat::Json,
                &registry,
            ),
            ValidateFormat::Sarif | ValidateFormat::Github => {
                errln!("error: --params reports as text or json (--format text|json); SARIF and GitHub annotations cover plan files only");
                exit::INVALID
            }
        },
        Command::Validate {
            paths,
            deny_warnings,
            format,
            ..
        } => cmd_validate(&paths, deny_warnings, format, &registry),
        Command::Plans(p) => plans::cmd(p),
        Command::New(n) => new::cmd(n, &registry),
        Command::Preview {
            plan,
            params,
            fail_at,
            format,
        } => match plans::resolve(&plan) {
            Ok(plan) => cmd_preview(&plan, &params, fail_at.as_deref(), format, &registry),
            Err(code) => code,
        },
        Command::Graph {
            plan,
            params,
            format,
        } => match load_preview(&plan, &params, &registry) {
            Ok(p) => {
                if !p.not_given.is_empty() && level() != Level::Quiet {
                    let note = preview::not_given_note(&p.not_given, |n| format!("⟨params.{n}⟩"));
                    errln!("note: {note}");
                }
                out!(
                    "{}",
                    match format {
                        GraphFormat::Dot => graph::dot(&p),
                        GraphFormat::Mermaid => graph::mermaid(&p),
                    }
                );
                exit::OK
            }
            Err(code) => code,
        },
        Command::Run {
            plan,
            params,
            exec,
            durable,
            no_journal,
        } => match plans::resolve(&plan) {
            Ok(plan) => cmd_run(&plan, &params, &exec, &durable, no_journal, &registry),
            Err(code) => code,
        },
        Command::Drill(d) => {
            let DrillCli {
                backup_plan,
                restore_plan,
                backup_params,
                set_backup,
                restore_params,
                set_restore,
                target_param,
                compare,
                check,
                check_params,
                set_check,
                backup_folder,
                manifest_file,
                restore_from_backup,
                verified_by,
                report,
                exec,
                durable,
            } = *d;
            let (backup_plan, restore_plan, check) = match (
                plans::resolve(&backup_plan),
                plans::resolve(&restore_plan),
                check.as_deref().map(plans::resolve).transpose(),
            ) {
                (Ok(b), Ok(r), Ok(c)) => (b, r, c),
                (Err(code), _, _) | (_, Err(code), _) | (_, _, Err(code)) => return code,
            };
            let inputs = |set, file| ParamInputs {
                set,
                file,
                read_secrets: true,
            };
            let exec: ExecOptions = exec.into();
            init_tracing(exec.log_format);
            let host = DrillHost {
                exec: exec.clone(),
                durable: durable.into(),
                registry: registry.clone(),
            };
            drill::drill(
                drill::DrillArgs {
                    backup_plan,
                    restore_plan,
                    backup_params: inputs(set_backup, backup_params),
                    restore_params: inputs(set_restore, restore_params),
                    check_plan: check,
                    check_params: inputs(set_check, check_params),
                    target_params: target_param,
                    compare,
                    backup_folder,
                    manifest_file,
                    restore_from_backup,
                    verified_by,
                    report,
                    force: exec.answers.force,
                },
                &host,
            )
        }
        Command::Resume {
            run,
            rollback,
            allow_changed_plan,
            rerun,
            set,
            exec,
            durable,
        } => {
            let durable: execute::DurableOptions = durable.into();
            resume::cmd_resume(
                opsplan_run::resume::ResumeRequest {
                    journal_root: durable.journal_dir.clone(),
                    run,
                    rollback,
                    allow_changed_plan,
                    rerun,
                    set,
                },
                exec.into(),
                durable,
                &registry,
            )
        }
        Command::Runs {
            action,
            journal_dir,
            format,
        } => {
            if level() == Level::Verbose {
                errln!(
                    "journal folder: {}",
                    opsplan_run::journal::absolute(&journal_dir).display()
                );
            }
            match action {
                None => runs::cmd_runs_list(&journal_dir, format == OutputFormat::Json),
                Some(RunsAction::Show { run }) => {
                    runs::cmd_runs_show(&journal_dir, &run, format == OutputFormat::Json)
                }
            }
        }
        Command::Generations { dir, format } => {
            generations::cmd_generations(&dir, format == OutputFormat::Json)
        }
        Command::Schema { check } => cmd_schema(check.as_deref(), &registry),
        Command::Reference { dir, check } => cmd_reference(&dir, check, &registry),
        Command::Completions { shell, dir, check } => {
            generated::cmd_completions(shell, dir.as_deref(), check)
        }
        Command::Man { dir, check } => generated::cmd_man(dir.as_deref(), check),
        Command::Types { name: Some(name) } => {
            match opsplan_plan::reference::step_type(&registry, &name) {
                Some(text) => {
                    out!("{text}");
                    exit::OK
                }
                None => {
                    let help = diagnostic::did_you_mean(&name, registry.iter().map(|t| t.name()))
                        .map(|m| format!("; did you mean `{m}`?"))
                        .unwrap_or_default();
                    errln!("error: no step type `{name}`{help} (`opsplan types` lists them)");
                    exit::INVALID
                }
            }
        }
        Command::Types { name: None } => {
            for t in registry.iter() {
                let outs: Vec<&str> = t.outputs().iter().map(|o| o.name).collect();
                outln!("{:14} {}", t.name(), t.summary());
                if !outs.is_empty() {
                    outln!("{:14} outputs: {}", "", outs.join(", "));
                }
            }
            exit::OK
        }
    }
}

/// Diagnostics on stderr: miette's report (coloured as `--color` decided), or one
/// `diagnostic` object per line when stderr carries JSON Lines (`--log-format json`).
fn print_diagnostics(diags: &[Diagnostic], sources: &Sources) {
    for d in diags {
        if crate::console::json_lines() {
            let mut object = diagnostic::to_json(d, sources);
            if let Some(map) = object.as_object_mut() {
                map.insert("event".into(), "diagnostic".into());
            }
            crate::console::json_line(&object);
        } else if d.code == diagnostic::Code::Io && d.labels.is_empty() {
            // A file that cannot be read has no place to show: it prints the way every
            // command reports it (`error[E001]: cannot read plan file …`).
            plans::print_placeless(d);
        } else {
            err!("{}", diagnostic::render(d, sources, crate::color::stderr()));
        }
    }
}

fn cmd_validate(
    paths: &[PathBuf],
    deny_warnings: bool,
    format: ValidateFormat,
    registry: &Arc<Registry>,
) -> i32 {
    let found = match validate::find_plans(paths) {
        Ok(f) => f,
        Err(d) => return plans::fail(&d),
    };
    if found.files.is_empty() {
        errln!("{}", validate::nothing_found(paths, &found));
        return exit::INVALID;
    }
    let files = &found.files;
    let (mut errors, mut warnings) = (0, 0);
    let mut json = Vec::new();
    let mut reports = Vec::new();
    for file in files {
        let mut sources = Sources::default();
        let pipeline::Checked {
            diagnostics: diags,
            fragment,
            ..
        } = pipeline::check_file(file, &mut sources, registry);
        errors += diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        warnings += diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        match format {
            ValidateFormat::Text => {
                print_diagnostics(&diags, &sources);
                if diags.is_empty() && level() != Level::Quiet {
                    let what = if fragment {
                        "fragment (checked where it is used)"
                    } else {
                        "ok"
                    };
                    errln!("{}: {what}", file.display());
                }
            }
            ValidateFormat::Json => {
                json.extend(diags.iter().map(|d| diagnostic::to_json(d, &sources)));
            }
            ValidateFormat::Sarif | ValidateFormat::Github => reports.push(validate::FileReport {
                file: file.clone(),
                sources,
                diagnostics: diags,
            }),
        }
    }
    let skipped = validate::skipped_text(&found);
    match format {
        ValidateFormat::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "files": files.len(), "errors": errors, "warnings": warnings,
                "skipped": {"other_yaml": found.other_yaml, "hidden": found.hidden},
                "diagnostics": json,
            }))
            .unwrap_or_default()
        ),
        ValidateFormat::Sarif => outln!(
            "{}",
            serde_json::to_string_pretty(&validate::sarif(&reports)).unwrap_or_default()
        ),
        ValidateFormat::Github => out!("{}", validate::github(&reports)),
        ValidateFormat::Text => {}
    }
    errln!(
        "{} file(s): {errors} error(s), {warnings} warning(s){skipped}",
        files.len()
    );
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::INVALID
    } else {
        exit::OK
    }
}

/// Load, validate and compile; diagnostics are printed and mapped to exit code 2.
fn load_compiled(
    path: &Path,
    args: &ParamArgs,
    read_secrets: bool,
    registry: &Arc<Registry>,
) -> Result<CompiledPlan, i32> {
    let inputs = ParamInputs {
        set: args.set.clone(),
        file: args.file.clone(),
        read_secrets,
    };
    load_inputs(path, &inputs, registry)
}

/// Load for preview and graph: params without a value (secrets too) become placeholders
/// `⟨params.NAME⟩`; the preview and the graph say which.
fn load_preview(
    path: &Path,
    args: &ParamArgs,
    registry: &Arc<Registry>,
) -> Result<CompiledPlan, i32> {
    let path = plans::resolve(path)?;
    let inputs = ParamInputs {
        set: args.set.clone(),
        file: args.file.clone(),
        read_secrets: false,
    };
    report_load(pipeline::load_for_preview(&path, &inputs, registry))
}

fn load_inputs(
    path: &Path,
    inputs: &ParamInputs,
    registry: &Arc<Registry>,
) -> Result<CompiledPlan, i32> {
    report_load(pipeline::load_compiled(path, inputs, Vec::new(), registry))
}

/// Prints the warnings or errors of a load; errors map to exit code 2.
fn report_load(loaded: Result<pipeline::Compiled, LoadError>) -> Result<CompiledPlan, i32> {
    match loaded {
        Ok(c) => {
            print_diagnostics(&c.warnings, &c.sources);
            Ok(c.plan)
        }
        Err(LoadError::Invalid {
            diagnostics,
            sources,
        }) => {
            print_diagnostics(&diagnostics, &sources);
            Err(exit::INVALID)
        }
        Err(LoadError::Fragment { path }) => {
            errln!(
                "{}: a fragment cannot run alone; use it from a plan with `uses:`",
                path.display()
            );
            Err(exit::INVALID)
        }
    }
}

/// The drill's phases are loaded and run the way `opsplan load`/`run` do.
struct DrillHost {
    exec: ExecOptions,
    durable: execute::DurableOptions,
    registry: Arc<Registry>,
}

impl drill::DrillHost for DrillHost {
    fn notice(&self, notice: &drill::DrillNotice) {
        match notice {
            drill::DrillNotice::Result(_) => outln!("{notice}"),
            _ => errln!("{notice}"),
        }
    }
    fn load(&self, path: &Path, params: &ParamInputs) -> Result<CompiledPlan, i32> {
        load_inputs(path, params, &self.registry)
    }
    fn execute(
        &self,
        plan: Arc<CompiledPlan>,
        run_id: String,
        observer: Arc<dyn EventSink>,
    ) -> i32 {
        let builder = execute::configure(
            opsplan_run::RunBuilder::new(plan),
            &self.exec,
            &self.durable,
        )
        .journal(opsplan_run::JournalTarget::New(
            self.durable.journal_dir.clone(),
        ));
        let builder = builder.with_run_id(run_id);
        execute::execute(builder, &self.exec, Some(observer))
    }
}

fn cmd_preview(
    path: &Path,
    args: &ParamArgs,
    fail_at: Option<&str>,
    format: PreviewFormat,
    registry: &Arc<Registry>,
) -> i32 {
    let plan = match load_preview(path, args, registry) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // `STEP:refused`: the step's failure is a refusal (its `refused_when` matched). A step
    // id may itself hold `:` (a `for_each` item), so the whole text is looked up first.
    let (fail_at, refused) = match fail_at {
        Some(text) if plan.index_of(text).is_none() => match text.strip_suffix(":refused") {
            Some(id) => (Some(id), true),
            None => (Some(text), false),
        },
        other => (other, false),
    };
    let fail_index = match fail_at {
        None => None,
        Some(id) => match plan.index_of(id) {
            Some(i) if refused && plan.steps[i].refused_when.is_none() => {
                errln!(
                    "error: --fail-at `{id}:refused`: step `{id}` has no `refused_when`, so none of its failures is a refusal"
                );
                return exit::INVALID;
            }
            Some(i) => Some(i),
            None => {
                let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
                let hint = diagnostic::did_you_mean(id, ids.iter().copied())
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                errln!("error: --fail-at `{id}`: no such step{hint}");
                return exit::INVALID;
            }
        },
    };
    let p = preview::build_failing(&plan, fail_index, refused);
    // The preview holds what it shows: the compiled plan can go before the output is made
    // (a 100,000-step plan's steps are tens of megabytes).
    drop(plan);
    match format {
        PreviewFormat::Text => out!("{}", preview::text(&p)),
        // Written as it is serialized, not built as one string first (the JSON of a large
        // plan is several times the plan file's size).
        PreviewFormat::Json => {
            use std::io::Write as _;
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            let _ = serde_json::to_writer_pretty(&mut stdout, &p)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
                .and_then(|()| stdout.flush());
        }
        PreviewFormat::Markdown => out!("{}", preview::markdown(&p)),
    }
    exit::OK
}

fn init_tracing(format: LogFormat) {
    let default = match level() {
        Level::Quiet => "warn",
        Level::Normal => "info",
        Level::Verbose => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPSPLAN_LOG")
        .unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(TracingWriter);
    let _ = match format {
        LogFormat::Json => {
            crate::console::set_json_lines();
            builder
                .with_ansi(false)
                .json()
                .flatten_event(true)
                .try_init()
        }
        LogFormat::Text => builder
            .with_ansi(crate::color::stderr())
            .without_time()
            .with_target(false)
            .try_init(),
    };
}

/// Log records go through the console (above the live view when one is drawn); in JSON
/// mode each record (one object on one line) becomes a `log` event like the others.
#[derive(Clone, Copy)]
struct TracingWriter;

impl std::io::Write for TracingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        if !crate::console::json_lines() {
            crate::console::eprint(&text);
            return Ok(buf.len());
        }
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(mut record)) => {
                    record.insert("event".into(), "log".into());
                    crate::console::json_line(&serde_json::Value::Object(record));
                }
                _ => crate::console::json_line(&crate::console::message_object(line)),
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TracingWriter {
    type Writer = TracingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// How steps run, from [`ExecArgs`].
#[derive(Debug, Clone)]
struct ExecOptions {
    max_parallel: usize,
    answers: Answers,
    grace: Duration,
    log_format: LogFormat,
}

impl From<ExecArgs> for ExecOptions {
    fn from(a: ExecArgs) -> Self {
        ExecOptions {
            max_parallel: a.max_parallel,
            answers: Answers {
                yes: a.yes,
                force: a.force,
            },
            grace: a.grace,
            log_format: a.log_format,
        }
    }
}

impl From<DurableArgs> for execute::DurableOptions {
    fn from(a: DurableArgs) -> Self {
        execute::DurableOptions {
            journal_dir: a.journal_dir,
            lock_dir: a.lock_dir,
            break_lock: a.break_lock,
            wait_lock: a.wait_lock,
        }
    }
}

fn cmd_run(
    path: &Path,
    args: &ParamArgs,
    exec: &ExecArgs,
    durable: &DurableArgs,
    no_journal: bool,
    registry: &Arc<Registry>,
) -> i32 {
    init_tracing(exec.log_format);
    let plan = match load_compiled(path, args, true, registry) {
        Ok(p) => Arc::new(p),
        Err(code) => return code,
    };
    let on_command_line: Vec<&str> = plan
        .params
        .0
        .iter()
        .filter(|(_, p)| p.secret && p.source == "--set")
        .map(|(k, _)| k.as_str())
        .collect();
    if !on_command_line.is_empty() {
        errln!(
            "warning: --set {} puts a secret on opsplan's own command line, where other local users can read it in /proc; prefer the param's `env`, `file` or `command`",
            on_command_line.join(", --set ")
        );
    }
    execute::run_plan(
        plan,
        &exec.clone().into(),
        &durable.clone().into(),
        no_journal,
    )
}

fn cmd_schema(check: Option<&Path>, registry: &Registry) -> i32 {
    let text = opsplan_plan::schema::plan_schema_text(registry);
    match check {
        None => {
            out!("{text}");
            exit::OK
        }
        Some(path) => match std::fs::read_to_string(path) {
            Ok(existing) if existing == text => exit::OK,
            Ok(_) => {
                errln!(
                    "{} is stale; regenerate it with `opsplan schema > {}`",
                    path.display(),
                    path.display()
                );
                exit::RUN_FAILED
            }
            Err(e) => {
                errln!("cannot read {}: {e}", path.display());
                exit::RUN_FAILED
            }
        },
    }
}

fn cmd_reference(dir: &Path, check: bool, registry: &Registry) -> i32 {
    let pages: Vec<(String, String)> = opsplan_plan::reference::pages(registry)
        .into_iter()
        .map(|(name, text)| (name.to_string(), text))
        .collect();
    // Hand-written pages live beside the generated ones: none is taken for a stale one.
    generated::write_or_check(
        dir,
        &pages,
        check,
        |_| false,
        &format!("opsplan reference {}", dir.display()),
    )
}
