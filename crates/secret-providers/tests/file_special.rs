//! The file provider against what an attacker or an unlucky operator plants under the root:
//! FIFOs, sockets and devices (directly or through symlinks), symlinks into other mounts and
//! out of the root, huge and growing files, and the kubelet's `..data` layout with rotation.
#![cfg(unix)]
#![allow(missing_docs)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use secret_providers::{FileConfig, FileProvider, ProviderError, SecretValue};
use secret_uri::SecretUri;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A bound on calls that used to hang forever; generous for a loaded machine.
const HANG: Duration = Duration::from_secs(10);

fn provider(root: &Path) -> FileProvider {
    FileProvider::new(FileConfig::new(root))
}

fn read(provider: &FileProvider, uri: &str) -> Result<SecretValue, ProviderError> {
    let uri = SecretUri::parse(uri).map_err(|e| ProviderError::UnsupportedProvider {
        provider: "test",
        what: e.to_string(),
    })?;
    provider.read_blocking(&uri)
}

fn code(result: Result<SecretValue, ProviderError>) -> &'static str {
    result.err().map_or("OK", |e| e.code())
}

fn text(provider: &FileProvider, uri: &str) -> Result<String, ProviderError> {
    Ok(read(provider, uri)?
        .expose_str()
        .unwrap_or("<json>")
        .to_owned())
}

/// `read` on another thread: the code, or `HUNG` when it does not return within [`HANG`].
fn code_within_bound(provider: &FileProvider, uri: &str) -> &'static str {
    let (tx, rx) = mpsc::channel();
    let provider = provider.clone();
    let uri = uri.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(code(read(&provider, &uri)));
    });
    rx.recv_timeout(HANG).unwrap_or("HUNG")
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, 0o600.into()).map_err(Into::into)
}

/// Two tenants' mounts, `a` and `b`, under a fresh root.
fn two_mounts() -> Result<(tempfile::TempDir, PathBuf), std::io::Error> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("a"))?;
    std::fs::create_dir_all(root.join("b/dir"))?;
    std::fs::write(root.join("a/own"), "a-value")?;
    std::fs::write(root.join("b/secret"), "b-value")?;
    std::fs::write(root.join("b/dir/deep"), "b-deep")?;
    std::fs::write(dir.path().join("outside"), "outside-value")?;
    Ok((dir, root))
}

#[test]
fn a_fifo_is_not_a_file_and_never_hangs() -> TestResult {
    let (_dir, root) = two_mounts()?;
    mkfifo(&root.join("a/pipe"))?;
    symlink("pipe", root.join("a/to-pipe"))?;
    std::fs::create_dir(root.join("a/sub"))?;
    symlink("../pipe", root.join("a/sub/up-to-pipe"))?;
    let files = provider(&root);
    for uri in [
        "file://a/pipe",
        "file://a/to-pipe",
        "file://a/sub/up-to-pipe",
    ] {
        assert_eq!(code_within_bound(&files, uri), "NOT_A_FILE", "{uri}");
    }
    // The message names provider and mount, not the path.
    let shown = read(&files, "file://a/to-pipe")
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        shown.as_deref(),
        Some("file: mount `a`: not a regular file [NOT_A_FILE]")
    );
    Ok(())
}

#[test]
fn the_async_read_of_a_fifo_is_not_a_file_too() -> TestResult {
    let (_dir, root) = two_mounts()?;
    mkfifo(&root.join("a/pipe"))?;
    let files = provider(&root);
    let uri = SecretUri::parse("file://a/pipe")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()?;
    let result = runtime.block_on(async { tokio::time::timeout(HANG, files.read(&uri)).await });
    // A read stuck on the blocking pool must fail the test, not hang it at runtime drop.
    runtime.shutdown_background();
    assert_eq!(result.map(code).unwrap_or("HUNG"), "NOT_A_FILE");
    Ok(())
}

#[test]
fn sockets_and_devices_are_not_files() -> TestResult {
    let (_dir, root) = two_mounts()?;
    let _socket = std::os::unix::net::UnixListener::bind(root.join("a/sock"))?;
    let files = provider(&root);
    assert_eq!(code_within_bound(&files, "file://a/sock"), "NOT_A_FILE");
    // Character devices, including a terminal that must not become the controlling one.
    let slash = provider(Path::new("/"));
    for uri in ["file://dev/null", "file://dev/zero", "file://dev/tty"] {
        assert_eq!(code_within_bound(&slash, uri), "NOT_A_FILE", "{uri}");
    }
    // A `/dev/null`-like device planted in a mount, reached through a symlink (needs
    // CAP_MKNOD, which the test containers have; without it only the cases above run).
    let dev = rustix::fs::makedev(1, 3);
    let null = root.join("a/null");
    match rustix::fs::mknodat(
        rustix::fs::CWD,
        &null,
        rustix::fs::FileType::CharacterDevice,
        0o666.into(),
        dev,
    ) {
        Ok(()) => {
            symlink("null", root.join("a/to-null"))?;
            for uri in ["file://a/null", "file://a/to-null"] {
                assert_eq!(code_within_bound(&files, uri), "NOT_A_FILE", "{uri}");
            }
        }
        Err(rustix::io::Errno::PERM) => eprintln!("no CAP_MKNOD: planted device case not run"),
        Err(other) => return Err(other.into()),
    }
    Ok(())
}

#[test]
fn a_symlink_into_another_mount_is_refused() -> TestResult {
    let (_dir, root) = two_mounts()?;
    symlink("../b/secret", root.join("a/x"))?;
    symlink(root.join("b/secret"), root.join("a/absolute"))?;
    symlink("../b", root.join("a/dir-link"))?;
    symlink("../b/../b/secret", root.join("a/zigzag"))?;
    symlink("x", root.join("a/chain"))?;
    let files = provider(&root);
    for uri in [
        "file://a/x",
        "FILE://a/x",
        "file://a/x/",
        "file://a/absolute",
        "file://a/dir-link/secret",
        "file://a/dir-link/dir/deep",
        "file://a/zigzag",
        "file://a/chain",
    ] {
        assert_eq!(code(read(&files, uri)), "PERMISSION_DENIED", "{uri}");
    }
    // Mount `b` itself still reads its own value, and `a` its own.
    assert_eq!(text(&files, "file://b/secret")?, "b-value");
    assert_eq!(text(&files, "file://a/own")?, "a-value");
    Ok(())
}

#[test]
fn a_symlink_out_of_the_root_is_refused() -> TestResult {
    let (dir, root) = two_mounts()?;
    symlink("/etc/passwd", root.join("a/passwd"))?;
    symlink(
        "../../../../../../../../../../etc/passwd",
        root.join("a/dotdot"),
    )?;
    symlink("/proc/self/root/etc/passwd", root.join("a/magic"))?;
    symlink(dir.path().join("outside"), root.join("a/outside"))?;
    symlink("/dev/null", root.join("a/devnull"))?;
    let files = provider(&root);
    for uri in [
        "file://a/passwd",
        "file://a/dotdot",
        "file://a/magic",
        "file://a/outside",
        "file://a/devnull",
    ] {
        assert_eq!(code(read(&files, uri)), "PERMISSION_DENIED", "{uri}");
    }
    Ok(())
}

/// The layout the kubelet's atomic writer makes for Secret, ConfigMap and CSI volumes.
fn kubelet_volume(mount: &Path, stamp: &str, value: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(mount.join(stamp))?;
    std::fs::write(mount.join(stamp).join("password"), value)?;
    std::fs::write(
        mount.join(stamp).join("db.json"),
        format!(r#"{{"password": "{value}"}}"#),
    )?;
    symlink(stamp, mount.join("..data"))?;
    symlink("..data/password", mount.join("password"))?;
    symlink("..data/db.json", mount.join("db.json"))
}

/// One rotation as the atomic writer does it: a new timestamped directory, a temporary
/// symlink to it, renamed over `..data`.
fn rotate(mount: &Path, stamp: &str, value: &str) -> std::io::Result<()> {
    std::fs::create_dir(mount.join(stamp))?;
    std::fs::write(mount.join(stamp).join("password"), value)?;
    std::fs::write(
        mount.join(stamp).join("db.json"),
        format!(r#"{{"password": "{value}"}}"#),
    )?;
    symlink(stamp, mount.join("..data_tmp"))?;
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data"))
}

#[test]
fn the_kubelet_layout_reads_and_a_rotation_is_seen() -> TestResult {
    let (_dir, root) = two_mounts()?;
    let mount = root.join("demo");
    kubelet_volume(&mount, "..2026_12_01_10_00_00.123", "first")?;
    let files = provider(&root);
    assert_eq!(text(&files, "file://demo/password")?, "first");
    assert_eq!(text(&files, "file://demo/db.json#password")?, "first");

    rotate(&mount, "..2026_12_01_10_05_00.456", "second")?;
    std::fs::remove_dir_all(mount.join("..2026_12_01_10_00_00.123"))?;
    assert_eq!(text(&files, "file://demo/password")?, "second");
    assert_eq!(text(&files, "file://demo/db.json#password")?, "second");
    Ok(())
}

#[test]
fn reads_during_rotations_never_fail() -> TestResult {
    let (_dir, root) = two_mounts()?;
    let mount = root.join("demo");
    kubelet_volume(&mount, "..2026_12_01_10_00_00.000", "v0")?;
    let files = provider(&root);
    let rotations = 200;
    let writer = {
        let mount = mount.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            for n in 1..=rotations {
                rotate(
                    &mount,
                    &format!("..2026_12_01_10_00_{n:02}.{n:03}"),
                    &format!("v{n}"),
                )?;
            }
            Ok(())
        })
    };
    let mut reads = 0;
    let mut last = 0;
    while !writer.is_finished() || reads == 0 {
        let value = text(&files, "file://demo/password")?;
        let n: u32 = value.trim_start_matches('v').parse()?;
        assert!(n >= last, "went back from v{last} to {value}");
        last = n;
        reads += 1;
    }
    writer.join().map_err(|_| "rotating thread panicked")??;
    assert_eq!(
        text(&files, "file://demo/password")?,
        format!("v{rotations}")
    );
    Ok(())
}

#[test]
fn a_replaced_mount_directory_is_seen_at_once() -> TestResult {
    let (_dir, root) = two_mounts()?;
    let files = provider(&root);
    assert_eq!(text(&files, "file://a/own")?, "a-value");
    std::fs::rename(root.join("a"), root.join("a-old"))?;
    std::fs::create_dir(root.join("a"))?;
    std::fs::write(root.join("a/own"), "a-new")?;
    assert_eq!(text(&files, "file://a/own")?, "a-new");
    // A mount that is a symlink inside the root is followed; out of it, refused.
    symlink("a-old", root.join("current"))?;
    assert_eq!(text(&files, "file://current/own")?, "a-value");
    symlink("/etc", root.join("etc"))?;
    assert_eq!(code(read(&files, "file://etc/passwd")), "PERMISSION_DENIED");
    Ok(())
}

#[test]
fn directories_stay_invalid_path_and_docker_style_files_read() -> TestResult {
    let (_dir, root) = two_mounts()?;
    std::fs::write(root.join("db_password"), "docker\n")?;
    symlink("../b/dir", root.join("a/dir-escape"))?;
    std::fs::create_dir(root.join("a/sub"))?;
    let files = provider(&root);
    assert_eq!(code(read(&files, "file://a")), "INVALID_PATH");
    assert_eq!(code(read(&files, "file://a/sub")), "INVALID_PATH");
    assert_eq!(
        code(read(&files, "file://a/dir-escape")),
        "PERMISSION_DENIED"
    );
    assert_eq!(text(&files, "file://db_password")?, "docker");
    Ok(())
}

#[test]
fn huge_and_growing_files_are_too_large() -> TestResult {
    let (_dir, root) = two_mounts()?;
    // Sparse: refused on the descriptor's size, without reading 8 GiB.
    std::fs::File::create(root.join("a/huge"))?.set_len(8 << 30)?;
    let files = provider(&root);
    assert_eq!(code_within_bound(&files, "file://a/huge"), "TOO_LARGE");
    // `/proc` files report size 0 whatever they hold: the read itself must stop at the cap.
    let procfs = FileProvider::new(FileConfig::new("/proc").with_max_bytes(16));
    assert_eq!(code(read(&procfs, "file://self/status")), "TOO_LARGE");
    let roomy = FileProvider::new(FileConfig::new("/proc"));
    assert!(text(&roomy, "file://self/status")?.contains("Pid:"));
    // Exactly at the cap is fine; one byte over is not.
    std::fs::write(root.join("a/sixteen"), "0123456789abcdef")?;
    std::fs::write(root.join("a/seventeen"), "0123456789abcdefg")?;
    let capped = FileProvider::new(FileConfig::new(&root).with_max_bytes(16));
    assert_eq!(text(&capped, "file://a/sixteen")?, "0123456789abcdef");
    assert_eq!(code(read(&capped, "file://a/seventeen")), "TOO_LARGE");
    Ok(())
}

#[test]
fn swapping_a_file_for_a_symlink_during_reads_never_serves_another_mount() -> TestResult {
    let (_dir, root) = two_mounts()?;
    let a = root.join("a");
    std::fs::write(a.join("x"), "a-value")?;
    let files = provider(&root);
    let swapper = {
        let a = a.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            for _ in 0..300 {
                symlink("../b/secret", a.join("tmp"))?;
                std::fs::rename(a.join("tmp"), a.join("x"))?;
                std::fs::write(a.join("tmp"), "a-value")?;
                std::fs::rename(a.join("tmp"), a.join("x"))?;
            }
            Ok(())
        })
    };
    let mut reads = 0;
    while !swapper.is_finished() || reads == 0 {
        match read(&files, "file://a/x") {
            Ok(value) => assert_eq!(value.expose_str(), Some("a-value")),
            Err(e) => assert_eq!(e.code(), "PERMISSION_DENIED", "{e}"),
        }
        reads += 1;
    }
    swapper.join().map_err(|_| "swapper panicked")??;
    Ok(())
}
