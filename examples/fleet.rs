//! Bench only (`scripts/bench --scenarios fleet`): N simulated agents polling one
//! server, to measure what a fleet costs the Git forge or file server.
//!
//! In: hawser's own source flags (`--source URL`, `--ref`, ...), `--agents N`,
//! `--interval`, `--duration`, `--threads`. Out: one JSON line on stdout with the
//! polls made, the failures, poll latency (p50, p99, max, in ms) and how late polls
//! started against their schedule (when the simulator itself cannot keep up, the
//! server was not offered the full load, and the line says so).
//!
//! Each simulated agent is a [`Source`] of its own, so it has its own connection and
//! its own conditional-GET state, and polls it with [`Source::resolve`], the call the
//! agent loop makes, on the loop's schedule: first polls spread over one interval,
//! then every interval plus up to a tenth of jitter ([`hawser::reconcile::jitter`]).
//!
//! `--client ls-remote` polls the way Flux's source-controller and Argo CD's
//! repo-server check a Git remote: both list refs with go-git, which speaks protocol
//! v0 over smart HTTP (`GET info/refs?service=git-upload-pack` without a
//! `Git-Protocol` header), so the server sends its full ref advertisement. That
//! request is written here, not taken from their code; it is the request they send.
//!
//! What can go wrong: a poll that fails is counted in `errors` with its first message.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Read;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hawser::cli::source_args::SourceArgs;
use hawser::source::Source;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    source: SourceArgs,
    /// Simulated agents.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Poll interval of every agent (seconds).
    #[arg(long, default_value_t = 60.0)]
    interval: f64,
    /// How long to measure (seconds); the first polls spread over one interval.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Worker threads polling (the sources' HTTP is blocking).
    #[arg(long, default_value_t = 64)]
    threads: usize,
    /// `hawser` (Source::resolve) or `ls-remote` (go-git's v0 advertisement).
    #[arg(long, default_value = "hawser")]
    client: String,
}

/// One simulated agent's poller.
enum Poller {
    Hawser(Box<Source>),
    LsRemote { agent: ureq::Agent, url: String },
}

impl Poller {
    /// One poll: the revision for hawser, the whole advertisement for ls-remote.
    fn poll(&self) -> Result<(), String> {
        match self {
            Poller::Hawser(source) => source.resolve().map(drop).map_err(|e| e.to_string()),
            Poller::LsRemote { agent, url } => {
                let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
                let mut sink = Vec::new();
                response
                    .body_mut()
                    .as_reader()
                    .read_to_end(&mut sink)
                    .map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    lags_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let interval = Duration::from_secs_f64(cli.interval);
    let duration = Duration::from_secs_f64(cli.duration);
    let url = cli.source.source.clone();
    let mut pollers = Vec::with_capacity(cli.agents);
    for _ in 0..cli.agents {
        pollers.push(match cli.client.as_str() {
            "hawser" => Poller::Hawser(Box::new(Source::new(cli.source.clone().into_spec()?)?)),
            "ls-remote" => Poller::LsRemote {
                agent: ureq::Agent::config_builder()
                    .user_agent("git/2.0 (go-git style v0 ls-remote)")
                    .build()
                    .new_agent(),
                url: format!(
                    "{}/info/refs?service=git-upload-pack",
                    url.trim_end_matches('/')
                ),
            },
            other => anyhow::bail!("--client must be hawser or ls-remote, not {other}"),
        });
    }
    let pollers = Arc::new(pollers);
    let start = Instant::now();
    let end = start + duration;
    // First polls spread evenly over one interval, as agents started at random times.
    let schedule: BinaryHeap<Reverse<(Instant, usize)>> = (0..cli.agents)
        .map(|i| {
            let offset = interval.mul_f64(i as f64 / cli.agents.max(1) as f64);
            Reverse((start + offset, i))
        })
        .collect();
    let shared = Arc::new((Mutex::new(schedule), Condvar::new()));
    let mut workers = Vec::new();
    for worker in 0..cli.threads.max(1) {
        let (pollers, shared) = (pollers.clone(), shared.clone());
        workers.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut calls = worker as u64;
            loop {
                let (due, index) = {
                    let (lock, wake) = &*shared;
                    let Ok(mut heap) = lock.lock() else {
                        return tally;
                    };
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            return tally;
                        }
                        match heap.peek() {
                            Some(Reverse((due, _))) if *due <= now => break,
                            Some(Reverse((due, _))) => {
                                let wait = (*due).min(end) - now;
                                heap = match wake.wait_timeout(heap, wait) {
                                    Ok((heap, _)) => heap,
                                    Err(_) => return tally,
                                };
                            }
                            None => {
                                heap = match wake.wait_timeout(heap, end - now) {
                                    Ok((heap, _)) => heap,
                                    Err(_) => return tally,
                                };
                            }
                        }
                    }
                    let Some(Reverse(next)) = heap.pop() else {
                        continue;
                    };
                    next
                };
                let began = Instant::now();
                tally.lags_us.push((began - due).as_micros() as u64);
                match pollers[index].poll() {
                    Ok(()) => {}
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
                tally.latencies_us.push(began.elapsed().as_micros() as u64);
                calls = calls.wrapping_add(0x1_0000);
                let next =
                    due + interval + hawser::reconcile::jitter(interval, calls ^ index as u64);
                let (lock, wake) = &*shared;
                if let Ok(mut heap) = lock.lock() {
                    heap.push(Reverse((next, index)));
                }
                wake.notify_one();
            }
        }));
    }
    let mut all = Tally::default();
    for worker in workers {
        let tally = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a poller thread panicked"))?;
        all.latencies_us.extend(tally.latencies_us);
        all.lags_us.extend(tally.lags_us);
        all.errors += tally.errors;
        if all.first_error.is_none() {
            all.first_error = tally.first_error;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    all.lags_us.sort_unstable();
    let ms = |v: &[u64], q: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v[i.min(v.len() - 1)] as f64 / 1000.0
    };
    let line = serde_json::json!({
        "client": cli.client,
        "agents": cli.agents,
        "interval_s": cli.interval,
        "duration_s": elapsed,
        "polls": all.latencies_us.len(),
        "polls_per_s": all.latencies_us.len() as f64 / elapsed,
        "offered_per_s": cli.agents as f64 / cli.interval,
        "errors": all.errors,
        "first_error": all.first_error,
        "latency_ms": {
            "p50": ms(&all.latencies_us, 0.5),
            "p99": ms(&all.latencies_us, 0.99),
            "max": ms(&all.latencies_us, 1.0),
        },
        "lag_ms": { "p50": ms(&all.lags_us, 0.5), "p99": ms(&all.lags_us, 0.99) },
    });
    println!("{line}");
    Ok(())
}
