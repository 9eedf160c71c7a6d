//! `shell`: a script run by `sh -eu` (or another shell). Explicit, so argv steps never gain
//! shell parsing by accident.

use super::exec::{default_exit, finish, PROCESS_OUTPUTS};
use super::process::{self, ProcessSpec};
use super::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Shell;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellSpec {
    /// The script. Runs with `-e -u`: the first failing command fails the step. A template
    /// here is pasted in as shell code (validation warns, W104): pass values through `env`
    /// (`"$DEST"` in the script) or quote them with `{{ params.dest | shell_quote }}`.
    pub script: String,
    /// The shell (default `/bin/sh`).
    #[serde(default = "default_shell")]
    pub shell: String,
    /// Extra environment variables: the way to hand params, step outputs and secrets to
    /// the script as data, never as code.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Text written to the script's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default = "default_exit")]
    pub expect_exit: Vec<i32>,
    /// Parse stdout as JSON into the `json` output.
    #[serde(default)]
    pub parse_json: bool,
}

fn default_shell() -> String {
    "/bin/sh".into()
}

impl StepType for Shell {
    const NAME: &'static str = "shell";
    const SUMMARY: &'static str = "Run a shell script (`sh -eu -c`), capturing its output.";
    type Spec = ShellSpec;

    fn outputs() -> &'static [OutputDecl] {
        PROCESS_OUTPUTS
    }
    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::ExitCode, AnswerField::Output]
    }
    fn describe(spec: &ShellSpec) -> Action {
        let script = spec.script.trim_end();
        if script.contains('\n') {
            Action::new(format!(
                "{} -eu -c <<'SCRIPT'\n{script}\nSCRIPT",
                spec.shell
            ))
        } else {
            Action::new(format!("$ {script}"))
        }
    }
    async fn run(spec: ShellSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        // The script travels in the environment, not argv, so a secret rendered into it is
        // not visible in /proc/*/cmdline.
        let argv = vec![
            spec.shell.clone(),
            "-eu".into(),
            "-c".into(),
            "eval \"$OPSPLAN_SCRIPT\"".into(),
        ];
        let mut env = spec.env;
        env.insert("OPSPLAN_SCRIPT".into(), spec.script);
        let result = process::run(
            &ProcessSpec {
                argv,
                env,
                cwd: spec.cwd,
                stdin: spec.stdin,
                stdin_file: None,
                echo: true,
            },
            &ctx,
        )
        .await?;
        finish(&spec.shell, result, &spec.expect_exit, spec.parse_json)
    }
}
