//! The one HTTP client stack of secrets-sdk, in the spirit of hyper-util: every crate that
//! talks HTTP (the KV v2 provider, the AuthZEN PDP client) builds its client here, so that
//! TLS, the loopback rule, body caps, timeouts, retries and error classes are the same
//! everywhere. It is the only workspace crate that depends on hyper, hyper-rustls, rustls
//! and webpki-roots directly; their types stay out of its API (the `http` crate's `Method`,
//! `Uri`, `StatusCode` and headers are used as they are).
//!
//! - [`HttpClient`]: hyper-util's pooled keep-alive HTTP/1.1 client over hyper-rustls with
//!   rustls' `ring` provider (never `aws-lc-rs`). Redirects are never followed.
//! - [`TlsConfig`]: TLS 1.2 and 1.3; the webpki roots, or a CA bundle under **one rule**:
//!   a bundle *replaces* the webpki roots ([`CaBundleMode::Replace`], the default, as
//!   Vault's `VAULT_CACERT` does), unless [`CaBundleMode::Append`] adds it to them; a client
//!   certificate for mutual TLS; `skip_verify`, whose use is the caller's policy.
//! - [`base_url`] and [`is_loopback`]: `http(s)://host[:port][/path]` without credentials
//!   or a query, and plain `http://` only to loopback hosts unless allowed. Every request
//!   obeys the rule too, not only the base URL.
//! - [`Request`] / [`Response`] / [`Body`]: bodies are capped
//!   ([`ClientConfig::max_body_bytes`]) and wiped (zeroized) when dropped; request bodies
//!   (login credentials) are wiped once nothing else holds them.
//! - Time: a per-attempt timeout ([`ClientConfig::timeout`]) covering connect, TLS, head and
//!   body, and an overall [`Deadline`] across attempts.
//! - [`RetryPolicy`] and [`HttpClient::send_retrying`]: jittered exponential backoff;
//!   idempotent requests are retried after transient failures, others only when they surely
//!   were not handled.
//! - Telemetry: each attempt is an OpenTelemetry HTTP client span, `http_request` at DEBUG,
//!   with the method, `server.address`/`server.port`, the status and `error.type`; never the
//!   URL's path or query, a header or a body (see [`HttpClient`]).
//! - [`HttpError`]: one classification (`CONFIG`, `INSECURE_HTTP`, `CONNECT`,
//!   `CONNECTION_LOST`, `TLS`, `TIMEOUT`, `STATUS`, `TOO_LARGE`, `BODY_CUT`, `BAD_FRAMING`)
//!   that keeps hyper's or rustls' error as its `source`. Messages never hold a URL, a header
//!   value or a body.
//!
//! ```
//! use std::time::Duration;
//! use http::StatusCode;
//! use secret_http::{ClientConfig, HttpClient, Request, RetryPolicy, base_url};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! // A one-shot server on loopback, where plain HTTP is allowed.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(async move {
//!     let (mut socket, _) = listener.accept().await?;
//!     let mut buf = [0; 1024];
//!     let _ = socket.read(&mut buf).await?;
//!     socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await
//! });
//!
//! let client = HttpClient::new(&ClientConfig::new("example").with_timeout(Duration::from_secs(5)))?;
//! let base = base_url(&format!("http://{addr}"), false)?;
//! let response = client.send_retrying(&Request::get(base), &RetryPolicy::default()).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(&response.body()[..], b"ok");
//!
//! // Plain HTTP elsewhere is refused before any I/O.
//! let elsewhere = Request::get("http://bao.example/v1/".parse()?);
//! assert_eq!(client.send(&elsewhere).await.unwrap_err().code(), "INSECURE_HTTP");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! TLS (rustls with `ring`, TLS 1.2 and 1.3, webpki roots) and HTTP/1.1 are always on.
//! - `rustls-config`: `rustls_client_config`, the rustls `ClientConfig` built from a
//!   [`TlsConfig`] by the very rules the HTTP client follows, for a transport that takes
//!   one (rskafka in `secret-audit`'s Kafka sink). It is the one place a rustls type crosses
//!   this crate's API, so that the workspace still has one TLS stack and one set of rules.
//!
//! # Secrets in memory
//! Header values marked sensitive stay in hyper's buffers, which cannot be zeroized; bodies
//! are copied out of hyper's read buffer into a [`Body`] that is wiped on drop, but the
//! buffer itself (and the kernel's) is out of this crate's reach.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod deadline;
mod error;
mod message;
mod retry;
mod tls;
mod url;

pub use client::{
    ClientConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_TIMEOUT, HttpClient,
};
pub use deadline::Deadline;
pub use error::{BoxError, HttpError, Setting};
pub use message::{Body, Request, Response};
pub use retry::{RETRYABLE_STATUSES, RetryError, RetryPolicy};
#[cfg(feature = "rustls-config")]
pub use tls::rustls_client_config;
pub use tls::{CaBundleMode, ClientCert, TlsConfig};
pub use url::{base_url, is_loopback};

#[cfg(test)]
mod tests;
