//! The vault calls behind the `db` provider, on the KV v2 client's one transport and token:
//! issuing credentials (`GET <mount>/creds/<role>`, `GET <mount>/static-creds/<role>`),
//! renewing and revoking their lease (`PUT sys/leases/renew`, `PUT sys/leases/revoke`). Each is
//! a `secret_read` span (DEBUG) with `kind` = `issue`, `renew` or `revoke`, and the same
//! fields as a read.

use bytes::Bytes;
use http::Method;
use tracing::Instrument as _;

use super::transport::WipedBody;
use super::{Kv2Provider, ReadTrace};
use crate::ProviderError;

/// What the server answered one lease call: its status and (wiped on drop) body.
pub(crate) struct LeaseReply {
    pub(crate) status: u16,
    pub(crate) body: WipedBody,
}

impl Kv2Provider {
    /// The server's answer to `method` `…/v1/<target>` with the token (and a JSON `body`),
    /// after the client's retries and one re-login on a refused token. `idempotent: false`
    /// for a request that must not reach the server twice (issuing credentials creates a
    /// database user each time: a retried request whose first answer was lost would leave
    /// one behind), retried only when it surely never arrived.
    ///
    /// # Errors
    /// The transport's errors (`UNAVAILABLE`, `TIMEOUT`, `TLS`, `TOO_LARGE`, …) and the
    /// login's; any status is the caller's to map.
    pub(crate) async fn lease_call(
        &self,
        kind: &'static str,
        mount: &str,
        method: Method,
        target: &str,
        body: Option<Bytes>,
        idempotent: bool,
    ) -> Result<LeaseReply, ProviderError> {
        let span = tracing::debug_span!(
            secret_telemetry::names::span::READ,
            provider = self.inner.transport.provider,
            mount,
            kind,
            status = tracing::field::Empty,
            status_class = tracing::field::Empty,
            attempts = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let mut trace = ReadTrace::default();
        let url = self.inner.transport.url(target);
        let result = async {
            let url = url?;
            self.inner
                .request(method, &url, body.as_ref(), idempotent, &mut trace)
                .await
        }
        .instrument(span.clone())
        .await
        .map(|reply| LeaseReply {
            status: reply.status.as_u16(),
            body: reply.body,
        });
        trace.finish(&span, kind, &result);
        result
    }
}
