//! `kubectl`: any kubectl command, for what the typed k8s steps do not cover (the dop
//! runbook's `delete cronjob`, a `get` whose JSON a later step reads).

use super::k8s_spec;
use crate::exec::{default_exit, PROCESS_OUTPUTS};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;

pub struct Kubectl;

k8s_spec! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct KubectlSpec {
        /// Arguments after `kubectl` and the connection flags, e.g. `[delete, cronjob, backup]`.
        pub args: Vec<String>,
        /// Text written to kubectl's standard input (`apply -f -`, `exec -i`).
        #[serde(default)]
        pub stdin: Option<String>,
        /// Exit codes that count as success (default `[0]`).
        #[serde(default = "default_exit")]
        pub expect_exit: Vec<i32>,
        /// Parse stdout as JSON into the `json` output (with `-o json`).
        #[serde(default)]
        pub parse_json: bool,
    }
}

/// Subcommands that remove objects from the cluster: the step then needs a guard.
const DESTRUCTIVE: &[&str] = &["delete", "replace", "drain"];

impl StepType for Kubectl {
    const NAME: &'static str = "kubectl";
    const SUMMARY: &'static str =
        "Run a kubectl command (argv after `kubectl`), with context, namespace and kubeconfig.";
    type Spec = KubectlSpec;

    fn outputs() -> &'static [OutputDecl] {
        PROCESS_OUTPUTS
    }
    fn check(spec: &KubectlSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if spec.args.is_empty() && !crate::templated(with, "args") {
            diags.push(super::arg_error(
                with,
                "args",
                "`args` is empty",
                "no kubectl command",
                "give the arguments after `kubectl`, e.g. `args: [get, pods, -o, json]`",
            ));
        }
        for (flag, field) in [
            ("--context", "context"),
            ("--namespace", "namespace"),
            ("-n", "namespace"),
            ("--kubeconfig", "kubeconfig"),
        ] {
            let found = spec
                .args
                .iter()
                .position(|a| a == flag || a.starts_with(&format!("{flag}=")));
            if let Some(i) = found {
                let span = with
                    .get("args")
                    .and_then(|a| match &a.value {
                        opsplan_plan::source::NodeValue::Seq(items) => items.get(i).map(|n| n.span),
                        _ => None,
                    })
                    .unwrap_or(with.span);
                diags.push(super::arg_error_at(
                    span,
                    &format!("`{flag}` in `args`"),
                    "set by the step",
                    &format!("use the step's `{field}:` field, so preview and errors name it"),
                ));
            }
        }
        diags
    }
    fn destructive(spec: &KubectlSpec) -> bool {
        spec.args
            .iter()
            .find(|a| !a.starts_with('-'))
            .is_some_and(|verb| DESTRUCTIVE.contains(&verb.as_str()))
    }
    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::ExitCode, AnswerField::Output]
    }
    fn describe(spec: &KubectlSpec) -> Action {
        Action::new(spec.connection().preview(&spec.args))
    }
    async fn run(spec: KubectlSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let conn = spec.connection();
        let result = conn.run(&ctx, &spec.args, spec.stdin, true).await?;
        if !spec.expect_exit.contains(&result.exit_code) {
            return Err(conn.failure(&ctx, &spec.args, &result));
        }
        crate::exec::finish(&spec.kubectl, result, &spec.expect_exit, spec.parse_json)
    }
}
