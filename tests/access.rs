//! A shared instrument end to end: roles against every RPC, tokens, the control lease and its
//! expiry, safety limits, per-user datasets and hostile names, the audit log.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{shared_demo, Daemon, Team};
use microscoped::pb;
use tonic::Code;

/// The demo instrument with facility limits on a laser, the stages and the camera.
fn limited(team: &Team, root: &Path) -> String {
    let text = shared_demo(team, root, "")
        .replacen(
            "wavelength_nm = 488.0\n",
            "wavelength_nm = 488.0\nlimit_power_mw = 50.0\n",
            1,
        )
        .replacen(
            "focus_z_um = 100.0\n",
            "focus_z_um = 100.0\nsoft_limits_um = [50.0, 150.0]\n",
            1,
        )
        .replacen(
            "description = \"Motorised XY stage\"\n",
            "description = \"Motorised XY stage\"\nsoft_limits_x_um = [-1000.0, 1000.0]\nsoft_limits_y_um = [-500.0, 500.0]\n",
            1,
        )
        .replacen(
            "pattern = \"beads\"\n",
            "pattern = \"beads\"\nlimit_exposure_ms = 1000.0\n",
            1,
        );
    for key in [
        "limit_power_mw",
        "soft_limits_um",
        "soft_limits_x_um",
        "limit_exposure_ms",
    ] {
        assert!(
            text.contains(key),
            "the demo config changed: {key} not inserted"
        );
    }
    text
}

#[track_caller]
fn refused<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    parts: &[&str],
) {
    let s = r.expect_err("should be refused");
    assert_eq!(s.code(), code, "{s:?}");
    for p in parts {
        assert!(s.message().contains(p), "{:?} lacks {p:?}", s.message());
    }
}

fn mv(device: &str, p: &[f64]) -> pb::MoveRequest {
    pb::MoveRequest {
        device: device.into(),
        position_um: p.to_vec(),
    }
}

fn dev(device: &str) -> pb::DeviceRef {
    pb::DeviceRef {
        device: device.into(),
    }
}

fn seq(name: &str, frames: u64) -> pb::StartSequenceRequest {
    pb::StartSequenceRequest {
        name: name.into(),
        frames,
        until_stopped: frames == 0,
        ..Default::default()
    }
}

async fn position(c: &mut common::As, device: &str) -> Vec<f64> {
    c.scope
        .get_position(dev(device))
        .await
        .unwrap()
        .into_inner()
        .position_um
}

async fn take(c: &mut common::As, ttl_s: u32) -> pb::Lease {
    c.access
        .acquire_lease(pb::AcquireLeaseRequest { ttl_s })
        .await
        .unwrap()
        .into_inner()
}

/// Every audit entry, through the admin RPC.
async fn audit(admin: &mut common::As) -> Vec<pb::AuditEntry> {
    admin
        .access
        .read_audit_log(pb::ReadAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries
}

#[track_caller]
fn audited<'a>(
    log: &'a [pb::AuditEntry],
    user: &str,
    action: &str,
    outcome: &str,
) -> &'a pb::AuditEntry {
    log.iter()
        .find(|e| e.user == user && e.action == action && e.outcome == outcome)
        .unwrap_or_else(|| {
            let have: Vec<_> = log
                .iter()
                .map(|e| format!("{} {} {}", e.user, e.action, e.outcome))
                .collect();
            panic!("no audit entry {user} {action} {outcome}; have {have:#?}")
        })
}

/// Waits (bounded) until the acquisition has ended.
async fn wait_done(c: &mut common::As, id: u64) -> pb::AcquisitionStatus {
    for _ in 0..600 {
        let s = c
            .acq
            .get_acquisition(pb::AcquisitionRef { id })
            .await
            .unwrap()
            .into_inner();
        if s.state != pb::AcquisitionState::Running as i32 {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("acquisition {id} did not end within 30 s");
}

/// The methods an observer may call: reads, watching, the lease's state, who they are.
/// Every other method of every microscoped service must refuse an observer, so a new
/// mutating RPC without its `require` fails this test.
const OBSERVER_MAY: &[&str] = &[
    "GetInstrument",
    "ListDevices",
    "ListProperties",
    "GetProperty",
    "GetPosition",
    "WaitForIdle",
    "GetLaserState",
    "GetState",
    "GetShutter",
    "GetAcquisition",
    "ListAcquisitions",
    "LiveView",
    "GetLiveStatus",
    "WatchEvents",
    "ReadPlane",
    "WhoAmI",
    "GetLease",
    "ListPresets",
    "ValidatePlan",
    "WatchAcquisition",
];

/// Calls `/package.Service/Method` with an empty request (any proto3 message's defaults) and
/// returns the status code (`Ok` when it answered).
async fn call_raw(ch: microscoped::client::AuthChannel, path: &str, streaming: bool) -> Code {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready().await.unwrap();
    let path = path.parse().unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let req = tonic::Request::new(());
    let r = if streaming {
        grpc.server_streaming(req, path, codec).await.map(|_| ())
    } else {
        grpc.unary(req, path, codec).await.map(|_| ())
    };
    r.err().map_or(Code::Ok, |s| s.code())
}

#[tokio::test]
async fn every_method_of_every_service_refuses_observers_unless_it_only_reads() {
    use prost::Message;
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let fds = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let observer = tonic::service::interceptor::InterceptedService::new(
        d.channel.clone(),
        microscoped::client::Bearer::new(Some(&team.carol)).unwrap(),
    );
    let anonymous = tonic::service::interceptor::InterceptedService::new(
        d.channel.clone(),
        microscoped::client::Bearer::new(None).unwrap(),
    );
    let mut seen = 0;
    let mut services = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == "microscoped.v1") {
        for service in &file.service {
            services.push(service.name().to_owned());
            for m in &service.method {
                seen += 1;
                let path = format!("/microscoped.v1.{}/{}", service.name(), m.name());
                let streaming = m.server_streaming();
                let code = call_raw(observer.clone(), &path, streaming).await;
                if OBSERVER_MAY.contains(&m.name()) {
                    assert!(
                        !matches!(code, Code::PermissionDenied | Code::Unauthenticated),
                        "{path}: an observer may call it, got {code:?}"
                    );
                } else {
                    assert_eq!(
                        code,
                        Code::PermissionDenied,
                        "{path}: an observer must be refused"
                    );
                }
                // And nobody without a token gets anywhere.
                let code = call_raw(anonymous.clone(), &path, streaming).await;
                assert_eq!(code, Code::Unauthenticated, "{path} without a token");
            }
        }
    }
    for s in ["Access", "Acquisition", "Microscope"] {
        assert!(services.iter().any(|n| n == s), "{s} not in {services:?}");
    }
    assert!(seen >= 35, "only {seen} methods found in the descriptor");
}

#[tokio::test]
async fn roles_and_the_lease_decide_who_may_do_what() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let (mut tech, mut alice, mut bob, mut carol) = (
        d.as_user(Some(&team.tech)),
        d.as_user(Some(&team.alice)),
        d.as_user(Some(&team.bob)),
        d.as_user(Some(&team.carol)),
    );
    let me = carol
        .access
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.user.as_str(), me.role),
        ("carol", pb::Role::Observer as i32)
    );
    let mut events = carol
        .acq
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    // The observer watches but does not move.
    let before = position(&mut carol, "XY").await;
    carol
        .scope
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap();
    carol
        .access
        .get_lease(pb::GetLeaseRequest {})
        .await
        .unwrap();
    refused(
        carol.scope.move_absolute(mv("XY", &[100.0, 0.0])).await,
        Code::PermissionDenied,
        &["carol", "observer"],
    );
    refused(
        carol
            .access
            .acquire_lease(pb::AcquireLeaseRequest::default())
            .await,
        Code::PermissionDenied,
        &["observer"],
    );
    refused(
        carol.acq.start_sequence(seq("c1", 2)).await,
        Code::PermissionDenied,
        &[],
    );
    assert_eq!(position(&mut carol, "XY").await, before);

    // An operator without the lease is refused and told how to get it.
    refused(
        alice.scope.move_absolute(mv("XY", &[100.0, 0.0])).await,
        Code::FailedPrecondition,
        &["alice", "lease", "take"],
    );
    refused(
        alice
            .access
            .read_audit_log(pb::ReadAuditLogRequest::default())
            .await,
        Code::PermissionDenied,
        &["admin"],
    );
    refused(
        alice
            .access
            .break_lease(pb::BreakLeaseRequest::default())
            .await,
        Code::PermissionDenied,
        &[],
    );

    // With the lease it works; others, the admin included, are refused naming the holder.
    let l = take(&mut alice, 60).await;
    assert!(l.held && l.holder == "alice" && l.ttl_s == 60, "{l:?}");
    alice
        .scope
        .move_absolute(mv("XY", &[100.0, 0.0]))
        .await
        .unwrap();
    for other in [&mut bob, &mut tech] {
        refused(
            other.scope.move_absolute(mv("XY", &[0.0, 0.0])).await,
            Code::FailedPrecondition,
            &["leased to alice until", "UTC", "s left", "break"],
        );
        refused(
            other
                .access
                .acquire_lease(pb::AcquireLeaseRequest::default())
                .await,
            Code::FailedPrecondition,
            &["alice"],
        );
    }
    let shown = bob
        .access
        .get_lease(pb::GetLeaseRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.holder, "alice");
    assert!(shown.remaining_s > 0.0 && shown.expires_unix_us > shown.taken_unix_us);

    // The admin breaks it deliberately; the holder is told why on the event stream.
    let broken = tech
        .access
        .break_lease(pb::BreakLeaseRequest {
            reason: "sample change".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(broken.holder, "alice");
    let mut kinds = Vec::new();
    let broke = loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("lease events arrive")
            .unwrap()
            .unwrap();
        kinds.push(e.kind);
        if e.kind == pb::EventKind::LeaseBroken as i32 {
            break e.lease.unwrap();
        }
        assert!(kinds.len() < 20, "{kinds:?}");
    };
    assert!(
        kinds.contains(&(pb::EventKind::LeaseTaken as i32)),
        "{kinds:?}"
    );
    assert_eq!(
        (
            broke.holder.as_str(),
            broke.by.as_str(),
            broke.reason.as_str()
        ),
        ("alice", "tech", "sample change")
    );
    refused(
        alice.scope.move_absolute(mv("XY", &[0.0, 0.0])).await,
        Code::FailedPrecondition,
        &["does not hold"],
    );
    refused(
        alice
            .access
            .renew_lease(pb::RenewLeaseRequest::default())
            .await,
        Code::FailedPrecondition,
        &["does not hold"],
    );
    // Nobody holds it now: the admin may act without taking it.
    tech.scope
        .move_absolute(mv("XY", &[0.0, 0.0]))
        .await
        .unwrap();
    // Taking it, releasing it.
    take(&mut bob, 30).await;
    bob.access
        .release_lease(pb::ReleaseLeaseRequest {})
        .await
        .unwrap();
    assert!(
        !bob.access
            .get_lease(pb::GetLeaseRequest {})
            .await
            .unwrap()
            .into_inner()
            .held
    );

    let log = audit(&mut tech).await;
    audited(&log, "carol", "MoveAbsolute", "denied");
    audited(&log, "alice", "MoveAbsolute", "denied");
    audited(&log, "alice", "AcquireLease", "ok");
    let moved = audited(&log, "alice", "MoveAbsolute", "ok");
    assert_eq!(moved.target, "XY");
    assert!(moved.detail_json.contains("100"), "{}", moved.detail_json);
    audited(&log, "bob", "MoveAbsolute", "denied");
    audited(&log, "tech", "MoveAbsolute", "denied");
    let b = audited(&log, "tech", "BreakLease", "ok");
    assert!(b.detail_json.contains("sample change"), "{b:?}");
    audited(&log, "bob", "ReleaseLease", "ok");
    audited(&log, "alice", "ReadAuditLog", "denied");
}

#[tokio::test]
async fn wrong_and_missing_tokens_are_unauthenticated() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let wrong = format!("{}x", team.alice);
    for token in [None, Some(wrong.as_str()), Some("")] {
        let mut c = d.as_user(token);
        let e = c
            .scope
            .list_devices(pb::ListDevicesRequest {})
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
        assert!(
            e.message().contains("Bearer") && e.message().contains("token"),
            "{e:?}"
        );
        assert!(!e.message().contains(&wrong), "the token is echoed: {e:?}");
    }
    // Health checks stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(d.channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    let mut tech = d.as_user(Some(&team.tech));
    let log = audit(&mut tech).await;
    let e = audited(&log, "", "ListDevices", "denied");
    assert!(e.peer.starts_with("127.0.0.1:"), "{e:?}");
    assert!(
        !log.iter().any(|e| e.reason.contains(&wrong)),
        "a token reached the audit log"
    );

    // With anonymous loopback access, no token is the admin "local"; a wrong one still fails.
    let bench = Daemon::with_config(&shared_demo(&team, root.path(), "").replace(
        "anonymous_loopback_admin = false",
        "anonymous_loopback_admin = true",
    ))
    .await;
    let me = bench
        .as_user(None)
        .access
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (me.user.as_str(), me.role),
        ("local", pb::Role::Admin as i32)
    );
    let e = bench
        .as_user(Some(&wrong))
        .scope
        .list_devices(pb::ListDevicesRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn an_expired_lease_leaves_its_acquisition_running() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let (mut tech, mut alice) = (d.as_user(Some(&team.tech)), d.as_user(Some(&team.alice)));
    let mut events = tech
        .acq
        .watch_events(pb::WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    take(&mut alice, 1).await;
    let run = alice
        .acq
        .start_sequence(seq("overnight", 0))
        .await
        .unwrap()
        .into_inner();
    // Alice's script vanishes: nobody renews. The lease ends on its own, announced.
    let mut expired = false;
    for _ in 0..200 {
        let e = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("events keep coming while the acquisition runs")
            .unwrap()
            .unwrap();
        if e.kind == pb::EventKind::LeaseExpired as i32 {
            assert_eq!(e.lease.unwrap().holder, "alice");
            expired = true;
            break;
        }
    }
    assert!(expired, "no expiry event");
    assert!(
        !tech
            .access
            .get_lease(pb::GetLeaseRequest {})
            .await
            .unwrap()
            .into_inner()
            .held
    );
    // The acquisition belongs to the daemon: still running, still counting.
    let first = tech
        .acq
        .get_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.state, pb::AcquisitionState::Running as i32);
    let mut rising = false;
    for _ in 0..1200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = tech
            .acq
            .get_acquisition(pb::AcquisitionRef { id: run.id })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.state, pb::AcquisitionState::Running as i32);
        if now.received > first.received {
            rising = true;
            break;
        }
    }
    assert!(rising, "the acquisition stopped counting frames");
    // Bob cannot stop alice's run; the admin can.
    let mut bob = d.as_user(Some(&team.bob));
    refused(
        bob.acq
            .stop_acquisition(pb::AcquisitionRef { id: run.id })
            .await,
        Code::PermissionDenied,
        &["alice"],
    );
    let stopped = tech
        .acq
        .stop_acquisition(pb::AcquisitionRef { id: run.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.state, pb::AcquisitionState::Stopped as i32);
    assert_eq!(stopped.owner, "alice");
    assert!(stopped.written > 0);

    let log = audit(&mut tech).await;
    let start = audited(&log, "alice", "StartSequence", "ok");
    assert_eq!(start.target, "overnight");
    audited(&log, "alice", "LeaseExpired", "ok");
    audited(&log, "bob", "StopAcquisition", "denied");
    audited(&log, "tech", "StopAcquisition", "ok");
}

#[tokio::test]
async fn safety_limits_refuse_and_the_hardware_does_not_move() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&limited(&team, root.path())).await;
    let mut alice = d.as_user(Some(&team.alice));
    take(&mut alice, 60).await;
    let laser = |p: f64| pb::SetLaserPowerRequest {
        device: "Laser488".into(),
        power_mw: p,
    };
    let setpoint = alice
        .scope
        .get_laser_state(dev("Laser488"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        setpoint.max_power_mw, 50.0,
        "the cap is the maximum clients see"
    );
    refused(
        alice.scope.set_laser_power(laser(80.0)).await,
        Code::InvalidArgument,
        &["limit_power_mw", "test.toml:", "50"],
    );
    let prop = |device: &str, property: &str, v: f64| pb::SetPropertyRequest {
        device: device.into(),
        property: property.into(),
        value: Some(pb::Value {
            kind: Some(pb::value::Kind::FloatValue(v)),
        }),
    };
    refused(
        alice
            .scope
            .set_property(prop("Laser488", "power_setpoint_mw", 80.0))
            .await,
        Code::InvalidArgument,
        &["limit_power_mw"],
    );
    let after = alice
        .scope
        .get_laser_state(dev("Laser488"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.setpoint_mw, setpoint.setpoint_mw);
    alice.scope.set_laser_power(laser(40.0)).await.unwrap();

    let (z0, xy0) = (
        position(&mut alice, "Z").await,
        position(&mut alice, "XY").await,
    );
    refused(
        alice.scope.move_absolute(mv("Z", &[190.0])).await,
        Code::InvalidArgument,
        &["soft_limits_um", "[50, 150]"],
    );
    refused(
        alice.scope.move_relative(mv("Z", &[-60.0])).await,
        Code::InvalidArgument,
        &["soft_limits_um"],
    );
    refused(
        alice.scope.move_absolute(mv("XY", &[2000.0, 0.0])).await,
        Code::InvalidArgument,
        &["soft_limits_x_um"],
    );
    refused(
        alice.scope.move_relative(mv("XY", &[0.0, 600.0])).await,
        Code::InvalidArgument,
        &["soft_limits_y_um"],
    );
    assert_eq!(position(&mut alice, "Z").await, z0);
    assert_eq!(position(&mut alice, "XY").await, xy0);
    let busy = alice
        .scope
        .get_position(dev("XY"))
        .await
        .unwrap()
        .into_inner()
        .busy;
    assert!(!busy, "nothing was sent to the stage");

    refused(
        alice
            .scope
            .snap(pb::SnapRequest {
                camera: String::new(),
                exposure_ms: 5000.0,
            })
            .await,
        Code::InvalidArgument,
        &["limit_exposure_ms"],
    );
    refused(
        alice
            .scope
            .set_property(prop("Camera", "exposure_ms", 5000.0))
            .await,
        Code::InvalidArgument,
        &["limit_exposure_ms"],
    );
    let specs = alice
        .scope
        .list_properties(pb::ListPropertiesRequest {
            device: "Camera".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .properties;
    let exposure = specs.iter().find(|s| s.name == "exposure_ms").unwrap();
    let Some(pb::property_spec::Type::FloatType(t)) = &exposure.r#type else {
        panic!("{exposure:?}")
    };
    assert_eq!(t.max, 1000.0, "the spec shows the facility limit");
    // Inside the limits everything works.
    alice.scope.move_absolute(mv("Z", &[120.0])).await.unwrap();
    alice
        .scope
        .move_relative(mv("XY", &[10.0, -10.0]))
        .await
        .unwrap();

    let mut tech = d.as_user(Some(&team.tech));
    let log = audit(&mut tech).await;
    let e = audited(&log, "alice", "SetLaserPower", "denied");
    assert!(e.reason.contains("limit_power_mw"), "{e:?}");
    assert!(e.detail_json.contains("80"), "{e:?}");
    audited(&log, "alice", "SetLaserPower", "ok");
    audited(&log, "alice", "MoveRelative", "denied");
    audited(&log, "alice", "Snap", "denied");
    audited(&log, "alice", "SetProperty", "denied");
}

/// A driver that names its power property differently is capped all the same: the limit is on
/// the quantity the property is tagged with, not on its name.
#[tokio::test]
async fn a_power_property_by_another_name_is_capped_too() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let text = limited(&team, root.path()).replacen(
        "limit_power_mw = 50.0\n",
        "limit_power_mw = 50.0\npower_alias = \"laser_power\"\n",
        1,
    );
    assert!(text.contains("power_alias"), "the limited config changed");
    let d = Daemon::with_config(&text).await;
    let mut alice = d.as_user(Some(&team.alice));
    take(&mut alice, 60).await;
    let prop = |v: f64| pb::SetPropertyRequest {
        device: "Laser488".into(),
        property: "laser_power".into(),
        value: Some(pb::Value {
            kind: Some(pb::value::Kind::FloatValue(v)),
        }),
    };
    let setpoint = |c: &mut common::As| {
        let mut scope = c.scope.clone();
        async move {
            scope
                .get_laser_state(dev("Laser488"))
                .await
                .unwrap()
                .into_inner()
                .setpoint_mw
        }
    };
    let before = setpoint(&mut alice).await;
    refused(
        alice.scope.set_property(prop(80.0)).await,
        Code::InvalidArgument,
        &["limit_power_mw", "test.toml:", "50"],
    );
    assert_eq!(
        setpoint(&mut alice).await,
        before,
        "nothing reached the laser"
    );
    // The second name really sets the power: inside the cap it goes through.
    alice.scope.set_property(prop(45.0)).await.unwrap();
    assert_eq!(setpoint(&mut alice).await, 45.0);
    let specs = alice
        .scope
        .list_properties(pb::ListPropertiesRequest {
            device: "Laser488".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .properties;
    let alias = specs.iter().find(|s| s.name == "laser_power").unwrap();
    let Some(pb::property_spec::Type::FloatType(t)) = &alias.r#type else {
        panic!("{alias:?}")
    };
    assert_eq!(t.max, 50.0, "the spec shows the facility limit");
}

/// Every file and folder under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn hostile_dataset_names_are_refused_and_nothing_lands_outside_the_data_root() {
    let team = Team::new();
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("data");
    let d = Daemon::with_config(&shared_demo(&team, &root, "")).await;
    let mut alice = d.as_user(Some(&team.alice));
    take(&mut alice, 60).await;
    let long = "x".repeat(129);
    let hostile = [
        "..",
        ".",
        "../escape",
        "../../etc/passwd",
        "/etc/passwd",
        "/tmp/abs",
        "a/b",
        "a\\b",
        "..\\win",
        "C:evil",
        "C:\\evil",
        "nul",
        "NUL",
        "nul.txt",
        "CON",
        "con.ome.tiff",
        "prn",
        "aux",
        "com1",
        "COM9.tar.gz",
        "lpt1",
        "LPT9",
        "com0",
        "tab\there",
        "new\nline",
        "nul\0byte",
        "bell\u{7}",
        "esc\u{1b}[31m",
        "del\u{7f}",
        "trailing.",
        "trailing ",
        " leading",
        ".hidden",
        "~",
        "$HOME",
        "a*b",
        "a?b",
        "a:b",
        "a|b",
        "a\"b",
        "a<b>",
        "ü",
        "\u{202e}txt.exe",
        "%2e%2e",
        &long,
    ];
    let before = tree(outer.path());
    for name in hostile {
        let e = alice.acq.start_sequence(seq(name, 2)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{name:?}: {e:?}");
        assert!(e.message().contains("not allowed"), "{name:?}: {e:?}");
        assert_eq!(tree(outer.path()), before, "{name:?} left something behind");
    }

    // A dataset is never overwritten.
    let first = alice
        .acq
        .start_sequence(seq("run1", 2))
        .await
        .unwrap()
        .into_inner();
    let done = wait_done(&mut alice, first.id).await;
    let path = root.join("alice").join("run1").join("run1.ome.tiff");
    assert_eq!(Path::new(&done.path), path);
    let bytes = std::fs::read(&path).unwrap();
    refused(
        alice.acq.start_sequence(seq("run1", 5)).await,
        Code::AlreadyExists,
        &["run1"],
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // A link planted where a user's folder goes is not followed.
    let elsewhere = outer.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("bob")).unwrap();
    alice
        .access
        .release_lease(pb::ReleaseLeaseRequest {})
        .await
        .unwrap();
    let mut bob = d.as_user(Some(&team.bob));
    take(&mut bob, 60).await;
    refused(
        bob.acq.start_sequence(seq("b1", 2)).await,
        Code::FailedPrecondition,
        &["not a real folder"],
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    let log = audit(&mut d.as_user(Some(&team.tech))).await;
    let denied: Vec<_> = log
        .iter()
        .filter(|e| e.action == "StartSequence" && e.outcome == "denied" && e.user == "alice")
        .collect();
    assert_eq!(denied.len(), hostile.len() + 1, "every refusal is recorded");
    audited(&log, "bob", "StartSequence", "denied");
}

#[tokio::test]
async fn datasets_belong_to_their_user_and_are_read_back_by_who_may() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let (mut tech, mut alice, mut bob, mut carol) = (
        d.as_user(Some(&team.tech)),
        d.as_user(Some(&team.alice)),
        d.as_user(Some(&team.bob)),
        d.as_user(Some(&team.carol)),
    );
    take(&mut alice, 60).await;
    let a = alice
        .acq
        .start_sequence(seq("same-name", 3))
        .await
        .unwrap()
        .into_inner();
    let a = wait_done(&mut alice, a.id).await;
    alice
        .access
        .release_lease(pb::ReleaseLeaseRequest {})
        .await
        .unwrap();
    take(&mut bob, 60).await;
    // The same name is fine for another user: each has a folder of their own.
    let b = bob
        .acq
        .start_sequence(seq("same-name", 2))
        .await
        .unwrap()
        .into_inner();
    let b = wait_done(&mut bob, b.id).await;
    assert_eq!(a.owner, "alice");
    assert!(
        a.path
            .starts_with(&root.path().join("alice").display().to_string()),
        "{}",
        a.path
    );
    assert!(
        b.path
            .starts_with(&root.path().join("bob").display().to_string()),
        "{}",
        b.path
    );

    let ids =
        |l: pb::ListAcquisitionsResponse| l.acquisitions.iter().map(|s| s.id).collect::<Vec<_>>();
    let list = |c: &mut common::As| {
        let mut acq = c.acq.clone();
        async move {
            acq.list_acquisitions(pb::ListAcquisitionsRequest {})
                .await
                .unwrap()
                .into_inner()
        }
    };
    assert_eq!(
        ids(list(&mut carol).await),
        [a.id],
        "carol may read alice's"
    );
    assert_eq!(ids(list(&mut bob).await), [b.id], "bob only his own");
    assert_eq!(ids(list(&mut tech).await), [a.id, b.id], "admins all");
    refused(
        carol
            .acq
            .get_acquisition(pb::AcquisitionRef { id: b.id })
            .await,
        Code::PermissionDenied,
        &["bob"],
    );
    refused(
        bob.acq
            .read_plane(pb::ReadPlaneRequest {
                id: a.id,
                plane: 0,
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
        &["alice"],
    );
    // Id 0 is the newest one the caller may read.
    let newest = carol
        .acq
        .get_acquisition(pb::AcquisitionRef { id: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(newest.id, a.id);

    // Read back: the planes of the file, byte for byte.
    let mut dec = tiff::decoder::Decoder::new(std::fs::File::open(&a.path).unwrap()).unwrap();
    dec.seek_to_image(2).unwrap();
    let tiff::decoder::DecodingResult::U16(px) = dec.read_image().unwrap() else {
        panic!("not 16-bit")
    };
    let img = carol
        .acq
        .read_plane(pb::ReadPlaneRequest {
            id: a.id,
            plane: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((img.width, img.height), (a.width, a.height));
    assert_eq!(img.pixel_type, pb::PixelType::U16 as i32);
    let got: Vec<u16> = img
        .data
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert_eq!(got, px);
    refused(
        carol
            .acq
            .read_plane(pb::ReadPlaneRequest {
                id: a.id,
                plane: 3,
                ..Default::default()
            })
            .await,
        Code::OutOfRange,
        &["3 plane(s)"],
    );
}

#[tokio::test]
async fn a_failed_acquisition_turns_lasers_off_and_stops_stages() {
    let root = tempfile::tempdir().unwrap();
    // A camera far faster than a two-slot ring under the "stop" policy: the run fails at once.
    let text = format!(
        r#"
[instrument]
name = "fails"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"
ring_mb = 1
min_slots = 2
overflow = "stop"

[devices.Camera]
driver = "sim.camera"
width = 16
height = 16
exposure_ms = 0.001
min_exposure_ms = 0.001
readout_ms = 0.001
pattern = "ramp"

[devices.Laser]
driver = "sim.laser"

[devices.XY]
driver = "sim.xy_stage"
speed_um_s = 100.0
"#,
        root.path().display()
    );
    let mut cfg = microscoped::config::Config::parse(&text, "test.toml").unwrap();
    cfg.storage.ring_bytes = 0;
    let d = Daemon::start(cfg).await;
    let mut local = d.as_user(None);
    local
        .scope
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser".into(),
            enabled: true,
        })
        .await
        .unwrap();
    // A long move: at 100 um/s it takes minutes.
    local
        .scope
        .move_absolute(mv("XY", &[20000.0, 0.0]))
        .await
        .unwrap();
    let run = local
        .acq
        .start_sequence(seq("flood", 200_000))
        .await
        .unwrap()
        .into_inner();
    let done = wait_done(&mut local, run.id).await;
    assert_eq!(done.state, pb::AcquisitionState::Failed as i32, "{done:?}");
    let mut safe = false;
    for _ in 0..1200 {
        let on = local
            .scope
            .get_laser_state(dev("Laser"))
            .await
            .unwrap()
            .into_inner()
            .enabled;
        let busy = local
            .scope
            .get_position(dev("XY"))
            .await
            .unwrap()
            .into_inner()
            .busy;
        if !on && !busy {
            safe = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        safe,
        "laser still on or stage still moving after the failure"
    );
    // Recorded (the entry is written once both are safe, so look again if it is not there yet).
    let mut found = None;
    for _ in 0..1200 {
        let log = audit(&mut local).await;
        if let Some(e) = log
            .into_iter()
            .find(|e| e.action == "SafeStateAfterFailure")
        {
            found = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = found.expect("the safe state after the failure is audited");
    assert_eq!((e.user.as_str(), e.outcome.as_str()), ("daemon", "ok"));
    assert!(
        e.detail_json.contains("Laser") && e.detail_json.contains("XY"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_audit_file_and_the_rpc_agree() {
    let team = Team::new();
    let root = tempfile::tempdir().unwrap();
    let d = Daemon::with_config(&shared_demo(&team, root.path(), "")).await;
    let (mut tech, mut alice) = (d.as_user(Some(&team.tech)), d.as_user(Some(&team.alice)));
    take(&mut alice, 60).await;
    alice
        .scope
        .set_laser_enabled(pb::SetLaserEnabledRequest {
            device: "Laser488".into(),
            enabled: true,
        })
        .await
        .unwrap();
    alice
        .scope
        .set_property(pb::SetPropertyRequest {
            device: "FilterWheel".into(),
            property: "label".into(),
            value: Some(pb::Value {
                kind: Some(pb::value::Kind::StringValue("GFP".into())),
            }),
        })
        .await
        .unwrap();
    alice
        .scope
        .reset_device(pb::ResetDeviceRequest { device: "Z".into() })
        .await
        .unwrap();
    let rpc = audit(&mut tech).await;
    let text = std::fs::read_to_string(root.path().join(".audit").join("audit.jsonl")).unwrap();
    let file: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // ReadAuditLog itself is not an action, so the two hold the same entries.
    assert_eq!(file.len(), rpc.len());
    for (f, r) in file.iter().zip(&rpc) {
        assert_eq!(f["action"], r.action.as_str());
        assert_eq!(f["user"], r.user.as_str());
        assert_eq!(f["time"], r.time.as_str());
        assert_eq!(f["outcome"], r.outcome.as_str());
        assert!(r.time.ends_with('Z') && r.time.contains('T'), "{}", r.time);
    }
    let on = audited(&rpc, "alice", "SetLaserEnabled", "ok");
    assert_eq!(
        (on.target.as_str(), on.role.as_str()),
        ("Laser488", "operator")
    );
    assert!(on.detail_json.contains("true"), "{on:?}");
    let set = audited(&rpc, "alice", "SetProperty", "ok");
    assert_eq!(set.target, "FilterWheel.label");
    assert!(set.detail_json.contains("GFP"), "{set:?}");
    audited(&rpc, "alice", "ResetDevice", "ok");
    // Only what is newer than a time, and only as many as asked.
    let since = rpc.last().unwrap().time_unix_us;
    let newer = tech
        .access
        .read_audit_log(pb::ReadAuditLogRequest {
            max_entries: 1,
            since_unix_us: since,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0].action, rpc.last().unwrap().action);
}
