//! UTC timestamps for human-readable output (`flowtel decode --format text`, `flowtel demo`).

/// Unix nanoseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn utc_seconds(unix_nano: u64) -> String {
    let secs = unix_nano / 1_000_000_000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Unix nanoseconds as `YYYY-MM-DD HH:MM:SS.uuuuuu` UTC.
pub fn utc_micros(unix_nano: u64) -> String {
    let micros = unix_nano % 1_000_000_000 / 1_000;
    format!("{}.{micros:06}", utc_seconds(unix_nano))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after H. Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc_seconds(0), "1970-01-01 00:00:00");
        assert_eq!(
            utc_seconds(951_782_400 * 1_000_000_000),
            "2000-02-29 00:00:00"
        );
        assert_eq!(
            utc_seconds(1_795_000_000 * 1_000_000_000 + 5),
            "2026-11-18 11:06:40"
        );
        assert_eq!(
            utc_micros(1_700_000_000 * 1_000_000_000 + 123_456_789),
            "2023-11-14 22:13:20.123456"
        );
    }
}
