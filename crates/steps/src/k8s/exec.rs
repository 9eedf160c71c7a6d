//! `k8s.exec`: run a command in a pod, chosen by name or by label selector (dop: `psql` in
//! the pod labelled `spilo-role=master`, which moves on failover, so it is looked up at run
//! time rather than written into the plan).

use super::{k8s_spec, Connection};
use crate::exec::{default_exit, PROCESS_OUTPUTS};
use crate::{shell_quote, Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;

pub struct K8sExec;

k8s_spec! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct K8sExecSpec {
        /// The pod, by name…
        #[serde(default)]
        pub pod: Option<String>,
        /// …or by label selector: the first pod (by name) in phase Running is used.
        #[serde(default)]
        pub selector: Option<String>,
        /// Container in the pod (default: the pod's default container).
        #[serde(default)]
        pub container: Option<String>,
        /// Program and arguments run in the container (no shell unless you run one).
        pub command: Vec<String>,
        /// Text written to the command's standard input (secrets belong here, not in `command`).
        #[serde(default)]
        pub stdin: Option<String>,
        /// A file streamed to the command's standard input instead (a database dump: the
        /// dop page's `zcat dump.gz | kubectl exec -i … psql`).
        #[serde(default)]
        pub stdin_file: Option<String>,
        /// With `stdin_file`: decompress it as gzip on the way.
        #[serde(default)]
        pub gunzip: bool,
        /// Exit codes of the command that count as success (default `[0]`).
        #[serde(default = "default_exit")]
        pub expect_exit: Vec<i32>,
        /// Parse stdout as JSON into the `json` output.
        #[serde(default)]
        pub parse_json: bool,
    }
}

impl StepType for K8sExec {
    const NAME: &'static str = "k8s.exec";
    const SUMMARY: &'static str =
        "Run a command in a pod chosen by name or label selector (first Running pod).";
    type Spec = K8sExecSpec;

    fn outputs() -> &'static [OutputDecl] {
        const OUTPUTS: &[OutputDecl] = &[
            PROCESS_OUTPUTS[0],
            PROCESS_OUTPUTS[1],
            PROCESS_OUTPUTS[2],
            PROCESS_OUTPUTS[3],
            OutputDecl {
                name: "pod",
                description: "the pod the command ran in",
            },
        ];
        OUTPUTS
    }
    fn check(spec: &K8sExecSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if spec.pod.is_some() == spec.selector.is_some() {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`k8s.exec` needs exactly one of `pod` and `selector`",
                )
                .label(with.span, "which pod?")
                .help("e.g. `pod: db-0` or `selector: spilo-role=master`"),
            );
        }
        if spec.command.is_empty() && !crate::templated(with, "command") {
            diags.push(super::arg_error(
                with,
                "command",
                "`command` is empty",
                "nothing to run",
                "give the program and its arguments, e.g. `command: [psql, -U, dop, -c, SELECT 1]`",
            ));
        }
        diags
    }
    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::ExitCode, AnswerField::Output]
    }
    fn describe(spec: &K8sExecSpec) -> Action {
        let conn = spec.connection();
        let pod = match (&spec.pod, &spec.selector) {
            (Some(p), _) => p.clone(),
            (None, Some(sel)) => format!("<first Running pod with labels `{sel}`>"),
            (None, None) => String::new(),
        };
        let mut s = conn.preview(&exec_args(spec, &pod));
        match (&spec.stdin, &spec.stdin_file) {
            (_, Some(f)) if spec.gunzip => {
                s = format!(
                    "zcat {} | {s}",
                    super::super::shell_quote(std::slice::from_ref(f))
                );
            }
            (_, Some(f)) => s.push_str(&format!(
                " < {}",
                super::super::shell_quote(std::slice::from_ref(f))
            )),
            (Some(_), None) => s.push_str(" < (stdin)"),
            (None, None) => {}
        }
        Action::new(s)
    }
    async fn run(spec: K8sExecSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let conn = spec.connection();
        let pod = match (&spec.pod, &spec.selector) {
            (Some(p), _) => p.clone(),
            (None, Some(sel)) => running_pod(&conn, &ctx, sel).await?,
            (None, None) => return Err(StepError::fatal("`k8s.exec` needs `pod` or `selector`")),
        };
        // Once the pod is chosen, a failure still says which pod it ran in, for cleanup.
        exec_in(&spec, &conn, &ctx, &pod).await.map_err(|e| {
            let mut out = e.outputs.clone().unwrap_or_default();
            out.insert("pod".into(), pod.clone().into());
            e.with_outputs(out)
        })
    }

    fn outputs_on_failure() -> &'static [&'static str] {
        &["pod"]
    }
}

/// Runs the command in `pod`; the step's outputs but for `pod`.
async fn exec_in(
    spec: &K8sExecSpec,
    conn: &super::Connection,
    ctx: &StepContext,
    pod: &str,
) -> Result<Outputs, StepError> {
    let args = exec_args(spec, pod);
    let result = match &spec.stdin_file {
        Some(path) => {
            let file = crate::process::StdinFile {
                path: path.into(),
                gunzip: spec.gunzip,
            };
            conn.run_with_file(ctx, &args, file, true).await?
        }
        None => conn.run(ctx, &args, spec.stdin.clone(), true).await?,
    };
    if !spec.expect_exit.contains(&result.exit_code) {
        // The command's own failure: kubectl exits with its code and says so last.
        let mut lines: Vec<&str> = result.stderr.lines().collect();
        if !lines
            .last()
            .is_some_and(|l| l.starts_with("command terminated with exit code"))
        {
            return Err(conn.failure(ctx, &args, &result));
        }
        lines.pop();
        let tail = super::tail_lines(&lines.join("\n"), 20);
        let mut message = format!(
            "`{}` exited with code {} in pod {pod} ({})",
            shell_quote(&spec.command),
            result.exit_code,
            conn.place()
        );
        match tail.lines().count() {
            0 => {}
            1 => message = format!("{message}: {tail}"),
            _ => message = format!("{message}; stderr:\n{tail}"),
        }
        return Err(StepError::new(message));
    }
    let mut out = crate::exec::finish(&spec.kubectl, result, &spec.expect_exit, spec.parse_json)?;
    out.insert("pod".into(), pod.into());
    Ok(out)
}

fn exec_args(spec: &K8sExecSpec, pod: &str) -> Vec<String> {
    let mut args = vec!["exec".to_string()];
    if spec.stdin.is_some() || spec.stdin_file.is_some() {
        args.push("-i".into());
    }
    args.push(pod.to_string());
    if let Some(c) = &spec.container {
        args.push(format!("--container={c}"));
    }
    args.push("--".into());
    args.extend(spec.command.iter().cloned());
    args
}

/// The first pod (by name) with the labels that is Running and not being deleted.
pub async fn running_pod(
    conn: &Connection,
    ctx: &StepContext,
    selector: &str,
) -> Result<String, StepError> {
    let list = conn
        .get_json(
            ctx,
            &[
                "get".to_string(),
                "pods".to_string(),
                "-l".to_string(),
                selector.to_string(),
            ],
        )
        .await?;
    let mut pods: Vec<(String, String, bool)> = list
        .get("items")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.pointer("/metadata/name")?.as_str()?.to_string();
            let phase = p
                .pointer("/status/phase")
                .and_then(|v| v.as_str())
                .unwrap_or("Unknown")
                .to_string();
            let deleting = p.pointer("/metadata/deletionTimestamp").is_some();
            Some((name, phase, deleting))
        })
        .collect();
    pods.sort();
    if let Some((name, _, _)) = pods
        .iter()
        .find(|(_, phase, deleting)| phase == "Running" && !deleting)
    {
        return Ok(name.clone());
    }
    let seen = if pods.is_empty() {
        "no pod has these labels".to_string()
    } else {
        format!(
            "found {}",
            pods.iter()
                .map(|(n, p, d)| if *d {
                    format!("{n} (Terminating)")
                } else {
                    format!("{n} ({p})")
                })
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(StepError::new(format!(
        "no Running pod with labels `{selector}` in {}: {seen}",
        conn.place()
    )))
}
