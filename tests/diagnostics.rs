//! The diagnostic specification: every invalid plan under tests/fixtures/invalid is
//! validated through the library and all of its diagnostics are snapshotted as rendered
//! for people (miette, no color), so a change in a message, a label's place or a help
//! text shows up in review. Each fixture also lists the codes it must produce, so a
//! snapshot cannot silently accept "no diagnostics".

use opsplan_plan::diagnostic::{self, Diagnostic, Severity};
use opsplan_plan::source::Sources;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The repository root; fixtures are loaded by paths relative to it so the file names in
/// the rendered output are the same on every machine.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every test in this binary runs from the repository root (set once, same for all).
fn enter_repo_root() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_current_dir(repo_root()).expect("cannot enter the repository root");
    });
}

const FIXTURES: &str = "tests/fixtures/invalid";

fn fixture_path(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(format!("{name}.yaml"))
}

/// Loads and validates a fixture like `opsplan validate` does.
fn check(name: &str) -> (Vec<Diagnostic>, Sources) {
    enter_repo_root();
    let path = fixture_path(name);
    assert!(path.is_file(), "fixture {} does not exist", path.display());
    let mut sources = Sources::default();
    let (_, diags, fragment) = opsplan_testkit::check_file(&path, &mut sources);
    assert!(
        !fragment,
        "fixture {name} is a fragment; fragments belong in {FIXTURES}/fragments"
    );
    (diags, sources)
}

fn render_all(diags: &[Diagnostic], sources: &Sources) -> String {
    diags
        .iter()
        .map(|d| diagnostic::render(d, sources, false))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validates a fixture, checks the expected codes and snapshots the rendered diagnostics.
fn spec(name: &str, expected: &[&str]) {
    let (diags, sources) = check(name);
    let rendered = render_all(&diags, &sources);
    insta::assert_snapshot!(name, rendered);
    assert!(!diags.is_empty(), "fixture {name} produced no diagnostics");
    let got: BTreeSet<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(
        got, want,
        "fixture {name}: codes differ (got {got:?}, expected {want:?}); rendered:\n{rendered}"
    );
    for d in &diags {
        assert!(
            d.help.is_some(),
            "fixture {name}: {} `{}` has no help; rendered:\n{rendered}",
            d.code.as_str(),
            d.message
        );
    }
}

macro_rules! fixtures {
    ($($test:ident => [$($code:literal),+ $(,)?],)+) => {
        /// Every fixture, as (file stem, expected codes).
        const ALL: &[(&str, &[&str])] = &[$((stringify!($test), &[$($code),+])),+];
        $(
            #[test]
            fn $test() {
                spec(&stringify!($test).replace('_', "-"), &[$($code),+]);
            }
        )+
    };
}

fixtures! {
    // YAML and the document's shape.
    yaml_bad_indentation => ["E002"],
    yaml_unclosed_flow_sequence => ["E002"],
    yaml_tab_indentation => ["E002"],
    yaml_duplicate_key => ["E002"],
    yaml_duplicate_typed_key => ["E002"],
    not_utf8 => ["E002"],
    empty_file => ["E012"],
    not_a_mapping => ["E012"],
    api_version_wrong => ["E003"],
    missing_api_version => ["E011"],
    missing_kind => ["E011"],
    missing_metadata => ["E011"],
    missing_steps => ["E011"],
    metadata_missing_name => ["E011"],
    steps_not_a_list => ["E012"],
    // Fields and types.
    unknown_top_level_field => ["E010"],
    unknown_step_field => ["E010"],
    unknown_exec_field => ["E010"],
    unknown_param_type => ["E013"],
    wrong_type_string_for_list => ["E012"],
    wrong_type_list_for_string => ["E012"],
    several_load_problems => ["E010"],
    // One pass: an unknown field does not hide the template, duration, type and graph
    // checks; a part left out (a wrong value) hides only the checks that relate parts.
    one_pass_every_layer => ["E010", "E020", "E023", "E030", "E032", "E070"],
    one_pass_part_left_out => ["E012", "E030", "E070"],
    // Steps and the DAG.
    unknown_step_type => ["E020"],
    undo_unknown_type => ["E020"],
    step_without_type => ["E011"],
    step_type_and_uses => ["E013"],
    duplicate_step_id => ["E021"],
    invalid_step_id => ["E022"],
    unknown_needs => ["E023"],
    self_dependency => ["E025"],
    cycle_two_steps => ["E024"],
    cycle_three_steps => ["E024"],
    // Templates.
    template_syntax_error => ["E030"],
    undefined_template_variable => ["E031"],
    undefined_template_root_typo => ["E031"],
    item_without_for_each => ["E031"],
    unknown_run_attribute => ["E031"],
    when_undefined_variable => ["E031"],
    lock_uses_step_output => ["E031"],
    unknown_param => ["E032"],
    unknown_step_reference => ["E033"],
    output_not_upstream => ["E034"],
    for_each_output_not_upstream => ["E034"],
    for_each_run_time_acquires => ["E092"],
    unknown_output => ["E035"],
    step_read_without_output => ["E031"],
    // Params.
    param_default_wrong_type => ["E044"],
    secret_literal_default => ["E043"],
    file_on_non_secret => ["E013"],
    unused_param => ["W100"],
    secret_env_collision => ["E045"],
    secret_unmaskable => ["E046"],
    unquoted_shell_template => ["W104"],
    // Resources and guards.
    resource_not_released => ["E050"],
    release_without_acquire => ["E051"],
    release_before_acquire => ["E052"],
    release_conditional => ["E053"],
    resume_check_without_probe => ["E054"],
    resume_compensate_without_undo => ["E054"],
    refused_when_without_acquires => ["E055"],
    refused_when_bad_regex => ["E055"],
    refused_when_no_condition => ["E055"],
    refused_when_empty_list => ["E055"],
    refused_when_status_on_exec => ["E055"],
    refused_when_exit_code_on_http => ["E055"],
    destructive_unguarded => ["E060"],
    destructive_undo_unguarded => ["E060"],
    guard_skipped_by_its_when => ["E060"],
    secret_in_shell_script => ["W105"],
    yaml_1_1_booleans => ["W106"],
    // Durations and retries.
    bad_duration_timeout => ["E070"],
    bad_duration_backoff => ["E070"],
    duration_out_of_range => ["E070"],
    wait_bad_interval => ["E070"],
    retry_attempts_zero => ["E072"],
    retry_attempts_template => ["E012"],
    backoff_factor_below_one => ["E072"],
    // Step arguments.
    http_invalid_url => ["E080"],
    http_unknown_method => ["E080"],
    exec_empty_argv => ["E080"],
    wait_no_probe => ["E080"],
    // Fragments.
    fragment_missing => ["E090"],
    fragment_is_a_plan => ["E090"],
    fragment_cycle => ["E091"],
    fragment_unknown_param => ["E042"],
    fragment_missing_param => ["E041"],
    builtin_unknown_name => ["E094"],
    builtin_version_not_met => ["E095"],
    builtin_unversioned => ["W107"],
    builtin_plan_not_fragment => ["E090"],
    undo_on_cleanup => ["W102"],
    uses_for_each => ["E092"],
    uses_invalid_id => ["E022"],
    uses_ignored_fields => ["E013"],
    // Everything at once.
    several_problems => ["E023", "E032", "E050", "E070", "E072", "W100"],
}

/// Every fixture file has a test, and every test a fixture file.
#[test]
fn every_fixture_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join(FIXTURES))
        .expect("fixtures folder")
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ALL.iter().map(|(t, _)| t.replace('_', "-")).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "fixture files and the fixtures! table differ"
    );
}

/// Warning-only fixtures have no errors; every other fixture has at least one.
#[test]
fn severities_match_codes() {
    for (test, codes) in ALL {
        let name = test.replace('_', "-");
        let (diags, _) = check(&name);
        let errors = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let only_warnings = codes.iter().all(|c| c.starts_with('W'));
        assert_eq!(
            errors == 0,
            only_warnings,
            "fixture {name}: {errors} error(s)"
        );
        for d in &diags {
            assert_eq!(
                d.severity,
                d.code.severity(),
                "fixture {name}: {}",
                d.code.as_str()
            );
        }
    }
}

/// Codes a plan file alone does not produce (it needs param values, a params file, or no
/// file at all), each with the fixture under tests/fixtures and the command (from the
/// repository root, with this environment) that produces it.
type Command = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

const FROM_A_COMMAND: &[Command] = &[
    (
        "E001",
        &["validate", "tests/fixtures/invalid/no-such-plan.yaml"],
        &[],
    ),
    (
        "E036",
        &["preview", "tests/fixtures/values/render-error.yaml"],
        &[],
    ),
    (
        "E040",
        &[
            "preview",
            "tests/fixtures/values/param-type.yaml",
            "--set",
            "parallel=many",
        ],
        &[],
    ),
    (
        "E047",
        &["preview", "tests/fixtures/values/short-secret.yaml"],
        &[("VALUES_TEST_TOKEN", "ab")],
    ),
    (
        "E048",
        &[
            "validate",
            "tests/fixtures/library/params-plan.yaml",
            "--params",
            "tests/fixtures/library/envs",
        ],
        &[],
    ),
    (
        "E071",
        &["validate", "tests/fixtures/steps/fs/invalid-args.yaml"],
        &[],
    ),
];

/// The codes docs/reference/diagnostics.md lists (generated from `Code::ALL`).
fn documented_codes() -> Vec<String> {
    let page = std::fs::read_to_string(repo_root().join("docs/reference/diagnostics.md"))
        .expect("docs/reference/diagnostics.md");
    page.lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(' ').next())
        .filter(|c| c.len() == 4 && (c.starts_with('E') || c.starts_with('W')))
        .map(str::to_string)
        .collect()
}

/// Every documented code has a fixture that produces it: a plan under
/// tests/fixtures/invalid (the table above), or a fixture and a command below. A code that
/// no check emits has no fixture, so it cannot stay documented.
#[test]
fn every_documented_code_has_a_fixture() {
    let documented = documented_codes();
    let declared: Vec<String> = diagnostic::Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        documented, declared,
        "docs/reference/diagnostics.md is stale"
    );
    let from_plans: BTreeSet<&str> = ALL.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    let from_commands: BTreeSet<&str> = FROM_A_COMMAND.iter().map(|(c, _, _)| *c).collect();
    for code in &documented {
        let code = code.as_str();
        assert!(
            from_plans.contains(code) || from_commands.contains(code),
            "documented code {code} has no fixture that produces it"
        );
        assert!(
            !(from_plans.contains(code) && from_commands.contains(code)),
            "code {code} has a plan fixture now; remove it from FROM_A_COMMAND"
        );
    }
    for (code, _, _) in diagnostic::RETIRED {
        assert!(
            !documented.iter().any(|d| d == code),
            "retired code {code} is documented as current"
        );
    }
}

/// Each command of FROM_A_COMMAND produces its code (and is refused: exit 2).
#[test]
fn codes_from_a_command_are_produced() {
    let state = tempfile::tempdir().expect("temp dir");
    for (code, args, env) in FROM_A_COMMAND {
        let mut cmd = opsplan_testkit::bin::command(state.path());
        cmd.args(*args)
            .envs(env.iter().copied())
            .current_dir(repo_root());
        let ran = opsplan_testkit::bin::run(cmd);
        let text = ran.all();
        ran.expect_code(2, &format!("{code}: opsplan {args:?}"));
        // `E036(template-render)` in a rendered diagnostic, `error[E001]` for a file.
        assert!(
            text.contains(&format!("{code}(")) || text.contains(&format!("[{code}]")),
            "{code}: opsplan {args:?} did not report it:\n{text}"
        );
    }
}

#[test]
fn unreadable_plan_file() {
    enter_repo_root();
    let mut sources = Sources::default();
    let (plan, diags, _) = opsplan_testkit::check_file(
        Path::new("tests/fixtures/invalid/no-such-plan.yaml"),
        &mut sources,
    );
    assert!(plan.is_none());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code.as_str(), "E001");
    assert_eq!(
        diags[0].message,
        "cannot read plan file tests/fixtures/invalid/no-such-plan.yaml: no such file"
    );
}

/// A generated plan bigger than serde-saphyr's default budget (250,000 YAML nodes, about
/// 20,000 steps) loads and validates: operators generate plans of 100,000 steps.
#[test]
fn a_plan_of_30000_steps_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("big.yaml");
    let mut text =
        String::from("apiVersion: opsplan/v1\nkind: Plan\nmetadata: {name: big}\nsteps:\n");
    for i in 0..30_000 {
        text.push_str(&format!(
            "  - id: s{i}\n    type: exec\n    with: {{argv: [cp, /data/p{i}, /backup/p{i}]}}\n"
        ));
        if i > 0 {
            text.push_str(&format!("    needs: [s{}]\n", i - 1));
        }
    }
    std::fs::write(&path, text).expect("write the plan");
    let mut sources = Sources::default();
    let (plan, diags, _) = opsplan_testkit::check_file(&path, &mut sources);
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| &d.message)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(plan.expect("the plan loads").steps.len(), 30_000);
}

/// The JSON form (`validate --format json`) with exact positions.
fn json_of(name: &str) -> Vec<serde_json::Value> {
    let (diags, sources) = check(name);
    diags
        .iter()
        .map(|d| diagnostic::to_json(d, &sources))
        .collect()
}

/// (code, line, column, end_line, end_column) of each diagnostic's first label.
fn places(name: &str) -> Vec<(String, u64, u64, u64, u64)> {
    json_of(name)
        .iter()
        .map(|j| {
            let label = &j["labels"][0];
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            assert_eq!(j["line"], label["line"]);
            assert_eq!(j["column"], label["column"]);
            assert_eq!(
                j["file"].as_str(),
                Some(fixture_path(name).to_str().unwrap_or_default()),
                "{name}: file"
            );
            (
                j["code"].as_str().unwrap_or_default().to_string(),
                n(&label["line"]),
                n(&label["column"]),
                n(&label["end_line"]),
                n(&label["end_column"]),
            )
        })
        .collect()
}

fn p(
    code: &str,
    line: u64,
    column: u64,
    end_line: u64,
    end_column: u64,
) -> (String, u64, u64, u64, u64) {
    (code.to_string(), line, column, end_line, end_column)
}

#[test]
fn json_unknown_exec_field() {
    // `args` on line 9, columns 7-10.
    assert_eq!(places("unknown-exec-field"), vec![p("E010", 9, 7, 9, 11)]);
    let j = &json_of("unknown-exec-field")[0];
    assert_eq!(j["name"], "unknown-field");
    assert_eq!(j["severity"], "error");
    assert_eq!(j["help"], "did you mean `argv`?");
}

#[test]
fn json_unknown_needs() {
    // `archiv` inside `needs: [archiv]` on line 11.
    assert_eq!(places("unknown-needs"), vec![p("E023", 11, 13, 11, 19)]);
}

#[test]
fn json_unknown_param_in_template() {
    // `params.dset` inside the quoted template on line 13.
    assert_eq!(places("unknown-param"), vec![p("E032", 13, 29, 13, 40)]);
}

#[test]
fn json_cycle_labels_every_edge() {
    let j = &json_of("cycle-three-steps")[0];
    assert_eq!(
        j["message"],
        "dependency cycle: archive -> upload -> checksum -> archive"
    );
    let labels: Vec<(u64, u64)> = j["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(labels, vec![(7, 13), (17, 13), (12, 13)]);
}

#[test]
fn json_several_problems_all_reported() {
    assert_eq!(
        places("several-problems"),
        vec![
            p("W100", 10, 11, 10, 15),
            p("E050", 18, 15, 18, 25),
            p("E023", 20, 13, 20, 23),
            p("E032", 23, 43, 23, 53),
            p("E070", 24, 14, 24, 21),
            p("E072", 31, 17, 31, 18),
        ]
    );
}

#[test]
fn json_yaml_syntax_error_position() {
    let places = places("yaml-tab-indentation");
    assert_eq!(places.len(), 1);
    assert_eq!(places[0].0, "E002");
    assert_eq!((places[0].1, places[0].2), (9, 1));
}

/// The same plan with LF, CRLF and a byte-order mark gives the same lines and columns
/// (the unknown field on the last line, and one on the first line).
#[test]
fn positions_ignore_line_endings_and_bom() {
    let plan = "bogus: 1\napiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\nsteps:\n  - id: a\n    type: exec\n    description: \"two\n      lines\"\n    with: {argv: [\"true\"]}\n    extra: 1\n";
    let dir = tempfile::tempdir().expect("temp dir");
    let mut seen = Vec::new();
    for (name, text) in [
        ("lf.yaml", plan.to_string()),
        ("crlf.yaml", plan.replace('\n', "\r\n")),
        ("bom.yaml", format!("\u{feff}{plan}")),
        (
            "bom-crlf.yaml",
            format!("\u{feff}{}", plan.replace('\n', "\r\n")),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let mut sources = Sources::default();
        let (_, diags, _) = opsplan_testkit::check_file(&path, &mut sources);
        let places: Vec<(usize, usize, usize, usize, String)> = diags
            .iter()
            .flat_map(|d| d.labels.iter().map(move |l| (d, l)))
            .map(|(d, l)| {
                let file = sources.get(l.span.file);
                let (line, col) = file.line_col(l.span.offset);
                let (end_line, end_col) = file.line_col(l.span.end());
                (line, col, end_line, end_col, d.message.clone())
            })
            .collect();
        assert!(!places.is_empty(), "{name}: no diagnostics");
        seen.push((name, places));
    }
    let (first, want) = &seen[0];
    assert!(
        want.iter().any(|p| p.0 == 1 && p.1 == 1),
        "{first}: the first-line error is not at 1:1: {want:?}"
    );
    assert!(
        want.iter().any(|p| p.0 == 12 && p.1 == 5 && p.3 == 10),
        "{first}: {want:?}"
    );
    for (name, got) in &seen[1..] {
        assert_eq!(got, want, "{name} differs from {first}");
    }
}

/// A byte that is not UTF-8 is reported at its line and column.
#[test]
fn not_utf8_has_a_position() {
    let places = places("not-utf8");
    assert!(places.iter().any(|p| p.1 == 5 && p.2 == 32), "{places:?}");
}

/// A secret used only through its environment variable, as the docs recommend, is used.
#[test]
fn secret_used_through_its_env_var_is_not_unused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plan.yaml");
    std::fs::write(
        &path,
        "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\nparams:\n  db-password: {type: secret, env: DBPW}\nsteps:\n  - id: a\n    type: exec\n    with:\n      argv: [sh, -c, 'psql \"password=$OPSPLAN_SECRET_DB_PASSWORD\"']\n",
    )
    .expect("write");
    let mut sources = Sources::default();
    let (_, diags, _) = opsplan_testkit::check_file(&path, &mut sources);
    let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
    assert!(!codes.contains(&"W100"), "{codes:?}");
}
