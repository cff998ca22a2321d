//! The size limit of a request, in one place for every RPC of every service: a tower layer that
//! follows the gRPC framing of each request body as it streams in (a 5-byte prefix: a
//! compression flag and the message's length as a big-endian u32, then the message) and refuses a
//! message longer than the limit from its prefix, before its bytes are buffered, with
//! INVALID_ARGUMENT naming its size and the limit.
//!
//! tonic's own decoding limit (`max_decoding_message_size`, kept on the services at the same
//! value) answers OUT_OF_RANGE "decoded message length too large", which reads as a value out of
//! range rather than a request too large, and tonic has no hook to change that status. The error
//! here is a [`Status`] returned by the body: tonic's decoder hands a body's `Status` to the
//! client unchanged.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::{http, Bytes};
use tonic::Status;
use tower::{Layer, Service};

/// The bytes before each gRPC message: its compression flag and its length.
const PREFIX: usize = 5;

/// Puts [`RequestLimit`] in front of a service.
#[derive(Clone, Copy)]
pub struct RequestLimitLayer {
    /// The most bytes one request message may have.
    limit: usize,
}

impl RequestLimitLayer {
    /// Refuses request messages longer than `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for RequestLimitLayer {
    type Service = RequestLimit<S>;

    fn layer(&self, inner: S) -> RequestLimit<S> {
        RequestLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// The limiting service (see the module documentation).
#[derive(Clone)]
pub struct RequestLimit<S> {
    inner: S,
    /// The most bytes one request message may have.
    limit: usize,
}

impl<S> Service<http::Request<Body>> for RequestLimit<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let limit = self.limit;
        self.inner
            .call(req.map(|body| Body::new(Limited::new(body, limit))))
    }
}

/// A request body that reads each message's length prefix as it passes.
struct Limited {
    inner: Body,
    limit: usize,
    /// The prefix of the next message, as far as it has come.
    prefix: [u8; PREFIX],
    /// How many bytes of `prefix` have come.
    have: usize,
    /// Bytes of the current message still to come.
    rest: usize,
}

impl Limited {
    fn new(inner: Body, limit: usize) -> Self {
        Self {
            inner,
            limit,
            prefix: [0; PREFIX],
            have: 0,
            rest: 0,
        }
    }

    /// Follows the framing through `data`, which may end or start anywhere in a prefix or a
    /// message.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.rest > 0 {
                let n = self.rest.min(data.len());
                self.rest -= n;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX - self.have).min(data.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == PREFIX {
                self.have = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as usize;
                if len > self.limit {
                    return Err(too_large(len, self.limit));
                }
                self.rest = len;
            }
        }
        Ok(())
    }
}

/// The refusal of a request of `len` bytes.
fn too_large(len: usize, limit: usize) -> Status {
    Status::invalid_argument(format!(
        "the request is {len} bytes; a request has at most {limit} bytes ({:.0} MiB): requests \
         carry names, values and plans (a plan's text at most {} MiB), never images",
        limit as f64 / f64::from(1 << 20),
        microscoped_core::plan::MAX_PLAN_BYTES >> 20,
    ))
}

impl http_body::Body for Limited {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                this.scan(data)?;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(PREFIX + len as usize, 7);
        m
    }

    #[test]
    fn follows_messages_across_any_split_and_refuses_the_one_too_long() {
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(100));
        stream.extend(message(101));
        // Every way of cutting the stream into two chunks, and byte by byte.
        for cut in 0..stream.len() {
            let mut l = Limited::new(Body::empty(), 100);
            let r = l.scan(&stream[..cut]).and_then(|()| l.scan(&stream[cut..]));
            let e = r.expect_err("the 101-byte message passed");
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(
                e.message()
                    .starts_with("the request is 101 bytes; a request has at most 100 bytes"),
                "{}",
                e.message()
            );
        }
        let mut l = Limited::new(Body::empty(), 100);
        let n = stream.len() - message(101).len();
        for b in &stream[..n] {
            l.scan(std::slice::from_ref(b))
                .expect("messages within the limit");
        }
        assert_eq!((l.have, l.rest), (0, 0));
    }
}
