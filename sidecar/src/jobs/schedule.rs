//! When a job is due: its schedule (five cron fields, an `@hourly`-style shortcut, or `N seconds`)
//! read with the `croner` crate, in UTC or the job's time zone. Every sidecar computes the same
//! ticks (second intervals count from the Unix epoch), so a tick is one `(job, time)` everywhere and
//! Postgres decides who runs it.

use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// Every N seconds (1 to 59).
    Every(i64),
    /// A cron expression, in a time zone.
    Cron(Box<Cron>, Tz),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScheduleError {
    #[error("invalid schedule {0:?}: {1}")]
    Pattern(String, String),
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
}

impl Schedule {
    pub(crate) fn parse(text: &str, timezone: Option<&str>) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if let Some(number) = text
            .strip_suffix("seconds")
            .or_else(|| text.strip_suffix("second"))
        {
            return match number.trim().parse::<i64>() {
                Ok(n @ 1..=59) => Ok(Schedule::Every(n)),
                _ => Err(ScheduleError::Pattern(
                    text.to_owned(),
                    "an interval is 1 to 59 seconds".to_owned(),
                )),
            };
        }
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => {
                Tz::from_str(name).map_err(|_| ScheduleError::TimeZone(name.to_owned()))?
            }
        };
        // croner knows every shortcut but @midnight, which is @daily.
        let pattern = if text.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            text
        };
        if !pattern.starts_with('@') && pattern.split_whitespace().count() != 5 {
            return Err(ScheduleError::Pattern(
                text.to_owned(),
                "a cron expression has five fields".to_owned(),
            ));
        }
        let cron = Cron::from_str(pattern)
            .map_err(|err| ScheduleError::Pattern(text.to_owned(), err.to_string()))?;
        Ok(Schedule::Cron(Box::new(cron), tz))
    }

    /// The latest tick at or before `now`.
    pub(crate) fn latest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(n) => {
                let seconds = now.timestamp();
                Utc.timestamp_opt(seconds - seconds.rem_euclid(*n), 0)
                    .single()
            }
            Schedule::Cron(cron, tz) => {
                let local = now.with_timezone(tz);
                cron.find_previous_occurrence(&local, true)
                    .ok()
                    .map(|tick| tick.with_timezone(&Utc))
            }
        }
    }

    /// The first tick after `after`.
    pub(crate) fn next(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(n) => self.latest(after).map(|tick| tick + Duration::seconds(*n)),
            Schedule::Cron(cron, tz) => {
                let local = after.with_timezone(tz);
                cron.find_next_occurrence(&local, false)
                    .ok()
                    .map(|tick| tick.with_timezone(&Utc))
            }
        }
    }

    /// The tick to claim now, for a job whose ticks up to `after` are taken: none before its
    /// time; the next one in turn while the job is less than `catch_up` behind (a late look runs
    /// every tick); only the latest once it is further behind (ticks missed while no sidecar ran
    /// run once, not once each).
    pub(crate) fn due(
        &self,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
        catch_up: Duration,
    ) -> Option<DateTime<Utc>> {
        let next = self.next(after).filter(|next| *next <= now)?;
        if now - next <= catch_up {
            Some(next)
        } else {
            self.latest(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn second_intervals_tick_on_multiples_of_n() {
        let every = Schedule::parse("15 seconds", None).unwrap();
        let now = at("2026-12-06T10:00:37.5Z");
        assert_eq!(every.latest(now), Some(at("2026-12-06T10:00:30Z")));
        assert!(Schedule::parse("0 seconds", None).is_err());
        assert!(Schedule::parse("60 seconds", None).is_err());
    }

    #[test]
    fn cron_and_shortcuts_are_utc_unless_a_zone_is_named() {
        let now = at("2026-12-06T10:17:00Z");
        let five = Schedule::parse("*/5 * * * *", None).unwrap();
        assert_eq!(five.latest(now), Some(at("2026-12-06T10:15:00Z")));
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(hourly.latest(now), Some(at("2026-12-06T10:00:00Z")));
        let midnight = Schedule::parse("@midnight", None).unwrap();
        assert_eq!(midnight.latest(now), Some(at("2026-12-06T00:00:00Z")));
        // 09:00 in Berlin (UTC+1 in December) is 08:00 UTC.
        let berlin = Schedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(berlin.latest(now), Some(at("2026-12-06T08:00:00Z")));
    }

    #[test]
    fn a_job_a_little_behind_runs_every_tick_and_one_far_behind_runs_once() {
        let every = Schedule::parse("1 seconds", None).unwrap();
        let catch_up = Duration::seconds(10);
        let now = at("2026-12-06T10:00:05.2Z");
        // Taken through :03: :04 is due, then :05, then nothing before :06.
        assert_eq!(
            every.due(at("2026-12-06T10:00:03Z"), now, catch_up),
            Some(at("2026-12-06T10:00:04Z"))
        );
        assert_eq!(
            every.due(at("2026-12-06T10:00:04Z"), now, catch_up),
            Some(at("2026-12-06T10:00:05Z"))
        );
        assert_eq!(every.due(at("2026-12-06T10:00:05Z"), now, catch_up), None);
        // Taken through an hour ago: only the latest tick.
        assert_eq!(
            every.due(at("2026-12-06T09:00:00Z"), now, catch_up),
            Some(at("2026-12-06T10:00:05Z"))
        );
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            hourly.due(at("2026-12-06T07:30:00Z"), now, catch_up),
            Some(at("2026-12-06T10:00:00Z"))
        );
    }

    #[test]
    fn bad_schedules_and_zones_are_refused() {
        assert!(matches!(
            Schedule::parse("61 * * * *", None),
            Err(ScheduleError::Pattern(..))
        ));
        assert!(matches!(
            Schedule::parse("* * * *", None),
            Err(ScheduleError::Pattern(..))
        ));
        assert_eq!(
            Schedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".to_owned())
        );
    }
}
