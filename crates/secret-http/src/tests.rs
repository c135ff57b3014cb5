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
