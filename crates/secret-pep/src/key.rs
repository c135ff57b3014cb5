//! The resource a grant is for, and the grant key: everything a PDP decision depends on.

use secret_uri::{Provider, SecretUri};

use crate::{BindingKind, ExecutionContext};

/// The backends that serve each provider, as the PEP's owner configured them
/// ([`PepBuilder::backend`](crate::PepBuilder::backend)). A provider with none configured is
/// its own backend (`openbao`, `hashicorp`, `file`, …).
#[derive(Debug, Clone, Default)]
pub(crate) struct Backends(Vec<(Provider, Box<str>)>);

impl Backends {
    pub(crate) fn set(&mut self, provider: Provider, backend: String) {
        match self.0.iter_mut().find(|(p, _)| *p == provider) {
            Some(route) => route.1 = backend.into_boxed_str(),
            None => self.0.push((provider, backend.into_boxed_str())),
        }
    }

    pub(crate) fn of(&self, provider: Provider) -> &str {
        self.0
            .iter()
            .find(|(p, _)| *p == provider)
            .map_or(provider.as_str(), |(_, backend)| backend)
    }
}

/// The engine a URI reads: its own, else its provider's only one (`openbao://x` reads KV v2).
fn engine_of(uri: &SecretUri) -> Option<&'static str> {
    uri.engine()
        .map(|e| e.as_str())
        .or_else(|| match uri.provider().engines() {
            [only] => Some(only.as_str()),
            _ => None,
        })
}

/// The URI the PDP decides on: canonical, with a provider's only engine made explicit
/// (`openbao://x` → `openbao+kv2://x`, likewise `hashicorp`) and no query parameter but
/// `version`, so that every spelling of one resource is one resource to the PDP too, and
/// policies written for the original SDK's ids keep matching.
pub(crate) fn pdp_uri(uri: &SecretUri) -> SecretUri {
    let engine = engine_of(uri);
    let implicit_engine = uri.engine().is_none() && engine.is_some();
    let extra_params = uri.params().any(|(name, _)| name != "version");
    if !implicit_engine && !extra_params {
        return uri.clone();
    }
    let mut text = String::with_capacity(uri.as_str().len() + 8);
    text.push_str(uri.provider().as_str());
    if let Some(engine) = engine {
        text.push('+');
        text.push_str(engine);
    }
    text.push_str("://");
    text.push_str(uri.mount());
    if !uri.path().is_empty() {
        text.push('/');
        text.push_str(uri.path());
    }
    if let Some(key) = uri.key() {
        text.push('#');
        text.push_str(key);
    }
    if let Some(version) = uri.version() {
        text.push_str("?version=");
        text.push_str(&version.to_string());
    }
    // Every part came from a valid canonical URI, so this parses; keep the original if not.
    SecretUri::parse(&text).unwrap_or_else(|_| uri.clone())
}

/// The grant key: every input of the decision, each length-prefixed so no value can forge
/// another's. About the caller: tenant, subject, the sorted and deduplicated roles, the sender
/// binding (kind and value), issuer, client id, and the workflow ids sent to the PDP. About the
/// resource: the backend that serves it, the engine, mount, path, pinned version (or latest)
/// and `#key`. Nothing else the PDP sees varies per call: the correlation id goes to the audit
/// hook, not to the PDP. So a token that differs in any input gets its own decision, and all
/// spellings of one resource (scheme aliases reaching one backend, case, query order, unserved
/// parameters) share one grant, one use count and one negative-cache entry.
pub(crate) fn grant_key(
    tenant: &str,
    subject: &str,
    ctx: &ExecutionContext,
    backend: &str,
    uri: &SecretUri,
) -> String {
    // No digest: the key never leaves process memory, and hashing was most of a warm decision.
    let mut key = KeyInput(String::with_capacity(192 + uri.as_str().len()));
    key.field("v3");
    key.field(tenant);
    key.field(subject);
    let mut roles: Vec<&str> = ctx.roles.iter().map(String::as_str).collect();
    roles.sort_unstable();
    roles.dedup();
    key.count(roles.len());
    for role in roles {
        key.field(role);
    }
    key.field(match ctx.binding_kind() {
        BindingKind::Jkt => "j",
        BindingKind::Mtls => "m",
        BindingKind::None => "-",
    });
    key.field(ctx.sender_binding().unwrap_or_default());
    key.optional(ctx.issuer.as_deref());
    key.optional(ctx.client_id.as_deref());
    key.optional(ctx.workflow_run_id.as_deref());
    key.optional(ctx.node_id.as_deref());
    key.optional(ctx.system_id.as_deref());
    key.0.push_str("execute:");
    key.field(backend);
    key.optional(engine_of(uri));
    key.field(uri.mount());
    key.field(uri.path());
    key.optional(uri.key());
    match uri.version() {
        Some(version) => key.number(usize::try_from(version).unwrap_or(usize::MAX)),
        None => key.0.push('-'),
    }
    key.0
}

/// The grant key under construction: length-prefixed fields.
struct KeyInput(String);

impl KeyInput {
    fn field(&mut self, value: &str) {
        self.number(value.len());
        self.0.push(':');
        self.0.push_str(value);
    }

    /// Decimal digits without `fmt` (this runs on every decision).
    fn number(&mut self, mut n: usize) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            self.0.push(char::from(digit));
        }
    }

    /// A count of the fields that follow, `n#` (a length prefix ends in `:` instead).
    fn count(&mut self, n: usize) {
        self.number(n);
        self.0.push('#');
    }

    /// An absent field is `-`, which no length prefix starts with.
    fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.field(value),
            None => self.0.push('-'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> SecretUri {
        SecretUri::parse(text).unwrap()
    }

    #[test]
    fn every_spelling_of_one_resource_is_one_key() {
        let ctx = ExecutionContext::new("s").with_roles(["r"]);
        let mut shared = Backends::default();
        shared.set(Provider::OpenBao, "https://vault:8200|ns".into());
        shared.set(Provider::HashiCorp, "https://vault:8200|ns".into());
        let key = |backends: &Backends, text: &str| {
            let u = uri(text);
            grant_key("t", "s", &ctx, backends.of(u.provider()), &u)
        };
        let base = key(&shared, "openbao+kv2://secret/seven/api#token");
        for alias in [
            "openbao://secret/seven/api#token",
            "OPENBAO+KV2://secret/seven/api/#token",
            "openbao+kv2://secret/seven/api#token?n=1",
            "openbao+kv2://secret/seven/api?n=2#token",
            "hashicorp+kv2://secret/seven/api#token",
            "hashicorp://secret/seven/api#token?z=&a=1",
        ] {
            assert_eq!(key(&shared, alias), base, "{alias}");
        }
        for other in [
            "openbao+kv2://secret/seven/api#user",
            "openbao+kv2://secret/seven/api",
            "openbao+kv2://secret/seven/api#token?version=3",
            "openbao+kv2://secret/seven/apis#token",
            "openbao+kv2://other/seven/api#token",
            "file://secret/seven/api#token",
        ] {
            assert_ne!(key(&shared, other), base, "{other}");
        }
        // Without a shared backend, openbao and hashicorp are two servers.
        let own = Backends::default();
        assert_eq!(
            key(&own, "openbao://secret/seven/api#token"),
            key(&own, "openbao+kv2://secret/seven/api#token")
        );
        assert_ne!(
            key(&own, "hashicorp+kv2://secret/seven/api#token"),
            key(&own, "openbao+kv2://secret/seven/api#token")
        );
        // Pinned versions are distinct resources.
        assert_ne!(
            key(&own, "openbao+kv2://secret/a?version=1"),
            key(&own, "openbao+kv2://secret/a?version=2")
        );
    }

    #[test]
    fn every_caller_input_sent_to_the_pdp_is_in_the_key() {
        let u = uri("file://m/x");
        let ctx = ExecutionContext::new("s")
            .with_roles(["a", "b"])
            .with_issuer("i")
            .with_cnf_jkt("k");
        let key = |tenant: &str, subject: &str, ctx: &ExecutionContext| {
            grant_key(tenant, subject, ctx, "file", &u)
        };
        let base = key("t", "s", &ctx);
        assert!(base.starts_with("2:v31:t1:s2#1:a1:b1:j1:k1:i-"), "{base}");
        assert_ne!(key("a:b", "c", &ctx), key("a", "b:c", &ctx));
        let with = |f: fn(&mut ExecutionContext)| {
            let mut c = ctx.clone();
            f(&mut c);
            key("t", "s", &c)
        };
        let variants = [
            key("t", "s2", &ctx),
            key("t2", "s", &ctx),
            key("t", "s", &ctx.clone().with_roles(["a"])),
            key("t", "s", &ctx.clone().with_roles(["ab"])),
            key("t", "s", &ctx.clone().with_issuer("j")),
            with(|c| c.client_id = Some("c".into())),
            with(|c| c.workflow_run_id = Some("w".into())),
            with(|c| c.node_id = Some("n".into())),
            with(|c| c.system_id = Some("y".into())),
            key("t", "s", &ctx.clone().with_cnf_jkt("k2")),
            key(
                "t",
                "s",
                &ctx.clone().with_cnf_jkt("").with_mtls_thumbprint("k"),
            ),
            grant_key("t", "s", &ctx, "file", &uri("file://m/y")),
            grant_key("t", "s", &ctx, "other-backend", &u),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
        // Role order and duplicates do not matter; per-call ids are not decision inputs.
        assert_eq!(
            base,
            key("t", "s", &ctx.clone().with_roles(["b", "a", "a"]))
        );
        assert_eq!(
            base,
            key(
                "t",
                "s",
                &ctx.clone()
                    .with_jti("other")
                    .with_correlation_id("c")
                    .with_exp(1)
            )
        );
    }

    #[test]
    fn the_pdp_sees_one_canonical_id_per_resource() {
        for (input, expected) in [
            (
                "openbao://secret/app/api#token",
                "openbao+kv2://secret/app/api#token",
            ),
            (
                "HASHICORP://secret/app/api?version=3#token",
                "hashicorp+kv2://secret/app/api#token?version=3",
            ),
            (
                "openbao+kv2://secret/app/api#token?n=1&version=2",
                "openbao+kv2://secret/app/api#token?version=2",
            ),
            (
                "file://demo/db.json?x=1#password",
                "file://demo/db.json#password",
            ),
            ("db://pg/app", "db://pg/app"),
            ("db+cred://pg/app", "db+cred://pg/app"),
        ] {
            assert_eq!(pdp_uri(&uri(input)).as_str(), expected, "{input}");
        }
    }
}
