//! The admin API helpers of [`OpenBaoServer`]: plain HTTP over `std::net` with the root token.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use super::OpenBaoServer;
use crate::{Error, http};

/// Per admin request.
const API_TIMEOUT: Duration = Duration::from_secs(30);

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
    pub(super) fn admin_socket(&self) -> SocketAddr {
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
    pub(super) fn call(
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

fn trim(segment: &str) -> &str {
    segment.trim_matches('/')
}

fn kv_url(mount: &str, op: &str, path: &str) -> String {
    format!("{}/{op}/{}", trim(mount), trim(path))
}
