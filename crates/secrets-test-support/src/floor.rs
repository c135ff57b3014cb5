//! The benchmarks' floor: a raw hyper keep-alive `GET` of a KV v2 secret plus a JSON parse.
//! Nothing a provider does can be cheaper, so benchmarks report their ratio to it.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::OpenBaoServer;

/// The error type of the floor (boxed, as benches want).
pub type FloorError = Box<dyn std::error::Error + Send + Sync>;

/// A pooled hyper-util client with a pre-built URL and token header.
#[derive(Clone, Debug)]
pub struct HyperFloor {
    client: Client<HttpConnector, Empty<Bytes>>,
    url: http::Uri,
    token: http::HeaderValue,
}

impl HyperFloor {
    /// A floor reading `secret/<path>` from `bao` with its root token. Does no I/O.
    ///
    /// # Errors
    /// When the address or token do not make a valid URL or header.
    pub fn new(bao: &OpenBaoServer, path: &str) -> Result<Self, FloorError> {
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            url: format!("{}/v1/secret/data/{path}", bao.addr()).parse()?,
            token: http::HeaderValue::from_str(bao.root_token())?,
        })
    }

    /// One `GET` and a `serde_json::Value` parse of the body.
    ///
    /// # Errors
    /// Transport errors, a status other than 200, or a body that is not JSON.
    pub async fn get(&self) -> Result<serde_json::Value, FloorError> {
        let mut request = http::Request::new(Empty::<Bytes>::new());
        *request.uri_mut() = self.url.clone();
        request
            .headers_mut()
            .insert("x-vault-token", self.token.clone());
        let response = self.client.request(request).await?;
        if response.status() != http::StatusCode::OK {
            return Err(format!("floor GET returned {}", response.status()).into());
        }
        let body = response.into_body().collect().await?.to_bytes();
        Ok(serde_json::from_slice(&body)?)
    }
}
