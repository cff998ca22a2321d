//! RPC metrics: a tower layer on the gRPC server that times every call from its request to the
//! end of its response (for a stream, its whole life) and counts it by service, method and
//! status code, in one histogram.
//!
//! The code is read where gRPC puts it: in the response headers of a trailers-only response (a
//! refusal before any message, as the auth layer's UNAUTHENTICATED), else in the trailers after
//! the last message. A response dropped before its trailers is a call the client cancelled.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prost::Message as _;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::client::code_name;

/// The labels of one RPC's observation, named as gRPC's Prometheus interceptors name them so
/// existing dashboards' queries carry over.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RpcLabels {
    /// The fully qualified service, e.g. `microscoped.v1.Microscope`.
    grpc_service: String,
    /// The method, e.g. `SetProperty`.
    grpc_method: String,
    /// The status code's canonical name, e.g. `OK`, `NOT_FOUND`.
    grpc_code: &'static str,
}

/// How long RPCs take, by service, method and code.
pub(super) type RpcHistogram = Family<RpcLabels, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to 16 s, doubling: unary calls sit in the lower half, a snap or a move
/// in the upper; streams that live longer fall in `+Inf`.
pub(super) fn new_histogram() -> RpcHistogram {
    Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)))
}

/// Where a call path's service and method go when the server does not serve it: a client that
/// makes names up must not grow the label set.
const UNKNOWN: &str = "unknown";

/// Adds [`RpcMetrics`] in front of a service.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    histogram: RpcHistogram,
    /// Every `/service/method` path the daemon serves, from the descriptor sets.
    known: Arc<HashSet<String>>,
}

impl RpcMetricsLayer {
    pub(super) fn new(histogram: RpcHistogram) -> Self {
        Self {
            histogram,
            known: Arc::new(served_paths()),
        }
    }
}

/// The `/package.Service/Method` paths of every service the daemon mounts: its own, health and
/// both versions of reflection.
fn served_paths() -> HashSet<String> {
    let sets: [&[u8]; 4] = [
        crate::pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut paths = HashSet::new();
    for bytes in sets {
        let set = prost_types::FileDescriptorSet::decode(bytes)
            .expect("the embedded descriptor sets decode");
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    paths.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    paths
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The timing and counting service (see the module documentation).
#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    layer: RpcMetricsLayer,
}

/// One call being timed: recorded once, when its code is known or its response is dropped.
struct Call {
    histogram: RpcHistogram,
    service: String,
    method: String,
    started: Instant,
}

impl Call {
    fn record(self, code: tonic::Code) {
        self.histogram
            .get_or_create(&RpcLabels {
                grpc_service: self.service,
                grpc_method: self.method,
                grpc_code: code_name(code),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// The code in `headers`, if gRPC put one there.
fn code_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    tonic::Status::from_header_map(headers).map(|s| s.code())
}

impl<S, B, ResBody> Service<http::Request<B>> for RpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = http::Response<TimedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let (service, method) = match path[1.min(path.len())..].split_once('/') {
            Some((service, method)) if self.layer.known.contains(path) => {
                (service.to_owned(), method.to_owned())
            }
            _ => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
        };
        let call = Call {
            histogram: self.layer.histogram.clone(),
            service,
            method,
            started: Instant::now(),
        };
        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match inner.call(req).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let call = match code_in(&parts.headers) {
                        Some(code) => {
                            call.record(code);
                            None
                        }
                        None => Some(call),
                    };
                    Ok(http::Response::from_parts(
                        parts,
                        TimedBody { inner: body, call },
                    ))
                }
                Err(e) => {
                    // tonic's own services answer every failure with a status; an error here is
                    // the transport's.
                    call.record(tonic::Code::Unknown);
                    Err(e)
                }
            }
        })
    }
}

/// A response body that records its call when the trailers carry the code, the body ends
/// without them, or the client goes away first.
pub struct TimedBody<B> {
    inner: B,
    /// `None` once recorded.
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for TimedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| code_in(t).unwrap_or(tonic::Code::Unknown)),
            Poll::Ready(Some(Err(_))) => Some(tonic::Code::Unknown),
            // gRPC always ends a response with a status; one that ends without says nothing.
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code {
            if let Some(call) = self.call.take() {
                call.record(code);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for TimedBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record(tonic::Code::Cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mounted_method_is_known_and_nothing_else() {
        let known = served_paths();
        for path in [
            "/microscoped.v1.Microscope/SetProperty",
            "/microscoped.v1.Acquisition/GetAcquisition",
            "/microscoped.v1.Access/WhoAmI",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(known.contains(path), "{path} not in {known:?}");
        }
        assert!(!known.contains("/microscoped.v1.Microscope/MadeUp"));
    }
}
