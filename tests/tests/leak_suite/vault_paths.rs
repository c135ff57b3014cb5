//! `VaultClient`: the main client's reads through the PEP against the real OpenBao and the
//! real Cerbos (permit, deny, negative cache, replay of the canary `jti`, wrong audience,
//! missing subject or `jti`, token lifetime, obligations, use counts, sender bindings), every
//! URI error class, the batched entry points, and the real PDP stopped. The other clients
//! (credentials, failing vaults and PDPs, configuration) are in `vault_faults.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use secrets_sdk::audit::{AuditSink, MemorySink};
use secrets_sdk::{ExecutionContext, VaultClient, VaultClientBuilder};
use secrets_test_support::pep::RecordingAudit;
use tokio::runtime::Runtime;

use super::fixtures::{Fixtures, kv_path};
use super::paths::bad_uris;
use super::run::{Expect, Run};
use crate::common::leak::{Class, FILE, JKT, JTI, PDP_TOKEN, SALT, SEGMENT, SUBJECT, TOKEN, X5T};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Variables replacing or adding to [`vars`].
pub(crate) type Vars = Vec<(&'static str, String)>;

/// The caller: the canary subject, a reader of tenant `t1`, a fresh canary `jti`, bound to the
/// canary key thumbprint.
pub(crate) fn caller() -> ExecutionContext {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    ExecutionContext::new(SUBJECT)
        .with_aud(["crud.secrets"])
        .with_roles(["reader"])
        .with_issuer("https://issuer.test")
        .with_jti(format!("{JTI}-{}", NEXT.fetch_add(1, Ordering::Relaxed)))
        .with_cnf_jkt(JKT)
}

/// `openbao+kv2://secret/<prefix><SEGMENT>/<FILE><rest>`.
pub(crate) fn kv(prefix: &str, rest: &str) -> String {
    format!("openbao+kv2://secret/{}{rest}", kv_path(prefix))
}

/// `VaultClient::from_env` settings for the fixtures, with `extra` replacing or adding.
pub(crate) fn vars(fx: &Fixtures, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("VAULT_URL", fx.bao.addr()),
        ("VAULT_TOKEN", TOKEN.to_owned()),
        ("VAULT_RETRY_ATTEMPTS", "1".to_owned()),
        ("VAULT_TIMEOUT", "2".to_owned()),
        ("TENANT_ID", "t1".to_owned()),
        ("TENANT_ALLOWED_MOUNTS", "secret".to_owned()),
        ("SECRET_TENANT_SALT", SALT.to_owned()),
        ("AUTHZEN_PDP_URL", fx.cerbos.addr()),
        ("AUTHZEN_DIALECT", "cerbos".to_owned()),
        ("AUTHZEN_PDP_TOKEN", PDP_TOKEN.to_owned()),
        ("NEGATIVE_CACHE_JITTER_MS", "0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in extra {
        vars.retain(|(k, _)| k != name);
        vars.push(((*name).to_owned(), value.clone()));
    }
    vars
}

pub(crate) fn builder(vars: &[(String, String)]) -> VaultClientBuilder {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    VaultClient::builder().env_lookup(secrets_test_support::env_map(&vars))
}

/// Drives every `VaultClient` path. The real Cerbos is stopped (and started again) for
/// "PDP down".
pub(crate) fn drive(run: &mut Run, rt: &Runtime, fx: &mut Fixtures) -> Result {
    main_client(run, rt, fx)?;
    super::vault_faults::clients(run, rt, fx)?;
    super::vault_faults::pdp_faults(run, rt, fx)?;
    super::vault_faults::configuration(run, fx);
    super::vault_faults::more(run, rt, fx)?;
    pdp_down(run, rt, fx)?;
    Ok(())
}

pub(crate) fn get(
    run: &mut Run,
    rt: &Runtime,
    client: &VaultClient,
    name: &str,
    uri: &str,
    ctx: Option<&ExecutionContext>,
    expect: Expect,
) {
    let path = run.path(format!("vault/get_credentials {name}"));
    run.secret(
        &path,
        &rt.block_on(client.get_credentials(uri, ctx)),
        expect,
    );
}

fn main_client(run: &mut Run, rt: &Runtime, fx: &Fixtures) -> Result {
    let audit = Arc::new(RecordingAudit::default());
    let client = builder(&vars(fx, &[]))
        .audit(Arc::clone(&audit) as Arc<dyn AuditSink>)
        .build()?;
    run.show("vault/client", format!("{client:?}"));
    let field = kv("", "#token");
    for prefix in ["", "seven/", "classified/", "short/"] {
        for round in 0..2 {
            get(
                run,
                rt,
                &client,
                &format!("permit {prefix}field {round}"),
                &kv(prefix, "#token"),
                Some(&caller()),
                Expect::Value,
            );
            get(
                run,
                rt,
                &client,
                &format!("permit {prefix}whole {round}"),
                &kv(prefix, ""),
                Some(&caller()),
                Expect::Whole,
            );
        }
    }
    let path = run.path("vault/get_credentials_blocking permit");
    run.secret(
        &path,
        &client.get_credentials_blocking(field.as_str(), Some(&caller())),
        Expect::Value,
    );
    let path = run.path("vault/get_credentials_blocking missing key");
    run.secret(
        &path,
        &client.get_credentials_blocking(kv("", "#missing").as_str(), Some(&caller())),
        Expect::Code("KEY_NOT_FOUND"),
    );
    get(
        run,
        rt,
        &client,
        "hashicorp alias",
        &format!("hashicorp+kv2://secret/{}#token", kv_path("")),
        Some(&caller()),
        Expect::Value,
    );
    // The canary jti, twice.
    let once = caller();
    get(
        run,
        rt,
        &client,
        "jti first use",
        &field,
        Some(&once),
        Expect::Value,
    );
    get(
        run,
        rt,
        &client,
        "jti replayed",
        &field,
        Some(&once),
        Expect::Code("AUTHZ_DENIED/REPLAY"),
    );
    get(
        run,
        rt,
        &client,
        "jti replayed on another secret",
        &kv("seven/", "#token"),
        Some(&once),
        Expect::Code("AUTHZ_DENIED/REPLAY"),
    );
    let mut no_jti = caller();
    no_jti.token_jti = None;
    get(
        run,
        rt,
        &client,
        "no jti",
        &field,
        Some(&no_jti),
        Expect::Code("AUTHZ_DENIED/JTI_MISSING"),
    );
    get(
        run,
        rt,
        &client,
        "wrong audience",
        &field,
        Some(&caller().with_aud(["billing"])),
        Expect::Code("AUTHZ_DENIED/AUDIENCE"),
    );
    let mut no_aud = caller();
    no_aud.aud.clear();
    get(
        run,
        rt,
        &client,
        "no audience",
        &field,
        Some(&no_aud),
        Expect::Code("AUTHZ_DENIED/AUDIENCE"),
    );
    let mut no_subject = caller();
    no_subject.subject = None;
    get(
        run,
        rt,
        &client,
        "no subject",
        &field,
        Some(&no_subject),
        Expect::Code("AUTHZ_DENIED/SUBJECT_MISSING"),
    );
    get(
        run,
        rt,
        &client,
        "no context",
        &field,
        None,
        Expect::Code("AUTHZ_DENIED/SUBJECT_MISSING"),
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    get(
        run,
        rt,
        &client,
        "token expired",
        &field,
        Some(&caller().with_exp(now - 3600)),
        Expect::Code("AUTHZ_DENIED/TOKEN_EXPIRED"),
    );
    get(
        run,
        rt,
        &client,
        "token lives too long",
        &field,
        Some(&caller().with_exp(now + 30 * 86_400)),
        Expect::Code("AUTHZ_DENIED/TOKEN_LIFETIME"),
    );
    get(
        run,
        rt,
        &client,
        "token with exp",
        &field,
        Some(&caller().with_exp(now + 600)),
        Expect::Value,
    );
    let mut mtls = caller();
    mtls.cnf_jkt = None;
    let mtls = mtls.with_mtls_thumbprint(X5T);
    get(
        run,
        rt,
        &client,
        "mtls bound",
        &field,
        Some(&mtls),
        Expect::Value,
    );
    get(
        run,
        rt,
        &client,
        "other key",
        &field,
        Some(&caller().with_cnf_jkt(format!("{JKT}-thief"))),
        Expect::Value,
    );
    get(
        run,
        rt,
        &client,
        "pdp deny",
        &kv("denied/", "#token"),
        Some(&caller()),
        Expect::Code("AUTHZ_DENIED/PDP_DENY"),
    );
    get(
        run,
        rt,
        &client,
        "negative cached",
        &kv("denied/", "#token"),
        Some(&caller()),
        Expect::Code("AUTHZ_DENIED/NEGATIVE_CACHED"),
    );
    get(
        run,
        rt,
        &client,
        "unknown obligation",
        &kv("mfa/", "#token"),
        Some(&caller()),
        Expect::Code("AUTHZ_DENIED/UNKNOWN_OBLIGATION"),
    );
    get(
        run,
        rt,
        &client,
        "missing key",
        &kv("", "#missing"),
        Some(&caller()),
        Expect::Code("KEY_NOT_FOUND"),
    );
    get(
        run,
        rt,
        &client,
        "version destroyed",
        &kv("", "#token?version=1"),
        Some(&caller()),
        Expect::Code("VERSION_DESTROYED"),
    );
    get(
        run,
        rt,
        &client,
        "version deleted",
        &kv("", "#token?version=2"),
        Some(&caller()),
        Expect::Code("VERSION_DELETED"),
    );
    get(
        run,
        rt,
        &client,
        "version absent",
        &kv("", "#token?version=99"),
        Some(&caller()),
        Expect::Code("NOT_FOUND"),
    );
    get(
        run,
        rt,
        &client,
        "404",
        &format!("openbao+kv2://secret/{SEGMENT}/{FILE}-absent#token"),
        Some(&caller()),
        Expect::Code("NOT_FOUND"),
    );
    get(
        run,
        rt,
        &client,
        "unknown parameter",
        &kv("", "#token?n=1"),
        Some(&caller()),
        Expect::Code("UNKNOWN_PARAMETER"),
    );
    for scheme in ["file", "db", "yaml", "bootstrap"] {
        get(
            run,
            rt,
            &client,
            &format!("{scheme} unsupported"),
            &format!("{scheme}://secret/{SEGMENT}/{FILE}"),
            Some(&caller()),
            Expect::Code("UNSUPPORTED_PROVIDER"),
        );
    }
    for (uri, code) in bad_uris("openbao+kv2", "secret") {
        get(
            run,
            rt,
            &client,
            &format!("bad uri {code}"),
            &uri,
            Some(&caller()),
            Expect::Code(code),
        );
    }
    // Batched.
    let uris = [
        field.clone(),
        kv("", ""),
        kv("", "#missing"),
        kv("denied/", "#token"),
        format!("openbao+kv2://secret/{SEGMENT}/*"),
    ];
    let list: Vec<&str> = uris.iter().map(String::as_str).collect();
    let expects = [
        Expect::Value,
        Expect::Whole,
        Expect::Code("KEY_NOT_FOUND"),
        Expect::Code("AUTHZ_DENIED"),
        Expect::Code("INVALID_WILDCARD"),
    ];
    match rt.block_on(client.get_credentials_many(&list, Some(&caller()))) {
        Ok(results) => {
            for (result, expect) in results.iter().zip(expects) {
                let path = run.path("vault/get_credentials_many item");
                run.secret(&path, result, expect);
            }
        }
        Err(e) => {
            let path = run.path("vault/get_credentials_many");
            run.error(&path, e.code(), &e, Expect::Code("OK"));
        }
    }
    let replayed = caller();
    let _ = rt.block_on(client.get_credentials(field.as_str(), Some(&replayed)));
    let path = run.path("vault/get_credentials_many replayed jti");
    match rt.block_on(client.get_credentials_many(&list, Some(&replayed))) {
        Ok(_) => run.mismatch(&path, "a replayed jti was accepted"),
        Err(e) => run.error(
            &path,
            &format!("{}/{}", e.code(), e.deny_reason().map_or("", |r| r.code())),
            &e,
            Expect::Code("AUTHZ_DENIED/REPLAY"),
        ),
    }
    let path = run.path("vault/authorize_batch");
    match rt.block_on(client.authorize_batch(
        Some(&caller()),
        &[field.as_str()],
        &[kv("seven/", "#token").as_str(), kv("denied/", "").as_str()],
    )) {
        // The report lists the caller's own URIs (`BatchItem::uri`): paths allowed there.
        Ok(report) => run.show_allowing(&path, format!("{report:?}"), &[Class::Path]),
        Err(e) => run.error(&path, e.code(), &e, Expect::Code("OK")),
    }
    let path = run.path("vault/authorize_batch unsupported");
    match rt.block_on(client.authorize_batch(
        Some(&caller()),
        &[format!("file://secret/{SEGMENT}/{FILE}").as_str()],
        &[],
    )) {
        Ok(report) => run.mismatch(&path, format!("accepted: {report:?}")),
        Err(e) => run.error(&path, e.code(), &e, Expect::Code("UNSUPPORTED_PROVIDER")),
    }
    // The client's `Debug` shows its PEP's auditor's sink, the test's recording one, whose
    // `Debug` lists the events it holds: subjects are allowed there, as in the audit channel.
    let shown = format!("{client:?} {:?}", client.pep());
    run.show_allowing("vault/client after", shown, &[Class::Subject]);
    client.close();
    get(
        run,
        rt,
        &client,
        "closed client",
        &field,
        Some(&caller()),
        Expect::Code("CLOSED"),
    );
    run.audit("vault/main client", &audit.take_events());
    Ok(())
}

/// The real PDP stopped: fail closed, then started again.
fn pdp_down(run: &mut Run, rt: &Runtime, fx: &mut Fixtures) -> Result {
    let sink = Arc::new(MemorySink::new());
    let client = builder(&vars(fx, &[]))
        .audit(Arc::clone(&sink) as Arc<dyn AuditSink>)
        .build()?;
    get(
        run,
        rt,
        &client,
        "before the pdp stops",
        &kv("new/", "#token"),
        Some(&caller()),
        Expect::Value,
    );
    fx.cerbos.stop();
    for round in 0..3 {
        get(
            run,
            rt,
            &client,
            &format!("pdp stopped {round}"),
            &kv("new/", ""),
            Some(&caller()),
            Expect::Code("PDP_UNAVAILABLE"),
        );
    }
    fx.cerbos.restart()?;
    client.close();
    run.audit("vault/pdp down", &sink.events());
    Ok(())
}
