//! Prometheus metrics, encoded by `prometheus-client` in the OpenMetrics text format and served
//! at `/metrics` by [`crate::http`] when the config has `[metrics]`.
//!
//! The daemon's state is read when Prometheus scrapes ([`StateCollector`]): frame counters and
//! run state from the acquisition engine's statuses, ring sizes from the live status of each
//! camera, device health from the device host, the lease from the leases. Those are the
//! numbers the gRPC status RPCs report, read the same way, so the two cannot disagree; nothing
//! is counted twice. Only what has no other home is counted here: RPCs, by the tower layer in
//! `rpc.rs`.

mod rpc;

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

pub use rpc::{RpcMetrics, RpcMetricsLayer, TimedBody};

use crate::access::Access;
use crate::acquire::{Acquisitions, RunState};
use crate::host::{DeviceHost, Health};

/// Ended acquisitions still reported run by run, besides every running or paused one: a
/// scrape after a run ends sees its final counters, and months of runs do not grow the output.
pub const ENDED_RUNS_REPORTED: usize = 16;

/// The metrics of one daemon: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Metrics {
    /// Every metric, and the collector that reads the daemon's state at each scrape.
    registry: Arc<Registry>,
}

/// What the state collector reads.
#[derive(Clone)]
pub struct Sources {
    /// The devices: health and fault counts.
    pub host: DeviceHost,
    /// The acquisition engine: runs, their counters, the rings.
    pub acquisitions: Acquisitions,
    /// The control lease.
    pub access: Access,
}

impl Metrics {
    /// The daemon's metrics over `sources`, and the layer that times its RPCs into them.
    pub fn new(sources: Sources) -> (Self, RpcMetricsLayer) {
        let mut registry = Registry::with_prefix("microscoped");
        registry.register(
            "build",
            "The daemon's version and the optional drivers built in",
            Info::new([
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "genicam",
                    if cfg!(feature = "genicam") {
                        "true"
                    } else {
                        "false"
                    },
                ),
            ]),
        );
        let rpcs = rpc::new_histogram();
        registry.register_with_unit(
            "grpc_server_handling",
            "gRPC calls by service, method and status code, timed from the request to the end \
             of the response (a stream's whole life); _count is the number of calls",
            Unit::Seconds,
            rpcs.clone(),
        );
        registry.register_collector(Box::new(StateCollector(sources)));
        (
            Self {
                registry: Arc::new(registry),
            },
            RpcMetricsLayer::new(rpcs),
        )
    }

    /// The exposition now, in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The content type of [`Metrics::encode`]'s text, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads the daemon's state at each scrape (see the module documentation).
struct StateCollector(Sources);

impl fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateCollector")
    }
}

/// One metric family written from `rows`: its descriptor (written even without a row, so the
/// family is known before its first acquisition), then a sample per row.
fn family<L, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    rows: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
    M: EncodeMetric + prometheus_client::metrics::TypedMetric,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, M::TYPE)?;
    for (labels, value) in rows {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge(v: i64) -> ConstGauge<i64> {
    ConstGauge::new(v)
}

/// One camera's frame ring at a scrape.
struct Ring {
    camera: String,
    /// Slots allocated (0: no ring).
    slots: u64,
    /// Their memory.
    bytes: u64,
    /// Of the slots, those holding frames that wait for the writer.
    used: u64,
    /// One slot's memory.
    slot_bytes: u64,
}

/// A count or size as a gauge's value (none comes near `i64::MAX`).
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Sources {
            host,
            acquisitions,
            access,
        } = &self.0;

        // Acquisitions, run by run: the statuses GetAcquisition returns.
        let runs = acquisitions.recent(ENDED_RUNS_REPORTED);
        let run_labels = |s: &crate::acquire::Status| {
            [
                ("id", s.id.to_string()),
                ("name", s.name.clone()),
                ("owner", s.owner.clone()),
                ("camera", s.camera.clone()),
            ]
        };
        let per_run = |f: fn(&crate::acquire::Status) -> u64| {
            runs.iter()
                .map(|s| (run_labels(s), counter(f(s))))
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "acquisition_frames_received",
            "Frames that came from the camera in this acquisition (received = written + dropped \
             once drained)",
            None,
            per_run(|s| s.counters.received),
        )?;
        family(
            &mut encoder,
            "acquisition_frames_written",
            "Frames of this acquisition written to its dataset",
            None,
            per_run(|s| s.counters.written),
        )?;
        family(
            &mut encoder,
            "acquisition_frames_dropped",
            "Frames of this acquisition dropped (ring full, lost in the camera, or left \
             unwritten by a failed writer)",
            None,
            per_run(|s| s.counters.dropped),
        )?;
        family(
            &mut encoder,
            "acquisition_frames_lost_in_camera",
            "Of the dropped frames, those the camera took but never delivered (the host read \
             too late)",
            None,
            per_run(|s| s.counters.lost_in_camera),
        )?;
        family(
            &mut encoder,
            "acquisition_written",
            "Bytes in this acquisition's files",
            Some(&Unit::Bytes),
            per_run(|s| s.bytes),
        )?;
        family(
            &mut encoder,
            "acquisition_running",
            "1 while the acquisition runs or is paused, 0 once it has ended",
            None,
            runs.iter().map(|s| {
                let on = matches!(s.state, RunState::Running | RunState::Paused);
                (run_labels(s), gauge(on.into()))
            }),
        )?;

        // The frame rings, camera by camera: what GetLiveStatus reports (an acquisition's ring,
        // or live mode's), and the acquisition's frames waiting for its writer.
        let rings: Vec<Ring> = host
            .of_kind(microscoped_driver_api::DeviceKind::Camera)
            .filter_map(|camera| acquisitions.live_status(camera.name()).ok())
            .map(|live| Ring {
                used: live
                    .acquisition
                    .and_then(|id| runs.iter().find(|s| s.id == id))
                    .filter(|s| s.state == RunState::Running)
                    .map_or(0, |s| s.counters.pending),
                slot_bytes: live
                    .ring_bytes
                    .checked_div(u64::from(live.ring_slots))
                    .unwrap_or(0),
                slots: u64::from(live.ring_slots),
                bytes: live.ring_bytes,
                camera: live.camera,
            })
            .collect();
        let per_camera = |f: fn(&Ring) -> u64| {
            rings
                .iter()
                .map(|r| ([("camera", r.camera.clone())], gauge(int(f(r)))))
                .collect::<Vec<_>>()
        };
        family(
            &mut encoder,
            "ring_slots",
            "Slots of the camera's frame ring (0 when none is allocated)",
            None,
            per_camera(|r| r.slots),
        )?;
        family(
            &mut encoder,
            "ring_slots_used",
            "Slots holding frames that wait for the writer",
            None,
            per_camera(|r| r.used),
        )?;
        family(
            &mut encoder,
            "ring",
            "Memory of the camera's frame ring",
            Some(&Unit::Bytes),
            per_camera(|r| r.bytes),
        )?;
        family(
            &mut encoder,
            "ring_used",
            "Memory of the ring slots holding frames that wait for the writer",
            Some(&Unit::Bytes),
            per_camera(|r| r.used.saturating_mul(r.slot_bytes)),
        )?;

        // Devices: what ListDevices reports as health, and how often each has faulted.
        let device_labels = |d: &crate::host::DeviceHandle| {
            [
                ("device", d.name().to_owned()),
                ("kind", d.kind().as_str().to_owned()),
                ("driver", d.driver().to_owned()),
            ]
        };
        family(
            &mut encoder,
            "device_up",
            "1 while the device answers, 0 while it is faulted (until reset)",
            None,
            host.devices()
                .map(|d| (device_labels(d), gauge((d.health() == Health::Ok).into()))),
        )?;
        family(
            &mut encoder,
            "device_faults",
            "Times the device went from answering to faulted since the daemon started",
            None,
            host.devices()
                .map(|d| (device_labels(d), counter(d.faults()))),
        )?;

        // The control lease: GetLease's holder.
        let lease = access.leases().current();
        let held = match &lease {
            Some(l) => vec![([("holder", l.user.clone())], gauge(1))],
            None => vec![([("holder", String::new())], gauge(0))],
        };
        family(
            &mut encoder,
            "lease_held",
            "1 with the holder's user name while someone holds the control lease, 0 when it is \
             free",
            None,
            held,
        )?;
        family(
            &mut encoder,
            "lease_remaining",
            "Time left on the control lease unless renewed (0 when free)",
            Some(&Unit::Seconds),
            [(
                [(
                    "holder",
                    lease.as_ref().map(|l| l.user.clone()).unwrap_or_default(),
                )],
                ConstGauge::new(lease.as_ref().map_or(0.0, |l| l.remaining().as_secs_f64())),
            )],
        )?;
        Ok(())
    }
}
