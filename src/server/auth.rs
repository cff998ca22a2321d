//! Authentication: one tower layer in front of every service. A request to any
//! `microscoped.v1` service is resolved into a [`Caller`] (user, role, peer, method) put in
//! its extensions, or refused with UNAUTHENTICATED (and audited) before any service sees it.
//! Health checks and reflection stay open: they reveal nothing a port scan does not.
//!
//! Authorization and the audit of each RPC, at the gRPC side: [`require`] hands the request's
//! [`Caller`] to [`Access::require`] and its refusal back as a status; [`record`] and
//! [`audited`] write how an RPC went, telling a refusal from a failure by its status code.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Code, Request, Status};
use tower::{Layer, Service};

use super::convert;
use crate::access::audit::Record;
use crate::access::{Access, Caller, Need, Outcome};

/// The path prefix of the services that need an identity.
const PROTECTED: &str = "/microscoped.v1.";

/// Adds [`Auth`] in front of a service.
#[derive(Clone)]
pub struct AuthLayer {
    access: Access,
}

impl AuthLayer {
    /// Authenticates against `access`'s users.
    pub fn new(access: Access) -> Self {
        Self { access }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            access: self.access.clone(),
        }
    }
}

/// The authenticating service (see the module documentation).
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    access: Access,
}

/// The caller of `req` if they have what `need` asks, or the refusal (audited with `target`).
/// Every handler's first line.
pub fn require<T>(
    access: &Access,
    req: &Request<T>,
    need: Need,
    target: &str,
) -> Result<Caller, Status> {
    access
        .require(req.extensions().get::<Caller>(), need, target)
        .map_err(convert::error_status)
}

/// Writes what `caller` did to `target` and how it went to the audit log.
pub fn record(
    access: &Access,
    caller: &Caller,
    target: &str,
    detail: serde_json::Value,
    result: Result<(), &Status>,
) {
    let outcome = match result {
        Ok(()) => Outcome::Ok,
        Err(s) if is_refusal(s.code()) => Outcome::Denied(s.message()),
        Err(s) => Outcome::Failed(s.message()),
    };
    access.record(caller, target, detail, outcome);
}

/// Runs `action` for `caller` and writes how it went to the audit log.
pub async fn audited<T>(
    access: &Access,
    caller: &Caller,
    target: &str,
    detail: serde_json::Value,
    action: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let result = action.await;
    record(access, caller, target, detail, result.as_ref().map(|_| ()));
    result
}

/// Whether a status is a refusal (the client's mistake or lack of permission: "denied" in the
/// audit log) rather than a request allowed that went wrong ("failed").
fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unauthenticated
    )
}

/// The client's address, over plain TCP or TLS.
fn remote_addr(ext: &http::Extensions) -> Option<SocketAddr> {
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

impl<S, B, ResBody> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(rest) = req.uri().path().strip_prefix(PROTECTED) {
            let method = rest.rsplit('/').next().unwrap_or(rest).to_owned();
            let peer = remote_addr(req.extensions());
            let header = req.headers().get(http::header::AUTHORIZATION);
            let resolved = match header.map(|v| v.to_str()) {
                None => self.access.users().authenticate(None, peer),
                Some(Ok(v)) => self.access.users().authenticate(Some(v), peer),
                Some(Err(_)) => self.access.users().authenticate(Some("not text"), peer),
            };
            match resolved {
                Ok(identity) => {
                    req.extensions_mut().insert(Caller { identity, method });
                }
                Err(message) => {
                    self.access.audit().record(Record {
                        peer: peer.map(|p| p.to_string()).unwrap_or_default(),
                        action: method,
                        outcome: "denied",
                        reason: message.clone(),
                        ..Default::default()
                    });
                    let response = Status::unauthenticated(message).into_http();
                    return Box::pin(async move { Ok(response) });
                }
            }
        }
        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_failures() {
        assert!(is_refusal(Code::PermissionDenied));
        assert!(is_refusal(Code::InvalidArgument));
        assert!(!is_refusal(Code::Unavailable));
        assert!(!is_refusal(Code::DeadlineExceeded));
    }
}
