//! A throwaway OpenID provider for tests: `oidc-provider` (npm, a certified OpenID Connect
//! implementation) under Node.js on a free loopback port, started from
//! `fixtures/oidc/issuer.mjs`: one client-credentials client (`secrets-test`), JWT access
//! tokens (RFC 9068, ES256) with `aud` = the secrets audience and scope `reader` (the role
//! the Cerbos test policies know), and DPoP (RFC 9449).
//!
//! ```no_run
//! # fn main() -> Result<(), secrets_test_support::Error> {
//! use secrets_test_support::oidc::OidcProvider;
//!
//! let mut issuer = OidcProvider::start()?;
//! let token = issuer.token(None)?; // a bearer token
//! assert_eq!(token.token_type, "Bearer");
//! issuer.rotate()?; // a fresh signing key, the old one still published
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use crate::launch::{self, LaunchError};
use crate::{Error, http, paths};

/// How long a fresh provider may take to answer its discovery document.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Per readiness probe and per token request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The client's credentials, as `client_secret_basic` sends them.
const BASIC: &str = "Basic c2VjcmV0cy10ZXN0OnNlY3JldHMtdGVzdC1zZWNyZXQ=";
/// The client the provider knows.
pub const CLIENT_ID: &str = "secrets-test";
/// The access tokens' audience (`SECRETS_AUDIENCE` of the tests).
pub const AUDIENCE: &str = "crud.secrets";

/// A token endpoint's answer.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the proof's key.
    pub token_type: String,
}

/// A fresh `oidc-provider` on a free loopback port, killed (and reaped) on drop. Its signing
/// keys live in its private folder, so [`Self::rotate`] keeps the old ones published.
pub struct OidcProvider {
    node: PathBuf,
    module: PathBuf,
    port: u16,
    workdir: PathBuf,
    rotate_next: bool,
    child: Option<Child>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer())
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// Starts a provider and waits until its discovery document answers.
    ///
    /// # Errors
    /// `TOOL_MISSING` when `node` is not on `PATH` or `oidc-provider` is not installed under
    /// `.tools/oidc` (`cargo xtask services install`), `IO` when it exits early or does not
    /// become ready in time.
    pub fn start() -> Result<Self, Error> {
        let node = paths::node_bin()?;
        let module = paths::oidc_provider_module()?;
        let workdir = launch::workdir("oidc", None)?;
        let mut provider = Self {
            node,
            module,
            port: 0,
            workdir,
            rotate_next: false,
            child: None,
        };
        let started = launch::on_free_port(|port| {
            provider.port = port;
            provider.spawn_and_wait()
        });
        started.map_err(|e| provider.launch_error(e))?;
        Ok(provider)
    }

    /// The issuer: `http://127.0.0.1:PORT` (stable across [`Self::rotate`]).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The token endpoint's URL (what a DPoP proof for a token request names as `htu`).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// A client-credentials token for the secrets audience; bound to the proof's key when a
    /// DPoP `proof` (for `POST` [`Self::token_endpoint`]) is given.
    ///
    /// # Errors
    /// `IO` when the provider cannot be reached, `UNEXPECTED_STATUS` or `MALFORMED_RESPONSE`
    /// (with the provider's error) when it refuses.
    pub fn token(&self, proof: Option<&str>) -> Result<TokenResponse, Error> {
        let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut headers = vec![
            ("Authorization", BASIC),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if let Some(proof) = proof {
            headers.push(("DPoP", proof));
        }
        let body = b"grant_type=client_credentials&resource=urn%3Asecrets%3Aapi&scope=reader";
        let response = http::request(
            socket,
            "POST",
            "/token",
            &headers,
            Some(body),
            REQUEST_TIMEOUT,
        )?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        if response.status != 200 {
            // The OAuth error object (`error`, `error_description`): no token in it.
            return Err(Error::UnexpectedStatus {
                method: "POST".to_owned(),
                path: "/token".to_owned(),
                status: response.status,
                errors: text,
            });
        }
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|_| Error::BadResponse {
                addr: socket.to_string(),
                reason: "the token response is not JSON".to_owned(),
            })?;
        let field = |name: &str| json[name].as_str().map(str::to_owned);
        match (field("access_token"), field("token_type")) {
            (Some(access_token), Some(token_type)) => Ok(TokenResponse {
                access_token,
                token_type,
            }),
            _ => Err(Error::BadResponse {
                addr: socket.to_string(),
                reason: "the token response lacks access_token or token_type".to_owned(),
            }),
        }
    }

    /// Restarts the provider on the same port with a fresh signing key first in its key set
    /// (tokens from now on name it), the old keys still published: an issuer's key rotation.
    ///
    /// # Errors
    /// `IO` when it does not come back.
    pub fn rotate(&mut self) -> Result<(), Error> {
        launch::stop_child(&mut self.child);
        self.rotate_next = true;
        let started = launch::on_same_port(|| self.spawn_and_wait());
        self.rotate_next = false;
        started.map_err(|e| self.launch_error(e))
    }

    /// Whether a provider on `127.0.0.1:port` answers its discovery document.
    pub fn is_ready_at(port: u16) -> bool {
        let socket = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        http::request(
            socket,
            "GET",
            "/.well-known/openid-configuration",
            &[],
            None,
            REQUEST_TIMEOUT,
        )
        .is_ok_and(|r| r.status == 200)
    }

    fn log_path(&self) -> PathBuf {
        self.workdir.join("oidc-provider.log")
    }

    fn launch_error(&self, error: LaunchError) -> Error {
        launch::launch_error(error, "oidc-provider", "node", &self.log_path())
    }

    fn spawn_and_wait(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let log = launch::open_log(
            &log_path,
            &format!("--- oidc-provider on port {} ---", self.port),
        )?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc/issuer.mjs");
        let mut cmd = Command::new(&self.node);
        cmd.arg(&script)
            .current_dir(&self.workdir)
            .env("OIDC_PORT", self.port.to_string())
            .env("OIDC_PROVIDER_MODULE", &self.module)
            .env("OIDC_KEYS_FILE", self.workdir.join("keys.json"))
            .env("OIDC_AUDIENCE", AUDIENCE)
            .env("OIDC_ROTATE", if self.rotate_next { "1" } else { "0" })
            .env("NODE_ENV", "test");
        let child = launch::spawn(&mut cmd, &self.node, log, false)?;
        self.child = Some(child);
        let port = self.port;
        launch::Readiness {
            server: "oidc-provider",
            process: "node",
            addr: self.issuer(),
            state: "ready",
            in_use: &["EADDRINUSE"],
            log_path: &log_path,
            timeout: START_TIMEOUT,
            poll: Duration::from_millis(25),
        }
        .wait(&mut self.child, || Self::is_ready_at(port))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        launch::stop_child(&mut self.child);
        launch::cleanup("oidc-provider", &self.log_path(), &self.workdir, false);
    }
}

/// [`OidcProvider::start`] for tests: `None` (after a `SKIP` line) when Node.js or
/// `oidc-provider` is not installed and not under CI; panics under `CI=true`, and whenever it
/// is installed but fails to start.
pub fn oidc_or_skip() -> Option<OidcProvider> {
    launch::or_skip(
        OidcProvider::start(),
        "oidc-provider unavailable",
        "oidc-provider failed to start",
    )
}
