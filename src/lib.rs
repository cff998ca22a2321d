//! microscoped: a microscope-instrument control and image acquisition daemon.
//!
//! # Layout
//! The domain lives in the crate `microscoped-core` (in `core/`), which does not depend on
//! tonic or prost; its modules are re-exported here, so `microscoped::config::Config` and the
//! rest name the same items:
//! - [`config`]: the instrument config (TOML), parsed, validated, errors with file:line:key.
//! - [`access`]: users and roles, tokens, the control lease, dataset readers, the audit log.
//! - [`error`]: the domain's refusal (a kind and a message).
//! - [`limits`]: facility safety limits wrapped around the drivers.
//! - [`drivers`]: turns device configs into running drivers.
//! - [`host`]: the device host: one thread per device, command channel, timeouts, faults.
//! - [`ring`]: the preallocated frame ring between a camera and its consumers.
//! - [`acquire`]: the acquisition engine (sequences and plans), events, live rings.
//! - [`plan`]: useq-schema plans: parsed, expanded into events, validated, written back.
//! - [`presets`]: the config's presets, checked against the drivers and applied.
//! - [`storage`]: the streaming OME-TIFF writer, its sidecar and crash recovery.
//!
//! This package adds the wire, and is the only one that sees prost types:
//! - [`pb`]: the generated protobuf and gRPC code.
//! - [`server`]: the gRPC services, authentication, and the conversions between domain and
//!   protobuf types and from domain errors to statuses.
//! - [`client`]: the client side: a typed [`client::Session`] with a running daemon, which the
//!   CLI (the binary's `cli/` modules, `bench` among them) uses without seeing prost types.
//!
//! And what a service needs around it:
//! - [`metrics`]: Prometheus metrics read from the daemon's state at each scrape, and the tower
//!   layer that times RPCs.
//! - [`http`]: the daemon's HTTP server (axum): `/metrics` when the config has `[metrics]`.
//! - [`notify`]: readiness, status, watchdog keep-alives and stopping, for systemd.
//!
//! [`run`] starts the daemon on a listener the caller made, so tests run the real daemon on
//! `127.0.0.1:0` with a shutdown future of their own; [`run_notifying`] is the same for `serve`
//! under a service manager.

pub use microscoped_core::{
    access, acquire, check, config, drivers, error, host, limits, names, plan, presets, ring, role,
    storage, time, token,
};

pub mod client;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod server;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_stream::Stream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tracing::{info, warn};

/// The generated protobuf and gRPC code for `microscoped.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("microscoped.v1");

    /// The encoded descriptor set of the API, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/microscoped_descriptor.bin"));

    // The one conversion of property values, for the server and the client alike.
    impl From<microscoped_driver_api::Value> for Value {
        fn from(v: microscoped_driver_api::Value) -> Self {
            use microscoped_driver_api::Value as V;
            let kind = match v {
                V::Bool(b) => value::Kind::BoolValue(b),
                V::Int(i) => value::Kind::IntValue(i),
                V::Float(f) => value::Kind::FloatValue(f),
                V::String(s) => value::Kind::StringValue(s),
            };
            Value { kind: Some(kind) }
        }
    }

    impl Value {
        /// The domain value, or `None` when the message carries none.
        pub fn into_domain(self) -> Option<microscoped_driver_api::Value> {
            use microscoped_driver_api::Value as V;
            Some(match self.kind? {
                value::Kind::BoolValue(b) => V::Bool(b),
                value::Kind::IntValue(i) => V::Int(i),
                value::Kind::FloatValue(f) => V::Float(f),
                value::Kind::StringValue(s) => V::String(s),
            })
        }
    }
}

/// The largest gRPC message either side accepts: a full-frame 16-bit image from a large sCMOS
/// sensor is tens of MiB, far over tonic's 4 MiB default.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The largest request the daemon accepts. Requests carry names, values and plans, never
/// images, so tonic's 4 MiB default is far above any honest one (a plan's text is at most 1 MiB);
/// a larger one is refused with INVALID_ARGUMENT naming its size and this limit, from its length
/// prefix, before it is read ([`server::limit`], in front of every service).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// HTTP/2 flow-control windows for both sides. The 64 KiB default makes a stream of 8 MiB
/// frames wait for a window update every 64 KiB, capping live view far below loopback speed.
pub const STREAM_WINDOW_BYTES: u32 = 16 * 1024 * 1024;
/// The connection-wide window: room for a few streams' windows at once.
pub const CONNECTION_WINDOW_BYTES: u32 = 64 * 1024 * 1024;

/// Runs the daemon on `listener` until `shutdown` completes, then stops taking requests and puts
/// every device in its safe state (lasers off, stages stopped, shutters closed).
pub async fn run(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    run_notifying(config, listener, shutdown, None).await
}

/// [`run`], telling `notifier` (the service manager) how it goes: what it is doing while it
/// starts, `READY=1` once the gRPC server accepts connections (and the metrics endpoint
/// listens), keep-alives while the runtime and the acquisition engine respond, and
/// `STOPPING=1` when `shutdown` completes.
pub async fn run_notifying(
    config: config::Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    notifier: Option<notify::Notifier>,
) -> anyhow::Result<()> {
    let status = |text: &str| {
        if let Some(n) = &notifier {
            n.status(text);
        }
    };
    status("starting devices");
    let audit = access::audit::Audit::open(&config.audit).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the audit log {}: {e}; fix its folder's permissions or set audit.path",
            config.audit.path.display()
        )
    })?;
    let access = access::Access::new(&config.access, audit.clone());
    let host = host::DeviceHost::start(&config)?;
    let presets = presets::Presets::new(&config, &host)?;
    let acquisitions = acquire::Acquisitions::new(
        host.clone(),
        config.storage.clone(),
        config.instrument.clone(),
        presets.clone(),
    );
    acquisitions.on_failure(safe_after_failure(host.clone(), audit.clone()));
    // Yesterday's datasets are listed and read like today's: indexed before serving.
    status("indexing the datasets in the data root");
    let indexing = acquisitions.clone();
    tokio::task::spawn_blocking(move || indexing.index_data_root())
        .await
        .map_err(|e| anyhow::anyhow!("indexing the data root panicked: {e}"))?;
    let (stopping_tx, stopping) = watch::channel(false);
    let (metrics, rpc_metrics) = metrics::Metrics::new(metrics::Sources {
        host: host.clone(),
        acquisitions: acquisitions.clone(),
        access: access.clone(),
    });
    let metrics_addr = match &config.metrics {
        Some(m) => Some(serve_metrics(m.listen, metrics, stopping.clone()).await?),
        None => None,
    };
    let watching = stopping.clone();
    tokio::spawn(access.leases().clone().watch_expiry(stopping.clone()));
    let acquisition = server::acquisition::AcquisitionService::new(
        acquisitions.clone(),
        host.clone(),
        stopping.clone(),
        access.clone(),
    );
    let acquisition = pb::acquisition_server::AcquisitionServer::new(acquisition)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let service = server::MicroscopeService::new(
        config.instrument.clone(),
        host.clone(),
        presets,
        stopping,
        access.clone(),
    );
    let service = pb::microscope_server::MicroscopeServer::new(service)
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let access_service =
        pb::access_server::AccessServer::new(server::access::AccessService::new(access.clone()));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::microscope_server::MicroscopeServer<server::MicroscopeService>>()
        .await;
    health
        .set_serving::<pb::acquisition_server::AcquisitionServer<server::acquisition::AcquisitionService>>()
        .await;
    health
        .set_serving::<pb::access_server::AccessServer<server::access::AccessService>>()
        .await;
    // Reflection in both versions: current tools ask v1, tools that predate it ask only v1alpha
    // (and would see UNIMPLEMENTED). The builder is consumed by each build, hence the closure.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (reflection, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);

    let addr = listener.local_addr()?;
    // Without TCP_NODELAY small unary replies wait on Nagle's algorithm (~40 ms stalls).
    let (accepting, accepted) = oneshot::channel();
    let incoming = FirstPoll {
        inner: TcpIncoming::from(listener).with_nodelay(Some(true)),
        polled: Some(accepting),
    };
    let metrics_url = metrics_addr.map(|a| format!("http://{a}/metrics"));
    if let Some(n) = notifier.clone() {
        let serving = format!(
            "serving gRPC on {addr}{}",
            metrics_url
                .as_ref()
                .map(|u| format!(", metrics on {u}"))
                .unwrap_or_default()
        );
        tokio::spawn(supervise(
            n,
            accepted,
            serving,
            acquisitions.clone(),
            host.clone(),
            watching,
        ));
    }
    let mut builder = Server::builder();
    if let Some(tls) = &config.tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder =
            builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    info!(%addr, metrics = %metrics_url.as_deref().unwrap_or("off"), instrument = %config.instrument.name, devices = config.devices.len(), tls = config.tls.is_some(), users = config.access.users.len(), anonymous_loopback_admin = config.access.anonymous_loopback_admin, "microscoped serving");
    builder
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        // Every call is timed and counted, refused ones too: outside authentication.
        .layer(rpc_metrics)
        // Every request passes here first: no service can be reached unauthenticated.
        .layer(server::auth::AuthLayer::new(access.clone()))
        // Then its size: tonic's own limit below would answer OUT_OF_RANGE.
        .layer(server::limit::RequestLimitLayer::new(MAX_REQUEST_BYTES))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(service)
        .add_service(acquisition)
        .add_service(access_service)
        .serve_with_incoming_shutdown(incoming, async {
            shutdown.await;
            if let Some(n) = &notifier {
                n.stopping("stopping: no new requests; finishing acquisitions");
            }
            // Open streams end now, or the server would wait for their clients to hang up.
            let _ = stopping_tx.send(true);
        })
        .await?;
    info!("stopped taking requests; finishing acquisitions");
    acquisitions.stop_all().await;
    info!("putting devices in their safe state");
    status("stopping: putting devices in their safe state");
    host.make_all_safe().await;
    info!("shutdown complete");
    Ok(())
}

/// Binds the metrics endpoint at `listen` and serves it on this runtime until the daemon stops
/// taking requests; returns the address bound (the port, when `listen` asked for any).
async fn serve_metrics(
    listen: std::net::SocketAddr,
    metrics: metrics::Metrics,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for metrics on {listen}: {e}; change metrics.listen")
    })?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        if let Err(e) = http::serve(listener, http::metrics_routes(metrics), stopped).await {
            warn!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(addr)
}

/// The gRPC listener's stream of connections, which says when the server first asks it for one:
/// from then on the server accepts connections, and the daemon is ready.
struct FirstPoll<S> {
    inner: S,
    /// Fired at the first poll.
    polled: Option<oneshot::Sender<()>>,
}

impl<S: Stream + Unpin> Stream for FirstPoll<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if let Some(polled) = self.polled.take() {
            let _ = polled.send(());
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Tells the service manager the daemon is ready once the gRPC server accepts connections,
/// then sends a keep-alive at each interval the manager asked for, as long as the daemon
/// responds, until shutdown begins.
async fn supervise(
    notifier: notify::Notifier,
    accepting: oneshot::Receiver<()>,
    serving: String,
    acquisitions: acquire::Acquisitions,
    host: host::DeviceHost,
    mut stopping: watch::Receiver<bool>,
) {
    if accepting.await.is_err() {
        return; // the server ended before it accepted anything
    }
    notifier.ready(&serving);
    let Some(every) = notifier.keep_alive_interval() else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // Half an interval at most, so a keep-alive is never later than 1.5 intervals
                // (three quarters of the manager's timeout) even when the probe is slow.
                if responds(&acquisitions, &host, every / 2).await {
                    notifier.alive();
                } else {
                    warn!(limit_ms = (every / 2).as_millis(), "the acquisition engine did not answer in time: no keep-alive for the service manager");
                }
            }
            _ = &mut stopped => return,
        }
    }
}

/// Whether the daemon responds: within `limit`, a thread of the runtime's blocking pool reads
/// the acquisition engine's registry of runs and each camera's live status (the locks every
/// status RPC and every start takes) and the runtime schedules the answer back. The devices
/// are not asked: a hung device is faulted by the device host, and the daemon goes on.
async fn responds(
    acquisitions: &acquire::Acquisitions,
    host: &host::DeviceHost,
    limit: Duration,
) -> bool {
    let acquisitions = acquisitions.clone();
    let host = host.clone();
    let probe = tokio::task::spawn_blocking(move || {
        acquisitions.recent(0);
        for camera in host.of_kind(microscoped_driver_api::DeviceKind::Camera) {
            let _ = acquisitions.live_status(camera.name());
        }
    });
    matches!(tokio::time::timeout(limit, probe).await, Ok(Ok(())))
}

/// What happens when an acquisition fails: every laser off and every stage stopped, so a run
/// that went wrong leaves no light on the sample and nothing moving; logged and audited.
fn safe_after_failure(host: host::DeviceHost, audit: access::audit::Audit) -> acquire::FailureHook {
    std::sync::Arc::new(move |status: acquire::Status| {
        let host = host.clone();
        let audit = audit.clone();
        tokio::spawn(async move {
            let (done, failed) = host.lasers_off_stages_stopped().await;
            tracing::warn!(id = status.id, owner = %status.owner, made_safe = ?done, could_not = ?failed, "acquisition failed: lasers off, stages stopped");
            audit.record(access::audit::Record {
                user: "daemon".into(),
                action: "SafeStateAfterFailure".into(),
                target: format!("acquisition {}", status.id),
                detail: serde_json::json!({
                    "owner": status.owner,
                    "error": status.error,
                    "made_safe": done,
                    "could_not": failed.iter().map(|(d, e)| serde_json::json!({"device": d, "error": e})).collect::<Vec<_>>(),
                }),
                outcome: if failed.is_empty() { "ok" } else { "failed" },
                reason: failed.iter().map(|(d, e)| format!("{d}: {e}")).collect::<Vec<_>>().join("; "),
                ..Default::default()
            });
        });
    })
}
