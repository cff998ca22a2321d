//! `[metrics]`: where the daemon serves Prometheus metrics over HTTP (off when absent).

use std::net::SocketAddr;

use serde::Deserialize;

use super::{ConfigError, Parser};

/// The Prometheus metrics endpoint: `GET /metrics` on `listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The HTTP address the endpoint listens on (port 0: any free port, which the log names).
    pub listen: SocketAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: String,
}

impl<'a> Parser<'a> {
    /// `[metrics]`, checked against the gRPC address it must not share.
    pub(super) fn metrics(
        &self,
        raw: Option<RawMetrics>,
        grpc: SocketAddr,
    ) -> Result<Option<MetricsConfig>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let at = |message: String| {
            self.error(
                self.find_key(&["metrics", "listen"]),
                Some("metrics.listen".into()),
                message,
            )
        };
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            at(format!(
                "{} is not an address: write IP:PORT, e.g. \"127.0.0.1:9464\" (Prometheus \
                 scrapes http://IP:PORT/metrics)",
                crate::names::quote(&raw.listen)
            ))
        })?;
        // Port 0 picks a free port for each, so only a fixed port can collide.
        if listen == grpc && listen.port() != 0 {
            return Err(at(format!(
                "{listen} is server.listen, the gRPC address: give the metrics endpoint a port \
                 of its own, e.g. \"{}:9464\"",
                listen.ip()
            )));
        }
        Ok(Some(MetricsConfig { listen }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, HEAD};
    use super::super::Config;

    const SERVER: &str =
        "[server]\nlisten = \"127.0.0.1:50051\"\nanonymous_loopback_admin = true\n";

    #[test]
    fn metrics_are_off_unless_configured() {
        let c = Config::parse(&format!("{HEAD}{SERVER}"), "t.toml").unwrap();
        assert_eq!(c.metrics, None);
        let c = Config::parse(
            &format!("{HEAD}{SERVER}[metrics]\nlisten = \"0.0.0.0:9464\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.metrics.unwrap().listen.to_string(), "0.0.0.0:9464");
    }

    #[test]
    fn a_bad_metrics_table_names_its_line_and_key() {
        for (text, key, says) in [
            (
                "[metrics]\nlisten = \"localhost\"\n",
                "metrics.listen",
                "not an address",
            ),
            ("[metrics]\nlisten = 9464\n", "metrics.listen", "string"),
            (
                "[metrics]\nlisten = \"127.0.0.1:50051\"\n",
                "metrics.listen",
                "gRPC address",
            ),
            (
                "[metrics]\nlisten = \"127.0.0.1:9464\"\npath = \"/m\"\n",
                "metrics.path",
                "unknown field",
            ),
            ("[metrics]\n", "metrics.listen", "missing field"),
        ] {
            let e = err(&format!("{HEAD}{SERVER}{text}"));
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(says), "{e}");
            // Every one of them is placed in the [metrics] table, from line 6 on.
            assert!(e.line.is_some_and(|l| l >= 6), "{e}");
        }
    }
}
