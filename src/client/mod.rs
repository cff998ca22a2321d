//! The client side: a [`Session`] with a running daemon, connected once, whose typed methods
//! take and return plain Rust and domain types, and one [`Error`] for every way a call fails.
//! With `src/server/`, the only place that sees the protobuf types; the CLI sees only this.
//!
//! - `transport.rs`: the address, TLS and the bearer token ([`Target`], [`Bearer`]).
//! - `types.rs`: what the daemon answers, and the conversions from its messages.
//! - `values.rs`: property values as people type and read them.
//! - `image.rs`: snapped images written to TIFF or PNG.

mod error;
mod image;
mod transport;
mod types;
mod values;

pub(crate) use error::code_name;
pub use error::{Error, Result};
pub use image::{auto_contrast, pixels_u16, save_image};
pub use transport::{channel, AuthChannel, Bearer, Target};
pub use types::{
    AcquisitionStatus, Device, Image, Instrument, Lease, LiveStatus, Plan, PlanIndex, PlanProgress,
    PlanSummary, Position, Preset, PresetGroup, Sequence, Setting,
};
pub use values::{parse_value, show_number, show_value};

use microscoped_driver_api::{PropertySpec, Value};
use tonic::Streaming;

pub use crate::storage::PlaneAddress;

use crate::pb;
use crate::pb::access_client::AccessClient;
use crate::pb::acquisition_client::AcquisitionClient;
use crate::pb::microscope_client::MicroscopeClient;
use crate::MAX_MESSAGE_BYTES;

/// One connection to a daemon and its three services. Cheap to clone: clones share the
/// connection, so a clone can stop an acquisition while another follows it.
#[derive(Clone)]
pub struct Session {
    /// Devices, properties, motion, snaps, presets.
    scope: MicroscopeClient<AuthChannel>,
    /// Sequences, plans, live view.
    acq: AcquisitionClient<AuthChannel>,
    /// The control lease.
    access: AccessClient<AuthChannel>,
}

impl Session {
    /// Connects to the daemon at `target` (TLS and token as it says), or says how to start one.
    pub async fn connect(target: &Target) -> Result<Self> {
        let ch = channel(target).await?;
        Ok(Self {
            // Images are far over tonic's 4 MiB default, both ways.
            scope: MicroscopeClient::new(ch.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            acq: AcquisitionClient::new(ch.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES),
            access: AccessClient::new(ch),
        })
    }

    /// The instrument and its devices.
    pub async fn instrument(&mut self) -> Result<Instrument> {
        let i = self
            .scope
            .get_instrument(pb::GetInstrumentRequest {})
            .await?;
        Ok(i.into_inner().into())
    }

    /// A device's properties with their types and limits.
    pub async fn properties(&mut self, device: &str) -> Result<Vec<PropertySpec>> {
        let r = self
            .scope
            .list_properties(pb::ListPropertiesRequest {
                device: device.into(),
            })
            .await?;
        Ok(r.into_inner()
            .properties
            .into_iter()
            .map(types::property_spec)
            .collect())
    }

    /// A property's value.
    pub async fn get_property(&mut self, device: &str, property: &str) -> Result<Option<Value>> {
        let v = self
            .scope
            .get_property(pb::GetPropertyRequest {
                device: device.into(),
                property: property.into(),
            })
            .await?;
        Ok(types::value(v.into_inner().value))
    }

    /// Sets a property; returns the value the device took.
    pub async fn set_property(
        &mut self,
        device: &str,
        property: &str,
        value: Value,
    ) -> Result<Option<Value>> {
        let v = self
            .scope
            .set_property(pb::SetPropertyRequest {
                device: device.into(),
                property: property.into(),
                value: Some(value.into()),
            })
            .await?;
        Ok(types::value(v.into_inner().value))
    }

    /// Starts a stage moving to `position_um` (or by it, `relative`); returns once it started.
    pub async fn move_stage(
        &mut self,
        device: &str,
        position_um: Vec<f64>,
        relative: bool,
    ) -> Result<()> {
        let req = pb::MoveRequest {
            device: device.into(),
            position_um,
        };
        if relative {
            self.scope.move_relative(req).await?;
        } else {
            self.scope.move_absolute(req).await?;
        }
        Ok(())
    }

    /// Waits until a device stops moving (the daemon's own timeout).
    pub async fn wait_for_idle(&mut self, device: &str) -> Result<()> {
        self.scope
            .wait_for_idle(pb::WaitForIdleRequest {
                device: device.into(),
                timeout_ms: 0,
            })
            .await?;
        Ok(())
    }

    /// Where a stage is.
    pub async fn position(&mut self, device: &str) -> Result<Position> {
        let p = self
            .scope
            .get_position(pb::DeviceRef {
                device: device.into(),
            })
            .await?
            .into_inner();
        Ok(Position {
            position_um: p.position_um,
            busy: p.busy,
        })
    }

    /// Takes one image; `camera` may be empty when the instrument has one, `exposure_ms`
    /// `None` for the camera's current exposure.
    pub async fn snap(&mut self, camera: &str, exposure_ms: Option<f64>) -> Result<Image> {
        let img = self
            .scope
            .snap(pb::SnapRequest {
                camera: camera.into(),
                exposure_ms: exposure_ms.unwrap_or(0.0),
            })
            .await?;
        Ok(img.into_inner().into())
    }

    /// The presets of the instrument's config.
    pub async fn presets(&mut self) -> Result<Vec<PresetGroup>> {
        let r = self.scope.list_presets(pb::ListPresetsRequest {}).await?;
        Ok(r.into_inner().groups.into_iter().map(Into::into).collect())
    }

    /// Applies a preset; returns what it set, in order.
    pub async fn apply_preset(&mut self, group: &str, preset: &str) -> Result<Vec<Setting>> {
        let r = self
            .scope
            .apply_preset(pb::ApplyPresetRequest {
                group: group.into(),
                preset: preset.into(),
            })
            .await?;
        Ok(r.into_inner().applied.into_iter().map(Into::into).collect())
    }

    /// Asks a faulted device whether it answers again, clearing the fault if it does; returns
    /// the device's name.
    pub async fn reset_device(&mut self, device: &str) -> Result<String> {
        let d = self
            .scope
            .reset_device(pb::ResetDeviceRequest {
                device: device.into(),
            })
            .await?;
        Ok(d.into_inner().name)
    }

    /// Starts a sequence acquisition.
    pub async fn start_sequence(&mut self, s: Sequence) -> Result<AcquisitionStatus> {
        let r = self
            .acq
            .start_sequence(pb::StartSequenceRequest {
                camera: s.camera,
                frames: s.frames,
                until_stopped: s.until_stopped,
                name: s.name,
            })
            .await?;
        Ok(r.into_inner().into())
    }

    /// Checks a plan against the instrument without moving anything.
    pub async fn validate_plan(&mut self, plan: &Plan) -> Result<PlanSummary> {
        let r = self.acq.validate_plan(types::plan_request(plan)).await?;
        Ok(r.into_inner().into())
    }

    /// Starts a plan.
    pub async fn start_plan(&mut self, plan: &Plan) -> Result<AcquisitionStatus> {
        let r = self.acq.start_plan(types::plan_request(plan)).await?;
        Ok(r.into_inner().into())
    }

    /// An acquisition's status now.
    pub async fn acquisition(&mut self, id: u64) -> Result<AcquisitionStatus> {
        let r = self.acq.get_acquisition(pb::AcquisitionRef { id }).await?;
        Ok(r.into_inner().into())
    }

    /// Stops an acquisition early; what was taken is kept.
    pub async fn stop_acquisition(&mut self, id: u64) -> Result<()> {
        self.acq.stop_acquisition(pb::AcquisitionRef { id }).await?;
        Ok(())
    }

    /// Every acquisition you may read, oldest first: the datasets in the data root when the
    /// daemon started, then every run since.
    pub async fn acquisitions(&mut self) -> Result<Vec<AcquisitionStatus>> {
        let r = self
            .acq
            .list_acquisitions(pb::ListAcquisitionsRequest {})
            .await?;
        Ok(r.into_inner()
            .acquisitions
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Pauses a plan between two events (`true`) or resumes it; returns its status.
    pub async fn set_paused(&mut self, id: u64, paused: bool) -> Result<AcquisitionStatus> {
        let req = pb::AcquisitionRef { id };
        let r = if paused {
            self.acq.pause_acquisition(req).await?
        } else {
            self.acq.resume_acquisition(req).await?
        };
        Ok(r.into_inner().into())
    }

    /// One plane of acquisition `id`'s dataset (finished or still being written): the image of
    /// `position` (its index in the plan's files; 0 for a sequence), at `address`.
    pub async fn read_plane(
        &mut self,
        id: u64,
        position: u32,
        address: PlaneAddress,
    ) -> Result<Image> {
        let (plane, coords) = match address {
            PlaneAddress::Index(i) => (i, None),
            PlaneAddress::Coords { t, c, z } => (0, Some(pb::PlaneCoords { t, c, z })),
        };
        let r = self
            .acq
            .read_plane(pb::ReadPlaneRequest {
                id,
                plane,
                position,
                coords,
            })
            .await?;
        Ok(r.into_inner().into())
    }

    /// An acquisition's status updates until it ends.
    pub async fn watch_acquisition(&mut self, id: u64) -> Result<Updates<AcquisitionStatus>> {
        let s = self
            .acq
            .watch_acquisition(pb::AcquisitionRef { id })
            .await?;
        Ok(Updates(s.into_inner(), std::marker::PhantomData))
    }

    /// A camera's newest frames, at most `max_fps` a second (0: as fast as they come).
    pub async fn live_view(&mut self, camera: &str, max_fps: f64) -> Result<Updates<Image>> {
        let s = self
            .acq
            .live_view(pb::LiveViewRequest {
                camera: camera.into(),
                max_fps,
            })
            .await?;
        Ok(Updates(s.into_inner(), std::marker::PhantomData))
    }

    /// What a camera's live view shows now (live mode, an acquisition, nothing).
    pub async fn live_status(&mut self, camera: &str) -> Result<LiveStatus> {
        let s = self
            .acq
            .get_live_status(pb::LiveStatusRequest {
                camera: camera.into(),
            })
            .await?;
        Ok(s.into_inner().into())
    }

    /// Takes the control lease for `ttl_s` seconds, or renews it if it is yours.
    pub async fn take_lease(&mut self, ttl_s: u32) -> Result<Lease> {
        let l = self
            .access
            .acquire_lease(pb::AcquireLeaseRequest { ttl_s })
            .await?;
        Ok(l.into_inner().into())
    }

    /// Extends your lease by its time to live.
    pub async fn renew_lease(&mut self) -> Result<Lease> {
        let l = self
            .access
            .renew_lease(pb::RenewLeaseRequest { ttl_s: 0 })
            .await?;
        Ok(l.into_inner().into())
    }

    /// Gives your lease back.
    pub async fn release_lease(&mut self) -> Result<()> {
        self.access
            .release_lease(pb::ReleaseLeaseRequest {})
            .await?;
        Ok(())
    }

    /// Who holds the lease and until when.
    pub async fn lease(&mut self) -> Result<Lease> {
        let l = self.access.get_lease(pb::GetLeaseRequest {}).await?;
        Ok(l.into_inner().into())
    }

    /// Ends whoever's lease it is (admins); returns the lease as it was.
    pub async fn break_lease(&mut self, reason: &str) -> Result<Lease> {
        let l = self
            .access
            .break_lease(pb::BreakLeaseRequest {
                reason: reason.into(),
            })
            .await?;
        Ok(l.into_inner().into())
    }
}

/// A stream of updates from the daemon (acquisition statuses, live-view images).
pub struct Updates<T>(Streaming<T::Wire>, std::marker::PhantomData<T>)
where
    T: FromWire;

impl<T: FromWire> Updates<T> {
    /// The next update; `None` once the daemon ended the stream.
    pub async fn next(&mut self) -> Result<Option<T>> {
        Ok(self.0.message().await?.map(T::from_wire))
    }
}

/// A type a stream's messages turn into. Sealed: only the client side's own types.
pub trait FromWire: sealed::Sealed {
    /// The message on the wire.
    #[doc(hidden)]
    type Wire;
    /// The conversion.
    #[doc(hidden)]
    fn from_wire(w: Self::Wire) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::AcquisitionStatus {}
    impl Sealed for super::Image {}
}

impl FromWire for AcquisitionStatus {
    type Wire = pb::AcquisitionStatus;
    fn from_wire(w: Self::Wire) -> Self {
        w.into()
    }
}

impl FromWire for Image {
    type Wire = pb::Image;
    fn from_wire(w: Self::Wire) -> Self {
        w.into()
    }
}
