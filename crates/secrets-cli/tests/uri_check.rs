//! `secrets uri check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::secrets_with_stdin as check;

const EXAMPLE_JSON: &str = r#"{"ok":true,"canonical":"openbao+kv2://secret/app/api#token?version=3","provider":"openbao","engine":"kv2","mount":"secret","path":["app","api"],"key":"token","params":[["version","3"]]}"#;

const EMPTY_LINE: &str = r#"{"ok":false,"code":"ILLEGAL_SEGMENT","message":"illegal segment at byte 0: missing `://` after the scheme"}"#;

#[test]
fn the_documented_example_line() {
    let run = check(
        &["uri", "check"],
        b"openbao+kv2://secret/app/api#token?version=3\n",
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.stdout, format!("{EXAMPLE_JSON}\n"));
    assert_eq!(run.stderr, "");
}

#[test]
fn mixed_input_keeps_lines_aligned_and_exits_1() {
    let input = "file://dc-infra/kafka-password\n\
                 \n\
                 openbao+kv2://secret/app/api?version=1&version=2\n\
                 db://db/readwrite\n\
                 OPENBAO+KV2://secret/app/api?version=3#token";
    let run = check(&["uri", "check"], input.as_bytes());
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout_lines(),
        [
            r#"{"ok":true,"canonical":"file://dc-infra/kafka-password","provider":"file","engine":null,"mount":"dc-infra","path":["kafka-password"],"key":null,"params":[]}"#,
            EMPTY_LINE,
            r#"{"ok":false,"code":"AMBIGUOUS_QUERY","message":"ambiguous query at byte 39: parameter `version` is repeated"}"#,
            r#"{"ok":true,"canonical":"db://db/readwrite","provider":"db","engine":null,"mount":"db","path":["readwrite"],"key":null,"params":[]}"#,
            EXAMPLE_JSON,
        ]
    );
}

#[test]
fn all_valid_exits_0_and_empty_input_too() {
    let run = check(
        &["uri", "check"],
        b"file://a/b\nyaml://config/app.yaml#db\n",
    );
    assert_eq!((run.code, run.stdout_lines().len()), (0, 2), "{run:?}");
    let empty = check(&["uri", "check"], b"");
    assert_eq!((empty.code, empty.stdout.as_str()), (0, ""));
}

#[test]
fn crlf_terminators_are_stripped_but_nothing_else() {
    let run = check(
        &["uri", "check"],
        b"openbao+kv2://secret/app/api#token?version=3\r\n\r\n file://a/b\r\n",
    );
    assert_eq!(run.code, 1);
    let lines = run.stdout_lines();
    assert_eq!(lines[..2], [EXAMPLE_JSON, EMPTY_LINE]);
    // A leading space is part of the line, so the scheme is ` file`.
    assert_eq!(
        lines[2],
        r#"{"ok":false,"code":"UNSUPPORTED_ENGINE","message":"unsupported engine at byte 0: unknown provider in scheme ` file`"}"#
    );
    assert_eq!(lines.len(), 3);
}

#[test]
fn a_lone_carriage_return_is_a_control_character() {
    let run = check(&["uri", "check"], b"file://a/b\r");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "{\"ok\":false,\"code\":\"ILLEGAL_SEGMENT\",\"message\":\"illegal segment at byte 10: \
         control character\"}\n"
    );
}

#[test]
fn allowed_mounts_flag() {
    let run = check(
        &["uri", "check", "--allowed-mounts", "secret"],
        b"file://secret/a\nfile://other/a\n",
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout_lines()[1],
        r#"{"ok":false,"code":"TENANT_MOUNT_MISMATCH","message":"tenant mount mismatch: mount `other` is not in the allowed mounts"}"#
    );
}

#[test]
fn jsonl_input_with_per_line_mounts() {
    let input = concat!(
        r#"{"uri": "openbao+kv2://secret/app/api#token?version=3"}"#,
        "\n",
        r#"{"uri": "file://other/a", "allowed_mounts": ["other"]}"#,
        "\r\n",
        r#"{"uri": "file://other/a"}"#,
        "\n",
        r#"{"allowed_mounts": ["secret"], "uri": "file://secret/a/../b"}"#,
        "\n",
    );
    let run = check(
        &["uri", "check", "--jsonl", "--allowed-mounts", "secret"],
        input.as_bytes(),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stdout_lines(),
        [
            EXAMPLE_JSON,
            r#"{"ok":true,"canonical":"file://other/a","provider":"file","engine":null,"mount":"other","path":["a"],"key":null,"params":[]}"#,
            r#"{"ok":false,"code":"TENANT_MOUNT_MISMATCH","message":"tenant mount mismatch: mount `other` is not in the allowed mounts"}"#,
            r#"{"ok":false,"code":"ILLEGAL_SEGMENT","message":"illegal segment at byte 16: `..` in the path"}"#,
        ]
    );
}

#[test]
fn jsonl_bad_input() {
    let input = concat!(
        "file://secret/a\n",
        "{\"url\": \"file://secret/a\"}\n",
        "{\"uri\": \"file://secret/a\", \"allowed_mounts\": []}\n",
        "\n",
        "{\"uri\": \"file://secret/a\"\n",
        "{\"uri\": \"file://secret/a\"}\n",
    );
    let run = check(&["uri", "check", "--jsonl"], input.as_bytes());
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout_lines(),
        [
            r#"{"ok":false,"code":"BAD_INPUT","message":"the line is not valid JSON (error at column 2)"}"#,
            r#"{"ok":false,"code":"BAD_INPUT","message":"expected an object with a string `uri` and an optional array of strings `allowed_mounts`"}"#,
            r#"{"ok":false,"code":"BAD_INPUT","message":"`allowed_mounts` names no mount; omit it to use --allowed-mounts"}"#,
            r#"{"ok":false,"code":"BAD_INPUT","message":"the line is empty; expected a JSON object"}"#,
            r#"{"ok":false,"code":"BAD_INPUT","message":"the line is not valid JSON: it ends early"}"#,
            r#"{"ok":true,"canonical":"file://secret/a","provider":"file","engine":null,"mount":"secret","path":["a"],"key":null,"params":[]}"#,
        ]
    );
}

#[test]
fn invalid_utf8_is_bad_input_in_plain_mode() {
    let run = check(&["uri", "check"], b"file://a/\xc3\x28\nfile://a/b\n");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout_lines()[0],
        r#"{"ok":false,"code":"BAD_INPUT","message":"the line is not valid UTF-8"}"#
    );
    assert_eq!(run.stdout_lines().len(), 2);
}

#[test]
fn streams_many_lines_in_order() {
    let uris = ["file://a/b", "file://a/*", "db+cred://db/ro"];
    let n = 30_000;
    let input: String = (0..n).map(|i| format!("{}\n", uris[i % 3])).collect();
    let run = check(&["uri", "check"], input.as_bytes());
    assert_eq!(run.code, 1);
    let lines = run.stdout_lines();
    assert_eq!(lines.len(), n);
    for (i, line) in lines.iter().enumerate() {
        let ok = i % 3 != 1;
        assert_eq!(line.starts_with(r#"{"ok":true,"#), ok, "line {i}: {line}");
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secrets"))
        .args(["uri", "check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Far more output than a pipe buffers; stops with an error once the child is gone.
        for _ in 0..200_000 {
            if stdin
                .write_all(b"openbao+kv2://secret/app/api#token?version=3\n")
                .is_err()
            {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, format!("{EXAMPLE_JSON}\n"));
    drop(stdout); // like `| head -1`
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
