//! How a KV v2 provider authenticates: [`Kv2Auth`].

use std::path::PathBuf;

use secrecy::SecretString;

use super::DEFAULT_KUBERNETES_JWT_PATH;

/// How the provider authenticates. Nothing is sent until the first read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Kv2Auth {
    /// A token given directly. A `403` cannot be fixed by logging in again.
    Token {
        /// The token.
        token: SecretString,
    },
    /// A token read from a file (trimmed), e.g. written by an agent. The file is read again
    /// after a `403`, so a rotated token is picked up.
    TokenFile {
        /// The file holding the token.
        path: PathBuf,
    },
    /// AppRole: `POST /v1/auth/<mount>/login` with `role_id` and `secret_id`.
    AppRole {
        /// The auth mount, `approle` by default.
        mount: String,
        /// The role ID (an identifier, not a secret).
        role_id: String,
        /// The secret ID; `None` for roles with `bind_secret_id=false`.
        secret_id: Option<SecretString>,
    },
    /// Kubernetes: `POST /v1/auth/<mount>/login` with `role` and the service-account JWT, read
    /// from `jwt_path` at every login (projected tokens rotate).
    Kubernetes {
        /// The auth mount, `kubernetes` by default.
        mount: String,
        /// The Kubernetes auth role.
        role: String,
        /// The service-account token file.
        jwt_path: PathBuf,
    },
}

impl Kv2Auth {
    /// Token authentication.
    #[must_use]
    pub fn token(token: impl Into<SecretString>) -> Self {
        Self::Token {
            token: token.into(),
        }
    }

    /// Token authentication from a file.
    #[must_use]
    pub fn token_file(path: impl Into<PathBuf>) -> Self {
        Self::TokenFile { path: path.into() }
    }

    /// AppRole at the default `approle` mount.
    #[must_use]
    pub fn approle(role_id: impl Into<String>, secret_id: Option<SecretString>) -> Self {
        Self::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// Kubernetes at the default `kubernetes` mount with the default JWT path.
    #[must_use]
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::Kubernetes {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_path: DEFAULT_KUBERNETES_JWT_PATH.into(),
        }
    }

    /// Sets the auth mount of AppRole or Kubernetes (ignored for tokens).
    #[must_use]
    pub fn with_mount(mut self, new_mount: impl Into<String>) -> Self {
        if let Self::AppRole { mount, .. } | Self::Kubernetes { mount, .. } = &mut self {
            *mount = new_mount.into();
        }
        self
    }

    /// Sets the JWT path of Kubernetes (ignored otherwise).
    #[must_use]
    pub fn with_jwt_path(mut self, path: impl Into<PathBuf>) -> Self {
        if let Self::Kubernetes { jwt_path, .. } = &mut self {
            *jwt_path = path.into();
        }
        self
    }

    /// The method name used in errors and logs: `token`, `approle` or `kubernetes`.
    #[must_use]
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } | Self::TokenFile { .. } => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
        }
    }

    /// Whether a rejected token can be replaced by authenticating again.
    pub(crate) fn can_reauthenticate(&self) -> bool {
        !matches!(self, Self::Token { .. })
    }
}
