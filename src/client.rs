//! The client side of the CLI: connecting to a running daemon, turning typed-in values into
//! property values, and writing snapped images to files.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::pb;
use crate::MAX_MESSAGE_BYTES;

/// A channel that sends the caller's token with every request.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// A gRPC client of the `Microscope` service.
pub type Client = pb::microscope_client::MicroscopeClient<AuthChannel>;

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

/// Why a CLI command failed, with the exit code it maps to.
#[derive(Debug)]
pub enum CliError {
    /// The daemon could not be reached (exit code 3).
    Connect(String),
    /// The daemon refused or failed the request (exit code 1).
    Rpc(tonic::Status),
    /// Anything else: files, bad input on the command line (exit code 1).
    Other(anyhow::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Connect(_) => 3,
            Self::Rpc(_) | Self::Other(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(m) => f.write_str(m),
            Self::Rpc(s) => write!(f, "{} ({})", s.message(), code_name(s.code())),
            Self::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        Self::Rpc(s)
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.into())
    }
}

/// The gRPC code's canonical upper-case name, as people search for it.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Connects to the daemon's `Microscope` service.
pub async fn connect(target: &Target) -> Result<Client, CliError> {
    Ok(
        pb::microscope_client::MicroscopeClient::new(channel(target).await?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// A gRPC channel to the daemon, for any of its services, sending the target's token.
pub async fn channel(target: &Target) -> Result<AuthChannel, CliError> {
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
        CliError::Connect(format!(
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

/// Parses what a person typed for a property into the value its spec asks for. Without a spec
/// the text is sent as a string and the daemon judges it.
pub fn parse_value(text: &str, spec: Option<&pb::PropertySpec>) -> anyhow::Result<pb::Value> {
    use pb::property_spec::Type;
    use pb::value::Kind;
    let kind = match spec.and_then(|s| s.r#type.as_ref()) {
        Some(Type::BoolType(_)) => Kind::BoolValue(match text.to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => true,
            "false" | "off" | "no" | "0" => false,
            _ => bail!("{text:?} is not a bool: write true/false, on/off, yes/no or 1/0"),
        }),
        Some(Type::IntType(_)) => Kind::IntValue(
            text.parse()
                .with_context(|| format!("{text:?} is not a whole number"))?,
        ),
        Some(Type::FloatType(_)) => Kind::FloatValue(
            text.parse()
                .with_context(|| format!("{text:?} is not a number"))?,
        ),
        _ => Kind::StringValue(text.to_owned()),
    };
    Ok(pb::Value { kind: Some(kind) })
}

/// A property value as a person reads it.
pub fn show_value(v: &Option<pb::Value>) -> String {
    use pb::value::Kind;
    match v.as_ref().and_then(|v| v.kind.as_ref()) {
        Some(Kind::BoolValue(b)) => b.to_string(),
        Some(Kind::IntValue(i)) => i.to_string(),
        Some(Kind::FloatValue(f)) => f.to_string(),
        Some(Kind::StringValue(s)) => s.clone(),
        None => "(none)".into(),
    }
}

/// The pixels of an image as 16-bit values (8-bit images widened), row-major.
fn pixels_u16(img: &pb::Image) -> anyhow::Result<Vec<u16>> {
    let n = img.width as usize * img.height as usize;
    match pb::PixelType::try_from(img.pixel_type) {
        Ok(pb::PixelType::U16) if img.data.len() == 2 * n => Ok(img
            .data
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect()),
        Ok(pb::PixelType::U8) if img.data.len() == n => {
            Ok(img.data.iter().map(|&b| b as u16).collect())
        }
        _ => bail!(
            "the daemon sent an image whose size does not match its shape ({}x{}, {} bytes)",
            img.width,
            img.height,
            img.data.len()
        ),
    }
}

/// Writes an image to `path`: `.tif`/`.tiff` keeps the raw pixels, `.png` is an auto-contrast
/// 8-bit rendering for looking at.
pub fn save_image(img: &pb::Image, path: &Path) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "tif" | "tiff" => save_tiff(img, path),
        "png" => save_png(img, path),
        _ => bail!(
            "cannot tell the format of {}: name the file .tiff (raw pixels) or .png (auto-contrast preview)",
            path.display()
        ),
    }
}

fn save_tiff(img: &pb::Image, path: &Path) -> anyhow::Result<()> {
    use tiff::encoder::{colortype, TiffEncoder};
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file))?;
    match pb::PixelType::try_from(img.pixel_type) {
        Ok(pb::PixelType::U8) => {
            enc.write_image::<colortype::Gray8>(img.width, img.height, &img.data)?
        }
        _ => {
            let px = pixels_u16(img)?;
            enc.write_image::<colortype::Gray16>(img.width, img.height, &px)?
        }
    }
    Ok(())
}

/// The 8-bit rendering: the 0.1 and 99.9 percentiles of the image become black and white, so a
/// dim 12-bit image is visible without fiddling.
pub fn auto_contrast(px: &[u16]) -> Vec<u8> {
    let mut hist = vec![0usize; 65536];
    for &p in px {
        hist[p as usize] += 1;
    }
    let percentile = |q: f64| {
        let target = ((px.len() as f64) * q) as usize;
        let mut seen = 0;
        for (v, &c) in hist.iter().enumerate() {
            seen += c;
            if seen > target {
                return v as f64;
            }
        }
        65535.0
    };
    let lo = percentile(0.001);
    let hi = percentile(0.999).max(lo + 1.0);
    px.iter()
        .map(|&p| (((p as f64 - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

fn save_png(img: &pb::Image, path: &Path) -> anyhow::Result<()> {
    let px = pixels_u16(img)?;
    let gray = image::GrayImage::from_raw(img.width, img.height, auto_contrast(&px))
        .context("image buffer does not match its shape")?;
    gray.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_contrast_spans_full_range() {
        let px: Vec<u16> = (0..1000).map(|i| 100 + i).collect();
        let out = auto_contrast(&px);
        assert_eq!(out[0], 0);
        assert_eq!(*out.last().unwrap(), 255);
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn parse_value_follows_spec() {
        use pb::property_spec::Type;
        let spec = |t| pb::PropertySpec {
            r#type: Some(t),
            ..Default::default()
        };
        let b = spec(Type::BoolType(pb::BoolType {}));
        assert_eq!(
            parse_value("on", Some(&b)).unwrap().kind,
            Some(pb::value::Kind::BoolValue(true))
        );
        assert!(parse_value("maybe", Some(&b)).is_err());
        let f = spec(Type::FloatType(pb::FloatType { min: 0.0, max: 1.0 }));
        assert_eq!(
            parse_value("2.5", Some(&f)).unwrap().kind,
            Some(pb::value::Kind::FloatValue(2.5))
        );
        assert!(parse_value("x", Some(&f)).is_err());
    }
}
