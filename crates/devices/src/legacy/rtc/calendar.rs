//! Proleptic Gregorian calendar arithmetic in UTC, for the RTC's date registers
//! (days-from-civil and its inverse, after Howard Hinnant's public-domain derivation).

const SECS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 1 = Sunday, as the RTC counts.
    pub weekday: u8,
}

impl DateTime {
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            // 1970-01-01 was a Thursday (5).
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
        }
    }

    /// Seconds since the epoch; None for a date or time that does not exist.
    pub fn to_unix(self) -> Option<i64> {
        let valid = (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second)
        })
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (months 1..=12).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    // Years start in March, so the leap day ends the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT
}

/// (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z - era * DAYS_PER_ERA;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let cases = [
            (0, (1970, 1, 1, 0, 0, 0, 5)),
            (951_782_400, (2000, 2, 29, 0, 0, 0, 3)),
            (1_709_210_096, (2024, 2, 29, 12, 34, 56, 5)),
            (4_102_444_799, (2099, 12, 31, 23, 59, 59, 5)),
            (-1, (1969, 12, 31, 23, 59, 59, 4)),
        ];
        for (secs, (y, mo, d, h, mi, s, wd)) in cases {
            let t = DateTime::from_unix(secs);
            assert_eq!(
                t,
                DateTime { year: y, month: mo, day: d, hour: h, minute: mi, second: s, weekday: wd },
                "{secs}"
            );
            assert_eq!(t.to_unix(), Some(secs));
        }
    }

    #[test]
    fn days_round_trip_across_four_centuries() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn dates_that_do_not_exist_are_refused() {
        let t = DateTime::from_unix(0);
        for bad in [
            DateTime { month: 13, ..t },
            DateTime { month: 0, ..t },
            DateTime { day: 0, ..t },
            DateTime { year: 2023, month: 2, day: 29, ..t },
            DateTime { year: 1900, month: 2, day: 29, ..t },
            DateTime { month: 4, day: 31, ..t },
            DateTime { hour: 24, ..t },
            DateTime { minute: 60, ..t },
            DateTime { second: 60, ..t },
        ] {
            assert_eq!(bad.to_unix(), None, "{bad:?}");
        }
        assert!(DateTime { year: 2000, month: 2, day: 29, ..t }.to_unix().is_some());
    }
}
