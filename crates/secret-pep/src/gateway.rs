//! [`ContextHeaders`]: which gateway headers an [`ExecutionContext`] is read from.

use http::HeaderMap;

use crate::{ExecutionContext, PepError};

/// Header names read by [`ContextHeaders`].
pub mod headers {
    /// `x-subject`: the subject.
    pub const SUBJECT: &str = "x-subject";
    /// `x-aud`: audiences, comma separated.
    pub const AUD: &str = "x-aud";
    /// `x-jti`: the token id.
    pub const JTI: &str = "x-jti";
    /// `x-cnf-jkt`: the DPoP key thumbprint.
    pub const CNF_JKT: &str = "x-cnf-jkt";
    /// `x-mtls-thumbprint`: the client certificate thumbprint.
    pub const MTLS_THUMBPRINT: &str = "x-mtls-thumbprint";
    /// `x-issuer`: the token issuer.
    pub const ISSUER: &str = "x-issuer";
    /// `x-client-id`: the OAuth client id.
    pub const CLIENT_ID: &str = "x-client-id";
    /// `x-correlation-id`: the correlation id.
    pub const CORRELATION_ID: &str = "x-correlation-id";
    /// `x-roles`: roles, comma separated (opt-in: not one of the original eight).
    pub const ROLES: &str = "x-roles";
    /// `x-exp`: the token's `exp`, seconds since the Unix epoch (opt-in).
    pub const EXP: &str = "x-exp";
    /// `x-workflow-run-id`: the workflow run id (opt-in).
    pub const WORKFLOW_RUN_ID: &str = "x-workflow-run-id";
    /// `x-node-id`: the workflow node id (opt-in).
    pub const NODE_ID: &str = "x-node-id";
    /// `x-system-id`: the calling system id (opt-in).
    pub const SYSTEM_ID: &str = "x-system-id";

    /// The original SDK's eight headers, read by default.
    pub const ORIGINAL: [&str; 8] = [
        SUBJECT,
        AUD,
        JTI,
        CNF_JKT,
        MTLS_THUMBPRINT,
        ISSUER,
        CLIENT_ID,
        CORRELATION_ID,
    ];

    /// The headers a service may opt in to with
    /// [`ContextHeaders::trust`](crate::ContextHeaders::trust).
    pub const OPT_IN: [&str; 5] = [ROLES, EXP, WORKFLOW_RUN_ID, NODE_ID, SYSTEM_ID];
}

/// Which headers a gateway vouches for, and how to read an [`ExecutionContext`] from them.
///
/// [`ContextHeaders::original`] reads the original SDK's eight headers only. A gateway
/// configured for that contract does not strip `x-roles`, so a client could send
/// `x-roles: reader` itself: the opt-in headers ([`headers::OPT_IN`]) are read only when the
/// service names them, because its gateway sets (and strips) them.
///
/// Every header is read strictly: values are trimmed and an empty value counts as absent,
/// but a header sent twice (a proxy that appends instead of replacing would let the client's
/// value win), a value that is not UTF-8, or an `x-exp` that is not a whole number is
/// `BAD_CONTEXT`.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use secret_pep::ContextHeaders;
///
/// let mut map = HeaderMap::new();
/// map.insert("x-subject", HeaderValue::from_static("alice"));
/// map.insert("x-roles", HeaderValue::from_static("reader"));
/// // The original contract ignores x-roles…
/// let ctx = ContextHeaders::original().read(&map)?;
/// assert!(ctx.roles.is_empty());
/// // …unless the service says its gateway sets it.
/// let ctx = ContextHeaders::original().trust("x-roles")?.read(&map)?;
/// assert_eq!(ctx.roles, ["reader"]);
///
/// map.append("x-subject", HeaderValue::from_static("mallory"));
/// assert_eq!(ContextHeaders::original().read(&map).unwrap_err().code(), "BAD_CONTEXT");
/// # Ok::<(), secret_pep::PepError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextHeaders {
    roles: bool,
    exp: bool,
    workflow_run_id: bool,
    node_id: bool,
    system_id: bool,
}

impl ContextHeaders {
    /// The original SDK's eight headers ([`headers::ORIGINAL`]).
    #[must_use]
    pub fn original() -> Self {
        Self::default()
    }

    /// Also reads `name`, one of [`headers::OPT_IN`] (ASCII case-insensitive).
    ///
    /// # Errors
    /// `CONFIG` for any other name.
    pub fn trust(mut self, name: &str) -> Result<Self, PepError> {
        let name = name.trim().to_ascii_lowercase();
        let flag = match name.as_str() {
            headers::ROLES => &mut self.roles,
            headers::EXP => &mut self.exp,
            headers::WORKFLOW_RUN_ID => &mut self.workflow_run_id,
            headers::NODE_ID => &mut self.node_id,
            headers::SYSTEM_ID => &mut self.system_id,
            _ => {
                return Err(PepError::invalid(
                    "ContextHeaders::trust",
                    "takes x-roles, x-exp, x-workflow-run-id, x-node-id or x-system-id",
                ));
            }
        };
        *flag = true;
        Ok(self)
    }

    /// Also reads every name of a comma-separated list (e.g. from a setting).
    ///
    /// # Errors
    /// As [`Self::trust`].
    pub fn trust_all(self, list: &str) -> Result<Self, PepError> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .try_fold(self, Self::trust)
    }

    /// Reads a context from `headers`.
    ///
    /// # Errors
    /// `BAD_CONTEXT` naming the header: sent more than once, not UTF-8, or (`x-exp`) not a
    /// whole number of seconds.
    pub fn read(&self, map: &HeaderMap) -> Result<ExecutionContext, PepError> {
        use self::headers as h;
        let optional = |trusted: bool, name: &'static str| {
            if trusted { one(map, name) } else { Ok(None) }
        };
        let exp = match optional(self.exp, h::EXP)? {
            None => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| PepError::BadContext {
                header: h::EXP,
                reason: "is not a whole number of seconds since the epoch",
            })?),
        };
        Ok(ExecutionContext {
            subject: one(map, h::SUBJECT)?,
            aud: list(map, h::AUD)?,
            token_jti: unfolded(map, h::JTI)?,
            cnf_jkt: unfolded(map, h::CNF_JKT)?,
            mtls_thumbprint: unfolded(map, h::MTLS_THUMBPRINT)?,
            issuer: one(map, h::ISSUER)?,
            client_id: one(map, h::CLIENT_ID)?,
            correlation_id: one(map, h::CORRELATION_ID)?,
            workflow_run_id: optional(self.workflow_run_id, h::WORKFLOW_RUN_ID)?,
            node_id: optional(self.node_id, h::NODE_ID)?,
            system_id: optional(self.system_id, h::SYSTEM_ID)?,
            roles: if self.roles {
                list(map, h::ROLES)?
            } else {
                Vec::new()
            },
            exp,
        })
    }
}

/// The one value of `name`, trimmed; empty counts as absent.
fn one(map: &HeaderMap, name: &'static str) -> Result<Option<String>, PepError> {
    let mut values = map.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(PepError::BadContext {
            header: name,
            reason: "is sent more than once",
        });
    }
    let text = value.to_str().map_err(|_| PepError::BadContext {
        header: name,
        reason: "is not visible ASCII",
    })?;
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// [`one`] for a value that can never hold a comma (a `jti`, a thumbprint): a comma there is a
/// sign that a hop folded two field lines into one (`client-value, gateway-value`), which
/// would otherwise slip past the repeat check.
fn unfolded(map: &HeaderMap, name: &'static str) -> Result<Option<String>, PepError> {
    let value = one(map, name)?;
    if value.as_deref().is_some_and(|v| v.contains(',')) {
        return Err(PepError::BadContext {
            header: name,
            reason: "holds a comma (two values folded into one line)",
        });
    }
    Ok(value)
}

/// A comma list in one header: trimmed items, empty ones dropped.
fn list(map: &HeaderMap, name: &'static str) -> Result<Vec<String>, PepError> {
    Ok(one(map, name)?
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_original_eight_and_nothing_else_by_default() {
        let headers = map(&[
            ("x-subject", " alice "),
            ("x-aud", "crud.secrets, other,,"),
            ("x-jti", "j-1"),
            ("x-cnf-jkt", "jkt"),
            ("x-mtls-thumbprint", "mtls"),
            ("x-issuer", "https://issuer"),
            ("x-client-id", "cli"),
            ("x-correlation-id", "corr"),
            ("x-roles", "reader,writer"),
            ("x-exp", "4102444800"),
            ("x-workflow-run-id", "run"),
            ("x-node-id", "node"),
            ("x-system-id", "sys"),
        ]);
        let ctx = ExecutionContext::from_headers(&headers).unwrap();
        assert_eq!(ctx.subject.as_deref(), Some("alice"));
        assert_eq!(ctx.aud, ["crud.secrets", "other"]);
        assert_eq!(ctx.token_jti.as_deref(), Some("j-1"));
        assert_eq!(ctx.sender_binding(), Some("jkt"));
        assert_eq!(ctx.issuer.as_deref(), Some("https://issuer"));
        assert_eq!(ctx.client_id.as_deref(), Some("cli"));
        assert_eq!(ctx.correlation_id.as_deref(), Some("corr"));
        // A client-sent x-roles is not trusted by the original contract.
        assert!(ctx.roles.is_empty());
        assert_eq!(
            (ctx.exp, &ctx.workflow_run_id, &ctx.node_id, &ctx.system_id),
            (None, &None, &None, &None)
        );

        let trusting = ContextHeaders::original()
            .trust_all("x-roles, X-EXP,x-workflow-run-id,x-node-id,x-system-id")
            .unwrap();
        let ctx = trusting.read(&headers).unwrap();
        assert_eq!(ctx.roles, ["reader", "writer"]);
        assert_eq!(ctx.exp, Some(4_102_444_800));
        assert_eq!(ctx.workflow_run_id.as_deref(), Some("run"));
        assert_eq!(ctx.node_id.as_deref(), Some("node"));
        assert_eq!(ctx.system_id.as_deref(), Some("sys"));

        assert_eq!(
            ExecutionContext::from_headers(&HeaderMap::new()).unwrap(),
            ExecutionContext::default()
        );
        assert_eq!(
            ContextHeaders::original()
                .trust("x-subject")
                .unwrap_err()
                .code(),
            "CONFIG"
        );
    }

    #[test]
    fn repeated_or_garbled_headers_are_refused_never_first_wins() {
        let trusting = ContextHeaders::original()
            .trust_all("x-roles,x-exp")
            .unwrap();
        for name in headers::ORIGINAL.into_iter().chain(headers::OPT_IN) {
            let mut twice = HeaderMap::new();
            twice.append(name, HeaderValue::from_static("1"));
            twice.append(name, HeaderValue::from_static("2"));
            let reader = if headers::ORIGINAL.contains(&name) {
                ContextHeaders::original()
            } else {
                ContextHeaders::original().trust(name).unwrap()
            };
            let err = reader.read(&twice).unwrap_err();
            assert_eq!(err.code(), "BAD_CONTEXT", "{name}");
            assert!(err.to_string().contains(name), "{err}");
        }
        // An untrusted opt-in header is ignored even when repeated.
        let ignored = map(&[("x-roles", "a"), ("x-roles", "b")]);
        assert!(ContextHeaders::original().read(&ignored).is_ok());

        let mut garbled = HeaderMap::new();
        garbled.insert("x-subject", HeaderValue::from_bytes(b"al\xffice").unwrap());
        assert_eq!(
            ExecutionContext::from_headers(&garbled).unwrap_err().code(),
            "BAD_CONTEXT"
        );
        for bad in ["soon", "-1", "1.5", "99999999999999999999999"] {
            let mut exp = HeaderMap::new();
            exp.insert("x-exp", HeaderValue::from_str(bad).unwrap());
            let err = trusting.read(&exp).unwrap_err();
            assert_eq!(err.code(), "BAD_CONTEXT", "{bad}");
            assert!(!err.to_string().contains(bad), "{err}");
        }
        // A hop that folds repeated lines into one comma-joined line is caught where a value
        // can never hold a comma.
        for name in [headers::JTI, headers::CNF_JKT, headers::MTLS_THUMBPRINT] {
            let folded = map(&[(name, "client-value, gateway-value")]);
            let err = ExecutionContext::from_headers(&folded).unwrap_err();
            assert_eq!(err.code(), "BAD_CONTEXT", "{name}");
            assert!(!err.to_string().contains("client-value"), "{err}");
        }
        // Empty values are absent, not errors.
        let empty = map(&[("x-subject", "  "), ("x-aud", ",")]);
        let ctx = ExecutionContext::from_headers(&empty).unwrap();
        assert_eq!((ctx.subject, ctx.aud.len()), (None, 0));
    }
}
