//! UTC calendar formatting of ERF timestamps for file names and sidecars (no time zone data:
//! every time anoncap writes is UTC).

use crate::packet::Timestamp;

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn parts(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Compact form for file names: `20260101T120000.123456789Z` (sorts as time does).
pub fn compact(ts: Timestamp) -> String {
    let (s, ns) = ts.to_secs_nanos();
    let (y, mo, d, h, mi, se) = parts(s);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{se:02}.{ns:09}Z")
}

/// RFC 3339 form for sidecars: `2026-01-01T12:00:00.123456789Z`.
pub fn rfc3339(ts: Timestamp) -> String {
    let (s, ns) = ts.to_secs_nanos();
    let (y, mo, d, h, mi, se) = parts(s);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{ns:09}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 1700000000.5 s is 2023-11-14 22:13:20.5 UTC (docs/erf-format §13, from tshark).
        let ts = Timestamp::from_secs_nanos(1_700_000_000, 500_000_000);
        assert_eq!(rfc3339(ts), "2023-11-14T22:13:20.500000000Z");
        assert_eq!(compact(ts), "20231114T221320.500000000Z");
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (a leap day in a century year divisible by 400): 951782400 s.
        assert_eq!(
            rfc3339(Timestamp::from_secs_nanos(951_782_400, 0)),
            "2000-02-29T00:00:00.000000000Z"
        );
        // 2026-01-01T12:00:00Z = 1767268800 s.
        assert_eq!(
            compact(Timestamp::from_secs_nanos(1_767_268_800, 123_456_789)),
            "20260101T120000.123456789Z"
        );
    }
}
