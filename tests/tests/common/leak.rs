//! The leak suite's instruments: the canaries, a scanner that finds them (as written, in any
//! case, hex-encoded or base64-encoded) in whatever a channel captured, and [`Capture`], one
//! subscriber that records every log line (text and JSON), every span (through the SDK's own
//! span layer and batch processor, as an installed OTLP pipeline exports them) and every
//! metric data point the process emits.
//!
//! A canary is allowed in a channel only where it is the product: the secret's value on the
//! stdout of `secrets resolve`/`get`, a URI's path on `secrets uri parse`'s, the subject in an
//! audit event. Everywhere else one occurrence is a finding.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use opentelemetry_sdk::trace::{BatchConfigBuilder, InMemorySpanExporter, SpanData};
use secret_telemetry::otlp::{OtlpConfig, Pipeline};
use secret_telemetry::testing::{MetricsCapture, Points};
use secrets_test_support::LogCapture;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;

/// What a canary stands for; decides where it may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A secret's value: the product of a read, so allowed on a product stream.
    Value,
    /// A credential: a vault token, an AppRole secret id, a PDP or OTLP bearer token, the
    /// tenant salt, a sender-binding thumbprint. Allowed nowhere.
    Token,
    /// A token id (`jti`). Allowed nowhere.
    Jti,
    /// Part of a secret's path (a segment, a file name). Allowed only where a URI is the
    /// product (`secrets uri parse`).
    Path,
    /// The caller's subject: audit events name it (that is their point); nothing else may.
    Subject,
}

/// One planted value.
#[derive(Debug, Clone, Copy)]
pub struct Canary {
    /// Its name in reports.
    pub name: &'static str,
    /// The text planted.
    pub text: &'static str,
    /// What it stands for.
    pub class: Class,
}

/// A secret value (a file's field, a KV v2 field, a text file).
pub const VALUE: &str = "LKVALUE-5e1d9a";
/// Another field of the same secrets, returned only when the whole secret is read.
pub const OTHER_VALUE: &str = "LKOTHER-0b7c3f";
/// The vault token (a real OpenBao token id), and the prefix of every other token canary.
pub const TOKEN: &str = "LKTOKEN-8f2c61";
/// A token the vault does not know.
pub const BAD_TOKEN: &str = "LKBADTOKEN-71d4e2";
/// An AppRole secret id (a real one: OpenBao's custom secret id).
pub const SECRET_ID: &str = "LKSECRETID-3a9e07";
/// The bearer token of the PDP (`AUTHZEN_PDP_TOKEN`).
pub const PDP_TOKEN: &str = "LKPDPTOKEN-9b21c8";
/// The OTLP exporter's header value (`OTEL_EXPORTER_OTLP_HEADERS`).
pub const OTEL_HEADER: &str = "LKOTELHDR-c40e5f";
/// The tenant salt (at least 16 bytes).
pub const SALT: &str = "LKSALT-2c8e5b-0123456789abcdef";
/// A DPoP key thumbprint (`cnf.jkt`) and a client certificate thumbprint.
pub const JKT: &str = "LKJKT-55e0a3";
/// A client certificate thumbprint (`x5t#S256`).
pub const X5T: &str = "LKX5T-d8f1b6";
/// The prefix of every `jti` the suite sends (`LKJTI-6d03f7-<n>`).
pub const JTI: &str = "LKJTI-6d03f7";
/// A path segment of every planted secret.
pub const SEGMENT: &str = "lkseg-4f7a20";
/// The file (or last segment) name of every planted secret.
pub const FILE: &str = "lkfile-e93b1c";
/// The caller's subject.
pub const SUBJECT: &str = "lksubject-a17f42";

/// Every canary.
pub const CANARIES: [Canary; 14] = [
    Canary {
        name: "VALUE",
        text: VALUE,
        class: Class::Value,
    },
    Canary {
        name: "OTHER_VALUE",
        text: OTHER_VALUE,
        class: Class::Value,
    },
    Canary {
        name: "TOKEN",
        text: TOKEN,
        class: Class::Token,
    },
    Canary {
        name: "BAD_TOKEN",
        text: BAD_TOKEN,
        class: Class::Token,
    },
    Canary {
        name: "SECRET_ID",
        text: SECRET_ID,
        class: Class::Token,
    },
    Canary {
        name: "PDP_TOKEN",
        text: PDP_TOKEN,
        class: Class::Token,
    },
    Canary {
        name: "OTEL_HEADER",
        text: OTEL_HEADER,
        class: Class::Token,
    },
    Canary {
        name: "SALT",
        text: SALT,
        class: Class::Token,
    },
    Canary {
        name: "JKT",
        text: JKT,
        class: Class::Token,
    },
    Canary {
        name: "X5T",
        text: X5T,
        class: Class::Token,
    },
    Canary {
        name: "JTI",
        text: JTI,
        class: Class::Jti,
    },
    Canary {
        name: "SEGMENT",
        text: SEGMENT,
        class: Class::Path,
    },
    Canary {
        name: "FILE",
        text: FILE,
        class: Class::Path,
    },
    Canary {
        name: "SUBJECT",
        text: SUBJECT,
        class: Class::Subject,
    },
];

/// Where captured bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    /// The text `fmt` layer (TRACE, span events).
    TextLog,
    /// The JSON `fmt` layer (TRACE, span events, current span and span list).
    JsonLog,
    /// Spans as the OpenTelemetry layer exported them (name, attributes, events, status).
    Spans,
    /// Metric data points: names and label sets.
    Metrics,
    /// Audit events: `Debug` and OCSF JSON.
    Audit,
    /// Every error's `Display`, `Debug` and `source()` chain.
    Errors,
    /// `Debug`/`Display` of everything else a call returned or was configured with (clients,
    /// builders, `Secret` handles, batch reports).
    Shown,
    /// The CLI's stdout.
    CliStdout,
    /// The CLI's stderr (with `RUST_LOG=trace`).
    CliStderr,
    /// The bytes an OTLP receiver got.
    Otlp,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 10] = [
        Channel::TextLog,
        Channel::JsonLog,
        Channel::Spans,
        Channel::Metrics,
        Channel::Audit,
        Channel::Errors,
        Channel::Shown,
        Channel::CliStdout,
        Channel::CliStderr,
        Channel::Otlp,
    ];
}

/// One canary found where it must not be.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The channel.
    pub channel: Channel,
    /// What in the channel (a CLI run, an error's path, …).
    pub source: String,
    /// The canary's name.
    pub canary: &'static str,
    /// How it was written: `plain`, `hex`, `base64`, `base64url`.
    pub form: &'static str,
    /// The bytes around it.
    pub excerpt: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} [{}]: {} ({}) in …{}…",
            self.channel, self.source, self.canary, self.form, self.excerpt
        )
    }
}

/// A form of a canary to look for.
#[derive(Debug)]
struct Needle {
    canary: Canary,
    form: &'static str,
    /// Lower case when `fold` (matched against the lower-cased haystack).
    text: String,
    fold: bool,
}

/// Finds canaries in captured bytes, counting what it scanned per channel.
#[derive(Debug)]
pub struct Scanner {
    needles: Vec<Needle>,
    state: Mutex<ScanState>,
}

#[derive(Debug, Default)]
struct ScanState {
    findings: Vec<Finding>,
    bytes: BTreeMap<Channel, u64>,
    pieces: BTreeMap<Channel, u64>,
}

/// At most this many findings are kept per (channel, canary); the rest are counted.
const KEEP_PER_CANARY: usize = 5;

impl Default for Scanner {
    fn default() -> Self {
        Self::new(&CANARIES)
    }
}

impl Scanner {
    /// A scanner for `canaries`.
    pub fn new(canaries: &[Canary]) -> Self {
        let mut needles = Vec::new();
        for canary in canaries {
            needles.push(Needle {
                canary: *canary,
                form: "plain",
                text: canary.text.to_ascii_lowercase(),
                fold: true,
            });
            needles.push(Needle {
                canary: *canary,
                form: "hex",
                text: hex(canary.text.as_bytes()),
                fold: true,
            });
            for (form, alphabet) in [("base64", STANDARD), ("base64url", URL_SAFE)] {
                for fragment in base64_fragments(canary.text.as_bytes(), alphabet) {
                    if !needles.iter().any(|n: &Needle| n.text == fragment) {
                        needles.push(Needle {
                            canary: *canary,
                            form,
                            text: fragment,
                            fold: false,
                        });
                    }
                }
            }
        }
        Self {
            needles,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ScanState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scans `bytes` of `channel` (from `source`); canaries of a class in `allowed` are not
    /// findings there. Returns how many findings this scan added.
    pub fn scan(
        &self,
        channel: Channel,
        source: &str,
        bytes: impl AsRef<[u8]>,
        allowed: &[Class],
    ) -> usize {
        let bytes = bytes.as_ref();
        let text = String::from_utf8_lossy(bytes);
        let folded = text.to_ascii_lowercase();
        let mut found = Vec::new();
        for needle in &self.needles {
            if allowed.contains(&needle.canary.class) {
                continue;
            }
            let haystack = if needle.fold { &folded } else { &*text };
            for (at, _) in haystack.match_indices(needle.text.as_str()) {
                found.push(Finding {
                    channel,
                    source: source.to_owned(),
                    canary: needle.canary.name,
                    form: needle.form,
                    excerpt: excerpt(&text, at, needle.text.len()),
                });
            }
        }
        let added = found.len();
        let mut state = self.state();
        *state.bytes.entry(channel).or_default() += bytes.len() as u64;
        *state.pieces.entry(channel).or_default() += 1;
        for finding in found {
            let kept = state
                .findings
                .iter()
                .filter(|f| f.channel == channel && f.canary == finding.canary)
                .count();
            if kept < KEEP_PER_CANARY {
                state.findings.push(finding);
            }
        }
        added
    }

    /// The findings so far (at most a few per channel and canary).
    pub fn findings(&self) -> Vec<Finding> {
        self.state().findings.clone()
    }

    /// Bytes scanned per channel.
    pub fn bytes(&self) -> BTreeMap<Channel, u64> {
        self.state().bytes.clone()
    }

    /// Bytes scanned in `channel`.
    pub fn bytes_in(&self, channel: Channel) -> u64 {
        self.state()
            .bytes
            .get(&channel)
            .copied()
            .unwrap_or_default()
    }

    /// Pieces (scan calls) per channel.
    pub fn pieces(&self) -> BTreeMap<Channel, u64> {
        self.state().pieces.clone()
    }
}

fn excerpt(text: &str, at: usize, len: usize) -> String {
    let mut start = at.saturating_sub(100);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + 100).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end].replace('\n', "⏎")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The base64 text that encodes `bytes` wherever they start (three alignments), without the
/// characters that also depend on the neighbouring bytes.
pub fn base64_fragments(bytes: &[u8], alphabet: &[u8; 64]) -> Vec<String> {
    (0..3usize)
        .filter_map(|shift| {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(bytes);
            // Only whole 3-byte groups; the first characters of a shifted group mix in the
            // padding.
            let whole = padded.len() / 3 * 3;
            let encoded = base64(&padded[..whole], alphabet);
            let skip = [0, 2, 3][shift];
            let fragment = encoded.get(skip..)?.to_owned();
            (fragment.len() >= 8).then_some(fragment)
        })
        .collect()
}

/// Every log line, span and metric data point the process (or one thread, see
/// [`Capture::subscriber`]) emits: a text `fmt` layer and a JSON `fmt` layer at TRACE with
/// every span event, and the span layer of [`Pipeline`] (the one the SDK ships) into an
/// in-memory span exporter; metrics through an in-memory meter provider.
pub struct Capture {
    text: LogCapture,
    json: LogCapture,
    spans: InMemorySpanExporter,
    pipeline: Pipeline,
    metrics: MetricsCapture,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("text", &self.text)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl Default for Capture {
    fn default() -> Self {
        Self::new()
    }
}

impl Capture {
    /// A capture of its own; nothing is installed.
    pub fn new() -> Self {
        let spans = InMemorySpanExporter::default();
        // Every span of every target; a queue no suite fills, so no span is dropped for
        // arriving while a batch is exported.
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(1 << 20)
            .build();
        let pipeline = Pipeline::with_span_exporter(
            &OtlpConfig::default().with_filter("trace"),
            spans.clone(),
            batch,
        )
        .unwrap_or_else(|e| panic!("the leak capture's span pipeline: {e}"));
        Self {
            text: LogCapture::default(),
            json: LogCapture::default(),
            spans,
            pipeline,
            metrics: MetricsCapture::new(),
        }
    }

    /// The process-wide capture, installed on first use as the global default subscriber and
    /// the global meter provider (so every client built afterwards records into it).
    ///
    /// # Panics
    /// When another global subscriber was installed first.
    pub fn global() -> &'static Capture {
        static GLOBAL: OnceLock<Capture> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let capture = Capture::new();
            opentelemetry::global::set_meter_provider(capture.metrics.provider());
            if let Err(e) = tracing::subscriber::set_global_default(capture.subscriber()) {
                panic!("the leak capture must be the global subscriber: {e}");
            }
            capture
        })
    }

    /// A subscriber writing into this capture (for `tracing::subscriber::with_default`, or to
    /// install globally).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let text = self.text.clone();
        let json = self.json.clone();
        tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_span_events(FmtSpan::FULL)
                    .with_thread_names(true)
                    .with_writer(move || text.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_span_events(FmtSpan::FULL)
                    .with_writer(move || json.clone()),
            )
            .with(self.pipeline.layer())
    }

    /// Instruments recording into this capture's meter provider.
    pub fn metrics(&self) -> secret_telemetry::Metrics {
        self.metrics.metrics()
    }

    /// The meter provider metrics go to.
    pub fn meter_provider(&self) -> opentelemetry_sdk::metrics::SdkMeterProvider {
        self.metrics.provider()
    }

    /// The text layer's output so far.
    pub fn text(&self) -> String {
        self.text.text()
    }

    /// The JSON layer's output so far (one object a line).
    pub fn json(&self) -> String {
        self.json.text()
    }

    /// Every span the span layer finished so far.
    pub fn spans(&self) -> Vec<SpanData> {
        if let Err(e) = self.pipeline.force_flush() {
            panic!("the leak capture's spans did not flush: {e}");
        }
        self.spans.get_finished_spans().unwrap_or_default()
    }

    /// [`spans`](Self::spans) as text: each span's full `Debug` (name, attributes, events
    /// with their fields, status, scope), one a line.
    pub fn span_text(&self) -> String {
        self.spans()
            .iter()
            .map(|span| format!("{span:?}\n"))
            .collect()
    }

    /// Every metric data point so far (cumulative).
    pub fn points(&self) -> Points {
        self.metrics.points().unwrap_or_default()
    }
}
