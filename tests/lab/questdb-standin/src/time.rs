//! UTC calendar arithmetic without dependencies: QuestDB timestamps are microseconds since
//! the Unix epoch, partitions are UTC days.

use std::time::{SystemTime, UNIX_EPOCH};

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn now_micros() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The UTC day (days since epoch) a timestamp falls in.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_DAY)
}

pub fn fmt_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// QuestDB's text form of a timestamp: `2026-04-15T10:00:00.000000Z`.
pub fn fmt_ts(micros: i64) -> String {
    let day = day_of(micros);
    let rem = micros - day * MICROS_PER_DAY;
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}Z",
        fmt_day(day),
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        frac
    )
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A strict `YYYY-MM-DD` (partition name) to days since epoch.
pub fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = num(&s[0..4])?;
    let m = num(&s[5..7])? as u32;
    let d = num(&s[8..10])? as u32;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let day = days_from_civil(y, m, d);
    // Reject 2026-02-30 and the like: the round trip must give the same date back.
    if civil_from_days(day) != (y, m, d) {
        return None;
    }
    Some(day)
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]` (space instead of T accepted) to
/// microseconds since epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    if s.len() < 10 || !s.is_ascii() {
        return None;
    }
    let day = parse_day(&s[0..10])?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(day * MICROS_PER_DAY);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let rest = rest.strip_suffix('Z').unwrap_or(rest);
    let (hms, frac) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let (h, mi, se) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
    if h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let mut micros = 0;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 {
            return None;
        }
        micros = num(f)? * 10i64.pow(6 - f.len() as u32);
    }
    Some(day * MICROS_PER_DAY + ((h * 60 + mi) * 60 + se) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for day in [-1000, 0, 1, 19_000, 20_558, 40_000] {
            assert_eq!(parse_day(&fmt_day(day)), Some(day));
        }
        assert_eq!(fmt_day(0), "1970-01-01");
        assert_eq!(parse_day("2026-04-15"), Some(days_from_civil(2026, 4, 15)));
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(parse_ts("2026-04-1é"), None);
        let t = parse_ts("2026-04-15T10:20:30.5Z").unwrap();
        assert_eq!(fmt_ts(t), "2026-04-15T10:20:30.500000Z");
        assert_eq!(
            parse_ts("2026-04-15"),
            Some(parse_day("2026-04-15").unwrap() * MICROS_PER_DAY)
        );
    }
}
