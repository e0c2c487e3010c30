//! Change windows: when may a new revision be applied?
//!
//! In: the `--sync-window` specs (`allow Mon-Fri 22:00-04:00 Europe/Berlin`,
//! `deny Sat,Sun 00:00-24:00 UTC`), parsed once against the system's tz database,
//! and an instant. Out: whether applying is allowed at that instant and, when it is
//! not, when it next is (and when an open window next closes). Pure: the clock is
//! the caller's, so tests move time by hand, across DST changes.
//!
//! The rules are Argo CD's sync windows: a deny window that is active wins; with no
//! allow window at all applying is allowed; with allow windows, one of them must be
//! active. A window starts on each listed day at its start time (local time of its
//! zone) and ends at its end time, the next day when the end is not after the start
//! (`22:00-04:00`); `24:00` is the end of the day. A start that falls in a DST gap
//! begins when the clocks have moved on; one in a repeated hour, the first time.
//!
//! What can go wrong: a malformed spec or an unknown zone, both refused at start-up
//! with the spec named.

mod schedule;
pub mod zone;

#[cfg(test)]
mod tests;

use jiff::tz::TimeZone;

pub use schedule::{Clock, SystemClock, WindowState};
pub use zone::Zoneinfo;

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("--sync-window {spec:?}: {reason}")]
    Spec { spec: String, reason: String },
    #[error("--sync-window {spec:?}: time zone {zone:?}: {reason}")]
    Zone {
        spec: String,
        zone: String,
        reason: String,
    },
}

/// Whether a window lets revisions through or holds them back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Allow,
    Deny,
}

/// One parsed `--sync-window`.
#[derive(Debug, Clone)]
pub struct Window {
    pub kind: Kind,
    /// Monday first, as ISO weekdays count.
    days: [bool; 7],
    /// Minutes after local midnight.
    start: u16,
    /// Minutes after local midnight, 1..=1440; not after `start` means the next day.
    end: u16,
    zone: TimeZone,
    spec: String,
}

impl Window {
    /// Parses `allow|deny DAYS HH:MM-HH:MM ZONE`. DAYS is `*` or a comma-separated
    /// list of days (`Mon`…`Sun`) and ranges (`Mon-Fri`, `Fri-Mon` wraps).
    pub fn parse(spec: &str, zones: &Zoneinfo) -> Result<Window, WindowError> {
        let bad = |reason: String| WindowError::Spec {
            spec: spec.to_string(),
            reason,
        };
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let [kind, days, times, zone] = parts.as_slice() else {
            return Err(bad(
                "expected 4 words: allow|deny DAYS HH:MM-HH:MM ZONE (e.g. allow Mon-Fri 22:00-04:00 Europe/Berlin)"
                    .into(),
            ));
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "allow" => Kind::Allow,
            "deny" => Kind::Deny,
            other => return Err(bad(format!("{other:?} is neither allow nor deny"))),
        };
        let days = parse_days(days).map_err(bad)?;
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| bad(format!("{times:?} is not a time range HH:MM-HH:MM")))?;
        let start = parse_time(start, false).map_err(bad)?;
        let end = parse_time(end, true).map_err(bad)?;
        if start == end {
            return Err(bad(format!(
                "{times:?} is empty (a whole day is 00:00-24:00)"
            )));
        }
        let zone = zones.load(zone).map_err(|reason| WindowError::Zone {
            spec: spec.to_string(),
            zone: zone.to_string(),
            reason,
        })?;
        Ok(Window {
            kind,
            days,
            start,
            end,
            zone,
            spec: spec.to_string(),
        })
    }

    /// The spec as given, for logs.
    pub fn spec(&self) -> &str {
        &self.spec
    }
}

/// Every `--sync-window`, in the order given.
#[derive(Debug, Clone, Default)]
pub struct Windows {
    windows: Vec<Window>,
}

impl Windows {
    pub fn new(windows: Vec<Window>) -> Self {
        Windows { windows }
    }

    /// Parses every spec; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(specs: &[S], zones: &Zoneinfo) -> Result<Windows, WindowError> {
        let windows = specs
            .iter()
            .map(|s| Window::parse(s.as_ref(), zones))
            .collect::<Result<_, _>>()?;
        Ok(Windows { windows })
    }

    /// No window configured: always allowed, nothing to show.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LONG_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A day by its three-letter or whole English name, any case; Monday is 0.
fn day(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == lower)
        .or_else(|| LONG_DAYS.iter().position(|d| *d == lower))
        .ok_or_else(|| format!("{text:?} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text == "*" {
        return Ok([true; 7]);
    }
    for item in text.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(item)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_time(text: &str, end: bool) -> Result<u16, String> {
    let invalid = || format!("{text:?} is not a time HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(invalid)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(invalid());
    }
    let h: u16 = h.parse().map_err(|_| invalid())?;
    let m: u16 = m.parse().map_err(|_| invalid())?;
    match (h, m) {
        (24, 0) if end => Ok(1440),
        (0..=23, 0..=59) => Ok(h * 60 + m),
        _ => Err(format!(
            "{text:?} is out of range (00:00-23:59{})",
            if end { ", or 24:00" } else { "" }
        )),
    }
}

/// `--sync-window-drift`: whether drift is still corrected while the windows are
/// closed (new revisions wait either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedDrift {
    Correct,
    Report,
}

/// The change windows as the loop uses them: the schedule, what drift does while
/// it is closed, and the clock it is read with.
#[derive(Debug, Clone)]
pub struct SyncWindow {
    pub windows: Windows,
    pub drift: ClosedDrift,
    pub clock: Clock,
}

impl Default for SyncWindow {
    /// No window: always open.
    fn default() -> Self {
        SyncWindow {
            windows: Windows::default(),
            drift: ClosedDrift::Correct,
            clock: SystemClock.into(),
        }
    }
}

impl SyncWindow {
    /// The state now; `None` when no window is configured.
    pub fn now(&self) -> Option<(WindowState, jiff::Timestamp)> {
        if self.windows.is_empty() {
            return None;
        }
        let now = self.clock.now();
        Some((self.windows.state(now), now))
    }
}
