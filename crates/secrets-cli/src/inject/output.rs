//! `-o PATH`: where the rendered template goes, and writing it there.
//!
//! A regular file (or no file yet) is replaced atomically: a new file beside it, created with
//! its final mode, flushed, then renamed over it. Anything else is never renamed over, since
//! what stands behind it is not a file the user named: a character device or a FIFO
//! (`/dev/null`, a named pipe) is written in place, and so is a descriptor's link
//! (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`), whose path leads to whatever the
//! descriptor holds (`>> app.log` makes `/dev/stdout` lead to `app.log`; renaming over that
//! replaced the log). A descriptor link to this process's own stdout is written through
//! stdout itself, as `-o -` is, so a shell's append redirection and file offset are kept.
//!
//! Symlinks are followed one link at a time, so each can be checked: a link into a missing
//! target is refused rather than creating a file where the link points, and a link in a
//! sticky world-writable folder (`/tmp`) is followed only on the terms of the kernel's
//! `fs.protected_symlinks`, which reading links in user space would otherwise bypass.

use std::fs::{self, File, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::NOT_A_FILE;

/// The code for an `-o` symlink whose target does not exist.
pub(crate) const DANGLING_SYMLINK: &str = "DANGLING_SYMLINK";
/// The code for an `-o` symlink in a sticky world-writable folder owned by neither the user
/// nor the folder's owner.
pub(crate) const UNTRUSTED_SYMLINK: &str = "UNTRUSTED_SYMLINK";

/// At most this many symlinks are followed (Linux's own limit).
const MAX_LINKS: usize = 40;

/// Where `-o PATH` leads, its symlinks followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A regular file, or no file yet: replaced (or created) atomically.
    Replace(PathBuf),
    /// A link to what this process's stdout is: written through stdout, as `-o -` is.
    Stdout,
    /// Written in place, never renamed over: a character device, a FIFO, or a link of a
    /// descriptor other than stdout (opened to append, so a file behind it keeps its
    /// contents).
    Stream(PathBuf),
}

/// Why `-o PATH` is refused (exit 2). Names no path; the caller prints it.
#[derive(Debug)]
pub(super) enum OutputError {
    /// A folder, a socket or a block device.
    NotAFile {
        what: &'static str,
    },
    /// A symlink whose target does not exist.
    Dangling,
    /// A symlink `fs.protected_symlinks` would not follow.
    Untrusted,
    Io(io::Error),
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAFile { what } => write!(f, "{NOT_A_FILE}: it is {what}, not a file"),
            Self::Dangling => write!(
                f,
                "{DANGLING_SYMLINK}: it is a symlink to a file that does not exist; nothing is \
                 created where a link points"
            ),
            Self::Untrusted => write!(
                f,
                "{UNTRUSTED_SYMLINK}: it leads through a symlink in a sticky world-writable \
                 folder, owned by neither you nor the folder's owner"
            ),
            Self::Io(e) => e.fmt(f),
        }
    }
}

impl From<io::Error> for OutputError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Follows `path`'s symlinks, one at a time, to what `-o` writes.
///
/// # Errors
/// A folder, socket or block device; a dangling or untrusted symlink; too many links; an I/O
/// error reading a link.
pub(super) fn resolve(path: &Path) -> Result<Target, OutputError> {
    let mut current = path.to_owned();
    for followed in 0..=MAX_LINKS {
        let meta = match fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            // No file yet: created. (A missing folder is reported when writing.)
            Err(e) if e.kind() == io::ErrorKind::NotFound && followed == 0 => {
                return Ok(Target::Replace(current));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OutputError::Dangling),
            Err(e) => return Err(e.into()),
        };
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(Target::Replace(current));
        }
        if kind.is_char_device() || kind.is_fifo() {
            return Ok(Target::Stream(current));
        }
        if !kind.is_symlink() {
            let what = if kind.is_dir() {
                "a folder"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "a block device"
            };
            return Err(OutputError::NotAFile { what });
        }
        let folder = folder_of(&current);
        if on_procfs(folder) {
            // A descriptor's link (`/proc/self/fd/1`): it leads to an open file, not to a
            // path that may be renamed over.
            return Ok(if is_stdout(&current) {
                Target::Stdout
            } else {
                Target::Stream(current)
            });
        }
        let dir = fs::metadata(folder)?;
        let euid = rustix::process::geteuid().as_raw();
        if !followable(dir.mode(), dir.uid(), meta.uid(), euid) {
            return Err(OutputError::Untrusted);
        }
        current = folder.join(fs::read_link(&current)?);
    }
    Err(io::Error::from(rustix::io::Errno::LOOP).into())
}

/// The folder `path` is in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn on_procfs(folder: &Path) -> bool {
    rustix::fs::statfs(folder).is_ok_and(|fs| fs.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

/// Whether `link` leads to the very file (pipe, terminal, device) this process's stdout is.
fn is_stdout(link: &Path) -> bool {
    let Ok(behind) = fs::metadata(link) else {
        return false;
    };
    rustix::fs::fstat(io::stdout())
        .is_ok_and(|out| out.st_dev == behind.dev() && out.st_ino == behind.ino())
}

/// `fs.protected_symlinks`: a symlink in a sticky world-writable folder is followed only when
/// its owner is the follower or the folder's owner.
fn followable(folder_mode: u32, folder_uid: u32, link_uid: u32, euid: u32) -> bool {
    let sticky_world_writable = folder_mode & 0o1002 == 0o1002;
    !sticky_world_writable || link_uid == euid || link_uid == folder_uid
}

/// Writes `bytes` to a character device, a FIFO or a descriptor's link: opened to append
/// (never created, never truncated), without becoming the controlling terminal. A FIFO waits
/// for its reader, as any writer does.
///
/// # Errors
/// It cannot be opened or written.
pub(super) fn write_in_place(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let flags = rustix::fs::OFlags::NOCTTY.bits();
    let mut file = fs::OpenOptions::new()
        .append(true)
        .custom_flags(flags.cast_signed())
        .open(path)?;
    file.write_all(bytes)?;
    file.flush()
}

/// Writes `bytes` to the regular file `path` (a [`Target::Replace`]) atomically: a new file in
/// the same folder, created with `mode` (never more open than that, whatever the umask, then
/// set to exactly `mode`), written, flushed to disk, renamed over `path`, and the folder
/// flushed. On any error the temporary file is removed and `path` is untouched.
///
/// # Errors
/// Something other than a regular file is at `path` now, its folder does not exist, or an I/O
/// error.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let folder = folder_of(path);
    if !folder.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "its folder does not exist",
        ));
    }
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode & 0o777))
        .tempfile_in(folder)?;
    file.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the folder is flushed; some file systems refuse to
    // flush a folder, which does not undo the write.
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn writes_atomically_with_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.env");
        write_atomically(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        // Replaced whole, with the new mode; no temporary file left behind.
        write_atomically(&path, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.env"]);
        // A missing folder and a folder in the way are refused.
        assert!(write_atomically(&dir.path().join("no/such/x"), b"x", 0o600).is_err());
        assert!(write_atomically(dir.path(), b"x", 0o600).is_err());
    }

    #[test]
    fn symlinks_lead_to_the_file_they_name_one_link_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.env");
        fs::write(&file, "old").unwrap();
        let missing = dir.path().join("new.env");
        assert_eq!(resolve(&file).unwrap(), Target::Replace(file.clone()));
        assert_eq!(resolve(&missing).unwrap(), Target::Replace(missing.clone()));
        // A relative link, through a second one: the file at the end is replaced.
        fs::create_dir(dir.path().join("sub")).unwrap();
        symlink("../out.env", dir.path().join("sub/link")).unwrap();
        symlink("sub/link", dir.path().join("link2")).unwrap();
        let Target::Replace(end) = resolve(&dir.path().join("link2")).unwrap() else {
            panic!("not a file");
        };
        assert_eq!(
            fs::canonicalize(&end).unwrap(),
            fs::canonicalize(&file).unwrap()
        );
        // The link stays a link; the file it names gets the new contents.
        write_atomically(&end, b"new", 0o600).unwrap();
        assert!(
            fs::symlink_metadata(dir.path().join("link2"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&file).unwrap(), b"new");
        // A dangling link and a loop are refused; so is a folder.
        symlink("nowhere.env", dir.path().join("dangling")).unwrap();
        assert!(matches!(
            resolve(&dir.path().join("dangling")),
            Err(OutputError::Dangling)
        ));
        symlink("loop", dir.path().join("loop")).unwrap();
        assert!(matches!(
            resolve(&dir.path().join("loop")),
            Err(OutputError::Io(_))
        ));
        assert!(matches!(
            resolve(dir.path()),
            Err(OutputError::NotAFile { what: "a folder" })
        ));
        // Devices and descriptor links are written in place.
        assert_eq!(
            resolve(Path::new("/dev/null")).unwrap(),
            Target::Stream("/dev/null".into())
        );
    }

    #[test]
    fn a_descriptor_link_is_never_a_file_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("app.log")).unwrap();
        // This process's own descriptor for a regular file: its link leads to `app.log`,
        // which must not be renamed over.
        let link = PathBuf::from(format!("/proc/self/fd/{}", log.as_raw_fd()));
        assert_eq!(resolve(&link).unwrap(), Target::Stream(link.clone()));
        // Whatever the test harness's stdout is, /dev/stdout is it.
        if rustix::fs::fstat(io::stdout()).is_ok() {
            assert_eq!(resolve(Path::new("/dev/stdout")).unwrap(), Target::Stdout);
            assert_eq!(
                resolve(Path::new("/proc/self/fd/1")).unwrap(),
                Target::Stdout
            );
        }
    }

    #[test]
    fn symlinks_in_sticky_world_writable_folders_follow_the_kernels_rule() {
        let (me, owner, other) = (1000, 0, 1001);
        // /tmp: another user's link is not followed, the folder owner's and one's own are.
        assert!(!followable(0o41777, owner, other, me));
        assert!(followable(0o41777, owner, owner, me));
        assert!(followable(0o41777, owner, me, me));
        // Not sticky, or not world-writable: any link.
        assert!(followable(0o40777, owner, other, me));
        assert!(followable(0o41775, owner, other, me));
    }
}
