//! `secrets watch`: a kubelet-style `..data` swap and a plain rewrite each print one line
//! within a second, an unchanged rewrite prints nothing, a deleted secret prints its code,
//! SIGTERM ends it with 0, and no value ever reaches stdout or stderr. Against a real
//! OpenBao, a new KV v2 version is seen within two intervals.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::cli::{Invocation, secrets};
use secrets_test_support::shared_openbao;
use serde_json::{Value, json};

/// Values that must never reach `secrets`' own output.
const CANARY: &str = "canary-watch-6c2f0d91";
const CANARY_2: &str = "canary-watch-2-83b1aa";

/// A `secrets` process running in the background: its stdout lines as they arrive, with
/// the instant each was read.
pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stdout: Collected,
    stderr: Collected,
}

/// What a reader thread collected from one stream, and the thread (done at end of file).
struct Collected {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl Collected {
    fn new(bytes: Arc<Mutex<Vec<u8>>>, reader: JoinHandle<()>) -> Self {
        Self { bytes, reader }
    }

    /// Everything read once the stream ended, or within `limit` (a process that outlived
    /// `secrets` may hold it open): what was read by then.
    fn take(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while !self.reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        String::from_utf8_lossy(&self.bytes.lock().unwrap()).into_owned()
    }
}

/// How long after the exit the streams may take to end.
const STREAMS_END: Duration = Duration::from_secs(2);

impl Running {
    /// Starts `invocation` with stdin closed and both streams captured.
    pub(crate) fn start(invocation: &Invocation) -> Self {
        let mut child = invocation
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let all_out = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::clone(&all_out);
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let mut all = all.lock().unwrap();
                all.extend_from_slice(line.as_bytes());
                all.push(b'\n');
                let _ = tx.send((Instant::now(), line));
            }
        });
        let mut err = child.stderr.take().unwrap();
        let all_err = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::clone(&all_err);
        let stderr = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = err.read(&mut buf) {
                all.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            lines,
            stdout: Collected::new(all_out, stdout),
            stderr: Collected::new(all_err, stderr),
        }
    }

    /// The next stdout line, parsed, and when it arrived; `None` after `limit`.
    pub(crate) fn next_line(&self, limit: Duration) -> Option<(Instant, Value)> {
        let (at, line) = self.lines.recv_timeout(limit).ok()?;
        let value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line: {e}: {line}"));
        Some((at, value))
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `HUP`, …) with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        signal_pid(self.pid(), signal);
    }

    /// Waits for the exit, at most `limit` (then kills it and fails); the status and
    /// everything it wrote.
    pub(crate) fn wait(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "secrets did not exit within {limit:?}; stderr: {}",
                    self.stderr.take(STREAMS_END)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        (
            status,
            self.stdout.take(STREAMS_END),
            self.stderr.take(STREAMS_END),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed assertion must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kill -SIGNAL pid`.
pub(crate) fn signal_pid(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A file root laid out as the kubelet lays out a Secret volume: `demo/x` links to
/// `..data/x`, `..data` to a timestamped folder that holds the file; and a plain mount
/// `plain/y`.
fn kubelet_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let demo = root.path().join("demo");
    let first = demo.join("..2026_12_01_10_00_00.000000001");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("x"), CANARY).unwrap();
    symlink("..2026_12_01_10_00_00.000000001", demo.join("..data")).unwrap();
    symlink("..data/x", demo.join("x")).unwrap();
    std::fs::create_dir(root.path().join("plain")).unwrap();
    std::fs::write(root.path().join("plain/y"), CANARY).unwrap();
    root
}

/// The kubelet's update: the new content in a new timestamped folder, `..data_tmp` linked
/// to it and renamed over `..data`, the old folder removed. Returns when the rename was
/// done.
fn kubelet_swap(demo: &Path, old: &str, new: &str, content: &str) -> Instant {
    std::fs::create_dir(demo.join(new)).unwrap();
    std::fs::write(demo.join(new).join("x"), content).unwrap();
    symlink(new, demo.join("..data_tmp")).unwrap();
    std::fs::rename(demo.join("..data_tmp"), demo.join("..data")).unwrap();
    let swapped = Instant::now();
    std::fs::remove_dir_all(demo.join(old)).unwrap();
    swapped
}

fn watch(root: &Path, args: &[&str]) -> Invocation {
    let mut all = vec!["watch", "--file-root", root.to_str().unwrap()];
    all.extend(args);
    secrets(all)
}

fn digest(line: &Value) -> &str {
    let digest = line["digest"].as_str().unwrap_or_else(|| panic!("{line}"));
    assert_eq!(digest.len(), 32, "{line}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    digest
}

/// The line's fields besides the digest and the time (checked for shape here).
fn fields(line: &Value) -> Value {
    let mut line = line.clone();
    let object = line.as_object_mut().unwrap();
    let at = object.remove("at").unwrap();
    let at = at.as_str().unwrap();
    assert!(
        at.ends_with('Z') && at.contains('T') && at.len() == 24,
        "{at}"
    );
    if let Some(d) = object.remove("digest") {
        assert_eq!(d.as_str().unwrap().len(), 32);
    }
    line
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_kubelet_swap_and_a_rewrite_each_print_one_line_within_a_second() {
    let root = kubelet_root();
    let demo = root.path().join("demo");
    // The default interval (30 s): whatever arrives within a second came from the watcher.
    let running = Running::start(&watch(
        root.path(),
        &["--initial", "file://demo/x", "FILE://plain/y"],
    ));
    let (_, start_x) = running.next_line(Duration::from_secs(10)).unwrap();
    let (_, start_y) = running.next_line(SECOND).unwrap();
    assert_eq!(
        fields(&start_x),
        json!({"index": 0, "uri": "file://demo/…"})
    );
    assert_eq!(
        fields(&start_y),
        json!({"index": 1, "uri": "file://plain/…"})
    );
    // One content, one digest (the same key within a run).
    assert_eq!(digest(&start_x), digest(&start_y));

    let swapped = kubelet_swap(
        &demo,
        "..2026_12_01_10_00_00.000000001",
        "..2026_12_01_10_05_00.000000002",
        CANARY_2,
    );
    let (at, swap) = running
        .next_line(Duration::from_secs(5))
        .expect("a line after the swap");
    assert!(
        at - swapped < SECOND,
        "the swap was seen after {:?}",
        at - swapped
    );
    assert_eq!(fields(&swap), json!({"index": 0, "uri": "file://demo/…"}));
    assert_ne!(digest(&swap), digest(&start_x));

    // A plain rewrite in place.
    std::fs::write(root.path().join("plain/y"), CANARY_2).unwrap();
    let written = Instant::now();
    let (at, rewrite) = running
        .next_line(Duration::from_secs(5))
        .expect("a line after the rewrite");
    assert!(at - written < SECOND, "seen after {:?}", at - written);
    assert_eq!(
        fields(&rewrite),
        json!({"index": 1, "uri": "file://plain/…"})
    );
    assert_ne!(digest(&rewrite), digest(&start_y));
    assert_eq!(digest(&rewrite), digest(&swap), "same content, same digest");

    // The same bytes again, by a swap and by a rewrite: no change, no line.
    kubelet_swap(
        &demo,
        "..2026_12_01_10_05_00.000000002",
        "..2026_12_01_10_10_00.000000003",
        CANARY_2,
    );
    std::fs::write(root.path().join("plain/y"), CANARY_2).unwrap();
    if let Some((_, line)) = running.next_line(2 * SECOND) {
        panic!("an unchanged rewrite printed a line: {line}");
    }

    // Deleted: its code, once; back: a change.
    std::fs::remove_file(root.path().join("plain/y")).unwrap();
    let (_, gone) = running.next_line(Duration::from_secs(5)).expect("a line");
    assert_eq!(
        fields(&gone)
            .as_object()
            .map(|o| (o["index"].clone(), o["error"]["code"].clone())),
        Some((json!(1), json!("NOT_FOUND"))),
        "{gone}"
    );
    assert!(gone.get("digest").is_none(), "{gone}");
    std::fs::write(root.path().join("plain/y"), CANARY).unwrap();
    let (_, back) = running.next_line(Duration::from_secs(5)).expect("a line");
    assert_eq!(fields(&back), json!({"index": 1, "uri": "file://plain/…"}));
    assert_eq!(digest(&back), digest(&start_y));

    let signalled = Instant::now();
    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert!(signalled.elapsed() < SECOND, "{:?}", signalled.elapsed());
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
    assert_eq!(stderr, "");
    for value in [CANARY, CANARY_2] {
        assert!(!stdout.contains(value) && !stderr.contains(value));
    }
}

#[test]
fn without_initial_nothing_prints_at_start_and_an_unreadable_start_is_a_warning() {
    let root = kubelet_root();
    let running = Running::start(
        &watch(root.path(), &["file://demo/x", "file://plain/missing"]).env("RUST_LOG", "trace"),
    );
    assert!(running.next_line(2 * SECOND).is_none());
    std::fs::write(root.path().join("plain/missing"), CANARY).unwrap();
    let (_, line) = running.next_line(Duration::from_secs(5)).expect("a line");
    assert_eq!(fields(&line), json!({"index": 1, "uri": "file://plain/…"}));
    running.signal("INT");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stderr.contains(
            "secrets watch: warning: URI 2 (file://plain/…): NOT_FOUND: file: secret not found \
             in mount `plain`; watching for it to change\n"
        ),
        "{stderr}"
    );
    // The traces are on stderr, and never carry the value either.
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
}

#[test]
fn unwatchable_uris_and_bad_configuration_fail_before_anything_is_watched() {
    let root = kubelet_root();
    let run = watch(
        root.path(),
        &[
            "--allowed-mounts",
            "demo",
            "file://demo/x",
            "file://demo/*",
            "file://plain/y",
            "openbao+kv2://demo/app#k",
        ],
    )
    .run_within(Duration::from_secs(10))
    .expect("it exits");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "INVALID_WILDCARD: URI 2: invalid wildcard at byte 12: `*` is not allowed in a path \
         segment\n\
         TENANT_MOUNT_MISMATCH: URI 3 (file://plain/…): tenant mount mismatch: mount `plain` \
         is not in the allowed mounts\n\
         NOT_CONFIGURED: URI 4 (openbao+kv2://demo/…): openbao: no vault is configured for this \
         scheme (no bootstrap found; tried SECRETS_BOOTSTRAP_PATH (not set), \
         /vault/secrets/bootstrap.json (not found), OPENBAO_URL/OPENBAO_ADDR/BAO_ADDR and \
         VAULT_URL/VAULT_ADDR (not set))\n"
    );

    let run = watch(root.path(), &["file://demo/x"])
        .env("SECRETS_WATCH_INTERVAL_S", "0")
        .run_within(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with("CONFIG: ") && run.stderr.contains("SECRETS_WATCH_INTERVAL_S"),
        "{run:?}"
    );
    let run = watch(root.path(), &["file://demo/x"])
        .env("SECRETS_ALLOWED_MOUNTS", "")
        .run_within(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
}

/// Against a real OpenBao, polled every second: a new version is one line with that
/// version within two intervals; the same value written again is a new version too.
#[test]
fn a_new_kv2_version_is_seen_within_two_intervals() {
    let Some(bao) = shared_openbao() else {
        return;
    };
    let first = bao
        .kv_put("secret", "cli-watch/db", &json!({"password": CANARY}))
        .unwrap();
    let token = bao.root_token().to_owned();
    let running = Running::start(
        &secrets([
            "watch",
            "--initial",
            "openbao+kv2://secret/cli-watch/db#password",
        ])
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", &token)
        .env("SECRETS_WATCH_INTERVAL_S", "1"),
    );
    let (_, start) = running.next_line(Duration::from_secs(10)).unwrap();
    assert_eq!(
        fields(&start),
        json!({"index": 0, "uri": "openbao+kv2://secret/…", "version": first})
    );

    let second = bao
        .kv_put("secret", "cli-watch/db", &json!({"password": CANARY_2}))
        .unwrap();
    let written = Instant::now();
    let (at, line) = running
        .next_line(Duration::from_secs(10))
        .expect("a line for the new version");
    // Two intervals of 1 s, jittered by 10 %, and the read.
    assert!(
        at - written < Duration::from_millis(2500),
        "{:?}",
        at - written
    );
    assert_eq!(
        fields(&line),
        json!({"index": 0, "uri": "openbao+kv2://secret/…", "version": second})
    );
    assert_ne!(digest(&line), digest(&start));

    // The same value again: a new version, the same digest.
    let third = bao
        .kv_put("secret", "cli-watch/db", &json!({"password": CANARY_2}))
        .unwrap();
    let (_, again) = running.next_line(Duration::from_secs(10)).expect("a line");
    assert_eq!(again["version"], third);
    assert_eq!(digest(&again), digest(&line));

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
    assert_eq!(stderr, "");
    for value in [CANARY, CANARY_2, token.as_str()] {
        assert!(!stdout.contains(value) && !stderr.contains(value));
    }
}

/// A SIGINT while the starting points are still being read (a vault that accepts and never
/// answers, within a 20 s resolve deadline) ends the watch at once, with 0.
#[test]
fn a_signal_while_starting_ends_the_watch_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, connected) = mpsc::channel();
    // Holds every connection open without a byte in reply; ends with the test process.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
            let _ = accepted.send(());
        }
    });
    let running = Running::start(
        &secrets(["watch", "openbao+kv2://secret/cli-watch/hangs#password"])
            .env("OPENBAO_URL", format!("http://{addr}"))
            .env("OPENBAO_TOKEN", "s.not-a-real-token")
            .env("SECRETS_RESOLVE_DEADLINE_S", "20"),
    );
    connected
        .recv_timeout(Duration::from_secs(10))
        .expect("the watch reads its starting point");
    std::thread::sleep(Duration::from_millis(800));
    let signalled = Instant::now();
    running.signal("INT");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(25));
    let took = signalled.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(status.code(), Some(0), "{status:?} {stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
}
