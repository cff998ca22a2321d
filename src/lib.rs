//! microscoped: a microscope-instrument control and image acquisition daemon.
//!
//! # Layout
//! - [`config`]: the instrument config (TOML), parsed, validated, errors with file:line:key.
//! - [`drivers`]: turns device configs into running drivers.
//! - [`host`]: the device host: one thread per device, command channel, timeouts, faults.
//! - [`ring`]: the preallocated frame ring between a camera and its consumers.
//! - [`acquire`]: the acquisition engine (sequences), events, live rings.
//! - [`storage`]: the streaming OME-TIFF writer, its sidecar and crash recovery.
//! - [`server`]: the gRPC services; the only module that sees prost types.
//! - [`client`]: the CLI's gRPC client side.
//!
//! [`run`] starts the daemon on a listener the caller made, so tests run the real daemon on
//! `127.0.0.1:0` with a shutdown future of their own.

pub mod acquire;
pub mod bench;
pub mod client;
pub mod config;
pub mod drivers;
pub mod host;
pub mod plan;
pub mod presets;
pub mod ring;
pub mod server;
pub mod storage;

use std::future::Future;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tracing::info;

/// The generated protobuf and gRPC code for `microscoped.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("microscoped.v1");

    /// The encoded descriptor set of the API, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/microscoped_descriptor.bin"));
}

/// The largest gRPC message either side accepts: a full-frame 16-bit image from a large sCMOS
/// sensor is tens of MiB, far over tonic's 4 MiB default.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

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
    let host = host::DeviceHost::start(&config)?;
    let presets = presets::Presets::new(&config, &host)?;
    let acquisitions = acquire::Acquisitions::new(
        host.clone(),
        config.storage.clone(),
        config.instrument.clone(),
        presets.clone(),
    );
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let acquisition = server::acquisition::AcquisitionService::new(
        acquisitions.clone(),
        host.clone(),
        stopping.clone(),
    );
    let acquisition = pb::acquisition_server::AcquisitionServer::new(acquisition)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let service =
        server::MicroscopeService::new(config.instrument.clone(), host.clone(), presets, stopping);
    let service = pb::microscope_server::MicroscopeServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::microscope_server::MicroscopeServer<server::MicroscopeService>>()
        .await;
    health
        .set_serving::<pb::acquisition_server::AcquisitionServer<server::acquisition::AcquisitionService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let addr = listener.local_addr()?;
    // Without TCP_NODELAY small unary replies wait on Nagle's algorithm (~40 ms stalls).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    info!(%addr, instrument = %config.instrument.name, devices = config.devices.len(), "microscoped serving");
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .add_service(acquisition)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            // Open streams end now, or the server would wait for their clients to hang up.
            let _ = stopping_tx.send(true);
        })
        .await?;
    info!("stopped taking requests; finishing acquisitions");
    acquisitions.stop_all().await;
    info!("putting devices in their safe state");
    host.make_all_safe().await;
    info!("shutdown complete");
    Ok(())
}
