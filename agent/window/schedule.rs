//! Evaluating windows at an instant: open or closed, and until when.
//!
//! The state only changes where some window starts or ends, so the next opening
//! (or closing) is the first such boundary at which the state differs from now.
//! Boundaries are looked for up to [`LOOKAHEAD_DAYS`] ahead: a weekly schedule
//! repeats well inside that.

use std::fmt;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use super::{Kind, Window, Windows};

/// How far ahead the next opening or closing is looked for.
const LOOKAHEAD_DAYS: i64 = 8;

/// What time it is: the system clock in the agent, a hand-moved one in tests.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    pub fn new(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// The wall clock.
pub struct SystemClock;

impl From<SystemClock> for Clock {
    fn from(_: SystemClock) -> Clock {
        Clock::new(Timestamp::now)
    }
}

/// The windows' verdict at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    pub open: bool,
    /// When the state next flips (opens when closed, closes when open), if within
    /// the lookahead; with the zone of the window whose boundary it is, to say it in.
    pub next: Option<(Timestamp, TimeZone)>,
}

impl WindowState {
    /// `opens 22:00 CET` / `closes Sat 00:00 UTC` / `does not open within 8 days`,
    /// relative to `now` (the weekday is named when it is a day or more away).
    pub fn describe(&self, now: Timestamp) -> String {
        let verb = if self.open { "closes" } else { "opens" };
        match &self.next {
            Some((at, zone)) => {
                let local = at.to_zoned(zone.clone());
                let format = if at.as_second() - now.as_second() >= 86_400 {
                    "%a %H:%M %Z"
                } else {
                    "%H:%M %Z"
                };
                format!("{verb} {}", local.strftime(format))
            }
            None => format!(
                "does not {} within {LOOKAHEAD_DAYS} days",
                &verb[..verb.len() - 1]
            ),
        }
    }
}

impl Windows {
    /// Whether a new revision may be applied at `at` (Argo CD's rules).
    pub fn allows(&self, at: Timestamp) -> bool {
        let active = |kind: Kind| {
            self.windows
                .iter()
                .filter(|w| w.kind == kind)
                .any(|w| w.active(at))
        };
        if active(Kind::Deny) {
            return false;
        }
        let any_allow = self.windows.iter().any(|w| w.kind == Kind::Allow);
        !any_allow || active(Kind::Allow)
    }

    /// The verdict at `now` and when it next changes.
    pub fn state(&self, now: Timestamp) -> WindowState {
        let open = self.allows(now);
        let mut boundaries: Vec<(Timestamp, &TimeZone)> = self
            .windows
            .iter()
            .flat_map(|w| {
                w.occurrences(now, LOOKAHEAD_DAYS)
                    .into_iter()
                    .flat_map(move |(s, e)| [(s, &w.zone), (e, &w.zone)])
            })
            .filter(|(at, _)| *at > now)
            .collect();
        boundaries.sort_by_key(|(at, _)| *at);
        let next = boundaries
            .into_iter()
            .find(|(at, _)| self.allows(*at) != open)
            .map(|(at, zone)| (at, zone.clone()));
        WindowState { open, next }
    }
}

impl Window {
    fn active(&self, at: Timestamp) -> bool {
        // A window lasts at most a day (and a DST hour), so only occurrences that
        // start on the last two local days can contain `at`.
        self.occurrences(at, 0)
            .into_iter()
            .any(|(start, end)| start <= at && at < end)
    }

    /// `(start, end)` of every occurrence starting from two local days before `at`
    /// until `ahead` days after it.
    fn occurrences(&self, at: Timestamp, ahead: i64) -> Vec<(Timestamp, Timestamp)> {
        let today = at.to_zoned(self.zone.clone()).date();
        let mut out = Vec::new();
        for offset in -2..=ahead {
            let Ok(date) = today.checked_add(offset.days()) else {
                continue;
            };
            if !self.days[usize::from(date.weekday().to_monday_zero_offset() as u8)] {
                continue;
            }
            if let Some(occurrence) = self.occurrence(date) {
                out.push(occurrence);
            }
        }
        out
    }

    /// The occurrence starting on local `date`; `None` only at the ends of time.
    fn occurrence(&self, date: Date) -> Option<(Timestamp, Timestamp)> {
        let start = self.instant(date, self.start)?;
        let end_date = if self.end <= self.start {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = self.instant(end_date, self.end)?;
        Some((start, end))
    }

    /// Local `date` at `minutes` after midnight (1440: the next midnight), resolved
    /// in the window's zone: in a gap, after it; in a fold, the first time.
    fn instant(&self, date: Date, minutes: u16) -> Option<Timestamp> {
        let (date, minutes) = if minutes == 1440 {
            (date.tomorrow().ok()?, 0)
        } else {
            (date, minutes)
        };
        let time = jiff::civil::time((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
        let zoned = self.zone.to_zoned(date.to_datetime(time)).ok()?;
        Some(zoned.timestamp())
    }
}
