//! Starts the real daemon in-process on 127.0.0.1:0 and connects a gRPC client to it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use microscoped::config::Config;
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
