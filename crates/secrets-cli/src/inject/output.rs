//! `-o PATH`: the rendered template written to its file.

use std::fs::{self, File, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a new file in the same folder, created with `mode`
/// (never more open than that, whatever the umask, then set to exactly `mode`), written,
/// flushed to disk, renamed over `path` (the target of a symlink), and the folder flushed.
/// On any error the temporary file is removed and `path` is untouched.
///
/// # Errors
/// `path` is not a regular file (or a symlink to one), its folder does not exist, or an I/O
/// error.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_owned(),
    };
    match fs::metadata(&target) {
        Ok(meta) if !meta.is_file() => {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
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
    file.persist(&target).map_err(|e| e.error)?;
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
        // Through a symlink: the target is replaced, the link stays.
        let link = dir.path().join("link.env");
        std::os::unix::fs::symlink("out.env", &link).unwrap();
        write_atomically(&link, b"three", 0o600).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&path).unwrap(), b"three");
        // A missing folder and a folder in the way are refused.
        assert!(write_atomically(&dir.path().join("no/such/x"), b"x", 0o600).is_err());
        assert!(write_atomically(dir.path(), b"x", 0o600).is_err());
    }
}
