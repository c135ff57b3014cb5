//! `VaultClient` clients that differ from the main one: other credentials (bad, limited,
//! AppRole), vaults that fail (down, hanging, echoing, behind TLS, a proxy losing answers),
//! PDPs of one's own that grant what the PEP must refuse, scripted PDPs that fail every way a
//! PDP can, configuration values holding the canary token, the default context, contexts from
//! gateway headers, and JWKs holding the canaries.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrets_sdk::audit::{AuditSink, MemorySink};
use secrets_sdk::pep::{AccessRequest, Grant, PdpFuture, SecretPolicyService};
use secrets_test_support::{Fault, FaultServer};
use serde_json::json;
use tokio::runtime::Runtime;

use super::fixtures::{Fixtures, kv_path, limited_token};
use super::paths::{echo_body, echo_text, vault_faults};
use super::run::{Expect, Run};
use super::vault_paths::{Vars, builder, caller, get, kv, vars};
use crate::common::leak::{
    BAD_TOKEN, Class, FILE, JKT, JTI, PDP_TOKEN, SALT, SECRET_ID, SEGMENT, SUBJECT, TOKEN,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A PDP of one's own that permits with a grant the PEP must refuse.
#[derive(Debug)]
enum Odd {
    /// `max_uses` 0.
    ZeroUses,
    /// Bound to another key than the caller's.
    BoundElsewhere,
    /// A response-wrapping TTL this PEP cannot honor.
    Wrapped,
}

impl SecretPolicyService for Odd {
    fn authorize_use<'a>(&'a self, _request: &'a AccessRequest<'a>) -> PdpFuture<'a, Grant> {
        Box::pin(async move {
            let mut grant = Grant::new("lk-grant", Duration::from_secs(60), 3);
            match self {
                Odd::ZeroUses => grant.max_uses = 0,
                Odd::BoundElsewhere => grant.cnf_binding = Some(format!("{JKT}-elsewhere")),
                Odd::Wrapped => grant.wrap_ttl = Some(Duration::from_secs(30)),
            }
            Ok(grant)
        })
    }
}

/// Clients with other credentials, vaults that fail, PDPs of one's own.
pub(crate) fn clients(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let field = kv("", "#token");
    let bad_secret_id = format!("{SECRET_ID}-wrong");
    let approle = |secret_id: &str| {
        vec![
            ("VAULT_TOKEN", String::new()),
            ("VAULT_AUTH_METHOD", "approle".to_owned()),
            ("VAULT_ROLE_ID", fx.role_id.clone()),
            ("VAULT_SECRET_ID", secret_id.to_owned()),
        ]
    };
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let cases: Vec<(&str, Vars, Expect)> = vec![
        (
            "bad token",
            vec![("VAULT_TOKEN", BAD_TOKEN.to_owned())],
            Expect::OneOf(&["AUTH_FAILED", "PERMISSION_DENIED"]),
        ),
        (
            "limited token",
            vec![("VAULT_TOKEN", limited_token())],
            Expect::Code("PERMISSION_DENIED"),
        ),
        ("approle", approle(SECRET_ID), Expect::Value),
        (
            "approle wrong secret id",
            approle(&bad_secret_id),
            Expect::Code("AUTH_FAILED"),
        ),
        (
            "vault down",
            vec![("VAULT_URL", down)],
            Expect::Code("UNAVAILABLE"),
        ),
        (
            "hashed subjects",
            vec![("AUDIT_HASH_SUBJECT", "true".to_owned())],
            Expect::Value,
        ),
        (
            "warm grants",
            vec![("GRANT_MAX_USES_DEFAULT", "100".to_owned())],
            Expect::Value,
        ),
    ];
    for (name, extra, expect) in cases {
        let sink = Arc::new(MemorySink::new());
        let client = match builder(&vars(fx, &extra))
            .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
            .build()
        {
            Ok(client) => client,
            Err(e) => {
                let path = run.path(format!("vault/build {name}"));
                run.error(&path, e.code(), &e, Expect::Code("OK"));
                continue;
            }
        };
        run.show(&format!("vault/client {name}"), format!("{client:?}"));
        for round in 0..3 {
            get(
                run,
                rt,
                &client,
                &format!("{name} {round}"),
                &field,
                Some(&caller()),
                expect,
            );
        }
        client.close();
        if name == "hashed subjects" {
            // Here even the audit events must not name the subject.
            let events = sink.events();
            let mut text = String::new();
            for event in &events {
                text.push_str(&format!("{event:?}\n"));
                text.push_str(&String::from_utf8_lossy(
                    &secrets_sdk::audit::to_ocsf_bytes(event),
                ));
            }
            run.scanner.scan(
                crate::common::leak::Channel::Audit,
                "vault/hashed subjects",
                text,
                &[],
            );
        }
        run.audit(&format!("vault/{name}"), &sink.events());
    }
    for (name, script, expect) in vault_faults() {
        let server = FaultServer::start(script)?;
        let client = builder(&vars(
            fx,
            &[
                ("VAULT_URL", server.addr()),
                ("VAULT_TIMEOUT", "0.3".to_owned()),
            ],
        ))
        .build()?;
        get(
            run,
            rt,
            &client,
            &format!("vault {name}"),
            &field,
            Some(&caller()),
            expect,
        );
        let path = run.path(format!("vault/get_credentials_blocking vault {name}"));
        run.secret(
            &path,
            &client.get_credentials_blocking(kv("", "").as_str(), Some(&caller())),
            expect,
        );
        client.close();
    }
    // The real vault behind a proxy that loses the read's responses.
    let proxy = secrets_test_support::proxy::CountingProxy::start(&fx.bao.addr())?;
    proxy.drop_responses(&format!("/v1/secret/data/{}", kv_path("")), 100);
    let client = builder(&vars(
        fx,
        &[
            ("VAULT_URL", proxy.addr()),
            ("VAULT_TIMEOUT", "0.3".to_owned()),
        ],
    ))
    .build()?;
    get(
        run,
        rt,
        &client,
        "vault answer lost on the way back",
        &field,
        Some(&caller()),
        Expect::OneOf(&["TIMEOUT", "UNAVAILABLE"]),
    );
    if proxy.dropped_responses() == 0 {
        run.mismatch("vault/proxy", "the proxy lost no response");
    }
    client.close();
    // The read deadline ends a read the vault never answers.
    let server = FaultServer::start(vec![
        crate::common::kv2::lookup_never_expires(),
        Fault::Hang,
    ])?;
    let client = builder(&vars(
        fx,
        &[
            ("VAULT_URL", server.addr()),
            ("VAULT_TIMEOUT", "30".to_owned()),
        ],
    ))
    .read_deadline(Duration::from_millis(400))
    .build()?;
    get(
        run,
        rt,
        &client,
        "read deadline",
        &field,
        Some(&caller()),
        Expect::Code("TIMEOUT"),
    );
    client.close();
    for (name, pdp, expect) in [
        (
            "pdp grants zero uses",
            Odd::ZeroUses,
            Expect::Code("AUTHZ_DENIED/USES_EXHAUSTED"),
        ),
        (
            "pdp binds elsewhere",
            Odd::BoundElsewhere,
            Expect::Code("BINDING_DRIFT"),
        ),
        (
            "pdp wraps",
            Odd::Wrapped,
            Expect::Code("AUTHZ_DENIED/UNSUPPORTED_OBLIGATION"),
        ),
    ] {
        let sink = Arc::new(MemorySink::new());
        let client = builder(&vars(fx, &[]))
            .pdp(pdp)
            .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
            .build()?;
        get(
            run,
            rt,
            &client,
            &format!("{name} 0"),
            &field,
            Some(&caller()),
            expect,
        );
        // A permit the PEP refused is remembered like a denial.
        let again = match name {
            "pdp binds elsewhere" => expect,
            _ => Expect::OneOf(&[
                "AUTHZ_DENIED/NEGATIVE_CACHED",
                "AUTHZ_DENIED/USES_EXHAUSTED",
                "AUTHZ_DENIED/UNSUPPORTED_OBLIGATION",
            ]),
        };
        get(
            run,
            rt,
            &client,
            &format!("{name} 1"),
            &field,
            Some(&caller()),
            again,
        );
        client.close();
        run.audit(&format!("vault/{name}"), &sink.events());
    }
    Ok(())
}

/// PDPs that misbehave: scripted AuthZEN servers (generic dialect).
pub(crate) fn pdp_faults(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let field = kv("", "#token");
    let permit = |context: serde_json::Value| {
        Fault::json(200, &json!({"decision": true, "context": context}))
    };
    let cases: Vec<(&str, Vec<Fault>, bool, Expect)> = vec![
        (
            "pdp 500 echoing the canaries",
            vec![Fault::json(500, &echo_body())],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp 401 echoing the canaries",
            vec![Fault::text(401, &echo_text())],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp accepts and never answers",
            vec![Fault::Hang],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp closes the connection",
            vec![Fault::Close],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp decision is a canary",
            vec![Fault::json(
                200,
                &json!({"decision": format!("{JTI}-{SUBJECT}")}),
            )],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp not JSON",
            vec![Fault::text(200, &echo_text())],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp ttl is a canary",
            vec![permit(json!({"ttl": TOKEN}))],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp obligation names the path",
            vec![permit(
                json!({"obligations": [format!("{SEGMENT}/{FILE}")]}),
            )],
            false,
            Expect::Code("AUTHZ_DENIED/UNKNOWN_OBLIGATION"),
        ),
        (
            "pdp deny with reasons echoing the canaries",
            vec![Fault::json(
                200,
                &json!({"decision": false, "context": {"reason_admin": {"en": echo_text()}, "reason_user": {"en": echo_text()}}}),
            )],
            false,
            Expect::Code("AUTHZ_DENIED/PDP_DENY"),
        ),
        (
            "pdp larger than the cap",
            vec![Fault::Huge {
                len: 8 * 1024 * 1024,
            }],
            false,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp discovery names another pdp",
            vec![Fault::json(
                200,
                &json!({
                    "policy_decision_point": format!("http://127.0.0.1:1/{SEGMENT}"),
                    "access_evaluation_endpoint": format!("http://127.0.0.1:1/{SEGMENT}/{FILE}?token={PDP_TOKEN}"),
                }),
            )],
            true,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
        (
            "pdp discovery 404",
            vec![Fault::json(404, &echo_body()), permit(json!({}))],
            true,
            Expect::Code("PDP_UNAVAILABLE"),
        ),
    ];
    for (name, script, discovery, expect) in cases {
        let server = FaultServer::start(script)?;
        let extra = [
            ("AUTHZEN_PDP_URL", server.addr()),
            ("AUTHZEN_DIALECT", "generic".to_owned()),
            ("AUTHZEN_DISCOVERY", discovery.to_string()),
            ("AUTHZEN_TIMEOUT_MS", "300".to_owned()),
            ("AUTHZEN_BREAKER_THRESHOLD", "100".to_owned()),
        ];
        let sink = Arc::new(MemorySink::new());
        let client = builder(&vars(fx, &extra))
            .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
            .build()?;
        get(run, rt, &client, name, &field, Some(&caller()), expect);
        let path = run.path(format!("vault/get_credentials_blocking {name}"));
        let second = client.get_credentials_blocking(kv("seven/", "").as_str(), Some(&caller()));
        // A second miss of a denied or failed decision may be negative-cached or retried.
        let second_expect = match expect {
            Expect::Code("AUTHZ_DENIED/PDP_DENY")
            | Expect::Code("AUTHZ_DENIED/UNKNOWN_OBLIGATION") => Expect::Code("AUTHZ_DENIED"),
            other => other,
        };
        run.secret(&path, &second, second_expect);
        client.close();
        run.audit(&format!("vault/{name}"), &sink.events());
    }
    // A PDP that is down, until the breaker opens.
    let down = format!("http://127.0.0.1:{}", secrets_test_support::free_port()?);
    let client = builder(&vars(
        fx,
        &[
            ("AUTHZEN_PDP_URL", down),
            ("AUTHZEN_DISCOVERY", "false".to_owned()),
            ("AUTHZEN_BREAKER_THRESHOLD", "2".to_owned()),
            ("AUTHZEN_BREAKER_COOLDOWN_MS", "60000".to_owned()),
        ],
    ))
    .build()?;
    for round in 0..4 {
        get(
            run,
            rt,
            &client,
            &format!("pdp down {round}"),
            &kv("seven/", "#token"),
            Some(&caller()),
            Expect::Code("PDP_UNAVAILABLE"),
        );
    }
    client.close();
    Ok(())
}

/// Configuration values holding the canary token (or salt): the builder refuses them
/// without quoting them.
pub(crate) fn configuration(run: &mut Run, fx: &Fixtures) {
    let bad: Vec<(&str, String)> = vec![
        ("VAULT_TIMEOUT", TOKEN.to_owned()),
        ("VAULT_RETRY_ATTEMPTS", TOKEN.to_owned()),
        ("VAULT_URL", TOKEN.to_owned()),
        ("VAULT_URL", format!("http://user:{TOKEN}@127.0.0.1:1")),
        ("VAULT_AUTH_METHOD", TOKEN.to_owned()),
        ("VAULT_TOKEN", String::new()),
        ("VAULT_SKIP_VERIFY", TOKEN.to_owned()),
        ("VAULT_MAX_BODY_BYTES", TOKEN.to_owned()),
        ("GRANT_MAX_USES_DEFAULT", TOKEN.to_owned()),
        ("GRANT_TTL_DEFAULT", TOKEN.to_owned()),
        ("NEGATIVE_CACHE_TTL_S", TOKEN.to_owned()),
        ("ANTI_REPLAY_TTL_S", TOKEN.to_owned()),
        ("ANTI_REPLAY_ENABLED", TOKEN.to_owned()),
        ("SECRETS_AUDIENCE_REQUIRED", TOKEN.to_owned()),
        (
            "AUTHZEN_PDP_URL",
            format!("http://user:{PDP_TOKEN}@127.0.0.1:1"),
        ),
        ("AUTHZEN_PDP_URL", PDP_TOKEN.to_owned()),
        ("AUTHZEN_TIMEOUT_MS", PDP_TOKEN.to_owned()),
        ("AUTHZEN_DIALECT", PDP_TOKEN.to_owned()),
        ("AUTHZEN_DISCOVERY", PDP_TOKEN.to_owned()),
        ("AUTHZEN_BREAKER_THRESHOLD", PDP_TOKEN.to_owned()),
        ("ENABLE_AUTHORIZATION", TOKEN.to_owned()),
        ("SECRET_TENANT_SALT", "LKSALT-2c8e5b".to_owned()),
        ("SECRET_TENANT_SALT", String::new()),
        ("TENANT_ALLOWED_MOUNTS", " , ".to_owned()),
        ("AUDIT_HASH_SUBJECT", TOKEN.to_owned()),
        ("AUDIT_QUEUE_CAPACITY", TOKEN.to_owned()),
    ];
    for (name, value) in bad {
        let path = run.path(format!("vault/config {name} holds a canary"));
        match builder(&vars(fx, &[(name, value)]))
            .audit(Arc::new(MemorySink::new()))
            .build()
        {
            Err(e) => run.error(&path, e.code(), &e, Expect::OneOf(&["CONFIG"])),
            Ok(client) => {
                // Accepted (the setting is not one this client reads, or a value it can use):
                // its first read must still fail or succeed cleanly.
                run.show(&path, format!("{client:?}"));
                let result =
                    client.get_credentials_blocking(kv("", "#token").as_str(), Some(&caller()));
                run.secret(
                    &path,
                    &result,
                    Expect::OneOf(&["CONFIG", "UNAVAILABLE", "AUTH_FAILED", "PDP_UNAVAILABLE"]),
                );
                client.close();
            }
        }
    }
    let path = run.path("vault/builder short salt");
    match builder(&vars(fx, &[])).tenant_salt("LKSALT-2c8e5b").build() {
        Err(e) => run.error(&path, e.code(), &e, Expect::Code("CONFIG")),
        Ok(_) => run.mismatch(&path, "a short salt was accepted"),
    }
    let builder = builder(&vars(fx, &[]))
        .tenant_salt(SALT)
        .default_context(caller());
    run.show_allowing("vault/builder", format!("{builder:?}"), &[Class::Subject]);
}

/// The default context, contexts read from gateway headers (good and malformed), a JWK
/// holding the canaries, a blocking read from inside a runtime, and the vault behind TLS.
pub(crate) fn more(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    use http::{HeaderMap, HeaderValue};
    use secrets_sdk::pep::ContextHeaders;

    let field = kv("", "#token");
    let client = builder(&vars(fx, &[])).default_context(caller()).build()?;
    get(
        run,
        rt,
        &client,
        "default context",
        &field,
        None,
        Expect::Value,
    );
    get(
        run,
        rt,
        &client,
        "default context replayed",
        &field,
        None,
        Expect::Code("AUTHZ_DENIED/REPLAY"),
    );
    let path = run.path("vault/get_credentials_blocking inside a runtime");
    let result =
        rt.block_on(async { client.get_credentials_blocking(field.as_str(), Some(&caller())) });
    run.secret(&path, &result, Expect::Value);

    // From gateway headers.
    let header = |value: &str| HeaderValue::from_str(value).map_err(|e| e.to_string());
    let mut good = HeaderMap::new();
    good.insert("x-subject", header(SUBJECT)?);
    good.insert("x-aud", header("crud.secrets")?);
    good.insert("x-jti", header(&format!("{JTI}-gateway"))?);
    good.insert("x-cnf-jkt", header(JKT)?);
    good.insert("x-issuer", header("https://issuer.test")?);
    good.insert("x-roles", header("reader")?);
    good.insert(
        "x-exp",
        header(&(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 600).to_string())?,
    );
    let trusted = ContextHeaders::original()
        .trust("x-roles")?
        .trust("x-exp")?;
    let path = run.path("vault/context from gateway headers");
    match trusted.read(&good) {
        Ok(ctx) => {
            run.show_allowing(&path, format!("{ctx:?}"), &[Class::Subject]);
            get(
                run,
                rt,
                &client,
                "context from gateway headers",
                &field,
                Some(&ctx),
                Expect::Value,
            );
        }
        Err(e) => run.error(&path, e.code(), &e, Expect::Code("OK")),
    }
    let mut twice = good.clone();
    twice.append("x-jti", header(&format!("{JTI}-appended"))?);
    let mut bad_exp = good.clone();
    bad_exp.insert("x-exp", header(&format!("{JTI}-{TOKEN}"))?);
    let mut not_utf8 = good.clone();
    not_utf8.insert(
        "x-subject",
        HeaderValue::from_bytes(&[b'l', b'k', 0xff, 0xfe]).map_err(|e| e.to_string())?,
    );
    let mut jkt_twice = good.clone();
    jkt_twice.append("x-cnf-jkt", header(&format!("{JKT}-appended"))?);
    for (name, headers) in [
        ("jti sent twice", twice),
        ("exp not a number", bad_exp),
        ("subject not UTF-8", not_utf8),
        ("jkt sent twice", jkt_twice),
    ] {
        let path = run.path(format!("vault/context from gateway headers, {name}"));
        match trusted.read(&headers) {
            Ok(ctx) => run.mismatch(&path, format!("accepted: {ctx:?}")),
            Err(e) => run.error(&path, e.code(), &e, Expect::Code("BAD_CONTEXT")),
        }
    }
    for jwk in [
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{TOKEN}","y":"{JKT}","d":"{TOKEN}"}}"#),
        format!(r#"{{"kty":"{TOKEN}","k":"{TOKEN}"}}"#),
        format!(r#"{{"kty":"oct","k":"{TOKEN}"}}"#),
        format!("not json {TOKEN}"),
    ] {
        let path = run.path("vault/jwk_thumbprint of a bad JWK");
        match secrets_sdk::pep::jwk_thumbprint(&jwk) {
            // A thumbprint is a hash of the public key: not one of the canaries.
            Ok(thumbprint) => run.show(&path, thumbprint),
            Err(e) => run.error(&path, e.code(), &e, Expect::Code("INVALID_JWK")),
        }
    }
    client.close();

    // The vault behind TLS.
    let ca = fx.tls.ca_cert_path().ok_or("the TLS vault has no CA")?;
    for (name, extra, expect) in [
        (
            "tls with its CA",
            vec![
                ("VAULT_URL", fx.tls.addr()),
                ("VAULT_CACERT", ca.display().to_string()),
            ],
            Expect::Value,
        ),
        (
            "tls without its CA",
            vec![("VAULT_URL", fx.tls.addr())],
            Expect::Code("TLS"),
        ),
    ] {
        let client = builder(&vars(fx, &extra)).build()?;
        get(run, rt, &client, name, &field, Some(&caller()), expect);
        client.close();
    }
    Ok(())
}
