//! `bannin-agent run`: wires sources -> outbox -> uplink and keeps them running until SIGTERM.
//!
//! Sources send events into a bounded channel; one writer commits them to the outbox in groups (one
//! transaction per group keeps throughput high); the sender drains the outbox in sequence order and
//! removes what the manager acknowledged. A slow or absent manager only makes the outbox grow.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bannin_proto::{rules, Event, EventKind, Heartbeat};
use tokio::sync::{mpsc, Notify};

use crate::config::AgentConfig;
use crate::identity::StateDir;
use crate::outbox::Outbox;
use crate::uplink::{Backoff, Uplink};

/// Events buffered between sources and the outbox writer.
const CHANNEL_CAPACITY: usize = 8192;
/// Events committed per outbox transaction at most.
const WRITE_GROUP: usize = 2000;

type SharedOutbox = Arc<Mutex<Outbox>>;

async fn with_outbox<T: Send + 'static>(
    outbox: &SharedOutbox,
    f: impl FnOnce(&mut Outbox) -> Result<T> + Send + 'static,
) -> Result<T> {
    let outbox = outbox.clone();
    tokio::task::spawn_blocking(move || f(&mut outbox.lock().unwrap_or_else(|p| p.into_inner())))
        .await
        .context("outbox task")?
}

fn lifecycle_event(rule: u64, level: u8, title: String) -> Event {
    Event::new(EventKind::Agent, rule, level, title).with_groups(["bannin", "agent", "lifecycle"])
}

pub async fn run(config: AgentConfig) -> Result<()> {
    let state = StateDir::new(&config.state_dir);
    let identity = state.load_identity()?;
    let manager_url = config
        .manager
        .url
        .as_ref()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| identity.manager_url.clone());
    let uplink = Arc::new(Uplink::new(&identity, &manager_url)?);
    let outbox: SharedOutbox = Arc::new(Mutex::new(Outbox::open(
        &state.outbox_file(),
        &identity.agent_id,
        config.outbox.max_events,
    )?));
    tracing::info!(
        agent_id = %identity.agent_id,
        manager = %manager_url,
        pending = outbox.lock().unwrap().pending(),
        "agent starting"
    );

    let (tx, rx) = mpsc::channel::<Event>(CHANNEL_CAPACITY);
    let wake_sender = Arc::new(Notify::new());
    let writer = tokio::spawn(write_outbox(rx, outbox.clone(), wake_sender.clone()));
    let sender = tokio::spawn(send_outbox(
        outbox.clone(),
        uplink.clone(),
        wake_sender.clone(),
        config.outbox.batch_events,
    ));
    let started = Instant::now();
    let heartbeat = tokio::spawn(send_heartbeats(
        uplink.clone(),
        outbox.clone(),
        Duration::from_secs(config.manager.heartbeat_secs.0),
        started,
    ));

    let (stop_fim, fim_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut fim = None;
    if !config.fim.paths.is_empty() {
        let (tx, fim_config, state_dir) =
            (tx.clone(), config.fim.clone(), config.state_dir.clone());
        fim = Some(tokio::spawn(async move {
            let stopped = async {
                let _ = fim_stopped.await;
            };
            if let Err(e) =
                crate::fim::run_fim_source(fim_config, &state_dir, tx.clone(), stopped).await
            {
                tracing::error!("file integrity monitoring stopped: {e:#}");
                let title = format!("File integrity monitoring stopped: {e:#}");
                let _ = tx
                    .send(Event::new(
                        EventKind::Agent,
                        rules::WATCHER_ERROR,
                        10,
                        title,
                    ))
                    .await;
            }
        }));
    }

    let (stop_logs, logs_stopped) = tokio::sync::oneshot::channel::<()>();
    let logs = start_log_source(&config, &tx, logs_stopped);

    let version = env!("CARGO_PKG_VERSION");
    tx.send(lifecycle_event(
        rules::AGENT_STARTED,
        3,
        format!("Agent {} started (version {version})", identity.name),
    ))
    .await
    .ok();

    wait_for_stop_signal().await;
    tracing::info!("stopping");
    // Sources finish what they were reporting before the stop event goes in.
    let _ = stop_fim.send(());
    if let Some(fim) = fim {
        let _ = fim.await;
    }
    // The collector reads what was written before the stop and saves its positions.
    let _ = stop_logs.send(());
    if let Some(logs) = logs {
        let _ = logs.await;
    }
    tx.send(lifecycle_event(
        rules::AGENT_STOPPED,
        3,
        format!("Agent {} stopped", identity.name),
    ))
    .await
    .ok();
    drop(tx);
    // The writer drains the channel into the outbox before it ends: nothing a source handed over is lost.
    writer.await.context("outbox writer")??;
    heartbeat.abort();
    // Give the sender a moment to deliver the last events; whatever remains is sent after restart.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && outbox.lock().unwrap().pending() > 0 {
        wake_sender.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sender.abort();
    tracing::info!(pending = outbox.lock().unwrap().pending(), "stopped");
    Ok(())
}

/// Starts the log collector when `[logs]` lists inputs; its failure becomes an agent event.
fn start_log_source(
    config: &AgentConfig,
    tx: &mpsc::Sender<Event>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> Option<tokio::task::JoinHandle<()>> {
    if !config.logs.has_inputs() {
        return None;
    }
    let (tx, logs_config, state_dir) = (tx.clone(), config.logs.clone(), config.state_dir.clone());
    let stats = std::sync::Arc::new(crate::logs::CollectorStats::default());
    Some(tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        if let Err(e) =
            crate::logs::run_log_source(logs_config, &state_dir, tx.clone(), stopped, stats).await
        {
            tracing::error!("log inspection stopped: {e:#}");
            let title = format!("Log inspection stopped: {e:#}");
            let _ = tx
                .send(Event::new(
                    EventKind::Agent,
                    rules::WATCHER_ERROR,
                    10,
                    title,
                ))
                .await;
        }
    }))
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; only SIGKILL will stop the agent");
            std::future::pending::<()>().await
        }
    }
}

async fn write_outbox(
    mut rx: mpsc::Receiver<Event>,
    outbox: SharedOutbox,
    wake_sender: Arc<Notify>,
) -> Result<()> {
    let mut group = Vec::with_capacity(WRITE_GROUP);
    while rx.recv_many(&mut group, WRITE_GROUP).await > 0 {
        let events = std::mem::take(&mut group);
        let outcome = with_outbox(&outbox, move |o| o.append(events)).await?;
        if outcome.dropped > 0 {
            tracing::error!(
                dropped = outcome.dropped,
                "outbox full: events dropped (an event reports it)"
            );
        }
        wake_sender.notify_one();
    }
    Ok(())
}

async fn send_outbox(
    outbox: SharedOutbox,
    uplink: Arc<Uplink>,
    wake: Arc<Notify>,
    batch_events: usize,
) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut failing_since: Option<Instant> = None;
    let mut delivered_since_trim = false;
    loop {
        let batch = match with_outbox(&outbox, move |o| o.peek(batch_events)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("reading the outbox: {e:#}");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if batch.is_empty() {
            if delivered_since_trim {
                // A drained backlog leaves freed heap in glibc's arenas; give it back so an idle agent
                // stays small on every host.
                delivered_since_trim = false;
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            }
            // Woken by the writer; the timeout is only a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        }
        let count = batch.len();
        match uplink.send_batch(batch).await {
            Ok(ack) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        "manager reachable again after {:.1}s",
                        since.elapsed().as_secs_f64()
                    );
                }
                backoff.reset();
                delivered_since_trim = true;
                if let Err(e) = with_outbox(&outbox, move |o| o.ack(ack.acked_seq)).await {
                    tracing::error!("acknowledging {count} events in the outbox: {e:#}");
                }
            }
            Err(e) => {
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                }
                let delay = backoff.next_delay();
                tracing::warn!("{e}; retrying in {:.1}s", delay.as_secs_f64());
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Returns free heap pages to the OS (glibc only; a no-op elsewhere).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps glibc's per-thread malloc arenas: the agent's few threads do not need their own, and each
/// one keeps freed memory of its own.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt with a documented parameter, before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn send_heartbeats(
    uplink: Arc<Uplink>,
    outbox: SharedOutbox,
    every: Duration,
    started: Instant,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (pending, dropped) = {
            let o = outbox.lock().unwrap_or_else(|p| p.into_inner());
            (o.pending(), o.dropped_total())
        };
        let hb = Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: started.elapsed().as_secs(),
            outbox_pending: pending,
            outbox_dropped: dropped,
        };
        if let Err(e) = uplink.heartbeat(&hb).await {
            tracing::warn!("{e}");
        }
    }
}
