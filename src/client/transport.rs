//! The connection to a daemon: the address, TLS and the bearer token sent with every request.

use std::fmt;

use anyhow::Context;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::Error;

/// A channel that sends the caller's token with every request.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to every request (nothing without a token).
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A token, checked to be sendable as metadata.
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        match token.map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(Self(None)),
            Some(t) => Ok(Self(Some(format!("Bearer {t}").parse().map_err(|_| {
                anyhow::anyhow!("the token holds characters a token never has; copy it again")
            })?))),
        }
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Where the daemon is and how to reach it.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// "127.0.0.1:50051", "host:port" or a URI.
    pub addr: String,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// With a CA certificate (PEM) the connection is TLS, checked against it.
    pub tls_ca: Option<std::path::PathBuf>,
}

/// A gRPC channel to the daemon, for any of its services, sending the target's token.
pub async fn channel(target: &Target) -> Result<AuthChannel, Error> {
    let bearer = Bearer::new(target.token.as_deref())?;
    let addr = target.addr.as_str();
    let scheme = if target.tls_ca.is_some() {
        "https"
    } else {
        "http"
    };
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("{scheme}://{addr}")
    };
    let unreachable = |e: &dyn fmt::Display| {
        Error::Connect(format!(
            "cannot reach microscoped at {addr}: {e}. Is the daemon running? Start it with \
             `microscoped serve`, or point --addr at the right host and port."
        ))
    };
    let mut endpoint = Endpoint::from_shared(uri).map_err(|e| unreachable(&e))?;
    if let Some(ca) = &target.tls_ca {
        let pem = std::fs::read(ca)
            .with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
            .map_err(|e| anyhow::anyhow!("cannot use {} for TLS: {e}", ca.display()))?;
    }
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(crate::STREAM_WINDOW_BYTES)
        .initial_connection_window_size(crate::CONNECTION_WINDOW_BYTES)
        .connect()
        .await
        .map_err(|e| {
            unreachable(&std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string()))
        })?;
    Ok(InterceptedService::new(channel, bearer))
}
