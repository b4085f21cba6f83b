//! RFC 3339 UTC timestamps with milliseconds (`2026-11-22T07:27:16.123Z`),
//! the form every stored and returned time takes. They sort as text.

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// Parses what [`rfc3339_millis`] writes back into Unix milliseconds.
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| s.get(from..to)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// (year, month, day) to days since 1970-01-01 (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

const DAY_MS: i64 = 86_400_000;

/// An ISO 8601 week (`2026-W48`): weeks start on Monday, and week 1 is the
/// one holding the year's first Thursday, so a week belongs to one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsoWeek {
    pub year: i64,
    pub week: u32,
}

impl IsoWeek {
    /// The week holding the instant `unix_ms` (UTC).
    pub fn of_ms(unix_ms: i64) -> IsoWeek {
        let day = unix_ms.div_euclid(DAY_MS);
        // 1970-01-01 was a Thursday; ISO weekdays run Monday = 1 .. Sunday = 7.
        let weekday = (day + 3).rem_euclid(7) + 1;
        let thursday = day - weekday + 4;
        let (year, _, _) = civil_from_days(thursday);
        let week = ((thursday - days_from_civil(year, 1, 1)) / 7 + 1) as u32;
        IsoWeek { year, week }
    }

    /// Parses `YYYY-Www` (week 01..52, or 53 in a year that has it).
    pub fn parse(label: &str) -> Option<IsoWeek> {
        let (y, w) = label.split_once("-W")?;
        if y.len() != 4 || w.len() != 2 || !y.bytes().chain(w.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let w = IsoWeek { year: y.parse().ok()?, week: w.parse().ok()? };
        (w.week >= 1 && IsoWeek::of_ms(w.start_ms()) == w).then_some(w)
    }

    /// Monday 00:00 UTC of the week, Unix ms.
    pub fn start_ms(self) -> i64 {
        let jan4 = days_from_civil(self.year, 1, 4);
        let monday1 = jan4 - ((jan4 + 3).rem_euclid(7));
        (monday1 + 7 * (i64::from(self.week) - 1)) * DAY_MS
    }

    /// The next Monday 00:00 UTC (the week's exclusive end), Unix ms.
    pub fn end_ms(self) -> i64 {
        self.start_ms() + 7 * DAY_MS
    }

    /// The week after this one.
    pub fn next(self) -> IsoWeek {
        IsoWeek::of_ms(self.end_ms())
    }

    /// The week before this one.
    pub fn prev(self) -> IsoWeek {
        IsoWeek::of_ms(self.start_ms() - 1)
    }
}

impl std::fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_of_known_days() {
        let at = |s: &str| parse_rfc3339_millis(s).unwrap();
        // 2026-12-01 is a Tuesday of week 49; 2021-01-03 (a Sunday) is in
        // 2020's week 53; 2024-12-30 (a Monday) is 2025-W01.
        assert_eq!(IsoWeek::of_ms(at("2026-12-01T12:00:00.000Z")).to_string(), "2026-W49");
        assert_eq!(IsoWeek::of_ms(at("2021-01-03T23:59:59.999Z")).to_string(), "2020-W53");
        assert_eq!(IsoWeek::of_ms(at("2024-12-30T00:00:00.000Z")).to_string(), "2025-W01");
        let w = IsoWeek::parse("2026-W49").unwrap();
        assert_eq!(rfc3339_millis(w.start_ms()), "2026-11-30T00:00:00.000Z");
        assert_eq!(rfc3339_millis(w.end_ms()), "2026-12-07T00:00:00.000Z");
        assert_eq!(w.next().to_string(), "2026-W50");
        assert_eq!(IsoWeek::parse("2026-W52").unwrap().next().to_string(), "2026-W53");
        assert_eq!(IsoWeek::parse("2026-W53").unwrap().next().to_string(), "2027-W01");
        assert_eq!(IsoWeek::parse("2027-W01").unwrap().prev().to_string(), "2026-W53");
        assert_eq!(w.prev().next(), w);
        for bad in ["2025-W53", "2026-W00", "2026-W5", "2026W49", "20x6-W01", "2026-W54"] {
            assert_eq!(IsoWeek::parse(bad), None, "{bad}");
        }
        // Every day of a week maps back to it.
        for d in 0..7 {
            assert_eq!(IsoWeek::of_ms(w.start_ms() + d * DAY_MS + 5), w);
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(1_795_332_436_123), "2026-11-22T07:27:16.123Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for t in [0, 1_795_332_436_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_millis(&rfc3339_millis(t)), Some(t));
        }
        assert_eq!(parse_rfc3339_millis("2026-11-22"), None);
    }
}
