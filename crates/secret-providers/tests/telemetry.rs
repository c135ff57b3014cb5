//! The KV v2 provider's telemetry: the `secret_read`, `login` and `http_request` spans and
//! their fields, `secrets.token.ttl_remaining`, and that no token, role or secret ID, path
//! or value reaches a span, an event or a metric. Scripted servers for every path; a real
//! OpenBao (when installed, always under CI) for the shapes a real server gives.
//!
//! Each test captures on its own thread (`set_default` on a current-thread runtime, where the
//! connection tasks run too) and passes its own `Metrics`, except the one that installs the
//! global meter provider to check the default.
#![cfg(feature = "kv2")]
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::SecretString;
use secret_providers::{Kv2Auth, Kv2Config, Kv2Flavor, Kv2Provider, RetryConfig};
use secret_telemetry::names::{self, metric, semconv};
use secret_telemetry::testing::MetricsCapture;
use secret_uri::SecretUri;
use secrets_test_support::{Fault, FaultServer, LogCapture};
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const VALUE: &str = "CANARY-VALUE-91c2";
const TOKEN: &str = "CANARY-TOKEN-91c2";
const RELOGIN_TOKEN: &str = "CANARY-TOKEN-2-91c2";
const ROLE_ID: &str = "CANARY-ROLE-ID-91c2";
const SECRET_ID: &str = "CANARY-SECRET-ID-91c2";
const PATH: &str = "canary-path-91c2";
const CANARIES: [&str; 6] = [VALUE, TOKEN, RELOGIN_TOKEN, ROLE_ID, SECRET_ID, PATH];

// ---------------------------------------------------------------------------------------
// Capture: every closed span with its fields (structured) and every line a TRACE `fmt`
// subscriber writes (for the leak scan).

/// One closed span: its name, its parent's name and its fields as text.
#[derive(Debug, Clone)]
struct Closed {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

impl Closed {
    fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<Closed>>>);

impl<S> Layer<S> for SpanLog
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let fields = span
            .extensions_mut()
            .remove::<Fields>()
            .unwrap_or_default()
            .0;
        let closed = Closed {
            name: span.name(),
            parent: span.parent().map(|p| p.name()),
            fields,
        };
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(closed);
    }
}

struct Captured {
    spans: Vec<Closed>,
    text: String,
}

impl Captured {
    fn named(&self, name: &str) -> Vec<&Closed> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> Result<&Closed, String> {
        match self.named(name)[..] {
            [one] => Ok(one),
            ref all => Err(format!("expected one {name} span, got {all:?}")),
        }
    }

    /// No canary in any log line, span field or event.
    fn assert_no_canary(&self) {
        assert!(
            self.text.contains("secret_read"),
            "the capture works: {}",
            self.text
        );
        for canary in CANARIES {
            assert!(
                !self.text.contains(canary),
                "{canary} leaked: {}",
                self.text
            );
            for span in &self.spans {
                for (key, value) in &span.fields {
                    assert!(
                        !value.contains(canary) && !key.contains(canary),
                        "{canary} leaked into {span:?}"
                    );
                }
            }
        }
        for span in &self.spans {
            for key in span.fields.keys() {
                assert!(!key.starts_with("url."), "{key} in {span:?}");
            }
        }
    }
}

/// Runs `run` with every span and log line at TRACE captured on this thread.
async fn capture<F: Future<Output = TestResult>>(
    run: F,
) -> Result<Captured, Box<dyn std::error::Error>> {
    let spans = SpanLog::default();
    let logs = LogCapture::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
                .with_writer(move || writer.clone()),
        )
        .with(tracing_subscriber::filter::LevelFilter::TRACE);
    let guard = tracing::subscriber::set_default(subscriber);
    let result = run.await;
    drop(guard);
    result?;
    let spans = spans
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Captured {
        spans,
        text: logs.text(),
    })
}

// ---------------------------------------------------------------------------------------
// Fixtures.

fn config(flavor: Kv2Flavor, address: &str, auth: Kv2Auth, capture: &MetricsCapture) -> Kv2Config {
    Kv2Config::new(flavor, address, auth)
        .with_timeout(Duration::from_secs(5))
        .with_retry(
            RetryConfig::attempts(3)
                .with_delays(Duration::from_millis(5), Duration::from_millis(20)),
        )
        .with_metrics(capture.metrics())
}

fn approle() -> Kv2Auth {
    Kv2Auth::approle(ROLE_ID, Some(SecretString::from(SECRET_ID)))
}

fn login_reply(token: &str, ttl: u64) -> Fault {
    Fault::json(
        200,
        &json!({"auth": {"client_token": token, "lease_duration": ttl, "renewable": true}}),
    )
}

fn lookup_reply(ttl: u64) -> Fault {
    Fault::json(
        200,
        &json!({"data": {"ttl": ttl, "renewable": true, "expire_time": "x"}}),
    )
}

fn kv_reply() -> Fault {
    Fault::json(
        200,
        &json!({"data": {"data": {"password": VALUE}, "metadata": {"version": 1}}}),
    )
}

fn uri(scheme: &str) -> Result<SecretUri, secret_uri::UriError> {
    format!("{scheme}://secret/{PATH}#password").parse()
}

fn ttl_of(capture: &MetricsCapture, provider: &str) -> Result<f64, Box<dyn std::error::Error>> {
    Ok(capture
        .points()?
        .sum_where(metric::TOKEN_TTL_REMAINING, &[("provider", provider)]))
}

/// The fields every HTTP client span has, named as `secret_telemetry::names` names them.
fn assert_http_span(span: &Closed, method: &str, port: u16) {
    assert_eq!(span.name, names::span::HTTP_REQUEST, "{span:?}");
    assert_eq!(span.get("otel.name"), Some(method), "{span:?}");
    assert_eq!(span.get("otel.kind"), Some("client"), "{span:?}");
    assert_eq!(
        span.get(semconv::HTTP_REQUEST_METHOD),
        Some(method),
        "{span:?}"
    );
    assert_eq!(
        span.get(semconv::SERVER_ADDRESS),
        Some("127.0.0.1"),
        "{span:?}"
    );
    assert_eq!(
        span.get(semconv::SERVER_PORT),
        Some(port.to_string().as_str()),
        "{span:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Scripted servers.

/// AppRole login, a 403 whose token `lookup-self` refuses, a re-login, a 503 and the read:
/// the read span counts the three read attempts, each login has its span, every HTTP attempt
/// its client span, and the TTL of the newest token is recorded.
#[tokio::test]
async fn a_read_with_a_relogin_and_a_retry_is_traced_without_secrets() -> TestResult {
    let denied = Fault::json(403, &json!({"errors": ["permission denied"]}));
    let server = FaultServer::start(vec![
        login_reply(TOKEN, 600),
        denied.clone(),
        denied,
        login_reply(RELOGIN_TOKEN, 900),
        Fault::status(503),
        kv_reply(),
    ])?;
    let metrics = MetricsCapture::new();
    let provider = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &server.addr(),
        approle(),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let seen = capture(async {
        let value = provider.read(&uri).await?;
        assert_eq!(
            value.expose_str(),
            Some(VALUE),
            "the canary was really read"
        );
        Ok(())
    })
    .await?;
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths.len(), 6, "{paths:?}");

    let read = seen.one(names::span::READ)?;
    assert_eq!(read.get("provider"), Some("openbao"));
    assert_eq!(read.get("mount"), Some("secret"));
    assert_eq!(read.get("status"), Some("200"));
    assert_eq!(read.get("status_class"), Some("2xx"));
    assert_eq!(read.get("attempts"), Some("3"), "403, 503, 200: {read:?}");
    assert_eq!(read.get("code"), None);

    let logins = seen.named(names::span::LOGIN);
    assert_eq!(logins.len(), 2, "{logins:?}");
    for login in &logins {
        assert_eq!(login.parent, Some(names::span::READ));
        assert_eq!(login.get("provider"), Some("openbao"));
        assert_eq!(login.get("auth_method"), Some("approle"));
        assert_eq!(login.get("kind"), Some("login"));
        assert_eq!(login.get("outcome"), Some("ok"));
        assert_eq!(login.get("code"), None);
    }

    let http = seen.named(names::span::HTTP_REQUEST);
    assert_eq!(http.len(), 6, "{http:?}");
    let port = server.port();
    let statuses: Vec<_> = http
        .iter()
        .map(|span| {
            (
                span.get(semconv::HTTP_REQUEST_METHOD),
                span.get(semconv::HTTP_RESPONSE_STATUS_CODE),
                span.get(semconv::ERROR_TYPE),
                span.get("http.request.resend_count"),
                span.parent,
            )
        })
        .collect();
    let read_span = Some(names::span::READ);
    let login_span = Some(names::span::LOGIN);
    assert_eq!(
        statuses,
        [
            (Some("POST"), Some("200"), None, None, login_span),
            (Some("GET"), Some("403"), Some("403"), None, read_span),
            (Some("GET"), Some("403"), Some("403"), None, read_span),
            (Some("POST"), Some("200"), None, None, login_span),
            (Some("GET"), Some("503"), Some("503"), None, read_span),
            (Some("GET"), Some("200"), None, Some("1"), read_span),
        ]
    );
    for (span, method) in http
        .iter()
        .zip(["POST", "GET", "GET", "POST", "GET", "GET"])
    {
        assert_http_span(span, method, port);
    }
    seen.assert_no_canary();
    assert_eq!(
        ttl_of(&metrics, "openbao")?,
        900.0,
        "the newest token's TTL"
    );
    Ok(())
}

/// A token looked up, then renewed: a `login` span of each kind, and each TTL recorded.
#[tokio::test]
async fn a_lookup_and_a_renewal_record_the_ttl() -> TestResult {
    let server = FaultServer::start(vec![
        lookup_reply(1),
        kv_reply(),
        login_reply(TOKEN, 3600),
        kv_reply(),
    ])?;
    let metrics = MetricsCapture::new();
    let provider = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &server.addr(),
        Kv2Auth::token(TOKEN),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let first = capture(async {
        provider.read(&uri).await?;
        Ok(())
    })
    .await?;
    let login = first.one(names::span::LOGIN)?;
    assert_eq!(
        (
            login.get("auth_method"),
            login.get("kind"),
            login.get("outcome")
        ),
        (Some("token"), Some("login"), Some("ok"))
    );
    assert_eq!(ttl_of(&metrics, "openbao")?, 1.0, "the looked-up TTL");
    first.assert_no_canary();

    // Two thirds of the 1 s TTL later, the next read renews.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let second = capture(async {
        provider.read(&uri).await?;
        Ok(())
    })
    .await?;
    let renew = second.one(names::span::LOGIN)?;
    assert_eq!(
        (
            renew.get("auth_method"),
            renew.get("kind"),
            renew.get("outcome")
        ),
        (Some("token"), Some("renew"), Some("ok"))
    );
    assert_eq!(ttl_of(&metrics, "openbao")?, 3600.0, "the renewed TTL");
    let read = second.one(names::span::READ)?;
    assert_eq!(read.get("attempts"), Some("1"));
    second.assert_no_canary();
    Ok(())
}

/// A refused login: the `login` span and the read span carry the code; no HTTP attempt of
/// the read was made; no TTL is recorded.
#[tokio::test]
async fn a_refused_login_is_an_error_outcome_with_its_code() -> TestResult {
    let server = FaultServer::start(vec![Fault::json(
        400,
        &json!({"errors": ["invalid role or secret ID"]}),
    )])?;
    let metrics = MetricsCapture::new();
    let provider = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &server.addr(),
        approle(),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let seen = capture(async {
        let error = provider.read(&uri).await.err().map(|e| e.code());
        assert_eq!(error, Some("AUTH_FAILED"));
        Ok(())
    })
    .await?;
    let login = seen.one(names::span::LOGIN)?;
    assert_eq!(login.get("outcome"), Some("error"));
    assert_eq!(login.get("code"), Some("AUTH_FAILED"));
    let read = seen.one(names::span::READ)?;
    assert_eq!(read.get("code"), Some("AUTH_FAILED"));
    assert_eq!(read.get("attempts"), Some("0"));
    assert_eq!(read.get("status_class"), None);
    let http = seen.one(names::span::HTTP_REQUEST)?;
    assert_eq!(http.get(semconv::ERROR_TYPE), Some("400"));
    seen.assert_no_canary();
    assert_eq!(ttl_of(&metrics, "openbao")?, 0.0);
    assert!(
        metrics
            .points()?
            .named(metric::TOKEN_TTL_REMAINING)
            .is_empty()
    );
    Ok(())
}

/// A 404 and a server that stays away: `4xx` with the code; `5xx` with every attempt.
#[tokio::test]
async fn failed_reads_carry_their_status_class_and_attempts() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::json(200, &json!({"data": {"ttl": 0, "renewable": false}})),
        Fault::json(404, &json!({"errors": []})),
        Fault::status(502),
    ])?;
    let metrics = MetricsCapture::new();
    let provider = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &server.addr(),
        Kv2Auth::token(TOKEN),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let seen = capture(async {
        assert_eq!(
            provider.read(&uri).await.err().map(|e| e.code()),
            Some("NOT_FOUND")
        );
        assert_eq!(
            provider.read(&uri).await.err().map(|e| e.code()),
            Some("UNAVAILABLE")
        );
        Ok(())
    })
    .await?;
    let reads = seen.named(names::span::READ);
    let got: Vec<_> = reads
        .iter()
        .map(|r| (r.get("status_class"), r.get("attempts"), r.get("code")))
        .collect();
    assert_eq!(
        got,
        [
            (Some("4xx"), Some("1"), Some("NOT_FOUND")),
            (Some("5xx"), Some("3"), Some("UNAVAILABLE")),
        ]
    );
    seen.assert_no_canary();
    // TTL 0: the token never expires; there is nothing to count down.
    assert!(
        metrics
            .points()?
            .named(metric::TOKEN_TTL_REMAINING)
            .is_empty()
    );
    Ok(())
}

/// A server built as HashiCorp Vault and reached by an `openbao` URI is labeled by the
/// flavor it was built for.
#[tokio::test]
async fn the_provider_label_is_the_flavor_built_for() -> TestResult {
    let server = FaultServer::start(vec![lookup_reply(120), kv_reply()])?;
    let metrics = MetricsCapture::new();
    let provider = Kv2Provider::new(config(
        Kv2Flavor::HashiCorp,
        &server.addr(),
        Kv2Auth::token(TOKEN),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let seen = capture(async {
        provider.read(&uri).await?;
        Ok(())
    })
    .await?;
    assert_eq!(
        seen.one(names::span::READ)?.get("provider"),
        Some("hashicorp")
    );
    assert_eq!(
        seen.one(names::span::LOGIN)?.get("provider"),
        Some("hashicorp")
    );
    assert_eq!(ttl_of(&metrics, "hashicorp")?, 120.0);
    assert_eq!(ttl_of(&metrics, "openbao")?, 0.0);
    for point in metrics.points()?.named(metric::TOKEN_TTL_REMAINING) {
        let provider = point.label("provider").unwrap_or_default();
        assert!(names::PROVIDERS.contains(&provider), "{point:?}");
    }
    Ok(())
}

/// Without `with_metrics`, the provider records through the global meter provider installed
/// before it was built.
#[tokio::test]
async fn the_default_is_the_global_meter_provider_of_build_time() -> TestResult {
    let global = MetricsCapture::new();
    opentelemetry::global::set_meter_provider(global.provider());
    let server = FaultServer::start(vec![lookup_reply(77), kv_reply()])?;
    let config = Kv2Config::new(Kv2Flavor::OpenBao, server.addr(), Kv2Auth::token(TOKEN));
    assert!(config.metrics.is_none());
    let provider = Kv2Provider::new(config)?;
    provider.read(&uri("openbao+kv2")?).await?;
    assert_eq!(ttl_of(&global, "openbao")?, 77.0);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A real OpenBao.

/// A token and an AppRole login against the real server: the spans' shapes, the TTLs it
/// gives, and no canary anywhere.
#[tokio::test]
async fn against_openbao_the_spans_and_ttls_are_the_servers() -> TestResult {
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return Ok(());
    };
    let created =
        bao.create_token_with(&json!({"id": TOKEN, "policies": ["root"], "ttl": "1h"}))?;
    assert_eq!(created["client_token"], json!(TOKEN));
    bao.kv_put("secret", PATH, &json!({"password": VALUE}))?;
    bao.put_policy(
        "telemetry-read",
        r#"path "secret/data/*" { capabilities = ["read"] }"#,
    )?;
    let role = bao.setup_approle("telemetry", &["telemetry-read"])?;
    let port = bao.port();

    let metrics = MetricsCapture::new();
    let by_token = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &bao.addr(),
        Kv2Auth::token(TOKEN),
        &metrics,
    ))?;
    let uri = uri("openbao+kv2")?;
    let seen = capture(async {
        assert_eq!(by_token.read(&uri).await?.expose_str(), Some(VALUE));
        Ok(())
    })
    .await?;
    let read = seen.one(names::span::READ)?;
    assert_eq!(
        (
            read.get("status"),
            read.get("status_class"),
            read.get("attempts")
        ),
        (Some("200"), Some("2xx"), Some("1"))
    );
    let login = seen.one(names::span::LOGIN)?;
    assert_eq!(
        (
            login.get("auth_method"),
            login.get("kind"),
            login.get("outcome")
        ),
        (Some("token"), Some("login"), Some("ok"))
    );
    let http = seen.named(names::span::HTTP_REQUEST);
    assert_eq!(http.len(), 2, "lookup-self and the read: {http:?}");
    for span in &http {
        assert_http_span(span, "GET", port);
        assert_eq!(span.get(semconv::HTTP_RESPONSE_STATUS_CODE), Some("200"));
    }
    seen.assert_no_canary();
    let ttl = ttl_of(&metrics, "openbao")?;
    assert!((3500.0..=3600.0).contains(&ttl), "the server's TTL: {ttl}");

    let approle_metrics = MetricsCapture::new();
    let by_approle = Kv2Provider::new(config(
        Kv2Flavor::OpenBao,
        &bao.addr(),
        Kv2Auth::approle(
            role.role_id.clone(),
            Some(SecretString::from(role.secret_id.clone())),
        ),
        &approle_metrics,
    ))?;
    let seen = capture(async {
        assert_eq!(by_approle.read(&uri).await?.expose_str(), Some(VALUE));
        Ok(())
    })
    .await?;
    let login = seen.one(names::span::LOGIN)?;
    assert_eq!(
        (
            login.get("auth_method"),
            login.get("kind"),
            login.get("outcome")
        ),
        (Some("approle"), Some("login"), Some("ok"))
    );
    let login_http = seen
        .named(names::span::HTTP_REQUEST)
        .into_iter()
        .find(|s| s.parent == Some(names::span::LOGIN))
        .ok_or("no HTTP span under the login")?;
    assert_http_span(login_http, "POST", port);
    seen.assert_no_canary();
    for credential in [&role.role_id, &role.secret_id] {
        assert!(
            !seen.text.contains(credential.as_str()),
            "an AppRole credential leaked"
        );
    }
    assert_eq!(
        ttl_of(&approle_metrics, "openbao")?,
        3600.0,
        "the role's token_ttl"
    );
    Ok(())
}
