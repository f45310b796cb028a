//! Calendar arithmetic for the few places that print UTC times (the CLI's tables, the
//! `utc_time_created` MLflow fills in for a logged model that has none).

use std::time::{SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Microseconds since the epoch as Python's `str(datetime)`: `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn python_datetime(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let clock = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02} {clock}")
    } else {
        format!("{y:04}-{m:02}-{d:02} {clock}.{frac:06}")
    }
}

/// The current time as [`python_datetime`] writes it.
pub fn python_now() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    python_datetime(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_of_datetime() {
        assert_eq!(python_datetime(951_782_400_000_000), "2000-02-29 00:00:00");
        assert_eq!(
            python_datetime(1_795_838_754_961_007),
            "2026-11-28 04:05:54.961007"
        );
    }
}
