//! Starts the real daemon in-process on 127.0.0.1:0 and connects a gRPC client to it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use microscoped::config::Config;
use microscoped::pb;
use microscoped::pb::acquisition_client::AcquisitionClient;
use microscoped::pb::microscope_client::MicroscopeClient;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A running daemon and a client connected to it.
pub struct Daemon {
    pub addr: SocketAddr,
    pub client: MicroscopeClient<Channel>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    /// The daemon on the embedded demo instrument.
    pub async fn demo() -> Self {
        Self::start(Config::demo()).await
    }

    /// The daemon on config text.
    pub async fn with_config(text: &str) -> Self {
        Self::start(Config::parse(text, "test.toml").expect("test config is valid")).await
    }

    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(microscoped::run(config, listener, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("daemon accepts connections");
        let client = MicroscopeClient::new(channel.clone())
            .max_decoding_message_size(microscoped::MAX_MESSAGE_BYTES);
        Self {
            addr,
            client,
            channel,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the daemon and waits until it has finished its orderly shutdown.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), self.task.take().unwrap())
            .await
            .expect("daemon stops within 20 s")
            .expect("daemon task did not panic")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The demo config with extra text appended (more devices, or settings in a new table).
pub fn demo_plus(extra: &str) -> String {
    format!("{}\n{extra}", microscoped::config::DEMO_CONFIG)
}

/// Clients of every service that send one user's token (or none).
pub struct As {
    pub scope: MicroscopeClient<microscoped::client::AuthChannel>,
    pub acq:
        microscoped::pb::acquisition_client::AcquisitionClient<microscoped::client::AuthChannel>,
    pub access: microscoped::pb::access_client::AccessClient<microscoped::client::AuthChannel>,
}

impl Daemon {
    /// Clients that authenticate with `token` (none: anonymous).
    pub fn as_user(&self, token: Option<&str>) -> As {
        let ch = tonic::service::interceptor::InterceptedService::new(
            self.channel.clone(),
            microscoped::client::Bearer::new(token).unwrap(),
        );
        As {
            scope: MicroscopeClient::new(ch.clone())
                .max_decoding_message_size(microscoped::MAX_MESSAGE_BYTES),
            acq: microscoped::pb::acquisition_client::AcquisitionClient::new(ch.clone())
                .max_decoding_message_size(microscoped::MAX_MESSAGE_BYTES),
            access: microscoped::pb::access_client::AccessClient::new(ch),
        }
    }
}

/// The users of a shared test instrument and their tokens: `tech` (admin), `alice` and `bob`
/// (operators), `carol` (observer who may read alice's datasets).
pub struct Team {
    /// The `[users.*]` tables.
    pub config: String,
    pub tech: String,
    pub alice: String,
    pub bob: String,
    pub carol: String,
}

impl Team {
    pub fn new() -> Self {
        use microscoped::access::token;
        let [tech, alice, bob, carol] =
            ["tech", "alice", "bob", "carol"].map(|_| token::new_token().unwrap());
        let user = |name: &str, role: &str, t: &str, extra: &str| {
            format!(
                "[users.{name}]\nrole = \"{role}\"\ntoken_sha256 = \"{}\"\n{extra}\n",
                token::hex(&token::sha256(t))
            )
        };
        let config = [
            user("tech", "admin", &tech, ""),
            user("alice", "operator", &alice, ""),
            user("bob", "operator", &bob, ""),
            user("carol", "observer", &carol, "can_read = [\"alice\"]"),
        ]
        .concat();
        Self {
            config,
            tech,
            alice,
            bob,
            carol,
        }
    }
}

/// The demo instrument shared by `team`: no anonymous access, datasets under `root`, a small
/// frame ring, and `extra` appended (more tables).
pub fn shared_demo(team: &Team, root: &std::path::Path, extra: &str) -> String {
    let demo = microscoped::config::DEMO_CONFIG
        .replace(
            "anonymous_loopback_admin = true",
            "anonymous_loopback_admin = false",
        )
        .replace(
            "data_root = \"data\"",
            &format!("data_root = \"{}\"", root.display()),
        )
        .replace("ring_mb = 512", "ring_mb = 16");
    format!("{demo}\n{}\n{extra}", team.config)
}

/// A client of the daemon's Acquisition service that takes planes of any size.
pub fn acq(d: &Daemon) -> AcquisitionClient<Channel> {
    AcquisitionClient::new(d.channel.clone())
        .max_decoding_message_size(microscoped::MAX_MESSAGE_BYTES)
}

/// A plan request from useq YAML text.
pub fn yaml(text: &str, name: &str) -> pb::PlanRequest {
    pb::PlanRequest {
        plan: Some(pb::plan_request::Plan::UseqYaml(text.to_owned())),
        name: name.to_owned(),
        camera: String::new(),
    }
}

/// The run has ended (neither running nor paused).
pub fn ended(s: &pb::AcquisitionStatus) -> bool {
    !matches!(
        pb::AcquisitionState::try_from(s.state),
        Ok(pb::AcquisitionState::Running | pb::AcquisitionState::Paused)
    )
}

/// Polls a run until `pred` holds; bounded (`what` names the wait in the failure).
pub async fn poll_until(
    a: &mut AcquisitionClient<Channel>,
    id: u64,
    what: &str,
    pred: impl Fn(&pb::AcquisitionStatus) -> bool,
) -> pb::AcquisitionStatus {
    let start = std::time::Instant::now();
    loop {
        let s = a
            .get_acquisition(pb::AcquisitionRef { id })
            .await
            .unwrap()
            .into_inner();
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The width of [`ramp_instrument`]'s camera.
pub const RAMP_W: u32 = 96;
/// The height of [`ramp_instrument`]'s camera.
pub const RAMP_H: u32 = 64;

/// A small instrument whose camera shows the `ramp` test pattern, with an XY and a Z stage,
/// datasets under `root` and `extra_storage` added to its `[storage]` table.
pub fn ramp_instrument(root: &std::path::Path, extra_storage: &str) -> String {
    format!(
        r#"
[instrument]
name = "acq-test"

[server]
anonymous_loopback_admin = true

[storage]
data_root = "{}"
ring_mb = 1
min_slots = 4
{extra_storage}

[devices.Camera]
driver = "sim.camera"
width = {RAMP_W}
height = {RAMP_H}
bit_depth = 12
exposure_ms = 5.0
readout_ms = 1.0
pattern = "ramp"

[devices.XY]
driver = "sim.xy_stage"

[devices.Z]
driver = "sim.stage"
home_um = 50.0
"#,
        root.display()
    )
}
