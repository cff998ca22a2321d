//! `server.tls_cert` and `server.tls_key`: the server's certificate and key, read and checked
//! the way the server's rustls will use them.

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{ConfigError, Parser};

/// The server's TLS certificate chain and private key, read (and checked) when the config is.
#[derive(Clone)]
pub struct TlsFiles {
    /// Where the certificate chain (PEM) came from.
    pub cert_path: PathBuf,
    /// Where the private key (PEM) came from.
    pub key_path: PathBuf,
    /// The certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself: configs end up in logs.
        f.debug_struct("TlsFiles")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl<'a> Parser<'a> {
    pub(super) fn tls(
        &self,
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, ConfigError> {
        let at = |key: &str, message: String| {
            self.error(
                self.find_key(&["server", key]),
                Some(format!("server.{key}")),
                message,
            )
        };
        let (cert_path, key_path) = match (cert, key) {
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (Some(_), None) => {
                return Err(at(
                    "tls_cert",
                    "give tls_key too: TLS needs both the certificate and its private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(at(
                    "tls_key",
                    "give tls_cert too: TLS needs both the certificate and its private key".into(),
                ))
            }
        };
        // Relative paths are the config file's neighbours, wherever the daemon is started.
        let base = Path::new(self.file).parent().unwrap_or(Path::new(""));
        let cert_path = base.join(cert_path);
        let key_path = base.join(key_path);
        let read = |key: &str, path: &Path| {
            std::fs::read(path).map_err(|e| at(key, format!("cannot read {}: {e}", path.display())))
        };
        let cert_pem = read("tls_cert", &cert_path)?;
        let key_pem = read("tls_key", &key_path)?;
        let unusable = |key: &str, why: String| {
            at(
                key,
                format!(
                    "{} and {} are not a usable certificate and key: {why}",
                    cert_path.display(),
                    key_path.display()
                ),
            )
        };
        // Parsed and matched the way the server's rustls will, so a file that passes here
        // serves.
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unusable("tls_cert", format!("the certificate: {e}")))?;
        if chain.is_empty() {
            return Err(at(
                "tls_cert",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    cert_path.display()
                ),
            ));
        }
        let private_key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(k) => k,
            Err(rustls::pki_types::pem::Error::NoItemsFound) => {
                return Err(at(
                    "tls_key",
                    format!(
                        "{} holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
                        key_path.display()
                    ),
                ))
            }
            Err(e) => return Err(unusable("tls_key", format!("the private key: {e}"))),
        };
        let provider = rustls::crypto::ring::default_provider();
        if let Err(e) = CertifiedKey::from_der(chain, private_key, &provider) {
            return Err(match e {
                rustls::Error::InconsistentKeys(_) => unusable(
                    "tls_key",
                    "the private key does not belong to the (first) certificate".into(),
                ),
                rustls::Error::General(why) => {
                    unusable("tls_key", format!("the private key: {why}"))
                }
                e => unusable("tls_cert", format!("the certificate: {e}")),
            });
        }
        Ok(Some(TlsFiles {
            cert_path,
            key_path,
            cert_pem,
            key_pem,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::HEAD;
    use super::super::Config;

    #[test]
    fn tls_files_are_checked_when_the_config_is() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("inst.toml");
        let file = cfg.display().to_string();
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        for (server, key, says) in [
            (
                "tls_cert = \"c.pem\"\n",
                "server.tls_cert",
                "give tls_key too",
            ),
            (
                "tls_key = \"k.pem\"\n",
                "server.tls_key",
                "give tls_cert too",
            ),
            (
                "tls_cert = \"missing.pem\"\ntls_key = \"k.pem\"\n",
                "server.tls_cert",
                "cannot read",
            ),
            (
                "tls_cert = \"junk.pem\"\ntls_key = \"junk.pem\"\n",
                "server.tls_cert",
                "no PEM certificate",
            ),
        ] {
            let e = Config::parse(&format!("{head}{server}"), &file).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{e}");
            assert!(e.message.contains(says), "{e}");
            assert!(e.line.is_some(), "{e}");
        }
        // Relative to the config's folder, whatever the working folder.
        let e = Config::parse(
            &format!("{head}tls_cert = \"junk.pem\"\ntls_key = \"junk.pem\"\n"),
            &file,
        )
        .unwrap_err();
        assert!(
            e.message
                .contains(&dir.path().join("junk.pem").display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn tls_certificate_and_key_are_parsed_and_must_belong_together() {
        // A self-signed certificate and two unrelated keys, made for this test only.
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("inst.toml");
        let file = cfg.display().to_string();
        for (name, pem) in [
            ("cert.pem", include_str!("../../testdata/tls/cert.pem")),
            ("key.pem", include_str!("../../testdata/tls/key.pem")),
            (
                "other_key.pem",
                include_str!("../../testdata/tls/other_key.pem"),
            ),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        let mangled = include_str!("../../testdata/tls/cert.pem").replacen("MII", "M!I", 1);
        std::fs::write(dir.path().join("mangled.pem"), mangled).unwrap();
        let head = format!("{HEAD}[server]\nanonymous_loopback_admin = true\n");
        let server =
            |cert: &str, key: &str| format!("{head}tls_cert = \"{cert}\"\ntls_key = \"{key}\"\n");
        let c = Config::parse(&server("cert.pem", "key.pem"), &file).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.key_path, dir.path().join("key.pem"));
        for (cert, key, at, says) in [
            (
                "cert.pem",
                "other_key.pem",
                "server.tls_key",
                "does not belong",
            ),
            ("mangled.pem", "key.pem", "server.tls_cert", "not a usable"),
            (
                "cert.pem",
                "cert.pem",
                "server.tls_key",
                "no PEM private key",
            ),
            (
                "key.pem",
                "key.pem",
                "server.tls_cert",
                "no PEM certificate",
            ),
        ] {
            let e = Config::parse(&server(cert, key), &file).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(at), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}
