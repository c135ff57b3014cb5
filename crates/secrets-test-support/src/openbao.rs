//! Throwaway OpenBao dev servers and an admin client for setting up test data.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http;
use crate::{Error, bao_bin, free_port_pair, random_hex};

/// How long a fresh dev server may take to become healthy (generous: CI runs many in parallel
/// on two cores).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per admin request.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Per readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts when a port chosen by [`free_port_pair`] was taken before the server bound it.
const PORT_ATTEMPTS: usize = 6;

/// A fresh `bao server -dev` on a free loopback port, killed (and reaped) on drop.
///
/// Dev mode keeps everything in memory, starts unsealed, and mounts KV v2 at `secret/`. Each
/// server gets a random root token; nothing is written to `~/.vault-token`.
///
/// ```no_run
/// # fn main() -> Result<(), secrets_test_support::Error> {
/// use secrets_test_support::OpenBaoServer;
/// use serde_json::json;
///
/// let bao = OpenBaoServer::start()?;
/// let version = bao.kv_put("secret", "app/api", &json!({"token": "s3cr3t"}))?;
/// let (status, body) = bao.api("GET", &format!("secret/data/app/api?version={version}"), None)?;
/// assert_eq!(status, 200);
/// assert_eq!(body["data"]["data"]["token"], "s3cr3t");
/// # Ok(()) }
/// ```
pub struct OpenBaoServer {
    bin: PathBuf,
    port: u16,
    /// Plain-HTTP listener for admin calls and health probes: `port` itself unless TLS.
    admin_port: u16,
    root_token: String,
    mode: Mode,
    /// Private temp dir: `bao.log`, and for TLS `certs/` plus `admin-listener.hcl`.
    workdir: PathBuf,
    child: Option<Child>,
}

impl fmt::Debug for OpenBaoServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenBaoServer")
            .field("addr", &self.addr())
            .field("admin_addr", &self.admin_addr())
            .field("root_token", &"[REDACTED]")
            .field("pid", &self.pid())
            .field("workdir", &self.workdir)
            .finish()
    }
}

/// How the API listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain HTTP.
    Plain,
    /// `-dev-tls`: TLS with a CA of the server's own.
    DevTls,
    /// TLS that requires a client certificate signed by the test CA.
    MutualTls,
}

/// Role and secret IDs returned by [`OpenBaoServer::setup_approle`].
#[derive(Clone)]
pub struct AppRoleCredentials {
    /// The role's `role_id`.
    pub role_id: String,
    /// A fresh `secret_id` for it.
    pub secret_id: String,
}

impl fmt::Debug for AppRoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRoleCredentials")
            .field("role_id", &self.role_id)
            .field("secret_id", &"[REDACTED]")
            .finish()
    }
}

impl OpenBaoServer {
    /// Starts a fresh plain-HTTP dev server and waits until `/v1/sys/health` reports it
    /// unsealed and the `secret/` mount answers.
    pub fn start() -> Result<Self, Error> {
        Self::launch(Mode::Plain)
    }

    /// Starts a fresh dev server with `-dev-tls`: the API is `https://127.0.0.1:PORT` with a
    /// certificate (SANs `localhost`, `127.0.0.1`) signed by a CA at [`Self::ca_cert_path`].
    ///
    /// A second, plain-HTTP listener on [`Self::admin_addr`] serves the admin helpers, so they
    /// need no TLS client.
    pub fn start_tls() -> Result<Self, Error> {
        Self::launch(Mode::DevTls)
    }

    /// Starts a fresh dev server whose API, `https://127.0.0.1:PORT`, **requires a client
    /// certificate** (`tls_require_and_verify_client_cert`): a second `listener "tcp"` with a
    /// server certificate (SANs `localhost`, `127.0.0.1`) and a client CA from
    /// [`write_test_pki`](Self::write_test_pki). The CA is at [`Self::ca_cert_path`], a client
    /// certificate it signed at [`Self::client_cert_path`] / [`Self::client_key_path`]; all are
    /// made anew on every (re)start. The admin helpers use the plain-HTTP dev listener on
    /// [`Self::admin_addr`].
    pub fn start_mtls() -> Result<Self, Error> {
        Self::launch(Mode::MutualTls)
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

    fn launch(mode: Mode) -> Result<Self, Error> {
        let bin = bao_bin()?;
        let workdir = std::env::temp_dir().join(format!(
            "secrets-test-bao-{}-{}",
            std::process::id(),
            &random_hex()[..12]
        ));
        std::fs::create_dir_all(&workdir)
            .map_err(Error::io(format!("create {}", workdir.display())))?;
        let mut server = Self {
            bin,
            port: 0,
            admin_port: 0,
            root_token: format!("root-{}", random_hex()),
            mode,
            workdir,
            child: None,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            server.port = free_port_pair()?;
            server.admin_port = server.port;
            if mode != Mode::Plain {
                // Neither the admin port nor its implicit cluster port (+1) may collide.
                server.admin_port = loop {
                    let candidate = free_port_pair()?;
                    if candidate.abs_diff(server.port) > 1 {
                        break candidate;
                    }
                };
            }
            match server.spawn_and_wait() {
                Err(e) if attempt < PORT_ATTEMPTS && is_addr_in_use(&e) => continue,
                result => return result.map(|()| server),
            }
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://…` for [`Self::start_tls`] and
    /// [`Self::start_mtls`]).
    pub fn addr(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Plain-HTTP address the admin helpers use: equal to [`Self::addr`] unless TLS.
    pub fn admin_addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The API port (stable across [`Self::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The root token (stable across [`Self::restart`]).
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// Whether the API is served over TLS.
    pub fn is_tls(&self) -> bool {
        self.mode != Mode::Plain
    }

    /// PEM of the CA that signed the TLS server's certificate (`None` for plain HTTP). The
    /// file is regenerated, with a new CA, on every (re)start.
    pub fn ca_cert_path(&self) -> Option<PathBuf> {
        self.is_tls().then(|| self.cert_dir().join("vault-ca.pem"))
    }

    /// PEM of a client certificate the [`Self::start_mtls`] listener accepts (`None` for the
    /// other kinds of server).
    pub fn client_cert_path(&self) -> Option<PathBuf> {
        (self.mode == Mode::MutualTls).then(|| self.cert_dir().join("client-cert.pem"))
    }

    /// The private key (PEM, PKCS#8) of [`Self::client_cert_path`].
    pub fn client_key_path(&self) -> Option<PathBuf> {
        (self.mode == Mode::MutualTls).then(|| self.cert_dir().join("client-key.pem"))
    }

    /// The server's log file (stdout and stderr of every start, appended).
    pub fn log_path(&self) -> PathBuf {
        self.workdir.join("bao.log")
    }

    /// The last `lines` lines of the server log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server's process id, or `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may still be starting).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the server (SIGKILL) and reaps it. Connections then fail with "connection
    /// refused" until [`Self::restart`]. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already-exited is fine: wait() reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server (if running) and starts it again on the same port with the same root
    /// token, then waits until healthy.
    ///
    /// Dev-mode storage is in memory: **all data, policies, tokens other than the root token,
    /// auth mounts and namespaces are gone** after a restart, and a TLS server gets a new CA.
    /// Callers re-create what they need.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn_and_wait() {
                // The old socket may linger for a moment, or another process grabbed the port.
                Err(e) if Instant::now() < deadline && is_addr_in_use(&e) => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                result => return result,
            }
        }
    }

    fn cert_dir(&self) -> PathBuf {
        self.workdir.join("certs")
    }

    fn spawn_and_wait(&mut self) -> Result<(), Error> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(format!("open {}", log_path.display())))?;
        writeln!(
            log,
            "==> secrets-test-support: starting bao on 127.0.0.1:{}",
            self.port
        )
        .map_err(Error::io(format!("write {}", log_path.display())))?;

        let mut cmd = Command::new(&self.bin);
        cmd.args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={}", self.root_token));
        if self.mode == Mode::MutualTls {
            // The dev listener is the plain admin one; the API is a listener of its own.
            let certs = self.cert_dir();
            let _ = std::fs::remove_dir_all(&certs);
            Self::write_test_pki(&certs)?;
            let config = self.workdir.join("mtls-listener.hcl");
            let file = |name: &str| certs.join(name).display().to_string();
            let hcl = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  \
                 tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n  \
                 tls_client_ca_file = \"{}\"\n  \
                 tls_require_and_verify_client_cert = true\n}}\n",
                self.port,
                file("vault-cert.pem"),
                file("vault-key.pem"),
                file("vault-ca.pem"),
            );
            std::fs::write(&config, hcl)
                .map_err(Error::io(format!("write {}", config.display())))?;
            cmd.arg(format!("-dev-listen-address=127.0.0.1:{}", self.admin_port))
                .arg(format!("-config={}", config.display()));
        } else {
            cmd.arg(format!("-dev-listen-address=127.0.0.1:{}", self.port));
        }
        if self.mode == Mode::DevTls {
            let certs = self.cert_dir();
            // A killed server leaves its read-only cert files behind; start from a clean dir.
            let _ = std::fs::remove_dir_all(&certs);
            std::fs::create_dir_all(&certs)
                .map_err(Error::io(format!("create {}", certs.display())))?;
            let config = self.workdir.join("admin-listener.hcl");
            let hcl = format!(
                "listener \"tcp\" {{\n  address = \"127.0.0.1:{}\"\n  tls_disable = true\n}}\n",
                self.admin_port
            );
            std::fs::write(&config, hcl)
                .map_err(Error::io(format!("write {}", config.display())))?;
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", certs.display()))
                .arg(format!("-config={}", config.display()));
        }
        // The test's own BAO_*/VAULT_* settings must not steer the server.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("BAO_") || key_str.starts_with("VAULT_") {
                cmd.env_remove(&key);
            }
        }
        let stdout = log.try_clone().map_err(Error::io("clone log handle"))?;
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(log);
        let child = cmd
            .spawn()
            .map_err(Error::io(format!("spawn {}", self.bin.display())))?;
        self.child = Some(child);

        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(Error::ServerExited {
                            status: status.to_string(),
                            log_tail: self.log_tail(15),
                        });
                    }
                    Ok(None) => {}
                    Err(source) => {
                        self.stop();
                        return Err(Error::Io {
                            context: "poll bao process".into(),
                            source,
                        });
                    }
                }
            }
            if self.ready() {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(Error::NotHealthy {
                    addr: self.admin_addr(),
                    waited: started.elapsed(),
                    log_tail: self.log_tail(15),
                });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn ready(&self) -> bool {
        let probe = |path: &str, token: Option<&str>| {
            let headers: Vec<(&str, &str)> =
                token.map(|t| ("X-Vault-Token", t)).into_iter().collect();
            http::request(
                self.admin_socket(),
                "GET",
                path,
                &headers,
                None,
                PROBE_TIMEOUT,
            )
            .ok()
        };
        let healthy = probe("/v1/sys/health", None).is_some_and(|r| {
            r.status == 200
                && serde_json::from_slice::<Value>(&r.body)
                    .is_ok_and(|v| v["sealed"] == Value::Bool(false))
        });
        healthy
            && probe("/v1/secret/config", Some(&self.root_token)).is_some_and(|r| r.status == 200)
    }

    fn admin_socket(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.admin_port))
    }

    /// One admin request with the root token: `(status, body)`. `path` is `/v1/...` or relative
    /// to `/v1/` (`"secret/data/app"`); the body is `Null` when empty and a JSON string when not
    /// JSON.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        self.api_as(Some(&self.root_token), None, method, path, body)
    }

    /// Like [`Self::api`] with an explicit token (or none) and `X-Vault-Namespace` header.
    pub fn api_as(
        &self,
        token: Option<&str>,
        namespace: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        if self.child.is_none() {
            return Err(Error::Stopped);
        }
        let target = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/v1/{path}")
        };
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(token) = token {
            headers.push(("X-Vault-Token", token));
        }
        if let Some(namespace) = namespace {
            headers.push(("X-Vault-Namespace", namespace));
        }
        let payload = body.map(Value::to_string);
        let response = http::request(
            self.admin_socket(),
            method,
            &target,
            &headers,
            payload.as_deref().map(str::as_bytes),
            API_TIMEOUT,
        )?;
        let value = if response.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&response.body).into_owned())
            })
        };
        Ok((response.status, value))
    }

    /// [`Self::api`] that fails unless the status is one of `ok`.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Value, Error> {
        let (status, value) = self.api(method, path, body)?;
        if ok.contains(&status) {
            return Ok(value);
        }
        let errors = match &value["errors"] {
            Value::Array(errors) => errors
                .iter()
                .map(|e| e.as_str().unwrap_or("?"))
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        };
        Err(Error::UnexpectedStatus {
            method: method.to_owned(),
            path: path.split('?').next().unwrap_or_default().to_owned(),
            status,
            errors,
        })
    }

    /// Writes a new KV v2 version (`POST {mount}/data/{path}` with `{"data": data}`) and returns
    /// its version number.
    pub fn kv_put(&self, mount: &str, path: &str, data: &Value) -> Result<u64, Error> {
        let url = kv_url(mount, "data", path);
        let response = self.call("POST", &url, Some(&json!({ "data": data })), &[200])?;
        response["data"]["version"]
            .as_u64()
            .ok_or_else(|| Error::BadResponse {
                addr: self.admin_addr(),
                reason: format!("no data.version in the response to POST {url}"),
            })
    }

    /// Reads `GET {mount}/data/{path}[?version=N]` with the root token: `(status, body)`.
    pub fn kv_get(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<(u16, Value), Error> {
        let mut url = kv_url(mount, "data", path);
        if let Some(version) = version {
            url.push_str(&format!("?version={version}"));
        }
        self.api("GET", &url, None)
    }

    /// Soft-deletes the latest version (`DELETE {mount}/data/{path}`).
    pub fn kv_delete_latest(&self, mount: &str, path: &str) -> Result<(), Error> {
        self.call("DELETE", &kv_url(mount, "data", path), None, &[204])
            .map(drop)
    }

    /// Soft-deletes the given versions (`POST {mount}/delete/{path}`).
    pub fn kv_delete_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), Error> {
        let body = json!({ "versions": versions });
        self.call("POST", &kv_url(mount, "delete", path), Some(&body), &[204])
            .map(drop)
    }

    /// Undeletes the given versions (`POST {mount}/undelete/{path}`).
    pub fn kv_undelete_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), Error> {
        let body = json!({ "versions": versions });
        self.call(
            "POST",
            &kv_url(mount, "undelete", path),
            Some(&body),
            &[204],
        )
        .map(drop)
    }

    /// Permanently destroys the given versions (`PUT {mount}/destroy/{path}`).
    pub fn kv_destroy_versions(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), Error> {
        let body = json!({ "versions": versions });
        self.call("PUT", &kv_url(mount, "destroy", path), Some(&body), &[204])
            .map(drop)
    }

    /// Writes the secret's metadata (`POST {mount}/metadata/{path}`), e.g.
    /// `{"max_versions": 5, "delete_version_after": "1h", "custom_metadata": {...}}`.
    pub fn kv_write_metadata(
        &self,
        mount: &str,
        path: &str,
        metadata: &Value,
    ) -> Result<(), Error> {
        self.call(
            "POST",
            &kv_url(mount, "metadata", path),
            Some(metadata),
            &[204],
        )
        .map(drop)
    }

    /// Deletes the secret with all versions and metadata (`DELETE {mount}/metadata/{path}`).
    pub fn kv_delete_metadata(&self, mount: &str, path: &str) -> Result<(), Error> {
        self.call("DELETE", &kv_url(mount, "metadata", path), None, &[204])
            .map(drop)
    }

    /// Mounts a secrets engine (`POST sys/mounts/{path}`), e.g.
    /// `mount_secrets("kv1", "kv", json!({"version": "1"}))`.
    pub fn mount_secrets(&self, path: &str, kind: &str, options: &Value) -> Result<(), Error> {
        let body = json!({ "type": kind, "options": options });
        self.call(
            "POST",
            &format!("sys/mounts/{}", trim(path)),
            Some(&body),
            &[204],
        )
        .map(drop)
    }

    /// Mounts another KV v2 engine at `path`.
    pub fn mount_kv2(&self, path: &str) -> Result<(), Error> {
        self.mount_secrets(path, "kv", &json!({ "version": "2" }))
    }

    /// Creates or replaces an ACL policy (`PUT sys/policies/acl/{name}`).
    pub fn put_policy(&self, name: &str, hcl: &str) -> Result<(), Error> {
        let body = json!({ "policy": hcl });
        self.call(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(&body),
            &[204],
        )
        .map(drop)
    }

    /// Creates a renewable service token with these policies and TTL (`"1h"`, `"30s"`).
    pub fn create_token(&self, policies: &[&str], ttl: &str) -> Result<String, Error> {
        let auth = self.create_token_with(&json!({ "policies": policies, "ttl": ttl }))?;
        auth["client_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::BadResponse {
                addr: self.admin_addr(),
                reason: "no auth.client_token in the token/create response".into(),
            })
    }

    /// `POST auth/token/create` with a raw request body (`renewable`, `explicit_max_ttl`,
    /// `num_uses`, `no_parent`, …); returns the response's `auth` object.
    pub fn create_token_with(&self, request: &Value) -> Result<Value, Error> {
        let mut response = self.call("POST", "auth/token/create", Some(request), &[200])?;
        Ok(response["auth"].take())
    }

    /// Revokes a token (`POST auth/token/revoke`).
    pub fn revoke_token(&self, token: &str) -> Result<(), Error> {
        let body = json!({ "token": token });
        self.call("POST", "auth/token/revoke", Some(&body), &[204])
            .map(drop)
    }

    /// Enables an auth method (`POST sys/auth/{path}`), e.g. `enable_auth("approle", "approle")`.
    pub fn enable_auth(&self, path: &str, kind: &str) -> Result<(), Error> {
        let body = json!({ "type": kind });
        self.call(
            "POST",
            &format!("sys/auth/{}", trim(path)),
            Some(&body),
            &[204],
        )
        .map(drop)
    }

    /// Enables AppRole at `approle/` (if needed), creates `role` with these token policies and
    /// returns its role ID and a fresh secret ID. Log in with
    /// `POST auth/approle/login {"role_id", "secret_id"}`.
    pub fn setup_approle(
        &self,
        role: &str,
        policies: &[&str],
    ) -> Result<AppRoleCredentials, Error> {
        let auths = self.call("GET", "sys/auth", None, &[200])?;
        if auths["data"]["approle/"].is_null() {
            self.enable_auth("approle", "approle")?;
        }
        let role_path = format!("auth/approle/role/{role}");
        let body = json!({ "token_policies": policies, "token_ttl": "1h", "token_max_ttl": "4h" });
        self.call("POST", &role_path, Some(&body), &[204])?;
        let role_id = self.call("GET", &format!("{role_path}/role-id"), None, &[200])?;
        let secret_id = self.call(
            "POST",
            &format!("{role_path}/secret-id"),
            Some(&json!({})),
            &[200],
        )?;
        let field = |v: &Value, name: &str| {
            v["data"][name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::BadResponse {
                    addr: self.admin_addr(),
                    reason: format!("no data.{name} in the AppRole response"),
                })
        };
        Ok(AppRoleCredentials {
            role_id: field(&role_id, "role_id")?,
            secret_id: field(&secret_id, "secret_id")?,
        })
    }

    /// Creates a namespace (`POST sys/namespaces/{name}`). Set up data inside it with
    /// [`Self::api_as`] and `namespace = Some(name)`; it has no `secret/` mount of its own.
    pub fn create_namespace(&self, name: &str) -> Result<(), Error> {
        self.call(
            "POST",
            &format!("sys/namespaces/{}", trim(name)),
            Some(&json!({})),
            &[200, 204],
        )
        .map(drop)
    }

    /// Seals the server: every request then gets 503 `{"errors":["Vault is sealed"]}` until
    /// [`Self::restart`] (dev mode cannot be unsealed without its key).
    pub fn seal(&self) -> Result<(), Error> {
        self.call("PUT", "sys/seal", None, &[204]).map(drop)
    }
}

impl Drop for OpenBaoServer {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "secrets-test-support: OpenBao log kept at {}",
                self.log_path().display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.workdir);
        }
    }
}

fn trim(segment: &str) -> &str {
    segment.trim_matches('/')
}

fn kv_url(mount: &str, op: &str, path: &str) -> String {
    format!("{}/{op}/{}", trim(mount), trim(path))
}

fn is_addr_in_use(error: &Error) -> bool {
    matches!(error, Error::ServerExited { log_tail, .. } if log_tail.contains("address already in use"))
}
