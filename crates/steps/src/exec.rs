//! `exec`: run a program with an argv array. No shell is involved, so nothing in an argument
//! is ever interpreted.

use super::process::{self, ProcessResult, ProcessSpec};
use super::{shell_quote, Action, Answer, OutputDecl, Outputs, StepContext, StepError, StepType};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Exec;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Program and arguments, e.g. `[tar, czf, out.tar.gz, data]`.
    pub argv: Vec<String>,
    /// Extra environment variables (secrets belong here or in `stdin`, never in `argv`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Text written to the program's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default = "default_exit")]
    pub expect_exit: Vec<i32>,
    /// Parse stdout as JSON into the `json` output.
    #[serde(default)]
    pub parse_json: bool,
}

pub fn default_exit() -> Vec<i32> {
    vec![0]
}

pub const PROCESS_OUTPUTS: &[OutputDecl] = &[
    OutputDecl {
        name: "exit_code",
        description: "the exit code",
    },
    OutputDecl {
        name: "stdout",
        description: "standard output, trailing newline removed (first 8 MiB)",
    },
    OutputDecl {
        name: "stderr",
        description: "standard error, trailing newline removed",
    },
    OutputDecl {
        name: "json",
        description: "stdout parsed as JSON, with `parse_json: true`",
    },
];

impl StepType for Exec {
    const NAME: &'static str = "exec";
    const SUMMARY: &'static str =
        "Run a program with an argv array (no shell), capturing its output.";
    type Spec = ExecSpec;

    fn outputs() -> &'static [OutputDecl] {
        PROCESS_OUTPUTS
    }
    fn open_outputs() -> bool {
        false
    }
    fn check(
        spec: &ExecSpec,
        with: &opsplan_plan::source::Node,
    ) -> Vec<opsplan_plan::diagnostic::Diagnostic> {
        if spec.argv.is_empty() && !super::templated(with, "argv") {
            let span = with.get("argv").map_or(with.span, |n| n.span);
            return vec![opsplan_plan::diagnostic::Diagnostic::new(
                opsplan_plan::diagnostic::Code::StepArgs,
                "`argv` is empty",
            )
            .label(span, "no program to run")
            .help("give the program and its arguments, e.g. `argv: [tar, czf, out.tgz, data]`")];
        }
        Vec::new()
    }
    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::ExitCode, AnswerField::Output]
    }
    fn describe(spec: &ExecSpec) -> Action {
        let mut s = format!("$ {}", shell_quote(&spec.argv));
        if let Some(cwd) = &spec.cwd {
            s = format!("(cd {}) {s}", cwd.display());
        }
        Action::new(s)
    }
    async fn run(spec: ExecSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let result = process::run(
            &ProcessSpec {
                argv: spec.argv.clone(),
                env: spec.env,
                cwd: spec.cwd,
                stdin: spec.stdin,
                stdin_file: None,
                echo: true,
            },
            &ctx,
        )
        .await?;
        finish(&spec.argv[0], result, &spec.expect_exit, spec.parse_json)
    }
}

/// Turns a finished process into outputs, or an error quoting its stderr.
pub fn finish(
    program: &str,
    result: ProcessResult,
    expect: &[i32],
    parse_json: bool,
) -> Result<Outputs, StepError> {
    if !expect.contains(&result.exit_code) {
        let tail = result.stderr_tail();
        let mut message = format!(
            "`{program}` exited with code {} (expected {})",
            result.exit_code,
            expect
                .iter()
                .map(std::string::ToString::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        );
        match tail.lines().count() {
            0 => {}
            1 => message = format!("{message}: {tail}"),
            _ => message = format!("{message}; stderr:\n{tail}"),
        }
        let mut output = result.stdout.clone();
        output.push_str(&result.stderr);
        return Err(StepError::new(message).with_answer(Answer {
            exit_code: Some(result.exit_code),
            status: None,
            output,
        }));
    }
    let mut outputs = Outputs::new();
    outputs.insert("exit_code".into(), result.exit_code.into());
    if parse_json {
        let json: serde_json::Value = serde_json::from_str(&result.stdout).map_err(|e| {
            StepError::fatal(format!("`{program}` printed output that is not JSON ({e})"))
        })?;
        outputs.insert("json".into(), json);
    }
    outputs.insert("stdout".into(), result.stdout.trim_end_matches('\n').into());
    outputs.insert("stderr".into(), result.stderr.trim_end_matches('\n').into());
    Ok(outputs)
}
