//! TLS settings and the rustls (ring) client configuration built from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{HttpError, Setting};

/// What a configured CA bundle does to the trusted roots. One rule for every client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CaBundleMode {
    /// Trust only the bundle (the default), as Vault's `VAULT_CACERT` does: a private CA
    /// bundle means "this server's certificate comes from here", and a public CA that issues
    /// for the same name is not trusted too.
    #[default]
    Replace,
    /// Trust the bundle and the built-in webpki roots.
    Append,
}

/// A client certificate for mutual TLS: PEM files, read when the client is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain (PEM), leaf first.
    pub cert_path: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
}

impl ClientCert {
    /// A certificate chain and its key.
    #[must_use]
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Self {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
        }
    }
}

/// TLS settings: TLS 1.2 and 1.3 with rustls' `ring` provider, server certificates checked
/// against the webpki roots or a CA bundle.
///
/// ```
/// use secret_http::{CaBundleMode, TlsConfig};
///
/// let tls = TlsConfig::default()
///     .with_ca_bundle("/etc/ssl/private-ca.pem")
///     .with_ca_bundle_mode(CaBundleMode::Append);
/// assert_eq!(tls.ca_bundle_mode, CaBundleMode::Append);
/// assert!(!tls.skip_verify);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Trusted CA certificates (PEM). By default they replace the webpki roots; see
    /// [`ca_bundle_mode`](Self::ca_bundle_mode).
    pub ca_bundle: Option<PathBuf>,
    /// Whether [`ca_bundle`](Self::ca_bundle) replaces the webpki roots (the default) or is
    /// added to them.
    pub ca_bundle_mode: CaBundleMode,
    /// A client certificate for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Accept any server certificate (handshake signatures are still checked). Whether that
    /// is allowed is the caller's policy; this crate only obeys it.
    pub skip_verify: bool,
}

impl TlsConfig {
    /// Sets the CA bundle.
    #[must_use]
    pub fn with_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Whether the CA bundle replaces (the default) or is added to the webpki roots.
    #[must_use]
    pub fn with_ca_bundle_mode(mut self, mode: CaBundleMode) -> Self {
        self.ca_bundle_mode = mode;
        self
    }

    /// Sets the client certificate for mutual TLS.
    #[must_use]
    pub fn with_client_cert(mut self, cert: ClientCert) -> Self {
        self.client_cert = Some(cert);
        self
    }

    /// Accepts any server certificate. The caller decides when that is allowed.
    #[must_use]
    pub fn with_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// Reads the files and builds the rustls configuration.
    pub(crate) fn build(&self) -> Result<rustls::ClientConfig, HttpError> {
        let crypto = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&crypto))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| HttpError::config_from(Setting::Tls, "TLS setup failed", e))?;
        let builder = if self.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(crypto)))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        match &self.client_cert {
            None => Ok(builder.with_no_client_auth()),
            Some(client) => {
                let chain = read_certs(&client.cert_path, Setting::ClientCert)?;
                if chain.is_empty() {
                    return Err(HttpError::config(
                        Setting::ClientCert,
                        "holds no PEM certificate",
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(&client.key_path).map_err(|e| {
                    HttpError::config_from(Setting::ClientKey, "is unreadable or not PEM", e)
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    HttpError::config_from(
                        Setting::ClientKey,
                        "does not fit the client certificate",
                        e,
                    )
                })
            }
        }
    }

    /// The CA bundle alone ([`CaBundleMode::Replace`]), the bundle plus the webpki roots
    /// ([`CaBundleMode::Append`]), or the webpki roots when no bundle is set.
    pub(crate) fn root_store(&self) -> Result<rustls::RootCertStore, HttpError> {
        let webpki = || rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let Some(path) = &self.ca_bundle else {
            return Ok(webpki());
        };
        let mut roots = match self.ca_bundle_mode {
            CaBundleMode::Append => webpki(),
            CaBundleMode::Replace => rustls::RootCertStore::empty(),
        };
        let certs = read_certs(path, Setting::CaBundle)?;
        if certs.is_empty() {
            return Err(HttpError::config(
                Setting::CaBundle,
                "holds no PEM certificate",
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                HttpError::config_from(Setting::CaBundle, "holds an invalid certificate", e)
            })?;
        }
        Ok(roots)
    }
}

/// The rustls client configuration for `tls`, built by the rules [`HttpClient`] follows
/// (TLS 1.2 and 1.3 with rustls' `ring` provider; the webpki roots, or a CA bundle that
/// replaces or is appended to them; a client certificate; `skip_verify` obeyed), with no
/// ALPN protocol: for a non-HTTP transport that takes an `Arc<rustls::ClientConfig>`, such
/// as rskafka's. The one place a rustls type crosses this crate's API (feature
/// `rustls-config`).
///
/// ```
/// use secret_http::{TlsConfig, rustls_client_config};
///
/// let config = rustls_client_config(&TlsConfig::default())?;
/// assert!(config.alpn_protocols.is_empty());
/// let missing = TlsConfig::default().with_ca_bundle("/nonexistent/ca.pem");
/// assert_eq!(rustls_client_config(&missing).unwrap_err().code(), "CONFIG");
/// # Ok::<(), secret_http::HttpError>(())
/// ```
///
/// # Errors
/// `CONFIG` naming the file at fault (CA bundle, client certificate or key), as
/// [`HttpClient::new`] does.
///
/// [`HttpClient`]: crate::HttpClient
/// [`HttpClient::new`]: crate::HttpClient::new
#[cfg(feature = "rustls-config")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls-config")))]
pub fn rustls_client_config(tls: &TlsConfig) -> Result<Arc<rustls::ClientConfig>, HttpError> {
    tls.build().map(Arc::new)
}

fn read_certs(path: &Path, setting: Setting) -> Result<Vec<CertificateDer<'static>>, HttpError> {
    let unreadable = |e| HttpError::config_from(setting, "is unreadable or not PEM", e);
    CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)
}

/// `skip_verify`: accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        /// A CA, and a client certificate and key it issued, as PEM files.
        fn new() -> Result<Self, Box<dyn std::error::Error>> {
            let dir = tempfile::tempdir()?;
            let ca_key = rcgen::KeyPair::generate()?;
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = ca_params.self_signed(&ca_key)?;
            let client_key = rcgen::KeyPair::generate()?;
            let client = rcgen::CertificateParams::new(vec!["client".to_owned()])?
                .signed_by(&client_key, &rcgen::Issuer::new(ca_params, ca_key))?;
            std::fs::write(dir.path().join("ca.pem"), ca.pem())?;
            std::fs::write(dir.path().join("client.pem"), client.pem())?;
            std::fs::write(dir.path().join("client.key"), client_key.serialize_pem())?;
            std::fs::write(
                dir.path().join("other.key"),
                rcgen::KeyPair::generate()?.serialize_pem(),
            )?;
            std::fs::write(dir.path().join("empty.pem"), "no PEM here\n")?;
            Ok(Self { dir })
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    fn config_error(result: Result<impl Sized, HttpError>) -> Option<(Setting, &'static str)> {
        match result {
            Err(HttpError::Config {
                setting, reason, ..
            }) => Some((setting, reason)),
            _ => None,
        }
    }

    #[test]
    fn a_ca_bundle_replaces_the_webpki_roots_unless_appended() -> TestResult {
        let pki = Pki::new()?;
        let webpki = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(TlsConfig::default().root_store()?.len(), webpki);
        let bundle = TlsConfig::default().with_ca_bundle(pki.path("ca.pem"));
        assert_eq!(bundle.root_store()?.len(), 1, "the bundle is the only root");
        let appended = bundle.with_ca_bundle_mode(CaBundleMode::Append);
        assert_eq!(appended.root_store()?.len(), webpki + 1);
        Ok(())
    }

    #[test]
    fn unusable_files_are_config_errors_that_keep_their_cause() -> TestResult {
        let pki = Pki::new()?;
        let missing = TlsConfig::default().with_ca_bundle(pki.path("missing.pem"));
        let error = missing.build().err();
        assert!(
            error
                .as_ref()
                .and_then(|e| std::error::Error::source(e))
                .is_some(),
            "{error:?}"
        );
        assert_eq!(
            config_error(missing.build()),
            Some((Setting::CaBundle, "is unreadable or not PEM"))
        );
        assert_eq!(
            config_error(
                TlsConfig::default()
                    .with_ca_bundle(pki.path("empty.pem"))
                    .build()
            ),
            Some((Setting::CaBundle, "holds no PEM certificate"))
        );
        let client = |cert: &str, key: &str| {
            TlsConfig::default()
                .with_client_cert(ClientCert::new(pki.path(cert), pki.path(key)))
                .build()
        };
        assert!(client("client.pem", "client.key").is_ok());
        assert_eq!(
            config_error(client("client.pem", "other.key")),
            Some((Setting::ClientKey, "does not fit the client certificate"))
        );
        assert_eq!(
            config_error(client("client.pem", "missing.key")),
            Some((Setting::ClientKey, "is unreadable or not PEM"))
        );
        assert_eq!(
            config_error(client("empty.pem", "client.key")),
            Some((Setting::ClientCert, "holds no PEM certificate"))
        );
        assert!(TlsConfig::default().with_skip_verify(true).build().is_ok());
        Ok(())
    }

    #[cfg(feature = "rustls-config")]
    #[test]
    fn the_exported_config_follows_the_same_rules() -> TestResult {
        let pki = Pki::new()?;
        let plain = rustls_client_config(&TlsConfig::default())?;
        assert!(plain.alpn_protocols.is_empty(), "no HTTP ALPN for Kafka");
        assert!(!plain.client_auth_cert_resolver.has_certs());
        let mutual = rustls_client_config(
            &TlsConfig::default()
                .with_ca_bundle(pki.path("ca.pem"))
                .with_client_cert(ClientCert::new(
                    pki.path("client.pem"),
                    pki.path("client.key"),
                )),
        )?;
        assert!(mutual.client_auth_cert_resolver.has_certs());
        assert_eq!(
            config_error(rustls_client_config(
                &TlsConfig::default().with_ca_bundle(pki.path("empty.pem"))
            )),
            Some((Setting::CaBundle, "holds no PEM certificate"))
        );
        assert_eq!(
            config_error(rustls_client_config(
                &TlsConfig::default().with_client_cert(ClientCert::new(
                    pki.path("client.pem"),
                    pki.path("other.key")
                ))
            )),
            Some((Setting::ClientKey, "does not fit the client certificate"))
        );
        assert!(rustls_client_config(&TlsConfig::default().with_skip_verify(true)).is_ok());
        Ok(())
    }
}
