//! `hawser run`'s change-window flags: `--sync-window`, `--sync-window-drift`,
//! `--zoneinfo-dir`. Parsed once into the loop's [`SyncWindow`].

use std::path::PathBuf;

use crate::window::{ClosedDrift, SyncWindow, SystemClock, Windows, Zoneinfo};

#[derive(Debug, clap::Args)]
pub struct SyncWindowArgs {
    /// A change window, repeatable: `allow Mon-Fri 22:00-04:00 Europe/Berlin` or
    /// `deny Sat,Sun 00:00-24:00 UTC` (days `*`, `Mon`…`Sun`, ranges and lists;
    /// an end not after the start is on the next day). Outside the windows new
    /// revisions wait; the applied one stays enforced. A deny window wins; with no
    /// allow window, anything not denied is allowed (Argo CD's rules). In the
    /// environment, separate windows with `;`.
    #[arg(
        long = "sync-window",
        env = "HAWSER_SYNC_WINDOW",
        value_delimiter = ';'
    )]
    pub sync_window: Vec<String>,

    /// Whether drift is still corrected while the change windows are closed, or only
    /// reported (logs, events).
    #[arg(
        long,
        env = "HAWSER_SYNC_WINDOW_DRIFT",
        value_enum,
        default_value = "correct"
    )]
    pub sync_window_drift: ClosedDriftArg,

    /// The tz database that --sync-window zones are read from (TZif files). UTC needs
    /// none; in a scratch image, mount the host's /usr/share/zoneinfo.
    #[arg(long, env = "HAWSER_ZONEINFO_DIR", default_value = crate::window::zone::DEFAULT_DIR)]
    pub zoneinfo_dir: PathBuf,
}

/// `--sync-window-drift` as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClosedDriftArg {
    /// Correct drift whatever the windows say.
    Correct,
    /// While closed, only log and report drift.
    Report,
}

impl SyncWindowArgs {
    pub fn sync_window(self) -> anyhow::Result<SyncWindow> {
        let SyncWindowArgs {
            sync_window,
            sync_window_drift,
            zoneinfo_dir,
        } = self;
        let specs: Vec<&str> = sync_window
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let windows = Windows::parse(&specs, &Zoneinfo::new(zoneinfo_dir))?;
        Ok(SyncWindow {
            windows,
            drift: match sync_window_drift {
                ClosedDriftArg::Correct => ClosedDrift::Correct,
                ClosedDriftArg::Report => ClosedDrift::Report,
            },
            clock: SystemClock.into(),
        })
    }
}
