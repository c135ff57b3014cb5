//! `secrets watch`: one JSON line per change of the watched secrets, never a value.
//!
//! ```text
//! {"index":0,"uri":"file://demo/…","digest":"5f0c…","at":"2026-12-01T10:00:00.123Z"}
//! {"index":1,"uri":"openbao+kv2://secret/…","version":4,"digest":"…","at":"…"}
//! {"index":0,"uri":"file://demo/…","error":{"code":"NOT_FOUND","message":"…"},"at":"…"}
//! ```

use std::future::Future;
use std::io::{self, Write};
use std::time::SystemTime;

use rustix::process::Signal;
use secrets_sdk::SecretsClient;
use secrets_sdk::watch::WatchItem;
use serde::Serialize;

use crate::changes;
use crate::cli::WatchArgs;
use crate::client::{self, EnvLookup};
use crate::signals;
use crate::status::Status;

/// `secrets watch`: watches every URI until SIGINT or SIGTERM (exit 0). A URI that cannot
/// be watched (invalid, outside the mount guard, no provider configured) is a
/// `CODE: URI n (redacted URI): message` line on `err` and exit 1 before anything is
/// printed; a configuration error is exit 2.
///
/// # Errors
/// Write errors on `out` (a closed stdout ends the watch) or `err`; the runtime failing to
/// start.
pub(crate) fn run<O: Write, E: Write>(
    args: &WatchArgs,
    env: &EnvLookup,
    out: O,
    err: E,
) -> io::Result<Status> {
    let client = match client::build(&args.client, env) {
        Ok(client) => client,
        Err(e) => {
            let mut err = err;
            writeln!(err, "{e}")?;
            return Ok(Status::Failure);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let mut listener = signals::Listener::new(&[Signal::INT, Signal::TERM])?;
        watch(args, &client, out, err, listener.recv()).await
    });
    // The forwarders go with the runtime, then the watches and cached values with the client.
    drop(runtime);
    client.close();
    result
}

/// Watches until `stop` completes; see [`run`]. `stop` is heeded from the start: reading
/// the starting points may take up to the resolve deadline (a vault that does not answer).
async fn watch<O: Write, E: Write, S: Future>(
    args: &WatchArgs,
    client: &SecretsClient,
    mut out: O,
    mut err: E,
    stop: S,
) -> io::Result<Status> {
    tokio::pin!(stop);
    let started = tokio::select! {
        // Dropping the start aborts its tasks; `run` then closes the client.
        _ = &mut stop => return Ok(Status::Success),
        started = changes::start(client, &args.uris) => started,
    };
    let mut failed = false;
    for (n, result) in started.iter().enumerate() {
        if let Err(e) = result {
            failed = true;
            let label = match client::redacted(&args.uris[n]) {
                Some(redacted) => format!("URI {} ({redacted})", n + 1),
                None => format!("URI {}", n + 1),
            };
            writeln!(err, "{}: {label}: {}", e.code(), client::message(e))?;
        }
    }
    if failed {
        return Ok(Status::Findings);
    }
    let streams: Vec<_> = started.into_iter().flatten().collect();
    // Every URI parsed, or its watch would have failed.
    let labels: Vec<String> = args
        .uris
        .iter()
        .map(|uri| client::redacted(uri).unwrap_or_default())
        .collect();

    let mut line = Vec::with_capacity(256);
    for (n, stream) in streams.iter().enumerate() {
        match stream.current() {
            Some(item) if args.initial => {
                encode(&mut line, n, &labels[n], item);
                write_line(&mut out, &mut line)?;
            }
            Some(Err(e)) => writeln!(
                err,
                "secrets watch: warning: URI {} ({}): {}: {}; watching for it to change",
                n + 1,
                labels[n],
                e.code(),
                client::message(e)
            )?,
            _ => {}
        }
    }

    let mut merged = changes::merge(streams);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(Status::Success),
            next = merged.recv() => match next {
                Some((n, item)) => {
                    encode(&mut line, n, &labels[n], &item);
                    write_line(&mut out, &mut line)?;
                }
                None => {
                    writeln!(err, "secrets watch: the client closed; the watch ended")?;
                    return Ok(Status::Failure);
                }
            },
        }
    }
}

/// One output line's fields, in output order.
#[derive(Serialize)]
struct Line<'a> {
    index: usize,
    uri: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorField<'a>>,
    at: String,
}

#[derive(Serialize)]
struct ErrorField<'a> {
    code: &'a str,
    message: String,
}

/// Appends the line for `item` of URI `index` (redacted `uri`) to `buf`, without the `\n`.
fn encode(buf: &mut Vec<u8>, index: usize, uri: &str, item: &WatchItem) {
    let line = match item {
        Ok(change) => Line {
            index,
            uri,
            version: change.version(),
            digest: Some(change.digest()),
            error: None,
            at: rfc3339(change.at()),
        },
        Err(error) => Line {
            index,
            uri,
            version: None,
            digest: None,
            error: Some(ErrorField {
                code: error.code(),
                message: client::message(error),
            }),
            at: rfc3339(SystemTime::now()),
        },
    };
    // Serializing plain strings and numbers into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &line);
}

/// Writes `buf` and a newline, flushed (a pipe reads each line as it comes), and empties it.
fn write_line<O: Write>(out: &mut O, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.push(b'\n');
    let written = out.write_all(buf).and_then(|()| out.flush());
    buf.clear();
    written
}

/// RFC 3339 in UTC with milliseconds: `2026-12-01T10:00:00.123Z`.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::*;
    use crate::cli::ClientArgs;

    const CANARY: &str = "canary-watch-4e1b77";

    /// A writer the test can read while the watch runs.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
        fn lines(&self) -> Vec<Value> {
            self.text()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn args(root: &Path, initial: bool, uris: &[&str]) -> WatchArgs {
        WatchArgs {
            client: ClientArgs {
                file_root: Some(root.to_owned()),
                ..ClientArgs::default()
            },
            initial,
            uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    fn root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("demo")).unwrap();
        std::fs::write(root.path().join("demo/x"), CANARY).unwrap();
        root
    }

    /// Runs the watch until `until` returns true for stdout's lines (checked every 20 ms)
    /// or `limit` passes, while `act` runs on a thread of its own.
    fn watch_until(
        args: &WatchArgs,
        act: impl FnOnce() + Send + 'static,
        until: impl Fn(&[Value]) -> bool,
        limit: Duration,
    ) -> (Status, Vec<Value>, String) {
        let env: EnvLookup = Arc::new(|_| None);
        let client = client::build(&args.client, &env).unwrap();
        let (out, err) = (Shared::default(), Shared::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let actor = std::thread::spawn(act);
        let seen = out.clone();
        let status = runtime
            .block_on(watch(args, &client, out.clone(), err.clone(), async move {
                let deadline = Instant::now() + limit;
                while !until(&seen.lines()) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }))
            .unwrap();
        actor.join().unwrap();
        drop(runtime);
        client.close();
        let text = out.text();
        assert!(!text.contains(CANARY) && !err.text().contains(CANARY));
        (status, out.lines(), err.text())
    }

    #[test]
    fn an_unwatchable_uri_fails_before_anything_is_printed() {
        let root = root();
        let mut args = args(
            root.path(),
            true,
            &["file://demo/x", "file://demo/*", "openbao+kv2://secret/a#k"],
        );
        args.client.allowed_mounts = Some(secret_uri::AllowedMounts::from_csv("demo"));
        // No stop: failing to start ends it.
        let (status, lines, err) = watch_until(&args, || {}, |_| false, Duration::from_secs(30));
        assert_eq!(status, Status::Findings);
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(
            err,
            "INVALID_WILDCARD: URI 2: invalid wildcard at byte 12: `*` is not allowed in a path \
             segment\n\
             TENANT_MOUNT_MISMATCH: URI 3 (openbao+kv2://secret/…): tenant mount mismatch: \
             mount `secret` is not in the allowed mounts\n"
        );
    }

    #[test]
    fn initial_prints_the_starting_states_and_an_error_start_is_a_warning_without_it() {
        let root = root();
        let uris = ["file://demo/x", "FILE://demo/missing"];
        let (status, lines, err) = watch_until(
            &args(root.path(), true, &uris),
            || {},
            |lines| lines.len() >= 2,
            Duration::from_secs(5),
        );
        assert_eq!((status, err.as_str()), (Status::Success, ""));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["index"], 0);
        assert_eq!(lines[0]["uri"], "file://demo/…");
        assert_eq!(lines[0]["digest"].as_str().unwrap().len(), 32);
        assert!(lines[0].get("version").is_none(), "{lines:?}");
        assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["index"], 1);
        assert_eq!(lines[1]["error"]["code"], "NOT_FOUND");
        assert!(lines[1].get("digest").is_none(), "{lines:?}");

        let (status, lines, err) = watch_until(
            &args(root.path(), false, &uris),
            || {},
            |_| false,
            Duration::from_millis(300),
        );
        assert_eq!(status, Status::Success);
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(
            err,
            "secrets watch: warning: URI 2 (file://demo/…): NOT_FOUND: file: secret not found \
             in mount `demo`; watching for it to change\n"
        );
    }

    #[test]
    fn a_rewrite_prints_one_line_with_a_new_digest() {
        let root = root();
        let path = root.path().join("demo/x");
        let initial = {
            let (_, lines, _) = watch_until(
                &args(root.path(), true, &["file://demo/x"]),
                || {},
                |lines| !lines.is_empty(),
                Duration::from_secs(5),
            );
            lines[0]["digest"].clone()
        };
        let (status, lines, err) = watch_until(
            &args(root.path(), true, &["file://demo/other", "file://demo/x"]),
            move || {
                std::thread::sleep(Duration::from_millis(200));
                std::fs::write(&path, format!("{CANARY}-2")).unwrap();
            },
            |lines| lines.len() >= 3,
            Duration::from_secs(5),
        );
        assert_eq!(status, Status::Success);
        assert_eq!(lines.len(), 3, "{lines:?} {err}");
        assert_eq!(lines[2]["index"], 1);
        assert_eq!(lines[2]["uri"], "file://demo/…");
        let digest = lines[2]["digest"].as_str().unwrap();
        assert_eq!(digest.len(), 32);
        assert_ne!(lines[1]["digest"].as_str().unwrap(), digest);
        // Digests are keyed per client: the same content differs across runs.
        assert_ne!(lines[1]["digest"], initial);
    }

    /// The stop is heeded while the starting points are read: a vault that accepts and never
    /// answers, a resolve deadline far away.
    #[test]
    fn a_stop_while_starting_ends_the_watch_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Holds every connection open without a byte in reply; ends with the test process.
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().collect();
            drop(held);
        });
        let env: EnvLookup = Arc::new(secrets_test_support::env_map(&[
            ("OPENBAO_URL", url.as_str()),
            ("OPENBAO_TOKEN", "s.not-a-real-token"),
            ("SECRETS_RESOLVE_DEADLINE_S", "20"),
        ]));
        let args = WatchArgs {
            client: ClientArgs::default(),
            initial: true,
            uris: vec!["openbao+kv2://secret/app#password".to_owned()],
        };
        let client = client::build(&args.client, &env).unwrap();
        let (out, err) = (Shared::default(), Shared::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let status = runtime
            .block_on(watch(&args, &client, out.clone(), err.clone(), async {
                tokio::time::sleep(Duration::from_millis(300)).await
            }))
            .unwrap();
        let took = started.elapsed();
        drop(runtime);
        client.close();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(status, Status::Success);
        assert_eq!((out.text(), err.text()), (String::new(), String::new()));
    }

    #[test]
    fn lines_are_flushed_one_at_a_time() {
        struct Counting(Vec<usize>, usize);
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.1 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.push(self.1);
                Ok(())
            }
        }
        let mut out = Counting(Vec::new(), 0);
        let mut buf = b"{}".to_vec();
        write_line(&mut out, &mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(out.0, [3]);
    }
}
