//! The batched read behind [`VaultClient::get_credentials_many`]: one `jti` check and one
//! PDP batch for the caller, then the reads, with per-URI results in input order.

use secret_pep::ExecutionContext;
use secret_uri::SecretUri;

use super::Core;
use crate::Error;
use crate::secret::Secret;

#[cfg(doc)]
use super::VaultClient;

/// One `get_credentials_many` call, owned so it can move onto the client's runtime.
pub(super) struct ManyRequest {
    pub(super) uris: Vec<String>,
    pub(super) ctx: ExecutionContext,
}

impl Core {
    pub(super) async fn get_many(
        &self,
        request: ManyRequest,
    ) -> Result<Vec<Result<Secret, Error>>, Error> {
        let ctx = &request.ctx;
        // Refused before the PEP, per URI: a URI this client can never read takes no use.
        let mut out: Vec<Option<Result<Secret, Error>>> = Vec::with_capacity(request.uris.len());
        let mut servable: Vec<(usize, &str)> = Vec::new();
        for (at, text) in request.uris.iter().enumerate() {
            match SecretUri::parse(text) {
                Ok(uri) => match self.served(&uri) {
                    Ok(_) => {
                        out.push(None);
                        servable.push((at, text.as_str()));
                    }
                    Err(error) => {
                        self.pep.audit_refused(ctx, Some(&uri), error.code());
                        out.push(Some(Err(error)));
                    }
                },
                // The PEP parses it again, fails the same way and audits the refusal.
                Err(_) => {
                    out.push(None);
                    servable.push((at, text.as_str()));
                }
            }
        }
        let texts: Vec<&str> = servable.iter().map(|(_, text)| *text).collect();
        let decisions = self.pep.authorize_many(ctx, &texts).await?;
        let mut reads = Vec::with_capacity(decisions.len());
        for ((at, _), decision) in servable.iter().zip(decisions) {
            match decision {
                Ok(granted) => reads.push((*at, granted)),
                Err(error) => out[*at] = Some(Err(Error::from(error))),
            }
        }
        for (at, granted) in reads {
            let result = match self.served(granted.uri()) {
                Ok(provider) => self.read(provider, granted, ctx).await,
                Err(error) => Err(error),
            };
            out[at] = Some(result);
        }
        Ok(out
            .into_iter()
            .map(|r| {
                r.unwrap_or(Err(Error::Runtime {
                    reason: "a batch item was not processed",
                    source: None,
                }))
            })
            .collect())
    }
}
