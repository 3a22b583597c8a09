//! `bannin-manager serve`: the HTTPS listener, the heartbeat watchdog and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::middleware::AddExtension;
use axum::Extension;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tower::Layer;

use crate::api::{self, AppState, PeerCertificate};
use crate::datadir::DataDir;

pub struct ServeOptions {
    pub listen: SocketAddr,
    /// An agent silent for longer than this is marked disconnected.
    pub disconnect_after: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

/// Runs the TLS handshake, then attaches the client certificate's fingerprint to every request of the
/// connection so that handlers can tell which agent is calling.
#[derive(Clone)]
struct PeerCertAcceptor {
    inner: RustlsAcceptor,
}

impl<I, S> Accept<I, S> for PeerCertAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<I>;
    type Service = AddExtension<S, PeerCertificate>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (stream, service) = inner.accept(stream, service).await?;
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| bannin_pki::fingerprint(cert));
            Ok((stream, Extension(PeerCertificate(peer)).layer(service)))
        })
    }
}

pub async fn serve(dir: &DataDir, opts: ServeOptions) -> Result<()> {
    dir.require_initialized()?;
    let store = Arc::new(dir.open_store()?);
    let ca = dir.load_ca()?;
    let tls = bannin_pki::server_config(
        &dir.read(&dir.server_cert())?,
        &dir.read(&dir.server_key())?,
        ca.cert_pem(),
    )
    .with_context(|| format!("TLS material in {}", dir.root().display()))?;
    let state = Arc::new(AppState {
        store: store.clone(),
        ca,
        disconnect_after: opts.disconnect_after,
        agent_cert_days: 825,
    });
    let app = api::router(state);

    let handle: Handle<SocketAddr> = Handle::new();
    let acceptor = PeerCertAcceptor {
        inner: RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls)))
            .handshake_timeout(Duration::from_secs(10)),
    };
    let server = axum_server::bind(opts.listen)
        .acceptor(acceptor)
        .handle(handle.clone());

    let addr_file = dir.listen_addr_file();
    let announce = handle.clone();
    tokio::spawn(async move {
        if let Some(addr) = announce.listening().await {
            tracing::info!("listening on https://{addr}");
            if let Err(e) = std::fs::write(&addr_file, format!("{addr}\n")) {
                tracing::warn!("could not write {}: {e}", addr_file.display());
            }
        }
    });
    tokio::spawn(watch_heartbeats(store, opts.disconnect_after));
    tokio::spawn(shutdown_on_signal(handle, opts.shutdown_grace));

    server
        .serve(app.into_make_service())
        .await
        .with_context(|| format!("serving on {}", opts.listen))?;
    tracing::info!("stopped");
    Ok(())
}

/// Marks silent agents disconnected. Checks a few times per timeout so the event is not late by more
/// than a fraction of it.
async fn watch_heartbeats(store: Arc<crate::store::Store>, disconnect_after: Duration) {
    let period = (disconnect_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(15));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let store = store.clone();
        let result = tokio::task::spawn_blocking(move || {
            let now = OffsetDateTime::now_utc();
            store.mark_silent_agents_disconnected(now - disconnect_after, now)
        })
        .await;
        match result {
            Ok(Ok(events)) => {
                for e in events {
                    tracing::warn!(agent_id = %e.agent_id, "{}", e.title);
                }
            }
            Ok(Err(e)) => tracing::error!("heartbeat watchdog: {e:#}"),
            Err(e) => tracing::error!("heartbeat watchdog task: {e}"),
        }
    }
}

/// SIGTERM or SIGINT: stop accepting, let in-flight batches finish (or go unacked), then exit.
async fn shutdown_on_signal(handle: Handle<SocketAddr>, grace: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the manager with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    handle.graceful_shutdown(Some(grace));
}
