//! One local file read whole, safely: for the files a service names itself (a configuration
//! file, a template), not `file://` secrets under a root.
//!
//! The same rules as the provider's reads: opened with `O_NONBLOCK | O_NOCTTY` (a FIFO cannot
//! stall the call, a terminal never becomes the controlling terminal), refused unless it is a
//! regular file before a byte is read, and read up to a cap (checked against `fstat` first,
//! and again while reading, since a file can grow). The bytes are wiped when dropped.

use std::fs::File;
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

use zeroize::Zeroizing;

/// Reads the regular file at `path`, at most `max_bytes` of it.
///
/// # Errors
/// The open's own error (`NotFound`, `PermissionDenied`, …); `InvalidInput` when `path` is
/// not a regular file (a directory, FIFO, socket or device); `FileTooLarge` beyond
/// `max_bytes`. No error holds a byte of the file.
pub fn read_local_file(path: &Path, max_bytes: u64) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let too_large = || Error::new(ErrorKind::FileTooLarge, "larger than the size cap");
    if metadata.len() > max_bytes {
        return Err(too_large());
    }
    let capacity = usize::try_from(metadata.len())
        .unwrap_or(0)
        .saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;

    use rustix::fs::OFlags;

    let flags = OFlags::NONBLOCK.union(OFlags::NOCTTY).bits();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags).unwrap_or(0))
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> Result<File, Error> {
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_refuses_the_rest() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, b"a: 1\n")?;
        assert_eq!(read_local_file(&path, 5)?.as_slice(), b"a: 1\n");
        let error = read_local_file(&path, 4).err().ok_or("capped")?;
        assert_eq!(error.kind(), ErrorKind::FileTooLarge);
        let error = read_local_file(dir.path(), 1 << 20)
            .err()
            .ok_or("a directory")?;
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        let error = read_local_file(&dir.path().join("missing"), 1 << 20)
            .err()
            .ok_or("missing")?;
        assert_eq!(error.kind(), ErrorKind::NotFound);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        )?;
        let error = read_local_file(&fifo, 1 << 20).err().ok_or("a FIFO")?;
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        Ok(())
    }
}
