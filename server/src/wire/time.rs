//! Protobuf's JSON forms of `Timestamp` (`2026-12-04T16:17:45.507Z`) and `Duration`
//! (`0.126s`), which MLflow 3's trace and assessment messages use for times.

use crate::error::{MlflowError, Result};

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Fraction digits as protobuf writes them: none, 3, 6 or 9.
fn fraction(nanos: i64) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

/// Milliseconds since the epoch as a protobuf JSON timestamp.
pub fn timestamp_from_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) * 1_000_000;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        fraction(nanos)
    )
}

fn bad_timestamp(text: &str) -> MlflowError {
    MlflowError::invalid(format!("Invalid timestamp '{text}': expected RFC 3339"))
}

/// Parses a protobuf JSON timestamp (RFC 3339, `Z` or an offset) to milliseconds.
pub fn timestamp_to_ms(text: &str) -> Result<i64> {
    let bad = || bad_timestamp(text);
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':'
        || b[16] != b':'
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return Err(bad());
    }
    let mut pos = 19;
    let mut nanos = 0i64;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start || end - start > 9 {
            return Err(bad());
        }
        nanos = num(start..end)? * 10i64.pow(9 - (end - start) as u32);
        pos = end;
    }
    let offset_secs = match &text[pos..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (num(pos + 1..pos + 3)? * 3600 + num(pos + 4..pos + 6)? * 60)
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Ok(secs * 1000 + nanos / 1_000_000)
}

/// Milliseconds as a protobuf JSON duration (`0.126s`, `3s`, `-1.500s`).
pub fn duration_from_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs() as i64;
    format!("{sign}{}{}s", abs / 1000, fraction(abs % 1000 * 1_000_000))
}

/// Parses a protobuf JSON duration to milliseconds (sub-millisecond digits are dropped).
pub fn duration_to_ms(text: &str) -> Result<i64> {
    let bad = || MlflowError::invalid(format!("Invalid duration '{text}': expected e.g. '1.5s'"));
    let body = text.strip_suffix('s').ok_or_else(bad)?;
    let (negative, body) = match body.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty()
        || !whole.bytes().all(|c| c.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: i64 = whole.parse().map_err(|_| bad())?;
    let millis: i64 = format!("{frac:0<3}")[..3].parse().unwrap_or(0);
    let ms = secs
        .checked_mul(1000)
        .and_then(|v| v.checked_add(millis))
        .ok_or_else(bad)?;
    Ok(if negative { -ms } else { ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(timestamp_from_ms(1796401065507), "2026-12-04T16:17:45.507Z");
        assert_eq!(timestamp_from_ms(1796401065000), "2026-12-04T16:17:45Z");
        assert_eq!(timestamp_from_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp_from_ms(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 1796401065507, 951782400123, -86_400_000] {
            assert_eq!(timestamp_to_ms(&timestamp_from_ms(ms)).unwrap(), ms);
        }
        assert_eq!(
            timestamp_to_ms("2026-12-04T17:17:45.507123+01:00").unwrap(),
            1796401065507
        );
        assert!(timestamp_to_ms("2026-12-04 17:17:45").is_err());
        assert!(timestamp_to_ms("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_from_ms(126), "0.126s");
        assert_eq!(duration_from_ms(3000), "3s");
        assert_eq!(duration_from_ms(-1500), "-1.500s");
        assert_eq!(duration_to_ms("0.126s").unwrap(), 126);
        assert_eq!(duration_to_ms("3s").unwrap(), 3000);
        assert_eq!(duration_to_ms("-1.5s").unwrap(), -1500);
        assert_eq!(duration_to_ms("0.000001s").unwrap(), 0);
        assert!(duration_to_ms("1.5").is_err());
        assert!(duration_to_ms("s").is_err());
    }
}
