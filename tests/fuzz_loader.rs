//! Property tests of the loader and validator: whatever the bytes of a plan file, loading
//! and checking it reports diagnostics and never panics. Mutations of the example plan stay
//! close to valid plans, so they reach deep into validation (and, when still valid, into
//! compile and preview).

use opsplan_plan::source::Sources;
use opsplan_testkit::check_file;
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

const EXAMPLE: &str = include_str!("../plans/examples/archive-folder.yaml");

/// Loads and checks `bytes` as a plan file; when it is valid, compiles and previews it too.
fn check_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, bytes).expect("write the plan");
    check_path(&path);
}

fn check_path(path: &Path) {
    let mut sources = Sources::default();
    let (loaded, diags, _fragment) = check_file(path, &mut sources);
    for d in &diags {
        // Rendering a diagnostic (spans into the text) must not panic either.
        let _ = opsplan_plan::diagnostic::render(d, &sources, false);
    }
    let Some(loaded) = loaded else { return };
    if diags
        .iter()
        .any(opsplan_plan::diagnostic::Diagnostic::is_error)
    {
        return;
    }
    let inputs = opsplan_plan::params::ParamInputs::default();
    if let Ok(plan) = opsplan_plan::compile::compile(&loaded, Arc::new(sources), &inputs, &[]) {
        let p = opsplan_plan::preview::build(&plan, None);
        let _ = opsplan_plan::preview::text(&p);
        let _ = opsplan_plan::preview::markdown(&p);
        let _ = opsplan_plan::graph::dot(&plan);
        let _ = opsplan_plan::graph::mermaid(&plan);
        if !plan.steps.is_empty() {
            let p = opsplan_plan::preview::build(&plan, Some(plan.steps.len() - 1));
            let _ = opsplan_plan::preview::text(&p);
        }
    }
}

/// Fragments that YAML, templates and the plan format give meaning to.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "{{",
    "}}",
    "{%",
    "%}",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\t",
    "\n",
    "\n  ",
    " ",
    "'",
    "\"",
    "#",
    "|",
    ">",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "? ",
    "---\n",
    "...\n",
    "\\",
    "%",
    "@",
    "`",
    "\u{0}",
    "\u{feff}",
    "⟨",
    "é",
    "\r\n",
    "needs: [prepare]",
    "steps.",
    "params.",
    "{{ params.dest }}",
    "{{ steps.checksum.outputs.x }}",
    "uses: x.yaml",
    "for_each: [a, b]",
    "when: \"{{ x }}\"",
    "releases: zz",
    "acquires: zz",
    "undo:",
    "always: true",
    "destructive: true",
    "retry: {attempts: 0}",
    "timeout: 1x",
    "99999999999999999999",
    "-1",
    "~",
    "null",
    "true",
    "<<: *a",
];

/// Cases per property; `FUZZ_CASES=20000` runs a longer session.
fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete `len` chars at `at`.
    Delete { at: usize, len: usize },
    /// Duplicate line `line`.
    DuplicateLine { line: usize },
    /// Insert a token at `at`.
    Insert { at: usize, token: usize },
    /// Insert arbitrary text at `at`.
    InsertText { at: usize, text: String },
    /// Swap two lines.
    SwapLines { a: usize, b: usize },
    /// Change the indentation of a line by `by` spaces (negative removes).
    Indent { line: usize, by: i8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), "\\PC{0,8}").prop_map(|(at, text)| Mutation::InsertText { at, text }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), -4i8..=4).prop_map(|(line, by)| Mutation::Indent { line, by }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = chars.len().max(1);
    let insert = |at: usize, what: &str| {
        let at = at % (chars.len() + 1);
        let mut out: String = chars[..at].iter().collect();
        out.push_str(what);
        out.extend(&chars[at..]);
        out
    };
    match m {
        Mutation::Delete { at, len } => {
            let at = at % n;
            let end = (at + len).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        Mutation::DuplicateLine { line } => {
            let i = line % lines.len();
            let dup = lines[i].clone();
            lines.insert(i, dup);
            lines.join("\n")
        }
        Mutation::Insert { at, token } => insert(*at, TOKENS[*token]),
        Mutation::InsertText { at, text } => insert(*at, text),
        Mutation::SwapLines { a, b } => {
            let len = lines.len();
            lines.swap(a % len, b % len);
            lines.join("\n")
        }
        Mutation::Indent { line, by } => {
            let i = line % lines.len();
            let l = &lines[i];
            lines[i] = if *by >= 0 {
                format!("{}{l}", " ".repeat(*by as usize))
            } else {
                let strip = l.len() - l.trim_start_matches(' ').len();
                l[strip.min(by.unsigned_abs() as usize)..].to_string()
            };
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(200), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_bytes(&bytes);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        check_bytes(text.as_bytes());
    }

    /// Text built from YAML and plan tokens, more likely to parse than random text.
    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        check_bytes(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_example_never_panics(mutations in proptest::collection::vec(mutation(), 1..5)) {
        let mut text = EXAMPLE.to_string();
        for m in &mutations {
            text = apply(&text, m);
        }
        check_bytes(text.as_bytes());
    }
}

/// The unmutated example is valid, so the mutations start from a plan that reaches compile.
#[test]
fn example_is_valid() {
    let mut sources = Sources::default();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans/examples/archive-folder.yaml");
    let (loaded, diags, _) = check_file(&path, &mut sources);
    assert!(loaded.is_some());
    assert!(diags.is_empty(), "{diags:?}");
}

/// An alias-heavy file ("billion laughs": nine aliases of nine aliases of a 100 KB
/// string, seven levels deep, gigabytes when expanded) is refused quickly and in little
/// memory: the loader runs in a child `opsplan validate` under a 1 GiB address-space limit,
/// which the unbounded expansion exceeded.
#[test]
fn alias_bomb_is_refused_in_little_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bomb.yaml");
    let mut text = String::from("apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\n");
    text.push_str(&format!("a0: &a0 \"{}\"\n", "x".repeat(100_000)));
    for i in 1..8 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("steps: []\n");
    std::fs::write(&path, text).expect("write");
    let started = std::time::Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" validate \"$1\"")
        .arg(env!("CARGO_BIN_EXE_opsplan"))
        .arg(&path)
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("invalid YAML"), "{text}");
    assert!(text.contains("budget"), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// Durations past the range are refused by validation with a message, never a panic, and
/// a backoff that overflows is capped (compile accepts only what validation accepts).
#[test]
fn out_of_range_durations_are_refused_not_a_panic() {
    for (timeout, backoff) in [
        ("99999999999999999s", "1s"),
        ("1s", "99999999999999999s"),
        ("18446744073709551616s", "1s"),
        ("367d", "1s"),
    ] {
        let plan = format!(
            "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\nsteps:\n  - id: a\n    type: exec\n    with: {{argv: [\"true\"]}}\n    timeout: {timeout}\n    retry: {{attempts: 3, backoff: {{initial: {backoff}, factor: 1e300}}}}\n"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plan.yaml");
        std::fs::write(&path, &plan).expect("write");
        let mut sources = Sources::default();
        let (_, diags, _) = check_file(&path, &mut sources);
        let e070: Vec<String> = diags
            .iter()
            .filter(|d| d.code.as_str() == "E070")
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(e070.len(), 1, "{timeout}/{backoff}: {e070:?}");
        assert!(e070[0].contains("out of range"), "{e070:?}");
    }
    // The largest accepted values and a huge factor: delays stay finite.
    let policy = opsplan_plan::compile::RetryPolicy {
        attempts: 1000,
        initial: opsplan_plan::fields::MAX_DURATION,
        factor: 1e300,
        max: opsplan_plan::fields::MAX_DURATION,
        jitter: false,
    };
    for n in [2, 3, 100, 999] {
        assert!(policy.delay(n) <= opsplan_plan::fields::MAX_DURATION);
    }
}
