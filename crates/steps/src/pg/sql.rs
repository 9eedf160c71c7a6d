//! `sql`: statements on PostgreSQL through tokio-postgres, in one transaction by default; the
//! last statement's rows become outputs for later steps' templates and `assert`s.
//!
//! A `script` is split into statements here (quotes, dollar quotes and comments respected)
//! instead of being sent as one simple-protocol query: each statement then runs through the
//! extended protocol, which reports column types (so values keep their JSON types), the rows
//! each statement affected, and lets an error name the statement it happened in.

use super::{Connection, Target};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use futures::TryStreamExt;
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::NoTls;

pub struct Sql;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlSpec {
    /// The server, database and role.
    pub connection: Connection,
    /// Statements to run in order, one per entry (no `;`-separated lists inside an entry).
    #[serde(default)]
    pub statements: Vec<String>,
    /// One text with several `;`-separated statements, as a `.sql` file holds them. psql
    /// meta-commands (`\connect`) and `COPY … FROM STDIN` are not supported.
    #[serde(default)]
    pub script: Option<String>,
    /// Run everything between BEGIN and COMMIT, rolled back on any error (default true).
    /// Set false for statements PostgreSQL refuses inside a transaction block (`CREATE` /
    /// `DROP DATABASE`, `VACUUM`, `CREATE INDEX CONCURRENTLY`); each statement then commits
    /// on its own.
    #[serde(default = "yes")]
    pub transaction: bool,
    /// Rows of the last statement kept in the `rows` output (default 1000); `row_count`
    /// still counts them all.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Checks on the last statement's result; a failed check fails the step (not retried),
    /// which makes `sql` a verify step ("the restored table has rows").
    #[serde(default)]
    pub expect: Option<Expect>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exactly this many rows returned (or affected, for INSERT/UPDATE/DELETE).
    #[serde(default)]
    pub row_count: Option<u64>,
    /// At least this many rows.
    #[serde(default)]
    pub min_row_count: Option<u64>,
    /// At most this many rows.
    #[serde(default)]
    pub max_row_count: Option<u64>,
}

fn yes() -> bool {
    true
}
fn default_max_rows() -> usize {
    1000
}

/// Statements PostgreSQL refuses inside a transaction block, as leading keywords.
const NO_TRANSACTION: &[&[&str]] = &[
    &["CREATE", "DATABASE"],
    &["DROP", "DATABASE"],
    &["ALTER", "SYSTEM"],
    &["CREATE", "TABLESPACE"],
    &["DROP", "TABLESPACE"],
    &["VACUUM"],
    &["CREATE", "INDEX", "CONCURRENTLY"],
    &["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"],
    &["DROP", "INDEX", "CONCURRENTLY"],
    &["REINDEX", "DATABASE"],
    &["REINDEX", "SYSTEM"],
];

/// One statement of the spec and where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct Statement {
    pub text: String,
    /// 0-based line of the statement's first character within `script` (0 for `statements`).
    pub line: usize,
}

impl SqlSpec {
    pub fn statement_list(&self) -> Vec<Statement> {
        match &self.script {
            Some(script) => split_statements(script),
            None => self
                .statements
                .iter()
                .map(|s| Statement {
                    text: s.trim().trim_end_matches(';').trim_end().to_string(),
                    line: 0,
                })
                .collect(),
        }
    }
}

impl StepType for Sql {
    const NAME: &'static str = "sql";
    const SUMMARY: &'static str = "Run SQL statements on PostgreSQL (one transaction by default); the last statement's rows become outputs.";
    type Spec = SqlSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "rows",
                description: "rows of the last statement, as objects keyed by column name: int, float, bool, text, null, json/jsonb as JSON; numeric as a string; date/time as ISO 8601 text; uuid and bytea (`\\x…`) as text",
            },
            OutputDecl {
                name: "columns",
                description: "column names of the last statement, in order",
            },
            OutputDecl {
                name: "row_count",
                description: "rows the last statement returned, or affected (INSERT/UPDATE/DELETE)",
            },
            OutputDecl {
                name: "rows_truncated",
                description: "true when the last statement returned more than `max_rows` rows",
            },
            OutputDecl {
                name: "results",
                description: "one `{rows_affected: n}` per statement, in order",
            },
        ]
    }

    fn check(spec: &SqlSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = spec.connection.check(with);
        let at = |field: &str| with.get(field).map_or(with.span, |n| n.span);
        match (&spec.script, spec.statements.is_empty()) {
            (Some(_), false) => diags.push(
                Diagnostic::new(Code::StepArgs, "both `statements` and `script` are set")
                    .label(at("script"), "second source of SQL")
                    .help("give either a list of `statements` or one `script`"),
            ),
            (None, true) => diags.push(
                Diagnostic::new(Code::StepArgs, "no SQL to run")
                    .label(
                        at("statements"),
                        if with.get("statements").is_some() {
                            "empty list"
                        } else {
                            "neither `statements` nor `script`"
                        },
                    )
                    .help("add `statements: [\"SELECT 1\"]` or a `script: |` with the SQL"),
            ),
            (Some(script), true) if split_statements(script).is_empty() => diags.push(
                Diagnostic::new(Code::StepArgs, "`script` contains no statement")
                    .label(at("script"), "only blanks or comments")
                    .help("write the SQL to run, statements separated by `;`"),
            ),
            _ => {}
        }
        let list = with.get("statements");
        for (i, s) in spec.statements.iter().enumerate() {
            let span = list
                .and_then(|l| l.at_path(&i.to_string()))
                .map_or(at("statements"), |n| n.span);
            match split_statements(s).len() {
                0 => diags.push(
                    Diagnostic::new(Code::StepArgs, format!("statement {} is empty", i + 1))
                        .label(span, "no SQL")
                        .help("remove the entry or write the statement"),
                ),
                1 => {}
                n => diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        format!("entry {} of `statements` holds {n} statements", i + 1),
                    )
                    .label(span, "several `;`-separated statements")
                    .help("give each statement its own entry, or use `script` for a SQL text"),
                ),
            }
        }
        if spec.transaction {
            let field = if spec.script.is_some() {
                "script"
            } else {
                "statements"
            };
            for (i, st) in spec.statement_list().iter().enumerate() {
                if let Some(words) = refuses_transaction(&st.text) {
                    let span = match (field, list) {
                        ("statements", Some(l)) => {
                            l.at_path(&i.to_string()).map_or(l.span, |n| n.span)
                        }
                        _ => at(field),
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::StepArgs,
                            format!("`{words}` cannot run inside a transaction block"),
                        )
                        .label(span, "PostgreSQL refuses this in BEGIN … COMMIT")
                        .help("set `transaction: false` (each statement then commits on its own)"),
                    );
                }
            }
        }
        if let Some(e) = &spec.expect {
            if let (Some(min), Some(max)) = (e.min_row_count, e.max_row_count) {
                if min > max {
                    diags.push(
                        Diagnostic::new(
                            Code::StepArgs,
                            format!("`min_row_count` {min} is above `max_row_count` {max}"),
                        )
                        .label(at("expect"), "no row count can pass")
                        .help("swap the bounds or drop one"),
                    );
                }
            }
        }
        diags
    }

    /// A heuristic over the statements' leading keywords: DROP, TRUNCATE, and DELETE or
    /// UPDATE without a WHERE. SQL it cannot see (a whole statement from a template, a
    /// function that deletes) is not caught; the plan's `destructive: true` adds it.
    fn destructive(spec: &SqlSpec) -> bool {
        spec.statement_list()
            .iter()
            .any(|s| is_destructive_statement(&s.text))
    }

    fn describe(spec: &SqlSpec) -> Action {
        let statements = spec.statement_list();
        let shown: Vec<String> = statements.iter().map(|s| one_line(&s.text, 100)).collect();
        let how = if spec.transaction {
            "in one transaction"
        } else {
            "each statement committed on its own"
        };
        let n = statements.len();
        Action::new(format!(
            "SQL on {} ({how}), {n} statement{}: {}",
            spec.connection.display(),
            if n == 1 { "" } else { "s" },
            shown.join("; ")
        ))
    }

    async fn run(spec: SqlSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let target = spec.connection.resolve()?;
        if target.sslmode == super::SslMode::Require {
            return Err(StepError::fatal(format!(
                "`sql` cannot connect to {} with `sslmode: require`: it has no TLS support; \
                 use `prefer` or `disable`, or pg.dump / pg.restore, which use libpq",
                target.place()
            )));
        }
        let statements = spec.statement_list();
        if statements.is_empty() {
            return Err(StepError::fatal("no SQL statement to run"));
        }
        let config = target.pg_config();
        let connect = config.connect(NoTls);
        let (client, connection) = tokio::select! {
            r = connect => r.map_err(|e| target.error(&e, &ctx))?,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        let driver = tokio::spawn(connection);
        let result = tokio::select! {
            r = execute(&client, &spec, &statements, &target, &ctx) => r,
            _ = ctx.cancel.cancelled() => {
                // Stop the running statement; closing the connection then rolls back what
                // the open transaction did.
                let token = client.cancel_token();
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    token.cancel_query(NoTls),
                )
                .await;
                Err(StepError::cancelled())
            }
        };
        drop(client);
        driver.abort();
        let (outputs, last_count) = result?;
        if let Some(expect) = &spec.expect {
            check_expect(expect, last_count)?;
        }
        Ok(outputs)
    }
}

async fn execute(
    client: &tokio_postgres::Client,
    spec: &SqlSpec,
    statements: &[Statement],
    target: &Target,
    ctx: &StepContext,
) -> Result<(Outputs, u64), StepError> {
    if spec.transaction {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| target.error(&e, ctx))?;
    }
    let mut results = Vec::new();
    let mut rows = Vec::new();
    let mut columns = Vec::new();
    let mut last_count = 0u64;
    let mut truncated = false;
    for (i, st) in statements.iter().enumerate() {
        let last = i + 1 == statements.len();
        let ran = run_statement(client, &st.text, last, spec.max_rows).await;
        match ran {
            Ok(r) => {
                results.push(serde_json::json!({ "rows_affected": r.count }));
                if last {
                    last_count = r.count;
                    rows = r.rows;
                    columns = r.columns;
                    truncated = r.truncated;
                }
            }
            Err(e) => {
                let mut message = statement_error(&e, i, statements, spec, target, ctx);
                if spec.transaction {
                    if client.batch_execute("ROLLBACK").await.is_ok() {
                        message
                            .push_str("\nthe transaction was rolled back: nothing was committed");
                    } else {
                        message.push_str(
                            "\nthe connection is gone; the server rolls back the open transaction: nothing was committed",
                        );
                    }
                } else if i > 0 {
                    message.push_str(&format!(
                        "\nno transaction: statement{} before it took effect",
                        if i == 1 {
                            " 1".to_string()
                        } else {
                            format!("s 1–{i}")
                        }
                    ));
                }
                return Err(StepError {
                    message,
                    retryable: retryable(&e),
                    outputs: None,
                    answer: None,
                });
            }
        }
    }
    if spec.transaction {
        client.batch_execute("COMMIT").await.map_err(|e| {
            StepError::new(format!(
                "COMMIT failed at {}: {}",
                target.place(),
                ctx.redact.redact(&e.to_string())
            ))
        })?;
    }
    let mut out = Outputs::new();
    out.insert("rows".into(), Value::Array(rows));
    out.insert(
        "columns".into(),
        Value::Array(columns.into_iter().map(Value::String).collect()),
    );
    out.insert("row_count".into(), last_count.into());
    out.insert("rows_truncated".into(), truncated.into());
    out.insert("results".into(), Value::Array(results));
    Ok((out, last_count))
}

struct Ran {
    count: u64,
    rows: Vec<Value>,
    columns: Vec<String>,
    truncated: bool,
}

/// Why a statement failed: the server's error, or a value this step cannot convert.
enum RunError {
    Pg(tokio_postgres::Error),
    Convert(String),
}

async fn run_statement(
    client: &tokio_postgres::Client,
    text: &str,
    keep_rows: bool,
    max_rows: usize,
) -> Result<Ran, RunError> {
    let statement = client.prepare(text).await.map_err(RunError::Pg)?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let stream = client
        .query_raw(&statement, std::iter::empty::<i32>())
        .await
        .map_err(RunError::Pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut count = 0u64;
    let mut rows = Vec::new();
    let mut truncated = false;
    while let Some(row) = stream.try_next().await.map_err(RunError::Pg)? {
        count += 1;
        if !keep_rows {
            continue;
        }
        if rows.len() >= max_rows {
            truncated = true;
            continue;
        }
        let mut obj = serde_json::Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let raw: Raw = row.try_get(i).map_err(RunError::Pg)?;
            let value = decode(column.type_(), raw.0).map_err(|why| {
                RunError::Convert(format!(
                    "column \"{}\" ({}): {why}; cast it in the query, e.g. `{}::text`",
                    column.name(),
                    column.type_().name(),
                    column.name()
                ))
            })?;
            obj.insert(column.name().to_string(), value);
        }
        rows.push(Value::Object(obj));
    }
    // A statement that returns rows counts the rows it returned: the server's command tag
    // has no count for some of them (`SHOW` answers with a row and the tag `SHOW`, which
    // tokio-postgres reads as 0 rows affected). Any other statement counts the rows it
    // affected (`INSERT 0 3`).
    let count = if columns.is_empty() {
        stream.rows_affected().unwrap_or(count)
    } else {
        count
    };
    Ok(Ran {
        count,
        rows,
        columns,
        truncated,
    })
}

fn retryable(e: &RunError) -> bool {
    match e {
        RunError::Convert(_) => false,
        RunError::Pg(e) => match e.as_db_error() {
            Some(db) => {
                matches!(db.code().code(), "40001" | "40P01" | "57P01" | "55P03")
                    || db.code().code().starts_with("08")
            }
            None => true,
        },
    }
}

/// "statement 2 of 3 failed at host:port/db: message (SQLSTATE x) at line l, column c", then
/// the statement with a caret, detail and hint.
fn statement_error(
    e: &RunError,
    index: usize,
    statements: &[Statement],
    spec: &SqlSpec,
    target: &Target,
    ctx: &StepContext,
) -> String {
    let st = &statements[index];
    let head = format!(
        "statement {} of {} failed at {}/{}",
        index + 1,
        statements.len(),
        target.place(),
        target.database
    );
    let e = match e {
        RunError::Convert(why) => return format!("{head}: {why}"),
        RunError::Pg(e) => e,
    };
    let Some(db) = e.as_db_error() else {
        if e.is_closed() {
            return format!("{head}: the server closed the connection");
        }
        return format!("{head}: {}", ctx.redact.redact(&e.to_string()));
    };
    let code = db.code().code();
    let mut out = format!(
        "{head}: {} (SQLSTATE {code})",
        ctx.redact.redact(db.message())
    );
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        let (line, col, line_text) = locate(&st.text, *pos as usize);
        let place = if spec.script.is_some() {
            format!("line {} of `script`", st.line + line + 1)
        } else {
            format!("line {}", line + 1)
        };
        out.push_str(&format!(" at {place}, column {col}"));
        out.push_str(&format!(
            "\n  {}\n  {}^",
            ctx.redact.redact(line_text),
            " ".repeat(col.saturating_sub(1))
        ));
    } else {
        out.push_str(&format!(
            "\n  {}",
            ctx.redact.redact(&one_line(&st.text, 200))
        ));
    }
    if let Some(detail) = db.detail() {
        out.push_str(&format!("\ndetail: {}", ctx.redact.redact(detail)));
    }
    if let Some(hint) = db.hint() {
        out.push_str(&format!("\nhint: {}", ctx.redact.redact(hint)));
    }
    if code == "25001" {
        out.push_str("\nhint: set `transaction: false` for statements that cannot run in a transaction block");
    }
    out
}

/// Line (0-based), column (1-based, in characters) and the line's text of the 1-based
/// character position `pos` PostgreSQL reports.
fn locate(text: &str, pos: usize) -> (usize, usize, &str) {
    let byte = text
        .char_indices()
        .nth(pos.saturating_sub(1))
        .map_or(text.len(), |(b, _)| b);
    let before = &text[..byte];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let col = text[line_start..byte].chars().count() + 1;
    (line, col, text[line_start..line_end].trim_end())
}

fn check_expect(expect: &Expect, count: u64) -> Result<(), StepError> {
    let fail = |what: String| {
        Err(StepError::fatal(format!(
            "the last statement gave {count} row{}, {what}",
            if count == 1 { "" } else { "s" }
        )))
    };
    if let Some(n) = expect.row_count {
        if count != n {
            return fail(format!("expected exactly {n}"));
        }
    }
    if let Some(n) = expect.min_row_count {
        if count < n {
            return fail(format!("expected at least {n}"));
        }
    }
    if let Some(n) = expect.max_row_count {
        if count > n {
            return fail(format!("expected at most {n}"));
        }
    }
    Ok(())
}

/// Any column value as its raw binary form; [`decode`] turns it into JSON by type.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// JSON for one binary-format value; an error names types it does not handle.
pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Value, String> {
    let Some(raw) = raw else {
        return Ok(Value::Null);
    };
    let bad = || format!("malformed {} value", ty.name());
    let be = |n: usize| -> Result<&[u8], String> {
        if raw.len() == n {
            Ok(raw)
        } else {
            Err(bad())
        }
    };
    let text = || {
        std::str::from_utf8(raw)
            .map(|s| Value::String(s.to_string()))
            .map_err(|_| bad())
    };
    let float = |f: f64| {
        serde_json::Number::from_f64(f).map_or_else(
            || {
                Value::String(if f.is_nan() {
                    "NaN".into()
                } else if f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                })
            },
            Value::Number,
        )
    };
    Ok(match *ty {
        Type::BOOL => Value::Bool(be(1)?[0] != 0),
        Type::INT2 => i16::from_be_bytes(be(2)?.try_into().map_err(|_| bad())?).into(),
        Type::INT4 => i32::from_be_bytes(be(4)?.try_into().map_err(|_| bad())?).into(),
        Type::INT8 => i64::from_be_bytes(be(8)?.try_into().map_err(|_| bad())?).into(),
        Type::OID => u32::from_be_bytes(be(4)?.try_into().map_err(|_| bad())?).into(),
        Type::FLOAT4 => float(f32::from_be_bytes(be(4)?.try_into().map_err(|_| bad())?) as f64),
        Type::FLOAT8 => float(f64::from_be_bytes(be(8)?.try_into().map_err(|_| bad())?)),
        Type::NUMERIC => Value::String(numeric_text(raw).ok_or_else(bad)?),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => text()?,
        Type::CHAR => Value::String(char::from(be(1)?[0]).to_string()),
        Type::JSON => serde_json::from_slice(raw).map_err(|_| bad())?,
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => serde_json::from_slice(rest).map_err(|_| bad())?,
            _ => return Err(bad()),
        },
        Type::UUID => {
            let h = hex::encode(be(16)?);
            Value::String(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        Type::BYTEA => Value::String(format!("\\x{}", hex::encode(raw))),
        Type::DATE => {
            let days = i32::from_be_bytes(be(4)?.try_into().map_err(|_| bad())?);
            Value::String(match days {
                i32::MAX => "infinity".into(),
                i32::MIN => "-infinity".into(),
                d => date_text(i64::from(d)),
            })
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(be(8)?.try_into().map_err(|_| bad())?);
            Value::String(match micros {
                i64::MAX => "infinity".into(),
                i64::MIN => "-infinity".into(),
                m => {
                    let zone = if *ty == Type::TIMESTAMPTZ { "Z" } else { "" };
                    format!("{}{zone}", timestamp_text(m))
                }
            })
        }
        _ if matches!(ty.kind(), Kind::Enum(_)) || ty.name() == "citext" => text()?,
        _ => return Err("this type has no JSON conversion".into()),
    })
}

/// PostgreSQL's binary NUMERIC as its decimal text (digits in base 10000).
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes(raw.get(i..i + 2)?.try_into().ok()?)) };
    let ndigits = usize::from(word(0)?);
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let digit = |idx: i32| -> u16 {
        usize::try_from(idx)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for idx in 0..=weight {
            if idx == 0 {
                out.push_str(&digit(idx).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(idx)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut idx = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(idx)));
            idx += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// `YYYY-MM-DD` for days since 2000-01-01 (proleptic Gregorian, Hinnant's algorithm).
fn date_text(days_since_2000: i64) -> String {
    let z = days_since_2000 + 10957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` for microseconds since 2000-01-01 00:00:00.
fn timestamp_text(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let secs = rest / 1_000_000;
    let frac = rest % 1_000_000;
    let mut s = format!(
        "{}T{:02}:{:02}:{:02}",
        date_text(days),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        s.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    s
}

/// The text with comments, string literals, quoted identifiers and dollar-quoted bodies
/// blanked out (same length, byte for byte), so `;` and keywords can be found in what is left.
pub fn mask(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = b.to_vec();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            *c = b' ';
        }
    };
    while i < b.len() {
        let c = b[i];
        let prev_ident = i > 0 && ident(b[i - 1]);
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == b'\'' || c == b'"' {
            // E'…' strings take backslash escapes; standard strings and identifiers do not.
            let escapes = c == b'\''
                && i > 0
                && matches!(b[i - 1], b'E' | b'e')
                && !(i > 1 && ident(b[i - 2]));
            let mut j = i + 1;
            while j < b.len() {
                if escapes && b[j] == b'\\' {
                    j += 2;
                } else if b[j] == c {
                    if b.get(j + 1) == Some(&c) {
                        j += 2;
                    } else {
                        j += 1;
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == b'$' && !prev_ident {
            let tag_end = b[i + 1..]
                .iter()
                .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
                .map(|p| i + 1 + p);
            match tag_end {
                Some(t) if b[t] == b'$' && !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                    let tag = &b[i..=t];
                    let body = t + 1;
                    let end = b[body..]
                        .windows(tag.len())
                        .position(|w| w == tag)
                        .map_or(b.len(), |p| body + p + tag.len());
                    blank(&mut out, i, end);
                    i = end;
                }
                _ => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| " ".repeat(sql.len()))
}

/// Splits a SQL text at top-level `;`, dropping empty statements and trailing comments.
pub fn split_statements(sql: &str) -> Vec<Statement> {
    let masked = mask(sql);
    let mut out = Vec::new();
    let mut start = 0;
    let ends = masked
        .match_indices(';')
        .map(|(i, _)| i)
        .chain(std::iter::once(sql.len()));
    for end in ends {
        let piece = &masked[start..end];
        if !piece.trim().is_empty() {
            let lead = piece.len() - piece.trim_start().len();
            let text_start = start + lead;
            let text_end = start + piece.trim_end().len();
            out.push(Statement {
                text: sql[text_start..text_end].to_string(),
                line: sql[..text_start].matches('\n').count(),
            });
        }
        start = (end + 1).min(sql.len());
    }
    out
}

/// Leading keywords of a statement, upper-cased, with comments and literals ignored.
fn words(text: &str) -> Vec<String> {
    mask(text)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect()
}

pub fn is_destructive_statement(text: &str) -> bool {
    let w = words(text);
    match w.first().map(String::as_str) {
        Some("DROP" | "TRUNCATE") => true,
        Some("DELETE" | "UPDATE") => !w.iter().any(|x| x == "WHERE"),
        _ => false,
    }
}

/// The keywords of a statement PostgreSQL refuses inside a transaction block.
fn refuses_transaction(text: &str) -> Option<String> {
    let w = words(text);
    NO_TRANSACTION
        .iter()
        .find(|k| k.len() <= w.len() && k.iter().zip(&w).all(|(a, b)| a == b))
        .map(|k| k.join(" "))
}

/// Whitespace collapsed and cut at `max` characters, for previews and messages.
fn one_line(text: &str, max: usize) -> String {
    let s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_respecting_quotes_and_comments() {
        let sql = "CREATE TABLE t (a text); -- c; d\nINSERT INTO t VALUES ('x;y'), (E'\\';'); \
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   /* a; /* nested; */ b */ SELECT \"a;b\" FROM t;  ";
        let st = split_statements(sql);
        let texts: Vec<&str> = st.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts.len(), 4, "{texts:?}");
        // A leading comment is not part of the statement sent.
        assert_eq!(texts[1], "INSERT INTO t VALUES ('x;y'), (E'\\';')");
        assert_eq!(st[1].line, 1);
        assert!(texts[2].ends_with("LANGUAGE sql"));
        assert_eq!(st[3].line, 2);
    }

    #[test]
    fn destructive_heuristic() {
        assert!(is_destructive_statement("drop database dop"));
        assert!(is_destructive_statement("TRUNCATE items"));
        assert!(is_destructive_statement("DELETE FROM items"));
        assert!(!is_destructive_statement("DELETE FROM items WHERE id = 1"));
        assert!(is_destructive_statement(
            "DELETE FROM items -- WHERE id = 1"
        ));
        assert!(!is_destructive_statement("SELECT 'DROP TABLE x'"));
        assert!(!is_destructive_statement("INSERT INTO t VALUES (1)"));
    }

    #[test]
    fn numeric_and_dates() {
        // 12345.678: ndigits 3, weight 1, sign +, dscale 3; digits 1, 2345, 6780.
        let raw = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(numeric_text(&raw).as_deref(), Some("12345.678"));
        // -0.05: ndigits 1, weight -1, sign -, dscale 2; digit 500.
        let raw = [0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4];
        assert_eq!(numeric_text(&raw).as_deref(), Some("-0.05"));
        assert_eq!(date_text(0), "2000-01-01");
        assert_eq!(date_text(-1), "1999-12-31");
        assert_eq!(date_text(9190), "2025-02-28");
        assert_eq!(timestamp_text(1_500_000), "2000-01-01T00:00:01.5");
    }
}
