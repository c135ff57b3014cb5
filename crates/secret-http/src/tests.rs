//! The client against `secrets-test-support`'s scripted HTTP/1.1 server on loopback.

use std::time::{Duration, Instant};

use http::{Method, StatusCode, Uri};
use secrets_test_support::{Fault, FaultServer};

use crate::message::tests::WIPED;
use crate::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn client(timeout: Duration) -> Result<HttpClient, HttpError> {
    HttpClient::new(
        &ClientConfig::new("test")
            .with_timeout(timeout)
            .with_max_body_bytes(4096),
    )
}

fn url(server: &FaultServer, path: &str) -> Result<Uri, http::uri::InvalidUri> {
    format!("{}{path}", server.addr()).parse()
}

fn quick() -> RetryPolicy {
    RetryPolicy::attempts(3).with_delays(Duration::from_millis(5), Duration::from_millis(10))
}

fn code<T>(result: &Result<T, HttpError>) -> &'static str {
    result.as_ref().map_or_else(HttpError::code, |_| "OK")
}

#[tokio::test]
async fn each_failure_has_its_class_and_keeps_its_cause() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::text(200, "ok"),
        Fault::Close,
        Fault::Truncated {
            declared_len: 100,
            body: b"{\"cut".to_vec(),
        },
        Fault::Huge { len: 64 * 1024 },
        Fault::Respond {
            status: 200,
            headers: vec![("Transfer-Encoding".into(), "chunked".into())],
            body: b"zz\r\nnot a chunk\r\n".to_vec(),
        },
        Fault::Hang,
    ])?;
    let client = client(Duration::from_millis(300))?;
    let get = Request::get(url(&server, "/v1/x")?);
    let mut seen = Vec::new();
    for _ in 0..6 {
        let result = client.send(&get).await;
        if let Err(error) = &result {
            let needs_source = !matches!(
                error,
                HttpError::TooLarge { .. } | HttpError::Timeout { .. }
            );
            assert_eq!(
                std::error::Error::source(error).is_some(),
                needs_source,
                "{error:?}"
            );
        }
        seen.push((code(&result), result.err().and_then(|e| e.status())));
    }
    assert_eq!(
        seen,
        [
            ("OK", None),
            ("CONNECTION_LOST", None),
            ("BODY_CUT", Some(200)),
            ("TOO_LARGE", None),
            ("BAD_FRAMING", Some(200)),
            ("TIMEOUT", None),
        ]
    );

    let port = secrets_test_support::free_port()?;
    let refused = client
        .send(&Request::get(format!("http://127.0.0.1:{port}/").parse()?))
        .await;
    assert_eq!(code(&refused), "CONNECT");
    assert!(
        refused
            .err()
            .and_then(|e| std::error::Error::source(&e).map(|_| ()))
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn a_tls_failure_is_tls_and_is_not_retried() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that answers the ClientHello in plain HTTP: not TLS records.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let mut accepted = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            accepted += 1;
            let mut hello = [0; 512];
            let _ = socket.read(&mut hello).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            if accepted == 3 {
                break;
            }
        }
        accepted
    });
    let client = client(Duration::from_secs(2))?;
    let https: Uri = format!("https://127.0.0.1:{port}/").parse()?;
    let result = client.send_retrying(&Request::get(https), &quick()).await;
    match result {
        Err(RetryError {
            attempts: 1,
            error: HttpError::Tls { .. },
            ..
        }) => {}
        other => panic!("expected TLS after one attempt, got {other:?}"),
    }
    server.abort();
    Ok(())
}

#[tokio::test]
async fn redirects_are_responses_and_other_statuses_can_be_refused_unread() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::status(307).with_header("Location", "http://127.0.0.1:1/elsewhere"),
        Fault::Huge { len: 64 * 1024 },
        Fault::json(500, &serde_json::json!({"error": "boom"})),
    ])?;
    let client = client(Duration::from_secs(2))?;
    let redirect = client.send(&Request::get(url(&server, "/a")?)).await?;
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(server.request_count(), 1, "the Location is never followed");

    let expect_ok = Request::get(url(&server, "/b")?).with_expect_status(StatusCode::OK);
    assert_eq!(code(&client.send(&expect_ok).await), "TOO_LARGE");
    let refused = client.send(&expect_ok).await;
    assert!(
        matches!(refused, Err(HttpError::Status { status: 500 })),
        "{refused:?}"
    );
    assert!(!format!("{refused:?}").contains("boom"));
    Ok(())
}

#[tokio::test]
async fn idempotent_requests_are_retried_after_transient_failures() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::status(503),
        Fault::Close,
        Fault::text(200, "ok"),
    ])?;
    let client = client(Duration::from_secs(2))?;
    let response = client
        .send_retrying(&Request::get(url(&server, "/r")?), &quick())
        .await?;
    assert_eq!(&response.body()[..], b"ok");
    assert_eq!(server.request_count(), 3);

    server.set_script(vec![Fault::status(502)]);
    let exhausted = client
        .send_retrying(&Request::get(url(&server, "/r")?), &quick())
        .await;
    match exhausted {
        Err(RetryError {
            attempts: 3,
            error: HttpError::Status { status: 502 },
            ..
        }) => {}
        other => panic!("expected STATUS 502 after 3 attempts, got {other:?}"),
    }
    server.set_script(vec![Fault::status(404)]);
    let not_found = client
        .send_retrying(&Request::get(url(&server, "/r")?), &quick())
        .await?;
    assert_eq!(
        not_found.status(),
        StatusCode::NOT_FOUND,
        "a 404 is an answer"
    );
    Ok(())
}

#[tokio::test]
async fn other_requests_are_retried_only_when_surely_not_handled() -> TestResult {
    let client = client(Duration::from_secs(2))?;
    for (fault, attempts, code) in [
        (Fault::Close, 1, "CONNECTION_LOST"),
        (Fault::status(500), 1, "STATUS"),
        (Fault::status(503), 3, "STATUS"),
        (Fault::status(429), 3, "STATUS"),
    ] {
        let server = FaultServer::start(vec![fault])?;
        let login = Request::post(url(&server, "/v1/auth/approle/login")?).with_body("{}");
        let result = client.send_retrying(&login, &quick()).await;
        let got = result.as_ref().err().map(|e| (e.attempts, e.code()));
        assert_eq!(got, Some((attempts, code)));
        assert_eq!(server.request_count(), attempts as usize);
    }
    // A POST marked idempotent (a renewal) is retried like a GET.
    let server = FaultServer::start(vec![Fault::Close, Fault::text(200, "ok")])?;
    let renew = Request::new(Method::POST, url(&server, "/renew")?).with_idempotent(true);
    assert!(client.send_retrying(&renew, &quick()).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn a_deadline_bounds_every_attempt_and_the_retries() -> TestResult {
    let server = FaultServer::start(vec![Fault::Hang])?;
    let client = client(Duration::from_secs(10))?;
    let started = Instant::now();
    let request = Request::get(url(&server, "/slow")?)
        .with_deadline(Deadline::after(Duration::from_millis(300)));
    let policy = RetryPolicy::attempts(5)
        .with_delays(Duration::from_millis(100), Duration::from_millis(100));
    let result = client.send_retrying(&request, &policy).await;
    let elapsed = started.elapsed();
    assert_eq!(result.as_ref().err().map(RetryError::code), Some("TIMEOUT"));
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    Ok(())
}

#[tokio::test]
async fn response_bodies_are_wiped_on_every_path() -> TestResult {
    let server = FaultServer::start(vec![
        Fault::text(200, "wipe-me"),
        Fault::text(503, "wipe-503"),
        Fault::text(404, "wipe-404"),
    ])?;
    let client = client(Duration::from_secs(2))?;
    WIPED.with(|w| w.borrow_mut().clear());
    let policy =
        RetryPolicy::attempts(2).with_delays(Duration::from_millis(1), Duration::from_millis(1));
    drop(client.send(&Request::get(url(&server, "/")?)).await?);
    // A 503 body is read, wiped, and the request retried (the 404 answers it).
    let last = client
        .send_retrying(&Request::get(url(&server, "/")?), &policy)
        .await?;
    drop(last);
    assert_eq!(WIPED.with(|w| w.borrow().clone()), [7, 8, 8]);
    Ok(())
}

#[tokio::test]
async fn zero_timeout_and_plain_http_elsewhere_are_refused() -> TestResult {
    let zero = HttpClient::new(&ClientConfig::new("test").with_timeout(Duration::ZERO));
    assert!(matches!(
        zero,
        Err(HttpError::Config {
            setting: Setting::Timeout,
            ..
        })
    ));
    let client = client(Duration::from_secs(1))?;
    let elsewhere = Request::get("http://pdp.example/".parse()?);
    assert_eq!(code(&client.send(&elsewhere).await), "INSECURE_HTTP");
    Ok(())
}

/// Telemetry: what a TRACE-level `fmt` subscriber on this thread saw while `run` ran.
mod spans {
    use std::future::Future;

    use http::header::{HeaderName, HeaderValue};
    use secrets_test_support::LogCapture;
    use tracing_subscriber::fmt::format::FmtSpan;

    use super::*;

    const CANARY_TOKEN: &str = "CANARY-TOKEN-5e1d";
    const CANARY_PATH: &str = "canary-path-5e1d";

    /// Runs `run` under a TRACE subscriber scoped to this thread (the test's current-thread
    /// runtime, where hyper's connection tasks run too) and returns the captured text.
    /// Held by every test that installs a subscriber: `tracing` recomputes each callsite's
    /// interest when a subscriber comes or goes, and a span made on one thread while another
    /// test's subscriber (at INFO) is installed or dropped can miss the capture.
    static SUBSCRIBERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    async fn captured<F: Future<Output = TestResult>>(
        run: F,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let _serial = SUBSCRIBERS.lock().await;
        let logs = LogCapture::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::FULL)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        run.await?;
        drop(guard);
        Ok(logs.text())
    }

    /// The fields of each closed `http_request` span, in closing order.
    fn closed_http_spans(logs: &str) -> Vec<&str> {
        logs.lines()
            .filter(|line| line.ends_with("close") || line.contains(": close "))
            .filter_map(|line| {
                let start = line.find("http_request{")?;
                let rest = &line[start..];
                rest.find('}').map(|end| &rest[..=end])
            })
            .collect()
    }

    fn canary_request(server: &FaultServer) -> Result<Request, Box<dyn std::error::Error>> {
        let mut token = HeaderValue::from_str(CANARY_TOKEN)?;
        token.set_sensitive(true);
        Ok(Request::get(url(
            server,
            &format!("/v1/secret/data/{CANARY_PATH}?version=7"),
        )?)
        .with_header(HeaderName::from_static("x-vault-token"), token))
    }

    #[tokio::test]
    async fn each_attempt_is_an_http_client_span_without_path_or_headers() -> TestResult {
        let server = FaultServer::start(vec![Fault::status(503), Fault::text(200, "ok")])?;
        let client = client(Duration::from_secs(2))?;
        let request = canary_request(&server)?;
        let logs = captured(async {
            let response = client.send_retrying(&request, &quick()).await?;
            assert_eq!(response.attempts(), 2);
            Ok(())
        })
        .await?;
        let spans = closed_http_spans(&logs);
        assert_eq!(spans.len(), 2, "{logs}");
        let port = server.port();
        for span in &spans {
            for field in [
                "otel.name=\"GET\"".to_owned(),
                "otel.kind=\"client\"".to_owned(),
                "http.request.method=\"GET\"".to_owned(),
                "server.address=\"127.0.0.1\"".to_owned(),
                format!("server.port={port}"),
            ] {
                assert!(span.contains(&field), "{field} missing: {span}");
            }
        }
        assert!(
            spans[0].contains("http.response.status_code=503"),
            "{}",
            spans[0]
        );
        assert!(spans[0].contains("error.type=\"503\""), "{}", spans[0]);
        assert!(!spans[0].contains("resend_count"), "{}", spans[0]);
        assert!(
            spans[1].contains("http.response.status_code=200"),
            "{}",
            spans[1]
        );
        assert!(
            spans[1].contains("http.request.resend_count=1"),
            "{}",
            spans[1]
        );
        assert!(!spans[1].contains("error.type"), "{}", spans[1]);
        for hidden in [CANARY_TOKEN, CANARY_PATH, "/v1/", "version=", "url."] {
            assert!(!logs.contains(hidden), "{hidden} leaked: {logs}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_attempt_names_its_error_type() -> TestResult {
        let client = client(Duration::from_secs(2))?;
        let port = secrets_test_support::free_port()?;
        let refused = Request::get(format!("http://127.0.0.1:{port}/v1/{CANARY_PATH}").parse()?);
        let server = FaultServer::start(vec![Fault::status(404)])?;
        let expect_ok = canary_request(&server)?.with_expect_status(StatusCode::OK);
        let logs = captured(async {
            assert_eq!(code(&client.send(&refused).await), "CONNECT");
            assert_eq!(code(&client.send(&expect_ok).await), "STATUS");
            Ok(())
        })
        .await?;
        let spans = closed_http_spans(&logs);
        assert_eq!(spans.len(), 2, "{logs}");
        assert!(spans[0].contains("error.type=\"CONNECT\""), "{}", spans[0]);
        assert!(
            spans[0].contains(&format!("server.port={port}")),
            "{}",
            spans[0]
        );
        assert!(!spans[0].contains("status_code"), "{}", spans[0]);
        assert!(
            spans[1].contains("http.response.status_code=404"),
            "{}",
            spans[1]
        );
        assert!(spans[1].contains("error.type=\"404\""), "{}", spans[1]);
        for hidden in [CANARY_TOKEN, CANARY_PATH] {
            assert!(!logs.contains(hidden), "{hidden} leaked: {logs}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn the_span_is_debug_level() -> TestResult {
        let _serial = SUBSCRIBERS.lock().await;
        let server = FaultServer::start(vec![Fault::text(200, "ok")])?;
        let client = client(Duration::from_secs(2))?;
        let logs = LogCapture::default();
        let writer = logs.clone();
        let info = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_span_events(FmtSpan::FULL)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(info);
        client.send(&Request::get(url(&server, "/")?)).await?;
        tracing::info!("marker");
        drop(guard);
        let text = logs.text();
        assert!(text.contains("marker"), "the capture works: {text}");
        assert!(!text.contains("http_request"), "{text}");
        Ok(())
    }

    #[test]
    fn server_address_and_port_follow_the_conventions() -> Result<(), http::uri::InvalidUri> {
        use crate::client::server_of;
        for (uri, address, port) in [
            ("https://bao.example/v1/x", "bao.example", Some(443)),
            ("http://127.0.0.1:8200/v1/x", "127.0.0.1", Some(8200)),
            ("HTTP://[::1]/v1/", "::1", Some(80)),
            ("https://[2001:db8::1]:8443", "2001:db8::1", Some(8443)),
        ] {
            assert_eq!(server_of(&uri.parse()?), (address, port), "{uri}");
        }
        Ok(())
    }
}
