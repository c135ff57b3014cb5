//! The OTLP exporters' HTTP client: [`opentelemetry_http::HttpClient`] over
//! [`secret_http::HttpClient`], on a one-thread tokio runtime of its own.
//!
//! The SDK's batch span processor and periodic metric reader export from their own threads
//! with a plain `block_on`, outside any tokio runtime, while secret-http's pool needs one:
//! each request is handed to the runtime and awaited through its join handle (a future any
//! executor can wait on).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, USER_AGENT};
use http::{HeaderValue, Request, Response};
use opentelemetry_http::HttpError as ExportError;
use tokio::runtime::Handle;
use tracing::instrument::WithSubscriber as _;

/// The user agent of every export.
const AGENT: &str = concat!("secrets-sdk/", env!("CARGO_PKG_VERSION"), " (OTLP)");

/// Sends the SDK's export requests through secret-http.
///
/// Only the content headers of the SDK's request are kept; the configured headers (marked
/// sensitive) are this client's own, so a header the SDK reads from the environment by
/// itself never reaches the wire unchecked.
#[derive(Clone)]
pub(crate) struct Transport {
    client: secret_http::HttpClient,
    runtime: Handle,
    headers: Arc<HeaderMap>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("client", &self.client)
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(
        client: secret_http::HttpClient,
        runtime: Handle,
        mut headers: HeaderMap,
    ) -> Self {
        for value in headers.values_mut() {
            value.set_sensitive(true);
        }
        headers
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(AGENT));
        Self {
            client,
            runtime,
            headers: Arc::new(headers),
        }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, ExportError> {
        let (parts, body) = request.into_parts();
        let mut outgoing = secret_http::Request::new(parts.method, parts.uri).with_body(body);
        for name in [CONTENT_TYPE, CONTENT_ENCODING] {
            if let Some(value) = parts.headers.get(&name) {
                outgoing = outgoing.with_header(name, value.clone());
            }
        }
        for (name, value) in self.headers.iter() {
            outgoing = outgoing.with_header(name.clone(), value.clone());
        }
        let client = self.client.clone();
        // The export's own request is not the SDK's traffic: no span or log of it may reach
        // a subscriber (the OpenTelemetry layer would export it again, forever).
        let task = self.runtime.spawn(
            async move { client.send(&outgoing).await }
                .with_subscriber(tracing::subscriber::NoSubscriber::default()),
        );
        let response = task.await.map_err(|e| Box::new(e) as ExportError)??;
        let mut answer = Response::new(Bytes::copy_from_slice(response.body()));
        *answer.status_mut() = response.status();
        *answer.headers_mut() = response.headers().clone();
        Ok(answer)
    }
}

impl opentelemetry_http::HttpClient for Transport {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, ExportError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(request))
    }
}
