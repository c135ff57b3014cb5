//! The TLS starts of [`OpenBaoServer`] (`-dev-tls`, mutual TLS) and the test PKI they use.

use std::path::Path;

use super::{Mode, OpenBaoServer};
use crate::{Error, random_hex};

impl OpenBaoServer {
    /// Starts a fresh dev server with `-dev-tls`: the API is `https://127.0.0.1:PORT` with a
    /// certificate (SANs `localhost`, `127.0.0.1`) signed by a CA at [`Self::ca_cert_path`].
    ///
    /// A second, plain-HTTP listener on [`Self::admin_addr`] serves the admin helpers, so they
    /// need no TLS client.
    pub fn start_tls() -> Result<Self, Error> {
        Self::launch(Mode::DevTls, None)
    }

    /// Starts a fresh dev server whose API, `https://127.0.0.1:PORT`, **requires a client
    /// certificate** (`tls_require_and_verify_client_cert`): a second `listener "tcp"` with a
    /// server certificate (SANs `localhost`, `127.0.0.1`) and a client CA from
    /// [`write_test_pki`](Self::write_test_pki). The CA is at [`Self::ca_cert_path`], a client
    /// certificate it signed at [`Self::client_cert_path`] / [`Self::client_key_path`]; all are
    /// made anew on every (re)start. The admin helpers use the plain-HTTP dev listener on
    /// [`Self::admin_addr`].
    pub fn start_mtls() -> Result<Self, Error> {
        Self::launch(Mode::MutualTls, None)
    }

    /// Writes a fresh test PKI into `dir` (created if needed), as PEM: a CA (`vault-ca.pem`),
    /// a server certificate for `localhost` and `127.0.0.1` (`vault-cert.pem`,
    /// `vault-key.pem`) and a client certificate (`client-cert.pem`, `client-key.pem`), both
    /// signed by the CA. Keys are ECDSA P-256 (PKCS#8), made with `rcgen` on ring.
    pub fn write_test_pki(dir: &Path) -> Result<(), Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let pki = |e: rcgen::Error| Error::Io {
            context: "generate the test PKI".into(),
            source: std::io::Error::other(e.to_string()),
        };
        std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).map_err(Error::io(format!("write {}", path.display())))
        };

        let ca_key = KeyPair::generate().map_err(pki)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("secrets-test CA {}", &random_hex()[..8]),
        );
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        write("vault-ca.pem", ca.self_signed(&ca_key).map_err(pki)?.pem())?;
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |sans: Vec<String>, name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().map_err(pki)?;
            let mut params = CertificateParams::new(sans).map_err(pki)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).map_err(pki)?;
            Ok::<_, Error>((cert.pem(), key.serialize_pem()))
        };
        let (cert, key) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        write("vault-cert.pem", cert)?;
        write("vault-key.pem", key)?;
        let (cert, key) = leaf(
            vec![],
            "secrets-test client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        write("client-cert.pem", cert)?;
        write("client-key.pem", key)?;
        Ok(())
    }
}
