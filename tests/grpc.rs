//! End-to-end tests: the real daemon on a loopback port, driven over gRPC.

mod common;

use std::time::{Duration, Instant};

use common::{demo_plus, Daemon};
use microscoped::pb;
use pb::value::Kind;
use tonic::Code;

fn val(kind: Kind) -> Option<pb::Value> {
    Some(pb::Value { kind: Some(kind) })
}

fn set(device: &str, property: &str, kind: Kind) -> pb::SetPropertyRequest {
    pb::SetPropertyRequest {
        device: device.into(),
        property: property.into(),
        value: val(kind),
    }
}

fn dev(device: &str) -> pb::DeviceRef {
    pb::DeviceRef {
        device: device.into(),
    }
}

/// Asserts a call failed with `code` and a message containing every one of `parts`.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    parts: &[&str],
) {
    let status = r.expect_err("call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    for p in parts {
        assert!(
            status.message().contains(p),
            "{:?} lacks {p:?}",
            status.message()
        );
    }
}

async fn get(d: &mut Daemon, device: &str, property: &str) -> Kind {
    d.client
        .get_property(pb::GetPropertyRequest {
            device: device.into(),
            property: property.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .value
        .unwrap()
        .kind
        .unwrap()
}

#[tokio::test]
async fn instrument_devices_health_and_reflection() {
    let mut d = Daemon::demo().await;
    let inst = d
        .client
        .get_instrument(pb::GetInstrumentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inst.name, "demo");
    let names: Vec<_> = inst.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Camera",
            "XY",
            "Z",
            "Laser405",
            "Laser488",
            "Laser561",
            "FilterWheel",
            "Objective",
            "Shutter"
        ]
    );
    let list = d
        .client
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner();
    let xy = list.devices.iter().find(|x| x.name == "XY").unwrap();
    assert_eq!(xy.kind, pb::DeviceKind::XyStage as i32);
    assert_eq!(xy.health, pb::DeviceHealth::Ok as i32);
    assert_eq!(xy.driver, "sim.xy_stage");

    // The standard health service answers for the server as a whole and for our service.
    let mut health = tonic_health::pb::health_client::HealthClient::new(d.channel.clone());
    for service in ["", "microscoped.v1.Microscope"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    // Reflection lists the service, as grpcurl would ask.
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut refl = ServerReflectionClient::new(d.channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let services: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(
        services.contains(&"microscoped.v1.Microscope"),
        "{services:?}"
    );
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    d.shutdown().await.unwrap();
}

/// Tools that predate reflection v1 ask `grpc.reflection.v1alpha`: they list the services and
/// get the files that describe them, as v1 tools do.
#[tokio::test]
async fn reflection_answers_v1alpha_as_well() {
    use tonic_reflection::pb::v1alpha::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let d = Daemon::demo().await;
    let mut refl = ServerReflectionClient::new(d.channel.clone());
    let ask = |m| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "microscoped.v1.Acquisition".into(),
        )),
    ];
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let services: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "microscoped.v1.Microscope",
        "microscoped.v1.Acquisition",
        "microscoped.v1.Access",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&name), "{name} not in {services:?}");
    }
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = resp.message_response else {
        panic!("unexpected reflection answer {resp:?}");
    };
    let described = files.file_descriptor_proto.iter().any(|bytes| {
        <prost_types::FileDescriptorProto as prost::Message>::decode(bytes.as_slice())
            .unwrap()
            .service
            .iter()
            .any(|s| s.name() == "Acquisition")
    });
    assert!(described, "no file describes the Acquisition service");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn properties_get_set_and_bad_input() {
    let mut d = Daemon::demo().await;
    let props = d
        .client
        .list_properties(pb::ListPropertiesRequest {
            device: "Camera".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .properties;
    let exposure = props.iter().find(|p| p.name == "exposure_ms").unwrap();
    assert_eq!(exposure.unit, "ms");
    assert!(matches!(
        exposure.r#type,
        Some(pb::property_spec::Type::FloatType(_))
    ));

    let v = d
        .client
        .set_property(set("Camera", "exposure_ms", Kind::FloatValue(25.0)))
        .await
        .unwrap();
    assert_eq!(
        v.into_inner().value.unwrap().kind,
        Some(Kind::FloatValue(25.0))
    );
    assert_eq!(
        get(&mut d, "Camera", "exposure_ms").await,
        Kind::FloatValue(25.0)
    );
    // An integer where a float is expected is fine.
    d.client
        .set_property(set("Camera", "exposure_ms", Kind::IntValue(30)))
        .await
        .unwrap();
    assert_eq!(
        get(&mut d, "Camera", "exposure_ms").await,
        Kind::FloatValue(30.0)
    );

    // Each bad input gets its own status and a message that says what is allowed.
    expect_err(
        d.client
            .set_property(set("Camera", "exposure_ms", Kind::FloatValue(1e9)))
            .await,
        Code::InvalidArgument,
        &["exposure_ms", "0.01..=10000"],
    );
    expect_err(
        d.client
            .set_property(set(
                "Camera",
                "exposure_ms",
                Kind::StringValue("fast".into()),
            ))
            .await,
        Code::InvalidArgument,
        &["exposure_ms"],
    );
    expect_err(
        d.client
            .set_property(set(
                "Camera",
                "pattern",
                Kind::StringValue("stripes".into()),
            ))
            .await,
        Code::InvalidArgument,
        &["beads", "gradient", "noise"],
    );
    expect_err(
        d.client
            .set_property(set("Camera", "sensor_width", Kind::IntValue(100)))
            .await,
        Code::FailedPrecondition,
        &["read-only"],
    );
    expect_err(
        d.client
            .set_property(set("Nope", "x", Kind::IntValue(1)))
            .await,
        Code::NotFound,
        &["Nope", "Camera"],
    );
    expect_err(
        d.client
            .set_property(set("Camera", "gain", Kind::IntValue(1)))
            .await,
        Code::NotFound,
        &["gain", "exposure_ms"],
    );
    expect_err(
        d.client
            .get_property(pb::GetPropertyRequest {
                device: "Camera".into(),
                property: "gain".into(),
            })
            .await,
        Code::NotFound,
        &["gain"],
    );
    expect_err(
        d.client
            .set_property(pb::SetPropertyRequest {
                device: "Camera".into(),
                property: "exposure_ms".into(),
                value: None,
            })
            .await,
        Code::InvalidArgument,
        &["value is required"],
    );
    expect_err(
        d.client
            .list_properties(pb::ListPropertiesRequest {
                device: String::new(),
            })
            .await,
        Code::InvalidArgument,
        &["device name is required"],
    );
    // None of that changed the exposure.
    assert_eq!(
        get(&mut d, "Camera", "exposure_ms").await,
        Kind::FloatValue(30.0)
    );
}

#[tokio::test]
async fn set_properties_checks_all_before_applying_any() {
    let mut d = Daemon::demo().await;
    let ok = d
        .client
        .set_properties(pb::SetPropertiesRequest {
            settings: vec![
                set("Laser488", "power_setpoint_mw", Kind::FloatValue(20.0)),
                set("FilterWheel", "label", Kind::StringValue("GFP".into())),
                set("Camera", "binning", Kind::IntValue(2)),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.values.len(), 3);
    assert_eq!(
        ok.values[1].value.as_ref().unwrap().kind,
        Some(Kind::StringValue("GFP".into()))
    );

    let r = d
        .client
        .set_properties(pb::SetPropertiesRequest {
            settings: vec![
                set("Laser488", "power_setpoint_mw", Kind::FloatValue(30.0)),
                set("Camera", "binning", Kind::IntValue(99)),
            ],
        })
        .await;
    expect_err(
        r,
        Code::InvalidArgument,
        &["settings[1]", "binning", "nothing was applied"],
    );
    assert_eq!(
        get(&mut d, "Laser488", "power_setpoint_mw").await,
        Kind::FloatValue(20.0)
    );
    expect_err(
        d.client
            .set_properties(pb::SetPropertiesRequest { settings: vec![] })
            .await,
        Code::InvalidArgument,
        &["empty"],
    );
}

/// A batch of settings is bounded: one over the bound is refused naming the field and the
/// bound, and nothing is applied; one at the bound is applied.
#[tokio::test]
async fn set_properties_refuses_a_batch_over_its_bound() {
    let mut d = Daemon::demo().await;
    let max = microscoped::server::MAX_SETTINGS;
    let batch = |n: usize, mw: f64| pb::SetPropertiesRequest {
        settings: (0..n)
            .map(|_| set("Laser488", "power_setpoint_mw", Kind::FloatValue(mw)))
            .collect(),
    };
    let before = get(&mut d, "Laser488", "power_setpoint_mw").await;
    expect_err(
        d.client.set_properties(batch(max + 1, 30.0)).await,
        Code::InvalidArgument,
        &[
            &format!("settings: {} items", max + 1),
            &format!("at most {max}"),
            "nothing was applied",
        ],
    );
    assert_eq!(get(&mut d, "Laser488", "power_setpoint_mw").await, before);
    let ok = d.client.set_properties(batch(max, 25.0)).await.unwrap();
    assert_eq!(ok.into_inner().values.len(), max);
    assert_eq!(
        get(&mut d, "Laser488", "power_setpoint_mw").await,
        Kind::FloatValue(25.0)
    );
}

/// A request over the daemon's size limit, to any service, is INVALID_ARGUMENT naming its size
/// and the limit, which a client with tonic's default limits receives (not OUT_OF_RANGE from
/// gRPC's decoder, nor RESOURCE_EXHAUSTED); the daemon serves on.
#[tokio::test]
async fn a_request_over_the_size_limit_is_invalid_argument_naming_size_and_limit() {
    let mut d = Daemon::demo().await;
    let limit = microscoped::MAX_REQUEST_BYTES;
    let big = "x".repeat(limit);
    // Default limits throughout: plain clients on the daemon's channel.
    let mut m = pb::microscope_client::MicroscopeClient::new(d.channel.clone());
    let mut a = pb::access_client::AccessClient::new(d.channel.clone());
    let too_large = |s: tonic::Status| {
        assert_eq!(s.code(), Code::InvalidArgument, "{:.300}", s.message());
        let size: usize = s
            .message()
            .strip_prefix("the request is ")
            .and_then(|m| m.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no size in {:?}", s.message()));
        // The string and the few bytes of protobuf around it.
        assert!((limit + 1..limit + 32).contains(&size), "{size}");
        assert!(
            s.message().contains(&format!(
                "bytes; a request has at most {limit} bytes (4 MiB)"
            )),
            "{}",
            s.message()
        );
    };
    too_large(
        m.set_property(set("Camera", "pixel_type", Kind::StringValue(big.clone())))
            .await
            .unwrap_err(),
    );
    too_large(m.get_position(dev(&big)).await.unwrap_err());
    too_large(
        a.break_lease(pb::BreakLeaseRequest {
            reason: big.clone(),
        })
        .await
        .unwrap_err(),
    );
    // Just under the limit the request is read and answered on its merits.
    let under = "x".repeat(limit - 16);
    expect_err(
        m.get_position(dev(&under)).await,
        Code::NotFound,
        &["no device named", &format!("({} bytes)", under.len())],
    );
    // And the daemon serves on.
    get(&mut d, "Camera", "exposure_ms").await;
}

#[tokio::test]
async fn stages_move_wait_stop_home_and_refuse_bad_moves() {
    let mut d = Daemon::demo().await;
    let moving = d
        .client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![1000.0, -500.0],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        moving.busy,
        "a 1.1 mm move at 5 mm/s takes time: {moving:?}"
    );
    let waited = d
        .client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "XY".into(),
            timeout_ms: 10_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(waited.waited_ms > 0.0);
    let p = d.client.get_position(dev("XY")).await.unwrap().into_inner();
    assert_eq!(p.position_um, vec![1000.0, -500.0]);
    assert!(!p.busy);

    d.client
        .move_relative(pb::MoveRequest {
            device: "Z".into(),
            position_um: vec![-10.0],
        })
        .await
        .unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "Z".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap();
    let z = d.client.get_position(dev("Z")).await.unwrap().into_inner();
    assert!((z.position_um[0] - 90.0).abs() < 1e-6, "{z:?}");

    // Stop freezes a long move part way.
    d.client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![20000.0, -500.0],
        })
        .await
        .unwrap();
    // Stop once the stage is well under way, however long this machine took to get it there.
    let start = Instant::now();
    while d
        .client
        .get_position(dev("XY"))
        .await
        .unwrap()
        .into_inner()
        .position_um[0]
        <= 1000.0
    {
        assert!(start.elapsed() < Duration::from_secs(60), "XY never moved");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = d.client.stop(dev("XY")).await.unwrap().into_inner();
    assert!(!stopped.busy);
    let x = stopped.position_um[0];
    assert!(x > 1000.0 && x < 20000.0, "stopped at {x}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        d.client
            .get_position(dev("XY"))
            .await
            .unwrap()
            .into_inner()
            .position_um[0],
        x
    );

    // Out of travel: refused, and the stage does not move.
    expect_err(
        d.client
            .move_absolute(pb::MoveRequest {
                device: "XY".into(),
                position_um: vec![1e6, 0.0],
            })
            .await,
        Code::InvalidArgument,
        &["25000"],
    );
    expect_err(
        d.client
            .move_relative(pb::MoveRequest {
                device: "Z".into(),
                position_um: vec![500.0],
            })
            .await,
        Code::InvalidArgument,
        &["200"],
    );
    assert_eq!(
        d.client
            .get_position(dev("XY"))
            .await
            .unwrap()
            .into_inner()
            .position_um[0],
        x
    );
    assert!(
        (d.client
            .get_position(dev("Z"))
            .await
            .unwrap()
            .into_inner()
            .position_um[0]
            - 90.0)
            .abs()
            < 1e-6
    );

    // Malformed requests.
    expect_err(
        d.client
            .move_absolute(pb::MoveRequest {
                device: "XY".into(),
                position_um: vec![1.0],
            })
            .await,
        Code::InvalidArgument,
        &["takes 2 coordinate"],
    );
    expect_err(
        d.client
            .move_absolute(pb::MoveRequest {
                device: "Z".into(),
                position_um: vec![f64::NAN],
            })
            .await,
        Code::InvalidArgument,
        &["finite"],
    );
    expect_err(
        d.client
            .move_absolute(pb::MoveRequest {
                device: "Laser488".into(),
                position_um: vec![1.0],
            })
            .await,
        Code::InvalidArgument,
        &["laser", "not a stage"],
    );
    expect_err(
        d.client.get_position(dev("Ghost")).await,
        Code::NotFound,
        &["Ghost"],
    );
    expect_err(
        d.client
            .wait_for_idle(pb::WaitForIdleRequest {
                device: "Laser488".into(),
                timeout_ms: 0,
            })
            .await,
        Code::InvalidArgument,
        &["laser"],
    );

    // A wait shorter than the move times out with DEADLINE_EXCEEDED; the stage keeps going.
    d.client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![-20000.0, 0.0],
        })
        .await
        .unwrap();
    expect_err(
        d.client
            .wait_for_idle(pb::WaitForIdleRequest {
                device: "XY".into(),
                timeout_ms: 50,
            })
            .await,
        Code::DeadlineExceeded,
        &["still moving"],
    );
    d.client.stop(dev("XY")).await.unwrap();

    // Home goes back to the configured home position.
    d.client.home(dev("Z")).await.unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "Z".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap();
    let z = d.client.get_position(dev("Z")).await.unwrap().into_inner();
    assert!((z.position_um[0] - 100.0).abs() < 1e-6, "{z:?}");
}

#[tokio::test]
async fn lasers_state_devices_and_shutter() {
    let mut d = Daemon::demo().await;
    let on = d
        .client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser561".into(),
            enabled: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(on.enabled);
    assert_eq!(on.wavelength_nm, 561.0);
    let p = d
        .client
        .set_laser_power(pb::SetLaserPowerRequest {
            device: "Laser561".into(),
            power_mw: 42.0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.setpoint_mw, 42.0);
    assert!(p.power_mw > 0.0);
    expect_err(
        d.client
            .set_laser_power(pb::SetLaserPowerRequest {
                device: "Laser561".into(),
                power_mw: 150.0,
            })
            .await,
        Code::InvalidArgument,
        &["100"],
    );
    expect_err(
        d.client
            .set_laser_power(pb::SetLaserPowerRequest {
                device: "Laser561".into(),
                power_mw: -1.0,
            })
            .await,
        Code::InvalidArgument,
        &[">= 0"],
    );
    assert_eq!(
        d.client
            .get_laser_state(dev("Laser561"))
            .await
            .unwrap()
            .into_inner()
            .setpoint_mw,
        42.0
    );
    let off = d
        .client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser561".into(),
            enabled: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!off.enabled);
    assert_eq!(off.power_mw, 0.0);
    expect_err(
        d.client.get_laser_state(dev("XY")).await,
        Code::InvalidArgument,
        &["not a laser"],
    );

    use pb::set_state_request::Target;
    let s = d
        .client
        .set_state(pb::SetStateRequest {
            device: "FilterWheel".into(),
            target: Some(Target::Label("mCherry".into())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.index, s.label.as_str()), (2, "mCherry"));
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "FilterWheel".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap();
    let s = d
        .client
        .set_state(pb::SetStateRequest {
            device: "FilterWheel".into(),
            target: Some(Target::Index(1)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.label, "GFP");
    assert_eq!(s.labels, ["DAPI", "GFP", "mCherry", "Empty"]);
    expect_err(
        d.client
            .set_state(pb::SetStateRequest {
                device: "FilterWheel".into(),
                target: Some(Target::Label("YFP".into())),
            })
            .await,
        Code::NotFound,
        &["YFP", "DAPI, GFP"],
    );
    expect_err(
        d.client
            .set_state(pb::SetStateRequest {
                device: "FilterWheel".into(),
                target: Some(Target::Index(9)),
            })
            .await,
        Code::InvalidArgument,
        &["0..=3"],
    );
    expect_err(
        d.client
            .set_state(pb::SetStateRequest {
                device: "FilterWheel".into(),
                target: None,
            })
            .await,
        Code::InvalidArgument,
        &["index or a label"],
    );
    assert_eq!(
        d.client
            .get_state(dev("FilterWheel"))
            .await
            .unwrap()
            .into_inner()
            .index,
        1
    );

    let sh = d
        .client
        .set_shutter(pb::SetShutterRequest {
            device: "Shutter".into(),
            open: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!sh.open);
    assert!(
        !d.client
            .get_shutter(dev("Shutter"))
            .await
            .unwrap()
            .into_inner()
            .open
    );
}

fn pixels(img: &pb::Image) -> Vec<u16> {
    assert_eq!(img.pixel_type, pb::PixelType::U16 as i32);
    assert_eq!(img.data.len(), (img.width * img.height * 2) as usize);
    img.data
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn max_and_mean(px: &[u16]) -> (u16, f64) {
    let max = *px.iter().max().unwrap();
    let mean = px.iter().map(|&p| p as f64).sum::<f64>() / px.len() as f64;
    (max, mean)
}

#[tokio::test]
async fn snap_shape_exposure_metadata_and_content() {
    let mut d = Daemon::demo().await;
    let snap = |exposure_ms| pb::SnapRequest {
        camera: String::new(),
        exposure_ms,
    };
    let img = d.client.snap(snap(0.0)).await.unwrap().into_inner();
    assert_eq!((img.width, img.height, img.bit_depth), (512, 512, 12));
    assert_eq!(img.camera, "Camera");
    let meta = img.metadata.clone().unwrap();
    assert_eq!(meta.exposure_ms, 10.0);
    assert_eq!(meta.binning, 1);
    assert!(meta.stage_positions.contains_key("XY") && meta.stage_positions.contains_key("Z"));
    assert!(meta.host_time_unix_us > 0);
    let (dark_max, dark_mean) = max_and_mean(&pixels(&img));
    // Lasers are off: only the camera offset (100) and read noise.
    assert!((95.0..105.0).contains(&dark_mean), "dark mean {dark_mean}");
    assert!(dark_max < 200, "dark max {dark_max}");

    // Green beads need the 488 laser and the GFP emission filter.
    d.client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser488".into(),
            enabled: true,
        })
        .await
        .unwrap();
    d.client
        .set_property(set("FilterWheel", "label", Kind::StringValue("GFP".into())))
        .await
        .unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "FilterWheel".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap();
    let lit = pixels(&d.client.snap(snap(0.0)).await.unwrap().into_inner());
    let (lit_max, _) = max_and_mean(&lit);
    assert!(lit_max > 1000, "beads should shine: max {lit_max}");

    // Out of focus, the same beads spread out and the peak drops.
    d.client
        .move_absolute(pb::MoveRequest {
            device: "Z".into(),
            position_um: vec![130.0],
        })
        .await
        .unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "Z".into(),
            timeout_ms: 0,
        })
        .await
        .unwrap();
    let blurred = pixels(&d.client.snap(snap(0.0)).await.unwrap().into_inner());
    let (blur_max, _) = max_and_mean(&blurred);
    assert!(
        blur_max < lit_max / 2,
        "defocus should lower the peak: {blur_max} vs {lit_max}"
    );

    // Exposure for one image only; the camera keeps its own afterwards.
    let img = d.client.snap(snap(40.0)).await.unwrap().into_inner();
    assert_eq!(img.metadata.unwrap().exposure_ms, 40.0);
    assert_eq!(
        get(&mut d, "Camera", "exposure_ms").await,
        Kind::FloatValue(10.0)
    );

    // Binning shrinks the frame.
    d.client
        .set_property(set("Camera", "binning", Kind::IntValue(2)))
        .await
        .unwrap();
    let img = d.client.snap(snap(0.0)).await.unwrap().into_inner();
    assert_eq!((img.width, img.height), (256, 256));
    assert_eq!(img.metadata.unwrap().binning, 2);

    expect_err(
        d.client.snap(snap(-5.0)).await,
        Code::InvalidArgument,
        &["exposure_ms"],
    );
    expect_err(
        d.client.snap(snap(1e9)).await,
        Code::InvalidArgument,
        &["10000"],
    );
    expect_err(
        d.client
            .snap(pb::SnapRequest {
                camera: "XY".into(),
                exposure_ms: 0.0,
            })
            .await,
        Code::InvalidArgument,
        &["not a camera"],
    );
    expect_err(
        d.client
            .snap(pb::SnapRequest {
                camera: "Cam9".into(),
                exposure_ms: 0.0,
            })
            .await,
        Code::NotFound,
        &["Cam9"],
    );
}

/// A filter wheel with a short command timeout that can be told to hang for longer.
const HANGING: &str = r#"
[devices.SlowWheel]
driver = "sim.state"
timeout_ms = 300
hang_ms = 1500
labels = ["A", "B"]
"#;

#[tokio::test]
async fn a_hung_device_is_faulted_and_the_rest_keep_working() {
    let mut d = Daemon::with_config(&demo_plus(HANGING)).await;
    d.client
        .set_property(set(
            "SlowWheel",
            "sim_fault",
            Kind::StringValue("hang".into()),
        ))
        .await
        .unwrap();
    expect_err(
        d.client.get_state(dev("SlowWheel")).await,
        Code::DeadlineExceeded,
        &["SlowWheel", "300 ms"],
    );
    // From now on it is refused at once, with a hint what to do.
    expect_err(
        d.client.get_state(dev("SlowWheel")).await,
        Code::Unavailable,
        &["faulted", "reset"],
    );
    let list = d
        .client
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner();
    let wheel = list.devices.iter().find(|x| x.name == "SlowWheel").unwrap();
    assert_eq!(wheel.health, pb::DeviceHealth::Faulted as i32);
    assert!(wheel.fault.contains("300 ms"), "{}", wheel.fault);

    // The other devices keep working.
    d.client
        .move_relative(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![5.0, 5.0],
        })
        .await
        .unwrap();
    d.client
        .snap(pb::SnapRequest {
            camera: String::new(),
            exposure_ms: 1.0,
        })
        .await
        .unwrap();
    assert!(list
        .devices
        .iter()
        .filter(|x| x.name != "SlowWheel")
        .all(|x| x.health == pb::DeviceHealth::Ok as i32));

    // Once the hang is over, a reset brings it back.
    let start = Instant::now();
    loop {
        match d
            .client
            .reset_device(pb::ResetDeviceRequest {
                device: "SlowWheel".into(),
            })
            .await
        {
            Ok(r) => {
                assert_eq!(r.into_inner().health, pb::DeviceHealth::Ok as i32);
                break;
            }
            Err(s) => {
                assert!(
                    matches!(s.code(), Code::DeadlineExceeded | Code::Unavailable),
                    "{s:?}"
                );
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "device never came back"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let s = d
        .client
        .get_state(dev("SlowWheel"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.labels, ["A", "B"]);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_device_error_faults_it_until_reset() {
    let mut d = Daemon::demo().await;
    d.client
        .set_property(set(
            "Laser405",
            "sim_fault",
            Kind::StringValue("error".into()),
        ))
        .await
        .unwrap();
    expect_err(
        d.client.get_laser_state(dev("Laser405")).await,
        Code::Unavailable,
        &["simulated hardware fault"],
    );
    expect_err(
        d.client
            .set_laser_enabled(pb::SetLaserEnabledRequest {
                device: "Laser405".into(),
                enabled: true,
            })
            .await,
        Code::Unavailable,
        &["faulted"],
    );
    d.client.get_laser_state(dev("Laser488")).await.unwrap();
    let r = d
        .client
        .reset_device(pb::ResetDeviceRequest {
            device: "Laser405".into(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().health, pb::DeviceHealth::Ok as i32);
    assert!(
        !d.client
            .get_laser_state(dev("Laser405"))
            .await
            .unwrap()
            .into_inner()
            .enabled
    );
}

#[tokio::test]
async fn shutdown_is_orderly_and_later_calls_fail_cleanly() {
    let mut d = Daemon::demo().await;
    d.client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser488".into(),
            enabled: true,
        })
        .await
        .unwrap();
    let mut client = d.client.clone();
    d.shutdown().await.unwrap();
    let err = client
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test]
async fn a_call_queued_behind_a_long_snap_does_not_fault_the_camera() {
    let d = Daemon::demo().await;
    // The snap takes 3 s, longer than the camera's 2 s command timeout; the call queued
    // behind it waits its turn and the camera stays healthy.
    let mut snapper = d.client.clone();
    let snap = tokio::spawn(async move {
        snapper
            .snap(pb::SnapRequest {
                camera: String::new(),
                exposure_ms: 3000.0,
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = d.client.clone();
    let v = c
        .get_property(pb::GetPropertyRequest {
            device: "Camera".into(),
            property: "exposure_ms".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        v.into_inner().value.unwrap().kind,
        Some(Kind::FloatValue(10.0))
    );
    snap.await.unwrap().unwrap();
    let list = c
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner();
    let cam = list.devices.iter().find(|x| x.name == "Camera").unwrap();
    assert_eq!(cam.health, pb::DeviceHealth::Ok as i32, "{}", cam.fault);
}

#[tokio::test]
async fn absurd_numbers_are_refused_not_panicked_on() {
    let mut d = Daemon::demo().await;
    expect_err(
        d.client
            .snap(pb::SnapRequest {
                camera: String::new(),
                exposure_ms: 1e30,
            })
            .await,
        Code::InvalidArgument,
        &["exposure"],
    );
    expect_err(
        d.client
            .wait_for_idle(pb::WaitForIdleRequest {
                device: "XY".into(),
                timeout_ms: u32::MAX,
            })
            .await,
        Code::InvalidArgument,
        &["600000"],
    );
    let mut acq = pb::acquisition_client::AcquisitionClient::new(d.channel.clone());
    for fps in [1e-20, -1.0, f64::NAN, 1e9] {
        let e = acq
            .live_view(pb::LiveViewRequest {
                camera: String::new(),
                max_fps: fps,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{fps}: {e:?}");
    }
    // The daemon is still there.
    d.client
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap();
}

#[tokio::test]
async fn the_demo_objective_changes_what_the_camera_sees() {
    let mut d = Daemon::demo().await;
    assert_eq!(
        get(&mut d, "Camera", "pixel_size_um").await,
        Kind::FloatValue(0.65)
    );
    d.client
        .set_property(set(
            "Objective",
            "label",
            Kind::StringValue("60x/1.4 oil".into()),
        ))
        .await
        .unwrap();
    // The simulated camera's pixels now cover a sixth of the sample they did, as the config's
    // pixel size for that objective says.
    let Kind::FloatValue(um) = get(&mut d, "Camera", "pixel_size_um").await else {
        panic!("pixel_size_um is a float");
    };
    assert!((um - 0.65 / 6.0).abs() < 1e-9, "{um}");
}

/// A NaN or an infinity is a value protobuf carries: every float of a request refuses it by
/// the field's name, and nothing changes on the instrument.
#[tokio::test]
async fn non_finite_floats_are_refused_naming_the_field() {
    let mut d = Daemon::demo().await;
    let before = |d: &Daemon| {
        let mut c = d.client.clone();
        async move {
            let xy = c.get_position(dev("XY")).await.unwrap().into_inner();
            let z = c.get_position(dev("Z")).await.unwrap().into_inner();
            let laser = c
                .get_laser_state(dev("Laser488"))
                .await
                .unwrap()
                .into_inner();
            (xy.position_um, z.position_um, laser.setpoint_mw)
        }
    };
    let was = before(&d).await;
    expect_err(
        d.client
            .move_absolute(pb::MoveRequest {
                device: "XY".into(),
                position_um: vec![10.0, f64::INFINITY],
            })
            .await,
        Code::InvalidArgument,
        &["position_um[1]: inf is not finite; give a finite value"],
    );
    expect_err(
        d.client
            .move_relative(pb::MoveRequest {
                device: "Z".into(),
                position_um: vec![f64::NEG_INFINITY],
            })
            .await,
        Code::InvalidArgument,
        &["position_um[0]: -inf is not finite"],
    );
    expect_err(
        d.client
            .set_laser_power(pb::SetLaserPowerRequest {
                device: "Laser488".into(),
                power_mw: f64::NAN,
            })
            .await,
        Code::InvalidArgument,
        &["power_mw: NaN is not a number; give a finite value"],
    );
    expect_err(
        d.client
            .set_property(set(
                "Laser488",
                "power_setpoint_mw",
                Kind::FloatValue(f64::NAN),
            ))
            .await,
        Code::InvalidArgument,
        &["Laser488.power_setpoint_mw: NaN is not a number"],
    );
    expect_err(
        d.client
            .set_properties(pb::SetPropertiesRequest {
                settings: vec![set(
                    "Camera",
                    "exposure_ms",
                    Kind::FloatValue(f64::INFINITY),
                )],
            })
            .await,
        Code::InvalidArgument,
        &["Camera.exposure_ms: inf is not finite"],
    );
    expect_err(
        d.client
            .snap(pb::SnapRequest {
                camera: String::new(),
                exposure_ms: f64::NAN,
            })
            .await,
        Code::InvalidArgument,
        &["exposure_ms: NaN is not a number"],
    );
    let mut acq = pb::acquisition_client::AcquisitionClient::new(d.channel.clone());
    expect_err(
        acq.live_view(pb::LiveViewRequest {
            camera: String::new(),
            max_fps: f64::INFINITY,
        })
        .await,
        Code::InvalidArgument,
        &["max_fps: inf is not finite"],
    );
    assert_eq!(
        before(&d).await,
        was,
        "a refused request changed the instrument"
    );
    d.shutdown().await.unwrap();
}
