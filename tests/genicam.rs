//! The daemon on real drivers and no hardware: an emulated ASI stage, an emulated OBIS laser and
//! aravis's fake GigE Vision camera (real GVCP/GVSP over loopback) take a burst into OME-TIFF.
#![cfg(feature = "genicam")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;
use microscoped::pb;
use pb::acquisition_client::AcquisitionClient;

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_from_a_gige_camera_with_serial_stage_and_laser() {
    // It holds the fake camera's lock for the test's whole life, so it stays on this thread.
    let fake = microscoped_genicam::testing::start_fake_gige("MSDE2E")
        .expect("the fake GigE camera starts");
    let root = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[instrument]
name = "gige-e2e"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{root}"
ring_mb = 64

[ports.ASI]
emulate = "asi"
baud = 115200

[ports.OBIS]
emulate = "obis"
baud = 115200

[devices.XY]
driver = "asi.xy_stage"
port = "ASI"

[devices.Z]
driver = "asi.stage"
port = "ASI"

[devices.Laser488]
driver = "obis.laser"
port = "OBIS"
max_power_mw = 40.0

[devices.Camera]
driver = "genicam.camera"
timeout_ms = 10000
device_id = "{id}"
pixel_format = "Mono16"
exposure_ms = 10.0
"#,
        root = root.path().display(),
        id = fake.device_id()
    );
    let mut d = Daemon::with_config(&text).await;
    d.client
        .move_absolute(pb::MoveRequest {
            device: "XY".into(),
            position_um: vec![1200.0, -800.0],
        })
        .await
        .unwrap();
    d.client
        .wait_for_idle(pb::WaitForIdleRequest {
            device: "XY".into(),
            timeout_ms: 30_000,
        })
        .await
        .unwrap();
    d.client
        .set_laser_power(pb::SetLaserPowerRequest {
            device: "Laser488".into(),
            power_mw: 25.0,
        })
        .await
        .unwrap();
    d.client
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser488".into(),
            enabled: true,
        })
        .await
        .unwrap();
    // A small ROI keeps the burst quick over loopback.
    for (p, v) in [("binning", 4i64)] {
        d.client
            .set_property(pb::SetPropertyRequest {
                device: "Camera".into(),
                property: p.into(),
                value: Some(pb::Value {
                    kind: Some(pb::value::Kind::IntValue(v)),
                }),
            })
            .await
            .unwrap();
    }

    let mut acq = AcquisitionClient::new(d.channel.clone());
    let s = acq
        .start_sequence(pb::StartSequenceRequest {
            camera: String::new(),
            frames: 10,
            until_stopped: false,
            name: "gige".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let start = Instant::now();
    let done = loop {
        let st = acq
            .get_acquisition(pb::AcquisitionRef { id: s.id })
            .await
            .unwrap()
            .into_inner();
        if st.state != pb::AcquisitionState::Running as i32 {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "burst never ended: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        done.state,
        pb::AcquisitionState::Finished as i32,
        "{done:?}"
    );
    assert_eq!(done.received, done.written + done.dropped, "{done:?}");
    assert!(done.written >= 1, "{done:?}");

    let path = Path::new(&done.path);
    let mut dec = tiff::decoder::Decoder::new(std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(dec.dimensions().unwrap(), (done.width, done.height));
    assert!(
        done.width > 0 && done.pixel_type == pb::PixelType::U16 as i32,
        "{done:?}"
    );
    let xml = dec
        .get_tag_ascii_string(tiff::tags::Tag::ImageDescription)
        .unwrap();
    let mut planes = 1;
    while dec.more_images() {
        dec.next_image().unwrap();
        planes += 1;
    }
    assert_eq!(planes as u64, done.written);
    // Positions read back from the ASI controller in every plane; the laser in the instrument.
    assert_eq!(
        xml.matches(r#"PositionX="1200""#).count() as u64,
        done.written,
        "{xml}"
    );
    assert_eq!(
        xml.matches(r#"PositionY="-800""#).count() as u64,
        done.written,
        "{xml}"
    );
    assert!(
        xml.contains(r#"Wavelength="488""#) && xml.contains(r#"Power="25""#),
        "{xml}"
    );
    d.shutdown().await.unwrap();
    drop(fake);
}
