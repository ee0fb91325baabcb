//! Times as RFC 3339 text, without a date crate: the proxy only ever formats UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-03-01T12:00:00Z`: what people and `meshctl` read, from Unix seconds.
pub fn format_rfc3339(unix: i64) -> String {
    format!("{}Z", date_time(unix))
}

/// `2026-11-21T03:59:55.123Z`: with milliseconds, for log lines.
pub fn format_rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{}.{:03}Z",
        date_time(since.as_secs() as i64),
        since.subsec_millis()
    )
}

/// `2026-03-01T12:00:00`, from Unix seconds.
fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
