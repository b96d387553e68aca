//! `vakt serve`: wires the database, the writer, the listeners and HTTP together, and shuts
//! them down in the order that loses nothing: stop reading, finish the frames in flight
//! (commit, then answer), stop the writer, close the database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::clock::unix_micros;
use crate::config::{Config, ListenerKind};
use crate::http::{self, AppState};
use crate::pipeline::{Origin, Pipeline};
use crate::serial::{self, Lines, SerialListener};
use crate::site::hex_number;
use crate::site_cache::SiteCache;
use crate::store::{redact_url, Db};
use crate::writer::{self, WriterConfig};
use crate::{output, tcp, udp};

/// Installs the Prometheus recorder (once per process).
fn install_metrics() -> Result<PrometheusHandle> {
    let latency = [
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
    ];
    let batch = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)?
        .set_buckets_for_metric(Matcher::Full("vakt_commit_batch_frames".into()), &batch)?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Runs until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    let metrics = install_metrics()?;
    let db = Db::connect(&config.database.url, config.database.max_connections).await?;
    println!(
        "vakt: database {} ({})",
        redact_url(&config.database.url),
        db.backend()
    );
    for site in &config.sites {
        db.upsert_site(site, unix_micros())
            .await
            .with_context(|| format!("storing site {} from the config", site.account))?;
        db.store_code_hashes(site, "config", unix_micros())
            .await
            .with_context(|| {
                format!("storing the codes of site {} from the config", site.account)
            })?;
    }

    let r = &config.receiver;
    let (writer, writer_done) = writer::spawn(
        db.clone(),
        WriterConfig {
            queue_capacity: r.queue_capacity,
            max_batch: r.max_batch,
            cpu: r.writer_cpu,
            duplicate_window: Duration::from_secs(u64::from(r.duplicate_window_secs)),
            dedup_capacity: r.dedup_capacity,
            alarm_join_window: Duration::from_secs(config.alarms.join_window_secs),
            supervision: config.supervision.settings(),
        },
    )
    .context("starting the writer thread")?;
    let checkpoints = tokio::spawn(checkpoint_loop(db.clone()));
    let sites = Arc::new(SiteCache::new(
        db.clone(),
        Duration::from_secs(r.site_cache_secs),
    ));
    let current = sites.clone();
    tokio::spawn(async move { current.keep_current().await });
    let pipeline = Arc::new(Pipeline::new(sites, writer, r));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut listeners = JoinSet::new();
    let mut lines = Vec::new();

    for l in &config.listeners {
        let origin = Origin {
            listener: l.label().into(),
            transport: l.kind.name(),
            receiver: l.receiver.as_deref().and_then(hex_number),
            prefix: l.prefix.as_deref().and_then(hex_number),
        };
        let (pipeline, cancel, tracker) = (pipeline.clone(), cancel.clone(), tracker.clone());
        match l.kind {
            ListenerKind::Tcp => {
                let bind = l.bind.context("a tcp listener needs `bind`")?;
                let socket = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding tcp {bind}"))?;
                println!(
                    "vakt: listener {} tcp {}",
                    origin.listener,
                    socket.local_addr()?
                );
                let limits = tcp::Limits {
                    max_connections: r.max_connections,
                    max_frame: r.max_frame_bytes,
                    idle_timeout: r.idle_timeout(),
                };
                listeners.spawn(tcp::serve(
                    socket, origin, pipeline, limits, cancel, tracker,
                ));
            }
            ListenerKind::Udp => {
                let bind = l.bind.context("a udp listener needs `bind`")?;
                let socket = UdpSocket::bind(bind)
                    .await
                    .with_context(|| format!("binding udp {bind}"))?;
                println!(
                    "vakt: listener {} udp {}",
                    origin.listener,
                    socket.local_addr()?
                );
                listeners.spawn(udp::serve(
                    socket,
                    origin,
                    pipeline,
                    r.max_connections,
                    r.max_frame_bytes,
                    cancel,
                    tracker,
                ));
            }
            ListenerKind::Serial => {
                let sl = SerialListener::from_config(l)
                    .context("a serial listener needs `device` and `format`")?;
                println!(
                    "vakt: listener {} serial {} ({})",
                    sl.name,
                    sl.port.device,
                    sl.port.describe()
                );
                let line = serial::line(&sl);
                lines.push(line.clone());
                if let Some(timeout) = sl.heartbeat_timeout {
                    listeners.spawn(serial::supervise(
                        sl.clone(),
                        timeout,
                        line.clone(),
                        pipeline.clone(),
                        cancel.clone(),
                    ));
                }
                listeners.spawn(serial::serve(sl, line, pipeline, cancel));
            }
        }
    }
    drop(pipeline);
    let lines: Lines = Arc::new(lines);

    let node = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    let mut outputs = JoinSet::new();
    for o in &config.outputs {
        println!(
            "vakt: output {} surgard {}",
            o.name,
            o.connect
                .clone()
                .or_else(|| o.port().map(|p| format!("{} ({})", p.device, p.describe())))
                .unwrap_or_default()
        );
        outputs.spawn(output::run(
            o.clone(),
            db.clone(),
            node.clone(),
            cancel.clone(),
        ));
    }

    let http_socket = TcpListener::bind(config.http.bind)
        .await
        .with_context(|| format!("binding http {}", config.http.bind))?;
    println!("vakt: http http://{}", http_socket.local_addr()?);
    let (feed, _) = tokio::sync::broadcast::channel(crate::stream::CAPACITY);
    let poller = tokio::spawn(crate::stream::run(
        db.clone(),
        feed.clone(),
        Duration::from_millis(250),
        cancel.clone(),
    ));
    let app = http::router(AppState {
        db: db.clone(),
        metrics,
        lines,
        stream: feed,
        shutdown: cancel.clone(),
        hasher: crate::codes::Hasher::new(1),
        codes: config.codes.clone(),
    });
    let http_cancel = cancel.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http_socket, app)
            .with_graceful_shutdown(http_cancel.cancelled_owned())
            .await
    });
    println!("vakt: ready");
    info!("ready");

    let signal = shutdown_signal().await?;
    info!(
        signal,
        "shutting down: no new frames; finishing those in flight"
    );
    cancel.cancel();
    while listeners.join_next().await.is_some() {}
    tracker.close();
    tracker.wait().await;
    // Every pipeline (and so every writer handle) is gone: the writer drains its queue and ends.
    writer_done
        .await
        .context("the writer thread ended abnormally")?;
    while outputs.join_next().await.is_some() {}
    checkpoints.abort();
    let _ = poller.await;
    let _ = http_task.await;
    db.close().await;
    println!("vakt: stopped");
    Ok(())
}

/// SQLite: checkpoints the WAL every 250 ms beside the writer, so commits never wait for one.
async fn checkpoint_loop(db: Db) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        match db.checkpoint().await {
            Ok(Some((log, done))) => {
                metrics::gauge!("vakt_sqlite_wal_pages").set(log as f64);
                metrics::gauge!("vakt_sqlite_wal_pages_unchecked").set((log - done) as f64);
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
        }
    }
}

async fn shutdown_signal() -> Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
