//! Time as the daemon writes it: microseconds since the epoch (the API, the audit log) and
//! ISO-8601 UTC (OME-XML, sidecars, messages). A leaf: it imports nothing of the crate, so every
//! module may use it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 for a time before it), as the API and the audit log
/// carry times.
pub fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// ISO-8601 UTC with microseconds, e.g. "2024-05-01T12:34:56.123456Z". Times before 1970 are
/// clamped to the epoch (a camera clock that wrong is not worth a failure).
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_iso8601_utc() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T23:59:59.5Z (a leap day).
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_500);
        assert_eq!(iso8601(t), "2024-02-29T23:59:59.500000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&iso8601(t)[..10], "2000-02-29");
    }

    #[test]
    fn unix_us_counts_from_the_epoch() {
        assert_eq!(unix_us(UNIX_EPOCH), 0);
        assert_eq!(
            unix_us(UNIX_EPOCH + Duration::from_micros(1_500_000)),
            1_500_000
        );
        assert_eq!(unix_us(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
