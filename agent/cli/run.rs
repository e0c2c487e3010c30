//! `hawser run`: the long-running agent. Parses and validates every flag once, opens
//! the cache, starts the admin server and the loop, and stops cleanly on SIGTERM or
//! SIGINT (stop starting work, persist the state, exit 0 within seconds).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::Exit;
use super::apply::TargetArgs;
use super::promote_args::PromoteArgs;
use super::scope_args::ScopeArgs;
use super::source_args::SourceArgs;
use super::status_args::StatusArgs;
use crate::admin::{Admin, Heartbeat, HookSecret};
use crate::cache::{Cache, Failpoint};
use crate::reconcile::{Agent, DriftMode, Handles, Settings};
use crate::report::metrics::Metrics;
use crate::source::Source;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub status: StatusArgs,
    #[command(flatten)]
    pub window: super::window_args::SyncWindowArgs,
    #[command(flatten)]
    pub promote: PromoteArgs,

    /// How often to ask the source for its revision (one small request), with up to
    /// 10% jitter.
    #[arg(long, env = "HAWSER_INTERVAL", default_value = "60s", value_parser = duration)]
    pub interval: Duration,

    /// How often to plan the applied revision again and correct drift.
    #[arg(long, env = "HAWSER_DRIFT_INTERVAL", default_value = "5m", value_parser = duration)]
    pub drift_interval: Duration,

    /// What to do with drift: correct it, or only report it (logs, events, metrics).
    #[arg(long, env = "HAWSER_DRIFT", value_enum, default_value = "correct")]
    pub drift: DriftArg,

    /// How long applied objects may take to become ready before the revision is
    /// unhealthy.
    #[arg(long, env = "HAWSER_HEALTH_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub health_timeout: Duration,

    /// Re-apply the last good revision when a new one is not healthy in time.
    #[arg(long, env = "HAWSER_ROLLBACK_ON_UNHEALTHY")]
    pub rollback_on_unhealthy: bool,

    /// Directory for the last-known-good cache. Use a PersistentVolume or a hostPath:
    /// on an emptyDir a restart loses the cache and, while Git is down, the agent has
    /// nothing to enforce.
    #[arg(long, env = "HAWSER_CACHE_DIR", default_value = "/var/lib/hawser")]
    pub cache_dir: PathBuf,

    /// How many revisions the cache keeps (the applied and good ones are never evicted).
    #[arg(long, env = "HAWSER_CACHE_KEEP", default_value_t = 5)]
    pub cache_keep: usize,

    /// Address of the admin server: /healthz, /readyz, /metrics, POST /hook.
    #[arg(long, env = "HAWSER_LISTEN", default_value = crate::admin::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// File holding the webhook secret (GitHub, Gitea/Forgejo HMAC, GitLab token);
    /// without it POST /hook is disabled.
    #[arg(long, env = "HAWSER_HOOK_SECRET_FILE")]
    pub hook_secret_file: Option<PathBuf>,

    /// Make no writes at all (the stop button; the annotation hawser.dev/suspend: "true"
    /// on the inventory parent does the same at run time).
    #[arg(long, env = "HAWSER_SUSPEND")]
    pub suspend: bool,

    /// Test only: abort the process at a cache step, to prove crash consistency.
    #[arg(long, hide = true)]
    pub failpoint: Option<String>,
}

/// Slack on top of the loop's own bounds before it counts as stuck.
const STUCK_MARGIN: Duration = Duration::from_secs(120);

/// How long the loop and the admin server get to stop after a signal, whatever a
/// fetch is doing: well inside Kubernetes' default grace period and systemd's.
const STOP_WITHIN: Duration = Duration::from_secs(8);

/// `--drift` as the command line spells it; the loop's [`DriftMode`] knows no clap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftArg {
    /// Re-apply drifted objects.
    Correct,
    /// Only log, count and emit events.
    Report,
}

impl From<DriftArg> for DriftMode {
    fn from(arg: DriftArg) -> Self {
        match arg {
            DriftArg::Correct => DriftMode::Correct,
            DriftArg::Report => DriftMode::Report,
        }
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let Args {
        source,
        scope,
        target,
        status,
        window,
        promote,
        interval,
        drift_interval,
        drift,
        health_timeout,
        rollback_on_unhealthy,
        cache_dir,
        cache_keep,
        listen,
        hook_secret_file,
        suspend,
        failpoint,
    } = args;
    if interval.is_zero() || drift_interval.is_zero() {
        anyhow::bail!("--interval and --drift-interval must be longer than zero");
    }
    let spec = source.into_spec()?;
    let sync_window = window.sync_window()?;
    // The longest a healthy loop goes without a heartbeat: a health wait, a fetch
    // (drift ticks and a timer beat meanwhile, but a drift reconcile may follow),
    // and a margin. Beyond that, /healthz says the loop is stuck.
    let stale_after = health_timeout + spec.http.fetch_timeout + drift_interval + STUCK_MARGIN;
    // Recorded even with reporting off: air-gapped sites export their statuses.
    let cluster_name = status
        .cluster_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    let forge = status.into_config(Some(&spec.url))?;
    let promote = promote.into_promote(forge.as_ref())?;
    let forge = forge.map(crate::report::forge::Reporter::new);
    let source = Source::new(spec)?;
    let mut target = target.target(scope)?;
    if let Some(name) = &cluster_name {
        // Flux users write ${cluster_name}-style variables; hawser names its own.
        target
            .render
            .substitution
            .builtin
            .insert("HAWSER_CLUSTER_NAME".into(), name.clone());
    }
    let mut cache = Cache::open(&cache_dir, cache_keep)?;
    if let Some(name) = failpoint {
        cache = cache.with_failpoint(name.parse::<Failpoint>()?);
    }
    let secret = match hook_secret_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading --hook-secret-file {}", path.display()))?;
            Some(
                HookSecret::new(text.trim().as_bytes().to_vec())
                    .with_context(|| format!("--hook-secret-file {} is empty", path.display()))?,
            )
        }
        None => None,
    };
    let settings = Settings {
        interval,
        drift_interval,
        drift: drift.into(),
        health_timeout,
        rollback_on_unhealthy,
        suspend,
        cluster_name,
        sync_window,
        promote,
    };
    let (metrics, registry) = Metrics::new();
    let heartbeat = Heartbeat::new(stale_after);
    let admin = Admin::new(registry)
        .with_hook_secret(secret)
        .with_replay_window(interval)
        .with_heartbeat(heartbeat.clone());
    super::block_on(async move {
        let listener = Admin::bind(listen).await?;
        let client = crate::cluster::connect().await?;
        let (stop, shutdown) = watch::channel(false);
        let handles = Handles {
            ready: admin.readiness(),
            hook: admin.hook_notify(),
            shutdown: shutdown.clone(),
            metrics,
            heartbeat,
        };
        tracing::info!(listen = %listener.local_addr()?, source = source.display_url(), "hawser starting");
        let server = tokio::spawn(admin.serve(listener, shutdown));
        let agent =
            tokio::spawn(Agent::new(client, source, cache, target, settings, handles, forge).run());
        let stopping = tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; stopping");
            let _ = stop.send(true);
        });
        let both = async {
            let _ = agent.await;
            let _ = server.await;
        };
        tokio::pin!(both);
        tokio::select! {
            () = &mut both => {}
            _ = stopping => {
                // The loop stops at once even mid-fetch (the blocking task is
                // abandoned); bound the wait anyway, then go.
                if tokio::time::timeout(STOP_WITHIN, both).await.is_err() {
                    tracing::warn!("stopping took too long; exiting anyway");
                }
            }
        }
        Ok(Exit::Success)
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
