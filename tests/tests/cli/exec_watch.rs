//! `secrets exec --watch`: the command runs as a child that is restarted exactly once per
//! real change of its secrets and never otherwise; signals sent to `secrets` reach it; its
//! exit status is ours; values never reach `secrets`' own output.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::cli::{Invocation, secrets};
use crate::watch::Running;

const OLD: &str = "canary-exec-watch-old-5d1e";
const NEW: &str = "canary-exec-watch-new-a9c3";

/// The child: records `start <value>` on each start, `<signal>` for each signal it gets,
/// and exits 3 on SIGTERM. Short sleeps, so a trap runs at once and nothing outlives it;
/// it ends by itself after a minute, should a failed test leave it behind. The signals reach
/// its `sleep` too (its whole process group gets them), and the shell reports each `sleep`
/// they end (`Terminated`): on a stderr of its own, so that `secrets`' is only `secrets`'.
const CHILD: &str = r#"
exec 2>> "$LOG.stderr"
trap 'echo term >> "$LOG"; exit 3' TERM
trap 'echo hup >> "$LOG"' HUP
trap 'echo usr1 >> "$LOG"' USR1
echo "start $SECRET${SECOND:+ $SECOND}" >> "$LOG"
i=0
while [ "$i" -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
"#;

/// A file root with `demo/x` = [`OLD`] and the child's log path.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets/demo")).unwrap();
        std::fs::write(dir.path().join("secrets/demo/x"), OLD).unwrap();
        std::fs::write(dir.path().join("secrets/demo/other"), "other").unwrap();
        Self { dir }
    }

    fn secret(&self) -> PathBuf {
        self.dir.path().join("secrets/demo/x")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// `secrets exec --watch FLAGS… --env SECRET=file://demo/x -- sh -c SCRIPT`, polling
    /// every second.
    fn exec(&self, flags: &[&str], script: &str) -> Invocation {
        let root = self.dir.path().join("secrets");
        let mut args = vec!["exec", "--watch", "--file-root", root.to_str().unwrap()];
        args.extend(flags);
        args.extend(["--env", "SECRET=file://demo/x", "--", "sh", "-c", script]);
        secrets(args)
            .env("LOG", self.log())
            .env("SECRETS_WATCH_INTERVAL_S", "1")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Waits until the log is `expected`, at most `limit`; the log as it is then.
    fn wait_log(&self, expected: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.log_text();
            if text == expected || Instant::now() >= deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn hidden(stdout: &str, stderr: &str) {
    for value in [OLD, NEW] {
        assert!(!stdout.contains(value), "{value} on stdout: {stdout}");
        assert!(!stderr.contains(value), "{value} on stderr: {stderr}");
    }
}

#[test]
fn a_new_value_restarts_the_child_exactly_once() {
    let setup = Setup::new();
    let running = Running::start(&setup.exec(&[], CHILD));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    std::fs::write(setup.secret(), NEW).unwrap();
    let restarted = format!("start {OLD}\nterm\nstart {NEW}\n");
    assert_eq!(
        setup.wait_log(&restarted, Duration::from_secs(5)),
        restarted
    );
    // Three more watch intervals: no second restart.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(setup.log_text(), restarted);

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    assert_eq!(setup.log_text(), format!("{restarted}term\n"));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "secrets exec: SECRET changed; restarting the command\n"
    );
    hidden(&stdout, &stderr);
}

#[test]
fn an_unchanged_value_never_restarts_the_child() {
    let setup = Setup::new();
    let running = Running::start(&setup.exec(&["--env", "OTHER=file://demo/other"], CHILD));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    // The same bytes, in place and by a rename; another file of the mount rewritten too.
    std::fs::write(setup.secret(), OLD).unwrap();
    let tmp = setup.dir.path().join("secrets/demo/.x.tmp");
    std::fs::write(&tmp, OLD).unwrap();
    std::fs::rename(&tmp, setup.secret()).unwrap();
    std::fs::write(setup.dir.path().join("secrets/demo/other"), "other").unwrap();
    // Gone, then back with the value the child has: no restart either.
    std::fs::remove_file(setup.secret()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(setup.secret(), OLD).unwrap();
    // Several watch intervals.
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(setup.log_text(), start);

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    assert_eq!(stdout, "");
    // The deletion is a warning that names the variable and the redacted URI.
    assert_eq!(
        stderr,
        "secrets exec: warning: SECRET (file://demo/…): NOT_FOUND: file: secret not found in \
         mount `demo`; the command keeps the value it has\n",
    );
    hidden(&stdout, &stderr);
}

#[test]
fn signals_reach_the_child_and_sigterm_ends_with_its_status() {
    let setup = Setup::new();
    let running = Running::start(&setup.exec(&[], CHILD));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    running.signal("HUP");
    let hup = format!("{start}hup\n");
    assert_eq!(setup.wait_log(&hup, Duration::from_secs(5)), hup);
    running.signal("USR1");
    let usr1 = format!("{hup}usr1\n");
    assert_eq!(setup.wait_log(&usr1, Duration::from_secs(5)), usr1);

    let signalled = Instant::now();
    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    assert_eq!(setup.log_text(), format!("{usr1}term\n"));
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
}

#[test]
fn the_childs_own_exit_status_is_ours() {
    let setup = Setup::new();
    let run = setup
        .exec(&[], r#"echo "start $SECRET" >> "$LOG"; exit 7"#)
        .run_within(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (7, "", "")
    );
    assert_eq!(setup.log_text(), format!("start {OLD}\n"));

    // Killed by a signal: 128 + its number, as a shell reports it.
    let run = setup
        .exec(&[], "kill -KILL $$")
        .run_within(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!((run.code, run.signal), (137, None), "{run:?}");

    // Not found: 127, as without --watch.
    let run = setup
        .exec(&[], "true")
        .run_within(Duration::from_secs(10))
        .expect("it exits");
    assert_eq!(run.code, 0, "{run:?}");
    let root = setup.dir.path().join("secrets");
    let run = secrets([
        "exec",
        "--watch",
        "--file-root",
        root.to_str().unwrap(),
        "--env",
        "SECRET=file://demo/x",
        "--",
        "/nonexistent/command",
    ])
    .run_within(Duration::from_secs(10))
    .expect("it exits");
    assert_eq!(run.code, 127, "{run:?}");
    assert!(
        run.stderr
            .starts_with("secrets exec: cannot run `/nonexistent/command`: ")
    );
}

/// Changes that arrive while the child stops join that restart: one restart, and the new
/// child has both new values.
#[test]
fn changes_during_a_restart_make_one_restart() {
    let setup = Setup::new();
    let second = setup.dir.path().join("secrets/demo/second");
    std::fs::write(&second, "b1").unwrap();
    // Takes 600 ms to stop.
    let slow = CHILD.replace(
        r#"trap 'echo term >> "$LOG"; exit 3' TERM"#,
        r#"trap 'echo term >> "$LOG"; sleep 0.6; exit 3' TERM"#,
    );
    assert_ne!(slow, CHILD);
    let running = Running::start(&setup.exec(&["--env", "SECOND=file://demo/second"], &slow));
    let start = format!("start {OLD} b1\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    std::fs::write(setup.secret(), NEW).unwrap();
    let stopping = format!("{start}term\n");
    assert_eq!(setup.wait_log(&stopping, Duration::from_secs(5)), stopping);
    std::fs::write(&second, "b2").unwrap();
    let restarted = format!("{stopping}start {NEW} b2\n");
    assert_eq!(
        setup.wait_log(&restarted, Duration::from_secs(5)),
        restarted
    );
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(setup.log_text(), restarted);

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    assert_eq!(
        stderr,
        "secrets exec: SECRET changed; restarting the command\n"
    );
    hidden(&stdout, &stderr);
}

/// A child that ignores the restart signal is killed after the grace period, then started
/// again; a custom restart signal is the one it receives.
#[test]
fn restart_signal_and_grace() {
    let setup = Setup::new();
    // USR1 is recorded but does not end it: only the SIGKILL after --grace does.
    let running =
        Running::start(&setup.exec(&["--restart-signal", "SIGUSR1", "--grace", "700ms"], CHILD));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    std::fs::write(setup.secret(), NEW).unwrap();
    let signalled = format!("{start}usr1\n");
    assert_eq!(
        setup.wait_log(&signalled, Duration::from_secs(5)),
        signalled
    );
    let asked = Instant::now();
    let restarted = format!("{signalled}start {NEW}\n");
    assert_eq!(
        setup.wait_log(&restarted, Duration::from_secs(5)),
        restarted
    );
    let waited = asked.elapsed();
    // The grace period passed (less the time the trap took to be seen), then the kill.
    assert!(waited >= Duration::from_millis(450), "{waited:?}");

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    hidden(&stdout, &stderr);
}

/// Not a path of the watch: a failing secret stops `--watch` as it stops `exec`.
#[test]
fn a_failing_secret_does_not_start_the_command() {
    let setup = Setup::new();
    let root = setup.dir.path().join("secrets");
    let run = secrets([
        "exec",
        "--watch",
        "--file-root",
        root.to_str().unwrap(),
        "--env",
        "SECRET=file://demo/missing",
        "--",
        "sh",
        "-c",
        "touch started",
    ])
    .dir(setup.dir.path())
    .run_within(Duration::from_secs(10))
    .expect("it exits");
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "NOT_FOUND: SECRET (file://demo/…): file: secret not found in mount `demo`\n"
    );
    assert!(!Path::new(&setup.dir.path().join("started")).exists());
}

/// Against a real OpenBao: a new KV v2 version with the same value is no change (digests are
/// compared, not versions); a new value restarts the child once.
#[test]
fn a_new_kv2_version_restarts_only_when_the_value_changed() {
    let Some(bao) = secrets_test_support::shared_openbao() else {
        return;
    };
    let put = |value: &str| {
        bao.kv_put(
            "secret",
            "cli-exec-watch/db",
            &serde_json::json!({"password": value, "user": "app"}),
        )
        .unwrap()
    };
    put(OLD);
    let setup = Setup::new();
    let token = bao.root_token().to_owned();
    let running = Running::start(
        &secrets([
            "exec",
            "--watch",
            "--env",
            "SECRET=openbao+kv2://secret/cli-exec-watch/db#password",
            "--",
            "sh",
            "-c",
            CHILD,
        ])
        .env("LOG", setup.log())
        .env("SECRETS_WATCH_INTERVAL_S", "1")
        .env("OPENBAO_URL", bao.addr())
        .env("OPENBAO_TOKEN", &token),
    );
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);

    // Two new versions, the same password: the field the child has did not change.
    put(OLD);
    bao.kv_put(
        "secret",
        "cli-exec-watch/db",
        &serde_json::json!({"password": OLD, "user": "other"}),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(setup.log_text(), start);

    put(NEW);
    let restarted = format!("{start}term\nstart {NEW}\n");
    assert_eq!(
        setup.wait_log(&restarted, Duration::from_secs(5)),
        restarted
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(setup.log_text(), restarted);

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?} {stderr}");
    assert_eq!(
        (stdout.as_str(), stderr.as_str()),
        ("", "secrets exec: SECRET changed; restarting the command\n")
    );
    assert!(!stderr.contains(&token));
    hidden(&stdout, &stderr);
}

/// Whether process `pid` still runs: it exists and is no zombie (an orphan's zombie stays
/// until an init reaps it, and some inits never do).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

/// The pids the command wrote, one a line, to `path`; SIGKILLed when dropped, so that a
/// failed test leaves none behind.
struct Pids(PathBuf);

impl Pids {
    fn read(&self) -> Vec<u32> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    /// Waits until there are `n`, at most `limit`.
    fn wait_for(&self, n: usize, limit: Duration) -> Vec<u32> {
        let deadline = Instant::now() + limit;
        loop {
            let pids = self.read();
            if pids.len() >= n || Instant::now() >= deadline {
                return pids;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&self) -> Vec<u32> {
        self.read().into_iter().filter(|&p| alive(p)).collect()
    }
}

impl Drop for Pids {
    fn drop(&mut self) {
        for pid in self.alive() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// What the command starts is stopped with it: the restart signal and the SIGTERM passed on
/// reach its whole process group, not only `sh`, so no old `sleep` (a server with the old
/// value) runs beside the new one or outlives `secrets`.
#[test]
fn the_commands_own_children_stop_with_it() {
    let setup = Setup::new();
    let pids = Pids(setup.dir.path().join("pids"));
    let script = r#"sleep 300 & echo $! >> "$PIDS"; echo "start $SECRET" >> "$LOG"; wait"#;
    let running = Running::start(&setup.exec(&["--grace", "3s"], script).env("PIDS", &pids.0));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);
    let first = pids.wait_for(1, Duration::from_secs(5));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(alive(first[0]));

    std::fs::write(setup.secret(), NEW).unwrap();
    let restarted = format!("{start}start {NEW}\n");
    assert_eq!(
        setup.wait_log(&restarted, Duration::from_secs(5)),
        restarted
    );
    let both = pids.wait_for(2, Duration::from_secs(5));
    assert_eq!(both.len(), 2, "{both:?}");
    // The new one started after the old one was gone.
    assert_eq!(
        pids.alive(),
        [both[1]],
        "the old command's child outlived the restart"
    );

    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    // `sh`, waiting, is ended by the SIGTERM: 128 + 15.
    assert_eq!(status.code(), Some(143), "{status:?} {stderr}");
    assert_eq!(pids.alive(), Vec::<u32>::new(), "a child outlived secrets");
    assert_eq!(
        stderr,
        "secrets exec: SECRET changed; restarting the command\n"
    );
    hidden(&stdout, &stderr);
}

/// A command that ignores the SIGTERM passed on is killed after --grace; `secrets` then
/// exits with its status, 137.
#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let setup = Setup::new();
    let pids = Pids(setup.dir.path().join("pids"));
    let script = r#"trap "" TERM; echo $$ >> "$PIDS"; echo "start $SECRET" >> "$LOG"
        while :; do sleep 0.1; done"#;
    let running = Running::start(&setup.exec(&["--grace", "1s"], script).env("PIDS", &pids.0));
    let start = format!("start {OLD}\n");
    assert_eq!(setup.wait_log(&start, Duration::from_secs(10)), start);
    assert_eq!(pids.wait_for(1, Duration::from_secs(5)).len(), 1);

    let signalled = Instant::now();
    running.signal("TERM");
    let (status, stdout, stderr) = running.wait(Duration::from_secs(5));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(status.code(), Some(137), "{status:?} {stderr}");
    assert_eq!(pids.alive(), Vec::<u32>::new());
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
}
