//! A real OTLP/HTTP receiver on loopback (feature `otlp`): hyper (HTTP/1.1) on a free port,
//! `POST /v1/traces` and `POST /v1/metrics` decoded with the published `opentelemetry-proto`
//! types, answered `200` with an empty protobuf response, as an OpenTelemetry Collector does.
//!
//! It keeps every decoded request *and* every raw request (headers and body bytes), so a
//! test can assert names and attributes and also scan all bytes that were exported for a
//! canary. [`OtlpReceiver::start_silent`] accepts and reads requests but never answers, to
//! show that export cannot hang the program that exports.
//!
//! ```
//! use std::time::Duration;
//! use prost::Message as _;
//! use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
//! use secrets_test_support::otlp::OtlpReceiver;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = OtlpReceiver::start()?;
//! assert!(receiver.addr().starts_with("http://127.0.0.1:"));
//! // An exporter would POST here; a hand-made request shows the round trip.
//! let body = ExportTraceServiceRequest::default().encode_to_vec();
//! let status = receiver.post_for_test("/v1/traces", &body)?;
//! assert_eq!(status, 200);
//! assert!(receiver.wait_for(Duration::from_secs(5), |r| r.trace_requests().len() == 1));
//! assert!(receiver.spans().is_empty());
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message as _;

use crate::Error;

/// The largest request body accepted (the OTLP/HTTP exporters' own limit is 64 MiB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One request as it arrived, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/v1/traces`.
    pub path: String,
    /// Every header, names lower-case, values as text (lossy).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// One exported span, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The span name, e.g. `secret_resolve`.
    pub name: String,
    /// Its attributes as `(key, value as text)`, in the order sent.
    pub attributes: Vec<(String, String)>,
    /// The `service.name` of its resource, if any.
    pub service_name: Option<String>,
    /// The span kind (the protobuf enum's number: 1 internal, 3 client, …).
    pub kind: i32,
    /// The span id and its parent's (empty for a root), to check nesting.
    pub span_id: Vec<u8>,
    /// The parent span's id, empty for a root span.
    pub parent_span_id: Vec<u8>,
}

impl ReceivedSpan {
    /// The value of attribute `key`, if the span has it.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One exported metric data point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPoint {
    /// The metric name, e.g. `secrets.resolve.duration`.
    pub metric: String,
    /// The point's attributes as `(key, value as text)`.
    pub attributes: Vec<(String, String)>,
    /// Sums and gauges: the value; histograms: the count.
    pub value: f64,
}

impl ReceivedPoint {
    /// The value of attribute `key`, if the point has it.
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Received {
    raw: Vec<RawRequest>,
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    /// Requests whose body did not decode, by path.
    undecodable: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Received>,
    answer: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An OTLP/HTTP receiver on `127.0.0.1:<free port>`, running on a runtime of its own until
/// dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl OtlpReceiver {
    /// A receiver that answers every export `200` with an empty protobuf response.
    ///
    /// # Errors
    /// `IO` when the runtime cannot start or no port can be bound.
    pub fn start() -> Result<Self, Error> {
        Self::launch(true)
    }

    /// A receiver that accepts connections and reads every request (recording it) but never
    /// answers: an endpoint that hangs.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_silent() -> Result<Self, Error> {
        Self::launch(false)
    }

    fn launch(answer: bool) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-receiver")
            .enable_all()
            .build()
            .map_err(Error::io("start the OTLP receiver's runtime"))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .map_err(Error::io("bind 127.0.0.1:0 for the OTLP receiver"))?;
        let addr = listener
            .local_addr()
            .map_err(Error::io("read the OTLP receiver's address"))?;
        let shared = Arc::new(Shared {
            received: Mutex::default(),
            answer,
        });
        let serving = Arc::clone(&shared);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&shared), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// The base URL, `http://127.0.0.1:<port>` (what `OTEL_EXPORTER_OTLP_ENDPOINT` takes).
    #[must_use]
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, raw.
    #[must_use]
    pub fn raw_requests(&self) -> Vec<RawRequest> {
        self.shared.lock().raw.clone()
    }

    /// Every byte received so far (headers as text, then bodies), for canary scans.
    #[must_use]
    pub fn raw_bytes(&self) -> Vec<u8> {
        let received = self.shared.lock();
        let mut bytes = Vec::new();
        for request in &received.raw {
            bytes.extend_from_slice(request.method.as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(request.path.as_bytes());
            bytes.push(b'\n');
            for (name, value) in &request.headers {
                bytes.extend_from_slice(format!("{name}: {value}\n").as_bytes());
            }
            bytes.extend_from_slice(&request.body);
            bytes.push(b'\n');
        }
        bytes
    }

    /// The decoded `POST /v1/traces` requests.
    #[must_use]
    pub fn trace_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.shared.lock().traces.clone()
    }

    /// The decoded `POST /v1/metrics` requests.
    #[must_use]
    pub fn metric_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.shared.lock().metrics.clone()
    }

    /// The paths of requests whose body was not a valid protobuf export request.
    #[must_use]
    pub fn undecodable(&self) -> Vec<String> {
        self.shared.lock().undecodable.clone()
    }

    /// Every span received, flattened, in arrival order.
    #[must_use]
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let received = self.shared.lock();
        let mut spans = Vec::new();
        for request in &received.traces {
            for resource_spans in &request.resource_spans {
                let service_name = resource_spans.resource.as_ref().and_then(|resource| {
                    resource
                        .attributes
                        .iter()
                        .find(|kv| kv.key == "service.name")
                        .map(|kv| any_text(kv.value.as_ref()))
                });
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push(ReceivedSpan {
                            name: span.name.clone(),
                            attributes: texts(&span.attributes),
                            service_name: service_name.clone(),
                            kind: span.kind,
                            span_id: span.span_id.clone(),
                            parent_span_id: span.parent_span_id.clone(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// The spans named `name`.
    #[must_use]
    pub fn spans_named(&self, name: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every metric data point received, flattened, in arrival order (cumulative metrics
    /// repeat in every export).
    #[must_use]
    pub fn points(&self) -> Vec<ReceivedPoint> {
        let received = self.shared.lock();
        let mut points = Vec::new();
        for request in &received.metrics {
            for resource in &request.resource_metrics {
                for scope in &resource.scope_metrics {
                    for metric in &scope.metrics {
                        flatten(metric, &mut points);
                    }
                }
            }
        }
        points
    }

    /// The data points of metric `name`.
    #[must_use]
    pub fn points_named(&self, name: &str) -> Vec<ReceivedPoint> {
        self.points()
            .into_iter()
            .filter(|p| p.metric == name)
            .collect()
    }

    /// The distinct metric names received.
    #[must_use]
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.points().into_iter().map(|p| p.metric).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Polls `done` every 20 ms until it holds or `timeout` passes; whether it held.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one `POST path` with a protobuf `body` over plain `std::net` (independent of
    /// the exporter under test) and returns the status; for the receiver's own tests.
    ///
    /// # Errors
    /// `IO` when the request cannot be sent or read back; `MALFORMED_RESPONSE` for an answer
    /// that is not HTTP.
    pub fn post_for_test(&self, path: &str, body: &[u8]) -> Result<u16, Error> {
        let mut stream =
            TcpStream::connect(self.addr).map_err(Error::io("connect to the OTLP receiver"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(Error::io("set a read timeout"))?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body))
            .map_err(Error::io("send to the OTLP receiver"))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .map_err(Error::io("read the OTLP receiver's answer"))?;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| Error::BadResponse {
                addr: self.addr.to_string(),
                reason: "no HTTP status line".into(),
            })
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::PAYLOAD_TOO_LARGE, Bytes::new())),
    };
    let path = parts.uri.path().to_owned();
    {
        let mut received = shared.lock();
        received.raw.push(RawRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
    }
    if !shared.answer {
        // Hold the connection (and this request) open, silent, until the receiver is dropped.
        std::future::pending::<()>().await;
    }
    let answer = match (parts.method.as_str(), path.as_str()) {
        ("POST", "/v1/traces") => match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                shared.lock().traces.push(request);
                ExportTraceServiceResponse::default().encode_to_vec()
            }
            Err(_) => return Ok(undecodable(&shared, path)),
        },
        ("POST", "/v1/metrics") => match ExportMetricsServiceRequest::decode(body) {
            Ok(request) => {
                shared.lock().metrics.push(request);
                ExportMetricsServiceResponse::default().encode_to_vec()
            }
            Err(_) => return Ok(undecodable(&shared, path)),
        },
        _ => return Ok(status(StatusCode::NOT_FOUND, Bytes::new())),
    };
    Ok(status(StatusCode::OK, Bytes::from(answer)))
}

fn undecodable(shared: &Shared, path: String) -> Response<Full<Bytes>> {
    shared.lock().undecodable.push(path);
    status(StatusCode::BAD_REQUEST, Bytes::new())
}

fn status(code: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}

fn texts(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), any_text(kv.value.as_ref())))
        .collect()
}

/// An attribute value as text: strings as they are, numbers and booleans printed, arrays and
/// maps as `[a, b]` / `{k: v}`, bytes as hex.
fn any_text(value: Option<&AnyValue>) -> String {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(bytes)) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(|v| any_text(Some(v))).collect();
            format!("[{}]", items.join(", "))
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| format!("{}: {}", kv.key, any_text(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Some(other) => format!("{other:?}"),
    }
}

fn flatten(
    metric: &opentelemetry_proto::tonic::metrics::v1::Metric,
    points: &mut Vec<ReceivedPoint>,
) {
    let number = |value: Option<&number_data_point::Value>| match value {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        // Precision is irrelevant for the counts tests compare.
        #[allow(clippy::cast_precision_loss)]
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    };
    let mut push = |attributes: &[KeyValue], value: f64| {
        points.push(ReceivedPoint {
            metric: metric.name.clone(),
            attributes: texts(attributes),
            value,
        });
    };
    #[allow(clippy::cast_precision_loss)]
    match &metric.data {
        Some(metric::Data::Sum(sum)) => {
            for p in &sum.data_points {
                push(&p.attributes, number(p.value.as_ref()));
            }
        }
        Some(metric::Data::Gauge(gauge)) => {
            for p in &gauge.data_points {
                push(&p.attributes, number(p.value.as_ref()));
            }
        }
        Some(metric::Data::Histogram(histogram)) => {
            for p in &histogram.data_points {
                push(&p.attributes, p.count as f64);
            }
        }
        Some(metric::Data::ExponentialHistogram(histogram)) => {
            for p in &histogram.data_points {
                push(&p.attributes, p.count as f64);
            }
        }
        Some(metric::Data::Summary(summary)) => {
            for p in &summary.data_points {
                push(&p.attributes, p.count as f64);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::metrics::v1::{
        Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn decodes_spans_and_points_and_keeps_the_raw_bytes() -> Result<(), Error> {
        let receiver = OtlpReceiver::start()?;
        let traces = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "secrets")],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans: vec![Span {
                        name: "secret_resolve".into(),
                        attributes: vec![kv("provider", "file"), kv("cache", "miss")],
                        ..Span::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "secrets.cache.misses".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv("provider", "file")],
                                value: Some(number_data_point::Value::AsInt(2)),
                                ..NumberDataPoint::default()
                            }],
                            ..Sum::default()
                        })),
                        ..Metric::default()
                    }],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        };
        assert_eq!(
            receiver.post_for_test("/v1/traces", &traces.encode_to_vec())?,
            200
        );
        assert_eq!(
            receiver.post_for_test("/v1/metrics", &metrics.encode_to_vec())?,
            200
        );
        assert_eq!(
            receiver.post_for_test("/v1/traces", b"\xff\xff not protobuf")?,
            400
        );
        assert_eq!(receiver.post_for_test("/v1/logs", b"")?, 404);

        let spans = receiver.spans_named("secret_resolve");
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].attribute("cache"), Some("miss"));
        assert_eq!(spans[0].service_name.as_deref(), Some("secrets"));
        let points = receiver.points_named("secrets.cache.misses");
        assert_eq!(points.len(), 1);
        assert_eq!(
            (points[0].attribute("provider"), points[0].value),
            (Some("file"), 2.0)
        );
        assert_eq!(receiver.metric_names(), ["secrets.cache.misses"]);
        assert_eq!(receiver.undecodable(), ["/v1/traces"]);
        assert_eq!(receiver.raw_requests().len(), 4);
        let raw = String::from_utf8_lossy(&receiver.raw_bytes()).into_owned();
        assert!(
            raw.contains("secret_resolve") && raw.contains("POST /v1/logs"),
            "{raw}"
        );
        Ok(())
    }

    #[test]
    fn the_silent_receiver_records_but_never_answers() -> Result<(), Error> {
        let receiver = OtlpReceiver::start_silent()?;
        let addr = receiver.addr;
        let client = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(Duration::from_millis(300)))?;
            stream
                .write_all(b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")?;
            let mut buf = [0_u8; 64];
            stream.read(&mut buf)
        });
        let answered = client.join().map_err(|_| Error::BadResponse {
            addr: addr.to_string(),
            reason: "client thread panicked".into(),
        })?;
        let timed_out = answered.as_ref().err().is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        });
        assert!(timed_out, "{answered:?}");
        assert!(receiver.wait_for(Duration::from_secs(5), |r| r.raw_requests().len() == 1));
        assert!(receiver.trace_requests().is_empty());
        Ok(())
    }
}
