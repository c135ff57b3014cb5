//! Opening one `file://` secret: confined to its mount, never blocking, regular files only.
//!
//! `<root>/<mount>` is resolved beneath the root (symlinks there belong to whoever lays out the
//! root); everything after it is resolved beneath that mount directory, so a tenant who can
//! write into mount `a` cannot point a symlink at mount `b`. Whatever is opened is `fstat`ed and
//! refused unless it is a regular file, before a byte is read.
//!
//! On Linux 5.6+ the kernel does the confinement: `openat2` with `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS` relative to a directory descriptor of the root, then of the mount.
//! Where `openat2` is missing (`ENOSYS`, or `EPERM` from a seccomp filter) or refuses a symlink
//! it cannot follow beneath (`EXDEV`: an absolute symlink, or one that really escapes), the
//! descriptor check decides: open without reading (`O_PATH`), compare the descriptor's real path
//! (`/proc/self/fd/N`) with the canonical mount, check the type, then reopen that real path
//! without following a final symlink and require the same device and inode. A mismatch (a
//! rotation, or an attacker swapping a component) starts over, at most three times; a path that
//! keeps changing is `PERMISSION_DENIED`. `EAGAIN` from `openat2` (a rename raced the walk)
//! takes the fallback too.
//!
//! Every open for reading uses `O_NONBLOCK | O_NOCTTY`: a FIFO cannot stall the call and a
//! terminal never becomes the process's controlling terminal.

use std::fs::File;
use std::path::Path;

use crate::ProviderError;

use super::{NAME, map_io};

/// A regular file, opened for reading, and its size when it was opened.
#[derive(Debug)]
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) len: u64,
}

/// Opens `<root>/<mount>/<path>` (`<root>/<mount>` when `path` is empty). `root` is canonical.
pub(super) fn open(root: &Path, mount: &str, path: &str) -> Result<Opened, ProviderError> {
    #[cfg(target_os = "linux")]
    match beneath::open(root, mount, path) {
        beneath::Outcome::Done(result) => return result,
        beneath::Outcome::Fallback => {}
    }
    fallback(root, mount, path)
}

fn escape(mount: &str) -> ProviderError {
    tracing::warn!(
        provider = NAME,
        mount,
        "refused a path that resolves outside its mount"
    );
    ProviderError::PermissionDenied {
        provider: NAME,
        mount: mount.to_owned(),
        status: None,
    }
}

fn not_a_file(mount: &str) -> ProviderError {
    ProviderError::NotAFile {
        provider: NAME,
        mount: mount.to_owned(),
    }
}

fn directory(mount: &str) -> ProviderError {
    ProviderError::InvalidPath {
        provider: NAME,
        mount: mount.to_owned(),
        reason: "names a directory, not a file",
    }
}

#[cfg(unix)]
mod unix {
    use rustix::fs::{FileType, OFlags, Stat};
    use rustix::io::Errno;

    use super::{ProviderError, directory, map_io, not_a_file};

    /// Flags of every open for reading.
    pub(super) const READ: OFlags = OFlags::RDONLY
        .union(OFlags::NONBLOCK)
        .union(OFlags::NOCTTY)
        .union(OFlags::CLOEXEC);

    /// A failed open as a provider error. A socket or a device without a driver (`ENXIO`,
    /// `ENODEV`) is not a file either.
    pub(super) fn open_error(mount: &str, errno: Errno) -> ProviderError {
        match errno {
            Errno::NXIO | Errno::NODEV => not_a_file(mount),
            other => map_io(mount, other.into()),
        }
    }

    /// `Ok(size)` for a regular file, else `NOT_A_FILE` or, for a directory, `INVALID_PATH`.
    pub(super) fn regular(mount: &str, stat: &Stat) -> Result<u64, ProviderError> {
        match FileType::from_raw_mode(stat.st_mode) {
            // A negative size cannot happen; the capped read still bounds what is read.
            FileType::RegularFile => Ok(u64::try_from(stat.st_size).unwrap_or(0)),
            FileType::Directory => Err(directory(mount)),
            _ => Err(not_a_file(mount)),
        }
    }
}

#[cfg(target_os = "linux")]
mod beneath {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};

    use rustix::fs::{Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;

    use super::unix::{READ, open_error, regular};
    use super::{Opened, ProviderError};

    /// Set once the kernel has said it has no `openat2`; later reads go straight to the
    /// fallback. (`EPERM` is not remembered: it may come from one file's filesystem.)
    static MISSING: AtomicBool = AtomicBool::new(false);

    const DIRECTORY: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
    const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

    pub(super) enum Outcome {
        Done(Result<Opened, ProviderError>),
        Fallback,
    }

    pub(super) fn open(root: &Path, mount: &str, path: &str) -> Outcome {
        if MISSING.load(Ordering::Relaxed) {
            return Outcome::Fallback;
        }
        match open_fd(root, mount, path) {
            Ok(fd) => Outcome::Done(match rustix::fs::fstat(&fd) {
                Ok(stat) => regular(mount, &stat).map(|len| Opened {
                    file: fd.into(),
                    len,
                }),
                Err(errno) => Err(open_error(mount, errno)),
            }),
            Err(Errno::NOSYS) => {
                MISSING.store(true, Ordering::Relaxed);
                Outcome::Fallback
            }
            // `EAGAIN`: a rename raced the walk and the kernel could not rule out an escape.
            Err(Errno::PERM | Errno::XDEV | Errno::AGAIN) => Outcome::Fallback,
            Err(errno) => Outcome::Done(Err(open_error(mount, errno))),
        }
    }

    /// Three opens: the root, the mount beneath it, the file beneath the mount.
    fn open_fd(root: &Path, mount: &str, path: &str) -> Result<rustix::fd::OwnedFd, Errno> {
        let root_fd = rustix::fs::open(root, DIRECTORY, Mode::empty())?;
        if path.is_empty() {
            return rustix::fs::openat2(&root_fd, mount, READ, Mode::empty(), RESOLVE);
        }
        let mount_fd = rustix::fs::openat2(&root_fd, mount, DIRECTORY, Mode::empty(), RESOLVE)?;
        rustix::fs::openat2(&mount_fd, path, READ, Mode::empty(), RESOLVE)
    }

    #[cfg(test)]
    pub(super) fn available() -> bool {
        !MISSING.load(Ordering::Relaxed)
    }
}

/// How often the fallback starts over when the file changed between its check and its reopen
/// (a rotation renamed a new file into place); a path that keeps changing is refused.
#[cfg(unix)]
const ATTEMPTS: usize = 3;

/// The descriptor check, for kernels without `openat2` and for symlinks it will not follow.
#[cfg(unix)]
pub(super) fn fallback(root: &Path, mount: &str, path: &str) -> Result<Opened, ProviderError> {
    for _ in 0..ATTEMPTS {
        if let Some(opened) = fallback_once(root, mount, path)? {
            return Ok(opened);
        }
    }
    Err(escape(mount))
}

/// One try of the fallback; `None` when what was checked is no longer what the path names.
#[cfg(unix)]
fn fallback_once(root: &Path, mount: &str, path: &str) -> Result<Option<Opened>, ProviderError> {
    use rustix::fs::{Mode, OFlags};

    use unix::{open_error, regular};

    let io = |source: std::io::Error| map_io(mount, source);
    let mount_path = root.join(mount);
    // A mount-only URI names the entry `<root>/<mount>` itself, which must stay in the root.
    let (wanted, bound) = if path.is_empty() {
        (mount_path, root.to_path_buf())
    } else {
        let bound = mount_path.canonicalize().map_err(io)?;
        if !bound.starts_with(root) {
            return Err(escape(mount));
        }
        (mount_path.join(path), bound)
    };
    // Linux: `O_PATH` opens nothing (no device open, no FIFO wait) until the checks pass.
    #[cfg(target_os = "linux")]
    const PROBE: OFlags = OFlags::PATH.union(OFlags::CLOEXEC);
    #[cfg(not(target_os = "linux"))]
    const PROBE: OFlags = unix::READ;
    let probe =
        rustix::fs::open(&wanted, PROBE, Mode::empty()).map_err(|e| open_error(mount, e))?;
    let real = real_path(&probe, &wanted).map_err(io)?;
    if !real.starts_with(&bound) {
        return Err(escape(mount));
    }
    let stat = rustix::fs::fstat(&probe).map_err(|e| open_error(mount, e))?;
    let len = regular(mount, &stat)?;
    #[cfg(target_os = "linux")]
    let Some((probe, len)) = reopen(mount, &real, &stat, len)? else {
        return Ok(None);
    };
    Ok(Some(Opened {
        file: probe.into(),
        len,
    }))
}

/// Opens for reading the `O_PATH` probe's checked real path, without following a final
/// symlink. `None` when it is gone, became a symlink or is another inode than the one checked
/// (a component was swapped for a symlink since, or a rotation replaced the file).
#[cfg(target_os = "linux")]
fn reopen(
    mount: &str,
    real: &Path,
    checked: &rustix::fs::Stat,
    checked_len: u64,
) -> Result<Option<(rustix::fd::OwnedFd, u64)>, ProviderError> {
    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;

    use unix::{READ, open_error};

    let fd = match rustix::fs::open(real, READ | OFlags::NOFOLLOW, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::LOOP | Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(errno) => return Err(open_error(mount, errno)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| open_error(mount, e))?;
    if (stat.st_dev, stat.st_ino) != (checked.st_dev, checked.st_ino) {
        return Ok(None);
    }
    // Same inode, so still a regular file; it may have grown since (the read is capped).
    Ok(Some((
        fd,
        u64::try_from(stat.st_size).unwrap_or(checked_len),
    )))
}

/// The descriptor check without `rustix`: the path is resolved right after opening.
#[cfg(not(unix))]
pub(super) fn fallback(root: &Path, mount: &str, path: &str) -> Result<Opened, ProviderError> {
    let io = |source: std::io::Error| map_io(mount, source);
    let mount_path = root.join(mount);
    let (wanted, bound) = if path.is_empty() {
        (mount_path, root.to_path_buf())
    } else {
        let bound = mount_path.canonicalize().map_err(io)?;
        (mount_path.join(path), bound)
    };
    if !bound.starts_with(root) {
        return Err(escape(mount));
    }
    let file = File::open(&wanted).map_err(io)?;
    if !wanted.canonicalize().map_err(io)?.starts_with(&bound) {
        return Err(escape(mount));
    }
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(directory(mount));
    }
    if !meta.is_file() {
        return Err(not_a_file(mount));
    }
    Ok(Opened {
        file,
        len: meta.len(),
    })
}

/// Where the descriptor really is: the kernel's answer on Linux (no window between check and
/// use), else the resolved path.
#[cfg(unix)]
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn real_path(fd: &rustix::fd::OwnedFd, path: &Path) -> std::io::Result<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
            return Ok(real);
        }
    }
    // No /proc (some sandboxes), or not Linux.
    path.canonicalize()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Both strategies, so the fallback keeps the guarantees of `openat2` where it is missing.
    fn both(root: &Path, mount: &str, path: &str) -> [Result<Opened, ProviderError>; 2] {
        [open(root, mount, path), fallback(root, mount, path)]
    }

    fn codes(root: &Path, mount: &str, path: &str) -> [&'static str; 2] {
        both(root, mount, path).map(|r| r.err().map_or("OK", |e| e.code()))
    }

    fn text(opened: Result<Opened, ProviderError>) -> Result<String, Box<dyn std::error::Error>> {
        Ok(std::io::read_to_string(opened?.file)?)
    }

    #[test]
    fn both_strategies_confine_reads_to_the_mount() -> TestResult {
        assert!(beneath::available(), "this kernel should have openat2");
        let dir = tempfile::tempdir()?;
        let root = dir.path().canonicalize()?;
        for m in ["a", "b"] {
            std::fs::create_dir(root.join(m))?;
        }
        std::fs::write(root.join("b/secret"), "b's")?;
        std::fs::write(root.join("a/own"), "a's")?;
        std::fs::write(root.join("top"), "docker-style")?;
        symlink("../b/secret", root.join("a/relative"))?;
        symlink(root.join("b/secret"), root.join("a/absolute"))?;
        symlink(root.join("a/own"), root.join("a/absolute-inside"))?;
        symlink("/etc/passwd", root.join("a/passwd"))?;
        symlink("../../../../../../../../etc/passwd", root.join("a/dotdot"))?;
        symlink("/proc/self/root/etc/passwd", root.join("a/magic"))?;
        symlink("../a", root.join("b/to-a"))?;
        for path in ["relative", "absolute", "passwd", "dotdot", "magic"] {
            assert_eq!(codes(&root, "a", path), ["PERMISSION_DENIED"; 2], "{path}");
        }
        // `b/to-a/own` is `a/own`, outside mount `b`.
        assert_eq!(codes(&root, "b", "to-a/own"), ["PERMISSION_DENIED"; 2]);
        for opened in both(&root, "a", "absolute-inside") {
            assert_eq!(text(opened)?, "a's");
        }
        for opened in both(&root, "top", "") {
            assert_eq!(text(opened)?, "docker-style");
        }
        assert_eq!(codes(&root, "a", ""), ["INVALID_PATH"; 2]);
        assert_eq!(codes(&root, "a", "missing"), ["NOT_FOUND"; 2]);
        assert_eq!(codes(&root, "top", "below"), ["NOT_FOUND"; 2]);
        Ok(())
    }

    #[test]
    fn both_strategies_refuse_special_files_without_blocking() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().canonicalize()?;
        std::fs::create_dir(root.join("m"))?;
        rustix::fs::mkfifoat(rustix::fs::CWD, root.join("m/pipe"), 0o600.into())?;
        symlink("pipe", root.join("m/to-pipe"))?;
        let socket = std::os::unix::net::UnixListener::bind(root.join("m/sock"))?;
        for path in ["pipe", "to-pipe", "sock"] {
            assert_eq!(codes(&root, "m", path), ["NOT_A_FILE"; 2], "{path}");
        }
        drop(socket);
        // Character devices: `/dev` as a mount of the root `/`.
        for path in ["null", "zero", "tty", "full"] {
            assert_eq!(
                codes(Path::new("/"), "dev", path),
                ["NOT_A_FILE"; 2],
                "{path}"
            );
        }
        Ok(())
    }

    #[test]
    fn a_mount_that_is_a_symlink_inside_the_root_is_followed_but_not_outside() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("v2"))?;
        std::fs::write(root.join("v2/key"), "v2")?;
        std::fs::write(dir.path().join("outside"), "no")?;
        symlink("v2", root.join("current"))?;
        symlink(dir.path(), root.join("up"))?;
        let root = root.canonicalize()?;
        for opened in both(&root, "current", "key") {
            assert_eq!(text(opened)?, "v2");
        }
        assert_eq!(codes(&root, "up", "outside"), ["PERMISSION_DENIED"; 2]);
        Ok(())
    }

    type Strategy = fn(&Path, &str, &str) -> Result<Opened, ProviderError>;

    /// An attacker who can write into mount `a` flips `a/d` between a real directory and a
    /// symlink to mount `b`'s directory while reads run: no read may return `b`'s value,
    /// whichever strategy opens (the fallback's reopen is caught by the inode check).
    fn race(strategy: Strategy) -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = dir.path().canonicalize()?;
        std::fs::create_dir_all(root.join("a/d"))?;
        std::fs::create_dir_all(root.join("b/d"))?;
        std::fs::write(root.join("a/d/s"), "a's")?;
        std::fs::write(root.join("b/d/s"), "b's")?;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (a, done) = (root.join("a"), done.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                for _ in 0..300 {
                    std::fs::rename(a.join("d"), a.join("spare"))?;
                    symlink("../b/d", a.join("d"))?;
                    std::fs::remove_file(a.join("d"))?;
                    std::fs::rename(a.join("spare"), a.join("d"))?;
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
        };
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
            match strategy(&root, "a", "d/s") {
                Ok(opened) => assert_eq!(std::io::read_to_string(opened.file)?, "a's"),
                Err(e) => assert!(matches!(e.code(), "PERMISSION_DENIED" | "NOT_FOUND"), "{e}"),
            }
            reads += 1;
        }
        flipper.join().map_err(|_| "flipper panicked")??;
        Ok(())
    }

    #[test]
    fn a_flipping_directory_never_leaks_another_mount_through_openat2() -> TestResult {
        race(open)
    }

    #[test]
    fn a_flipping_directory_never_leaks_another_mount_through_the_fallback() -> TestResult {
        race(fallback)
    }

    /// The window the fallback's inode check closes, made deterministic: what is checked, then
    /// swapped, is never what is read.
    #[test]
    fn the_fallback_reopen_refuses_what_it_did_not_check() -> TestResult {
        use rustix::fs::{Mode, OFlags};
        let dir = tempfile::tempdir()?;
        let root = dir.path().canonicalize()?;
        std::fs::create_dir_all(root.join("a/d"))?;
        std::fs::create_dir_all(root.join("b/d"))?;
        std::fs::write(root.join("a/d/s"), "a's")?;
        std::fs::write(root.join("b/d/s"), "b's")?;
        let real = root.join("a/d/s");
        let probe = rustix::fs::open(&real, OFlags::PATH, Mode::empty())?;
        let checked = rustix::fs::fstat(&probe)?;

        let (fd, len) = reopen("a", &real, &checked, 3)?.ok_or("unchanged file refused")?;
        assert_eq!(
            (std::io::read_to_string(File::from(fd))?, len),
            ("a's".into(), 3)
        );

        // A directory on the checked path swapped for a symlink into mount `b`.
        std::fs::rename(root.join("a/d"), root.join("a/spare"))?;
        symlink("../b/d", root.join("a/d"))?;
        assert!(reopen("a", &real, &checked, 3)?.is_none());

        // The file itself swapped for a symlink, then for another file.
        std::fs::remove_file(root.join("a/d"))?;
        std::fs::rename(root.join("a/spare"), root.join("a/d"))?;
        std::fs::rename(&real, root.join("a/kept"))?;
        symlink("../../b/d/s", &real)?;
        assert!(reopen("a", &real, &checked, 3)?.is_none());
        std::fs::remove_file(&real)?;
        std::fs::write(&real, "new")?;
        assert!(reopen("a", &real, &checked, 3)?.is_none());
        // Gone.
        std::fs::remove_file(&real)?;
        assert!(reopen("a", &real, &checked, 3)?.is_none());
        Ok(())
    }
}
