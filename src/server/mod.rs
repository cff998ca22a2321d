//! The gRPC services: the `Microscope` control service, health and reflection. Only this module
//! sees prost types; domain types convert in [`convert`].

pub mod access;
pub mod acquisition;
pub mod auth;
pub mod convert;
pub mod limit;
pub mod plans;

use std::time::{Duration, SystemTime};

use microscoped_driver_api::{AnyDevice, DeviceError, DeviceKind, Value};
use tonic::{Request, Response, Status};

use crate::access::{Access, Need};
use crate::config::InstrumentInfo;
use crate::host::{DeviceHandle, DeviceHost, HostError};
use crate::pb;
use crate::presets::Presets;
use crate::storage::unix_us;
use auth::{audited, record, require};
use convert::error_status;

/// How long WaitForIdle waits when the client does not say.
const DEFAULT_IDLE_WAIT: Duration = Duration::from_millis(60_000);
/// The longest WaitForIdle a client may ask for: a homing run on a long stage takes minutes,
/// anything longer is a mistake.
const MAX_IDLE_WAIT_MS: u32 = 600_000;
/// The most settings one SetProperties request applies: a preset's worth many times over. Each
/// is checked and applied on a device thread, all or nothing, so the batch is bounded.
pub const MAX_SETTINGS: usize = 256;

/// The `Microscope` service: a thin layer from RPCs to the device host.
#[derive(Clone)]
pub struct MicroscopeService {
    /// Name and description, for GetInstrument.
    instrument: InstrumentInfo,
    /// The devices.
    host: DeviceHost,
    /// The config's presets.
    presets: Presets,
    /// Becomes true when the daemon shuts down: long waits end so shutdown is not held up.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Who may do what; every handler asks it first.
    access: Access,
}

impl MicroscopeService {
    /// A service over the given devices.
    pub fn new(
        instrument: InstrumentInfo,
        host: DeviceHost,
        presets: Presets,
        stopping: tokio::sync::watch::Receiver<bool>,
        access: Access,
    ) -> Self {
        Self {
            instrument,
            host,
            presets,
            stopping,
            access,
        }
    }

    fn device(&self, name: &str) -> Result<&DeviceHandle, Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument(
                "a device name is required (see ListDevices)",
            ));
        }
        self.host.get(name).map_err(error_status)
    }

    fn device_info(d: &DeviceHandle) -> pb::Device {
        let (health, fault) = convert::health(d.health());
        pb::Device {
            name: d.name().to_owned(),
            kind: convert::kind(d.kind()) as i32,
            driver: d.driver().to_owned(),
            description: d.description().to_owned(),
            health: health as i32,
            fault,
        }
    }

    /// Finds a writable property and checks a value against it, without touching the device.
    fn check_setting(
        &self,
        device: &str,
        property: &str,
        value: Option<pb::Value>,
    ) -> Result<(DeviceHandle, String, Value), Status> {
        let d = self.device(device)?;
        let spec = d
            .properties()
            .iter()
            .find(|s| s.name == property)
            .ok_or_else(|| no_property(d, property))?;
        if spec.read_only {
            return Err(Status::failed_precondition(format!(
                "{device}.{property} is read-only"
            )));
        }
        let value = convert::value_from_pb(value, &format!("{device}.{property}"))?;
        let value = spec.coerce(&value).map_err(|e| {
            // The spec shows the facility limit already; say where it comes from.
            let note = crate::limits::note_for(d.limits(), spec)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            Status::new(
                convert::code(e.kind.into()),
                format!("{device}.{}{note}", e.message),
            )
        })?;
        Ok((d.clone(), property.to_owned(), value))
    }

    /// Starts a move of a stage or XY stage, to a position or by a distance.
    async fn move_stage(
        &self,
        req: pb::MoveRequest,
        relative: bool,
    ) -> Result<Response<pb::StagePosition>, Status> {
        let d = self.device(&req.device)?;
        move_target(d, &req.position_um)?;
        let p = req.position_um;
        match (d.kind(), relative) {
            (DeviceKind::XYStage, false) => {
                d.with_xy_stage(move |s| s.move_absolute_um(p[0], p[1]))
                    .await
            }
            (DeviceKind::XYStage, true) => {
                d.with_xy_stage(move |s| s.move_relative_um(p[0], p[1]))
                    .await
            }
            (_, false) => d.with_stage(move |s| s.move_absolute_um(p[0])).await,
            (_, true) => d.with_stage(move |s| s.move_relative_um(p[0])).await,
        }
        .map_err(error_status)?;
        Ok(Response::new(
            stage_position(d).await.map_err(error_status)?,
        ))
    }

    async fn read_property(d: &DeviceHandle, property: &str) -> Result<pb::PropertyValue, Status> {
        let name = property.to_owned();
        let v = d
            .call(move |dev| dev.device().get_property(&name))
            .await
            .map_err(error_status)?;
        Ok(pb::PropertyValue {
            device: d.name().to_owned(),
            property: property.to_owned(),
            value: Some(convert::value_to_pb(v)),
        })
    }

    async fn write_property(
        d: &DeviceHandle,
        property: &str,
        value: Value,
    ) -> Result<(), HostError> {
        let name = property.to_owned();
        d.call(move |dev| dev.device().set_property(&name, &value))
            .await
    }
}

fn no_property(d: &DeviceHandle, property: &str) -> Status {
    let names: Vec<_> = d.properties().iter().map(|p| p.name.as_str()).collect();
    Status::not_found(format!(
        "device {:?} has no property {}; its properties are: {}",
        d.name(),
        crate::names::quote(property),
        names.join(", ")
    ))
}

/// Where a stage or XY stage is and whether it moves.
async fn stage_position(d: &DeviceHandle) -> Result<pb::StagePosition, HostError> {
    let (position_um, busy) = match d.kind() {
        DeviceKind::XYStage => {
            d.with_xy_stage(|s| {
                let (x, y) = s.position_um()?;
                Ok((vec![x, y], s.is_busy()?))
            })
            .await?
        }
        _ => {
            d.with_stage(|s| Ok((vec![s.position_um()?], s.is_busy()?)))
                .await?
        }
    };
    Ok(pb::StagePosition {
        device: d.name().to_owned(),
        position_um,
        busy,
    })
}

fn require_stage(d: &DeviceHandle) -> Result<(), Status> {
    match d.kind() {
        DeviceKind::Stage | DeviceKind::XYStage => Ok(()),
        other => Err(Status::invalid_argument(format!(
            "device {:?} is a {}, not a stage or xy-stage",
            d.name(),
            other.as_str()
        ))),
    }
}

/// Checks a move's coordinates: the right count for the stage and finite numbers.
fn move_target(d: &DeviceHandle, position: &[f64]) -> Result<(), Status> {
    require_stage(d)?;
    let want = if d.kind() == DeviceKind::XYStage {
        2
    } else {
        1
    };
    if position.len() != want {
        return Err(Status::invalid_argument(format!(
            "device {:?} is a {} and takes {want} coordinate(s) in position_um, got {}",
            d.name(),
            d.kind().as_str(),
            position.len()
        )));
    }
    for (i, &p) in position.iter().enumerate() {
        convert::finite(&format!("position_um[{i}]"), p)?;
    }
    Ok(())
}

async fn laser_state(d: &DeviceHandle) -> Result<pb::LaserState, HostError> {
    let name = d.name().to_owned();
    d.with_laser(move |l| {
        Ok(pb::LaserState {
            device: name,
            enabled: l.is_on()?,
            setpoint_mw: l.power_setpoint_mw()?,
            power_mw: l.power_mw()?,
            max_power_mw: l.max_power_mw()?,
            wavelength_nm: l.wavelength_nm()?,
        })
    })
    .await
}

async fn state_of(d: &DeviceHandle) -> Result<pb::StateDeviceState, HostError> {
    let name = d.name().to_owned();
    d.with_state(move |s| {
        let labels = s.labels()?;
        let index = s.position()?;
        Ok(pb::StateDeviceState {
            device: name,
            index,
            label: labels.get(index as usize).cloned().unwrap_or_default(),
            labels,
            busy: s.is_busy()?,
        })
    })
    .await
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::microscope_server::Microscope for MicroscopeService {
    async fn get_instrument(&self, req: Request<pb::GetInstrumentRequest>) -> Rpc<pb::Instrument> {
        require(&self.access, &req, Need::Observe, "")?;
        let pixel_size_um = match self.host.of_kind(DeviceKind::Camera).next() {
            Some(cam) => {
                crate::presets::pixel_size_um(&self.instrument, &self.host, cam, None).await
            }
            None => None,
        };
        let objective = crate::presets::objective_label(&self.instrument, &self.host).await;
        Ok(Response::new(pb::Instrument {
            name: self.instrument.name.clone(),
            description: self.instrument.description.clone(),
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            devices: self.host.devices().map(Self::device_info).collect(),
            pixel_size_um: pixel_size_um.unwrap_or(0.0),
            objective: objective.unwrap_or_default(),
        }))
    }

    async fn list_presets(
        &self,
        req: Request<pb::ListPresetsRequest>,
    ) -> Rpc<pb::ListPresetsResponse> {
        require(&self.access, &req, Need::Observe, "")?;
        let groups = self
            .presets
            .groups()
            .iter()
            .map(|g| pb::PresetGroup {
                name: g.name.clone(),
                presets: g
                    .presets
                    .iter()
                    .map(|p| pb::Preset {
                        name: p.name.clone(),
                        settings: p
                            .settings
                            .iter()
                            .map(|s| pb::PropertyValue {
                                device: s.device.clone(),
                                property: s.property.clone(),
                                value: Some(convert::value_to_pb(s.value.clone())),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListPresetsResponse { groups }))
    }

    async fn apply_preset(
        &self,
        req: Request<pb::ApplyPresetRequest>,
    ) -> Rpc<pb::ApplyPresetResponse> {
        let target = format!("{}/{}", req.get_ref().group, req.get_ref().preset);
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let req = req.into_inner();
        audited(
            &self.access,
            &caller,
            &target,
            serde_json::Value::Null,
            async {
                let preset = self
                    .presets
                    .find(&req.group, &req.preset)
                    .map_err(|e| Status::not_found(e.0))?;
                let applied = Presets::apply(&self.host, preset, None)
                    .await
                    .map_err(|e| {
                        let s = error_status(e);
                        Status::new(
                            s.code(),
                            format!(
                                "preset {}: {}",
                                crate::names::quote(&req.preset),
                                s.message()
                            ),
                        )
                    })?;
                Ok(Response::new(pb::ApplyPresetResponse {
                    applied: applied
                        .into_iter()
                        .map(|(device, property, value)| pb::PropertyValue {
                            device,
                            property,
                            value: Some(convert::value_to_pb(value)),
                        })
                        .collect(),
                }))
            },
        )
        .await
    }

    async fn list_devices(
        &self,
        req: Request<pb::ListDevicesRequest>,
    ) -> Rpc<pb::ListDevicesResponse> {
        require(&self.access, &req, Need::Observe, "")?;
        Ok(Response::new(pb::ListDevicesResponse {
            devices: self.host.devices().map(Self::device_info).collect(),
        }))
    }

    async fn reset_device(&self, req: Request<pb::ResetDeviceRequest>) -> Rpc<pb::Device> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::Value::Null;
        audited(&self.access, &caller, &target, detail, async move {
            let d = self.device(&req.get_ref().device)?;
            d.reset().await.map_err(error_status)?;
            Ok(Response::new(Self::device_info(d)))
        })
        .await
    }

    async fn list_properties(
        &self,
        req: Request<pb::ListPropertiesRequest>,
    ) -> Rpc<pb::ListPropertiesResponse> {
        require(&self.access, &req, Need::Observe, "")?;
        let d = self.device(&req.get_ref().device)?;
        Ok(Response::new(pb::ListPropertiesResponse {
            properties: d.properties().iter().map(convert::property_spec).collect(),
        }))
    }

    async fn get_property(&self, req: Request<pb::GetPropertyRequest>) -> Rpc<pb::PropertyValue> {
        require(&self.access, &req, Need::Observe, "")?;
        let req = req.into_inner();
        let d = self.device(&req.device)?;
        if !d.properties().iter().any(|s| s.name == req.property) {
            return Err(no_property(d, &req.property));
        }
        Ok(Response::new(Self::read_property(d, &req.property).await?))
    }

    async fn set_property(&self, req: Request<pb::SetPropertyRequest>) -> Rpc<pb::PropertyValue> {
        let target = format!("{}.{}", req.get_ref().device, req.get_ref().property);
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "value": convert::value_json(&req.get_ref().value) });
        audited(&self.access, &caller, &target, detail, async move {
            let req = req.into_inner();
            let (d, property, value) = self.check_setting(&req.device, &req.property, req.value)?;
            Self::write_property(&d, &property, value)
                .await
                .map_err(error_status)?;
            Ok(Response::new(Self::read_property(&d, &property).await?))
        })
        .await
    }

    async fn set_properties(
        &self,
        req: Request<pb::SetPropertiesRequest>,
    ) -> Rpc<pb::SetPropertiesResponse> {
        let count = req.get_ref().settings.len();
        // An over-long batch is audited by its length, not item by item.
        let listed = if count <= MAX_SETTINGS { count } else { 0 };
        let target = if listed < count {
            format!("{count} settings")
        } else {
            req.get_ref().settings[..listed]
                .iter()
                .map(|s| format!("{}.{}", s.device, s.property))
                .collect::<Vec<_>>()
                .join(",")
        };
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "values": req.get_ref().settings[..listed].iter().map(|s| convert::value_json(&s.value)).collect::<Vec<_>>() });
        audited(&self.access, &caller, &target, detail, async move {
            let settings = req.into_inner().settings;
            if settings.is_empty() {
                return Err(Status::invalid_argument(
                    "settings is empty: nothing to set",
                ));
            }
            if settings.len() > MAX_SETTINGS {
                return Err(Status::invalid_argument(format!(
                    "settings: {} items; a SetProperties request has at most {MAX_SETTINGS}; \
                     nothing was applied",
                    settings.len()
                )));
            }
            // Check everything first so a mistake in the last setting changes nothing.
            let mut checked = Vec::with_capacity(settings.len());
            for (i, s) in settings.into_iter().enumerate() {
                let c = self
                    .check_setting(&s.device, &s.property, s.value)
                    .map_err(|e| {
                        Status::new(
                            e.code(),
                            format!("settings[{i}]: {}; nothing was applied", e.message()),
                        )
                    })?;
                checked.push(c);
            }
            for (i, (d, property, value)) in checked.iter().enumerate() {
                if let Err(e) = Self::write_property(d, property, value.clone()).await {
                    let e = error_status(e);
                    let applied = if i == 0 {
                        "nothing was applied".to_owned()
                    } else {
                        format!("settings[0..{i}] were applied")
                    };
                    return Err(Status::new(
                        e.code(),
                        format!(
                            "settings[{i}] {}.{property}: {}; {applied}",
                            d.name(),
                            e.message()
                        ),
                    ));
                }
            }
            let mut values = Vec::with_capacity(checked.len());
            for (d, property, _) in &checked {
                values.push(Self::read_property(d, property).await?);
            }
            Ok(Response::new(pb::SetPropertiesResponse { values }))
        })
        .await
    }

    async fn move_absolute(&self, req: Request<pb::MoveRequest>) -> Rpc<pb::StagePosition> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "position_um": req.get_ref().position_um });
        audited(&self.access, &caller, &target, detail, async move {
            self.move_stage(req.into_inner(), false).await
        })
        .await
    }

    async fn move_relative(&self, req: Request<pb::MoveRequest>) -> Rpc<pb::StagePosition> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "position_um": req.get_ref().position_um });
        audited(&self.access, &caller, &target, detail, async move {
            self.move_stage(req.into_inner(), true).await
        })
        .await
    }

    async fn get_position(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::StagePosition> {
        require(&self.access, &req, Need::Observe, "")?;
        let d = self.device(&req.get_ref().device)?;
        require_stage(d)?;
        Ok(Response::new(
            stage_position(d).await.map_err(error_status)?,
        ))
    }

    async fn stop(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::StagePosition> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::Value::Null;
        audited(&self.access, &caller, &target, detail, async move {
            let d = self.device(&req.get_ref().device)?;
            require_stage(d)?;
            match d.kind() {
                DeviceKind::XYStage => d.with_xy_stage(|s| s.stop()).await,
                _ => d.with_stage(|s| s.stop()).await,
            }
            .map_err(error_status)?;
            Ok(Response::new(
                stage_position(d).await.map_err(error_status)?,
            ))
        })
        .await
    }

    async fn home(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::StagePosition> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::Value::Null;
        audited(&self.access, &caller, &target, detail, async move {
            let d = self.device(&req.get_ref().device)?;
            require_stage(d)?;
            match d.kind() {
                DeviceKind::XYStage => d.with_xy_stage(|s| s.home()).await,
                _ => d.with_stage(|s| s.home()).await,
            }
            .map_err(error_status)?;
            Ok(Response::new(
                stage_position(d).await.map_err(error_status)?,
            ))
        })
        .await
    }

    async fn wait_for_idle(
        &self,
        req: Request<pb::WaitForIdleRequest>,
    ) -> Rpc<pb::WaitForIdleResponse> {
        require(&self.access, &req, Need::Observe, "")?;
        let req = req.into_inner();
        let d = self.device(&req.device)?;
        let limit = match req.timeout_ms {
            0 => DEFAULT_IDLE_WAIT,
            ms if ms > MAX_IDLE_WAIT_MS => {
                return Err(Status::invalid_argument(format!(
                    "timeout_ms must be at most {MAX_IDLE_WAIT_MS} (10 minutes), got {ms}"
                )))
            }
            ms => Duration::from_millis(ms.into()),
        };
        let mut stopping = self.stopping.clone();
        let waited = tokio::select! {
            w = d.wait_for_idle(limit) => w.map_err(error_status)?,
            _ = stopping.wait_for(|s| *s) => {
                return Err(Status::unavailable("the daemon is shutting down"))
            }
        };
        Ok(Response::new(pb::WaitForIdleResponse {
            device: req.device,
            waited_ms: waited.as_secs_f64() * 1e3,
        }))
    }

    async fn set_laser_enabled(
        &self,
        req: Request<pb::SetLaserEnabledRequest>,
    ) -> Rpc<pb::LaserState> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "enabled": req.get_ref().enabled });
        audited(&self.access, &caller, &target, detail, async move {
            let req = req.into_inner();
            let d = self.device(&req.device)?;
            let on = req.enabled;
            d.with_laser(move |l| l.set_on(on))
                .await
                .map_err(error_status)?;
            Ok(Response::new(laser_state(d).await.map_err(error_status)?))
        })
        .await
    }

    async fn set_laser_power(&self, req: Request<pb::SetLaserPowerRequest>) -> Rpc<pb::LaserState> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "power_mw": req.get_ref().power_mw });
        audited(&self.access, &caller, &target, detail, async move {
            let req = req.into_inner();
            let d = self.device(&req.device)?;
            let power = convert::finite("power_mw", req.power_mw)?;
            if power < 0.0 {
                return Err(Status::invalid_argument(format!(
                    "power_mw must be a number >= 0, got {power}"
                )));
            }
            d.with_laser(move |l| l.set_power_mw(power))
                .await
                .map_err(error_status)?;
            Ok(Response::new(laser_state(d).await.map_err(error_status)?))
        })
        .await
    }

    async fn get_laser_state(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::LaserState> {
        require(&self.access, &req, Need::Observe, "")?;
        let d = self.device(&req.get_ref().device)?;
        Ok(Response::new(laser_state(d).await.map_err(error_status)?))
    }

    async fn set_state(&self, req: Request<pb::SetStateRequest>) -> Rpc<pb::StateDeviceState> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = match &req.get_ref().target {
            Some(pb::set_state_request::Target::Index(i)) => serde_json::json!({ "index": i }),
            Some(pb::set_state_request::Target::Label(l)) => serde_json::json!({ "label": l }),
            None => serde_json::Value::Null,
        };
        audited(&self.access, &caller, &target, detail, async move {
            use pb::set_state_request::Target;
            let req = req.into_inner();
            let d = self.device(&req.device)?;
            let target = req.target.ok_or_else(|| {
                Status::invalid_argument("give the position as an index or a label")
            })?;
            let name = d.name().to_owned();
            d.with_state(move |s| {
                let labels = s.labels()?;
                let index = match target {
                    Target::Index(i) if (i as usize) < labels.len() => i,
                    Target::Index(i) => {
                        return Err(DeviceError::out_of_range(format!(
                            "position {i} does not exist: {name} has positions 0..={} ({})",
                            labels.len().saturating_sub(1),
                            labels.join(", ")
                        )))
                    }
                    Target::Label(l) => microscoped_driver_api::position_of_label(&labels, &l)?,
                };
                s.set_position(index)
            })
            .await
            .map_err(error_status)?;
            Ok(Response::new(state_of(d).await.map_err(error_status)?))
        })
        .await
    }

    async fn get_state(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::StateDeviceState> {
        require(&self.access, &req, Need::Observe, "")?;
        let d = self.device(&req.get_ref().device)?;
        Ok(Response::new(state_of(d).await.map_err(error_status)?))
    }

    async fn set_shutter(&self, req: Request<pb::SetShutterRequest>) -> Rpc<pb::ShutterState> {
        let target = req.get_ref().device.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "open": req.get_ref().open });
        audited(&self.access, &caller, &target, detail, async move {
            let req = req.into_inner();
            let d = self.device(&req.device)?;
            let open = req.open;
            let open = d
                .with_shutter(move |s| {
                    s.set_open(open)?;
                    s.is_open()
                })
                .await
                .map_err(error_status)?;
            Ok(Response::new(pb::ShutterState {
                device: req.device,
                open,
            }))
        })
        .await
    }

    async fn get_shutter(&self, req: Request<pb::DeviceRef>) -> Rpc<pb::ShutterState> {
        require(&self.access, &req, Need::Observe, "")?;
        let d = self.device(&req.get_ref().device)?;
        let open = d
            .with_shutter(|s| s.is_open())
            .await
            .map_err(error_status)?;
        Ok(Response::new(pb::ShutterState {
            device: d.name().to_owned(),
            open,
        }))
    }

    async fn snap(&self, req: Request<pb::SnapRequest>) -> Rpc<pb::Image> {
        let target = req.get_ref().camera.clone();
        let caller = require(&self.access, &req, Need::Control, &target)?;
        let detail = serde_json::json!({ "exposure_ms": req.get_ref().exposure_ms });
        let result = async move {
            let req = req.into_inner();
            let cam = self.host.camera(&req.camera).map_err(error_status)?;
            let exposure = convert::finite("exposure_ms", req.exposure_ms)?;
            if exposure < 0.0 {
                return Err(Status::invalid_argument(format!(
                "exposure_ms must be > 0 (or 0 for the camera's current exposure), got {exposure}"
            )));
            }
            let current = cam
                .with_camera(|c| c.exposure_ms())
                .await
                .map_err(error_status)?;
            let effective = if exposure > 0.0 { exposure } else { current };
            // The snap itself takes the exposure: the device timeout covers only the overhead. The
            // camera refuses absurd exposures itself; saturate so they get its message, not a panic.
            let limit = Duration::try_from_secs_f64(effective / 1e3)
                .map_or(Duration::MAX, |e| cam.timeout().saturating_add(e));
            let (data, info, bit_depth, binning, roi) = cam
                .call_timeout(limit, move |dev| {
                    let AnyDevice::Camera(c) = dev else {
                        return Err(DeviceError::invalid("not a camera"));
                    };
                    if exposure > 0.0 {
                        c.set_exposure_ms(exposure)?;
                    }
                    let shape = c.frame_shape()?;
                    let mut data = vec![0u8; shape.bytes()];
                    let snapped = c.snap(&mut data);
                    if exposure > 0.0 {
                        c.set_exposure_ms(current)?;
                    }
                    let info = snapped?;
                    Ok((data, info, c.bit_depth()?, c.binning()?, c.roi()?))
                })
                .await
                .map_err(error_status)?;
            let host_time_unix_us = unix_us(SystemTime::now());
            let mut stage_positions = std::collections::HashMap::new();
            for s in self
                .host
                .devices()
                .filter(|d| matches!(d.kind(), DeviceKind::Stage | DeviceKind::XYStage))
            {
                // Metadata is best effort: a faulted stage must not cost the user the image.
                if let Ok(p) = stage_position(s).await {
                    stage_positions.insert(s.name().to_owned(), p);
                }
            }
            Ok(Response::new(pb::Image {
                camera: cam.name().to_owned(),
                width: info.shape.width,
                height: info.shape.height,
                pixel_type: convert::pixel_type(info.shape.pixel_type) as i32,
                bit_depth,
                data,
                metadata: Some(pb::ImageMetadata {
                    exposure_ms: info.exposure_ms,
                    camera_timestamp_us: info.camera_timestamp_us,
                    host_time_unix_us,
                    binning,
                    roi_x: roi.x,
                    roi_y: roi.y,
                    stage_positions,
                }),
            }))
        }
        .await;
        // Snaps that work are not recorded: a script may take thousands, and the log is for
        // changes to the instrument. Refused ones (an exposure past the limit) are.
        if let Err(e) = &result {
            record(&self.access, &caller, &target, detail, Err(e));
        }
        result
    }
}
