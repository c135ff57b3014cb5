//! The `file://` provider: secrets as files under a root directory.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use secret_uri::{Provider, SecretUri};
use zeroize::Zeroizing;

use crate::provider::{ReadFuture, SecretProvider};
use crate::value::Selection;
use crate::{ProviderError, SecretValue};

mod local;
mod open;
#[cfg(feature = "yaml")]
mod yaml;

pub use local::read_local_file;
#[cfg(feature = "yaml")]
pub use yaml::yaml_flow_within_budget;

const NAME: &str = "file";

/// The default root, `/run/secrets` (Docker and Kubernetes secret mounts).
pub const DEFAULT_FILE_ROOT: &str = "/run/secrets";
/// The default size cap, 1 MiB.
pub const DEFAULT_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// Settings of a [`FileProvider`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileConfig {
    /// The directory `file://mount/a/b` resolves under: `<root>/mount/a/b`.
    pub root: PathBuf,
    /// Files larger than this are refused with `TOO_LARGE`.
    pub max_bytes: u64,
}

impl FileConfig {
    /// Settings with this root and the default size cap.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_bytes: DEFAULT_FILE_MAX_BYTES,
        }
    }

    /// Sets the size cap.
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Settings from the process environment: `FILE_MOUNT_PATH` (default `/run/secrets`) and
    /// `FILE_MAX_BYTES` (default 1 MiB).
    ///
    /// # Errors
    /// `CONFIG` naming `FILE_MAX_BYTES` when it is not a whole number of bytes.
    pub fn from_env() -> Result<Self, ProviderError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env) but reading settings through `lookup` (values
    /// trimmed, empty counts as unset).
    ///
    /// # Errors
    /// `CONFIG` naming `FILE_MAX_BYTES` when it is not a whole number of bytes.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let env = secret_config::Env::new(&lookup);
        let root = env.path("FILE_MOUNT_PATH");
        let max_bytes = env
            .number("FILE_MAX_BYTES", DEFAULT_FILE_MAX_BYTES)
            .map_err(|e| ProviderError::from_config(NAME, e))?;
        Ok(Self::new(root.unwrap_or_else(|| DEFAULT_FILE_ROOT.into())).with_max_bytes(max_bytes))
    }
}

/// Reads `file://mount/a/b/c` from `<root>/mount/a/b/c`.
///
/// - The whole path is used, and the file read must stay inside its mount: everything after
///   `<root>/<mount>` is resolved beneath that directory, so a symlink that points into another
///   mount or out of the root is refused with `PERMISSION_DENIED`. Symlinks inside the mount,
///   as Kubernetes Secret and CSI volumes use (`key -> ..data/key`, `..data ->
///   ..2026_12_01_10_00_00.123`, swapped atomically on rotation), are fine. `<root>/<mount>`
///   itself may be a symlink that stays in the root; a URI that names only a mount
///   (`file://db_password`, Docker's layout) reads that entry.
/// - Only regular files are read. A FIFO, socket, terminal or device (directly or through a
///   symlink) is `NOT_A_FILE`, decided on the opened descriptor before any read; opens never
///   block (`O_NONBLOCK`) and never take a controlling terminal (`O_NOCTTY`).
/// - A file whose content is a JSON object is a JSON secret; anything else is text with
///   surrounding whitespace trimmed. `#key` picks a field of a JSON object (`KEY_NOT_FOUND`
///   when missing); on text it is `NOT_JSON`.
/// - A missing file is `NOT_FOUND`, a directory `INVALID_PATH`, a file over the cap
///   `TOO_LARGE` (checked on the descriptor's size, and the read itself stops one byte past the
///   cap, so a growing file cannot get around it), and any query parameter (`?version=` too:
///   files have no versions) `UNKNOWN_PARAMETER`.
///
/// [`read`](Self::read) runs the file I/O on tokio's blocking pool when called inside a tokio
/// runtime; [`read_blocking`](Self::read_blocking) needs no runtime. Both take the same path.
///
/// How the mount is enforced: on Linux 5.6+ the kernel resolves the path with `openat2` and
/// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, relative to a descriptor of the root (for the
/// mount) and then of the mount (for the rest), so nothing renamed or swapped during the open
/// can redirect it. Where `openat2` is unavailable (older kernels, seccomp filters) or will not
/// follow a symlink (an absolute one), the path is opened without reading (`O_PATH`), the
/// descriptor's real path (`/proc/self/fd/N`) must lie under the canonical mount, and the file
/// is reopened by that path and must be the same inode. On other Unixes the path is resolved
/// right after a non-blocking open, which leaves a small window. The root is resolved once and
/// remembered; the mount and file are opened afresh on every read, so a replaced mount
/// directory is seen at once.
#[derive(Debug, Clone)]
pub struct FileProvider {
    config: FileConfig,
    /// The canonical root, once it has been resolved (it may not exist at construction).
    root: std::sync::OnceLock<PathBuf>,
}

impl FileProvider {
    /// A provider with these settings. Does no I/O; a missing root shows up as `NOT_FOUND`.
    #[must_use]
    pub fn new(config: FileConfig) -> Self {
        Self {
            config,
            root: std::sync::OnceLock::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &FileConfig {
        &self.config
    }

    /// Reads a secret.
    ///
    /// # Errors
    /// See the [type docs](Self).
    pub async fn read(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.read_blocking(uri);
        }
        let this = self.clone();
        let owned = uri.clone();
        match tokio::task::spawn_blocking(move || this.read_blocking(&owned)).await {
            Ok(result) => result,
            // The closure does not panic on any input; a cancelled runtime is the only way here.
            Err(join) => Err(ProviderError::Io {
                provider: NAME,
                mount: uri.mount().to_owned(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    /// Reads a secret on the calling thread, for configuration time.
    ///
    /// # Errors
    /// See the [type docs](Self).
    pub fn read_blocking(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        // `secret_read` is `secret_telemetry::names::span::READ` (a dependency of the KV v2
        // provider only): DEBUG, with the error `code` on failure.
        let span = tracing::debug_span!(
            "secret_read",
            provider = NAME,
            mount = uri.mount(),
            code = tracing::field::Empty,
        );
        let _entered = span.enter();
        let result = self.read_inner(uri);
        match &result {
            Ok(_) => tracing::debug!("read ok"),
            Err(e) => {
                span.record("code", e.code());
                tracing::debug!(code = e.code(), "read failed");
            }
        }
        result
    }

    fn read_inner(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        let mount = uri.mount();
        if !SecretProvider::serves(self, uri) {
            return Err(crate::provider::unserved(NAME, uri));
        }
        crate::check_parameters(uri)?;
        #[cfg(feature = "yaml")]
        if uri.provider() == Provider::Yaml {
            return yaml::decode(&self.bytes(uri)?, uri.key(), mount);
        }
        let value = decode(self.bytes(uri)?)?;
        match uri.key() {
            None => Ok(value),
            Some(key) => value.select(key).map_err(|e| match e {
                Selection::Missing => ProviderError::KeyNotFound {
                    provider: NAME,
                    mount: mount.to_owned(),
                },
                Selection::NotObject => ProviderError::NotJson {
                    provider: NAME,
                    mount: mount.to_owned(),
                },
            }),
        }
    }

    /// The file's bytes, opened confined to its mount and read up to the cap: the one read of
    /// `file://` and `yaml://` alike.
    fn bytes(&self, uri: &SecretUri) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let mount = uri.mount();
        let root = self.root().map_err(|source| map_io(mount, source))?;
        let opened = open::open(root, mount, uri.path())?;
        self.read_capped(opened, mount)
    }

    /// `<root>/<mount>/<path>` of a URI this provider serves, as a read opens it, links not
    /// followed; the configured root while it cannot be resolved (it may not exist yet).
    fn path_of(&self, uri: &SecretUri) -> Option<PathBuf> {
        if !SecretProvider::serves(self, uri) || crate::check_parameters(uri).is_err() {
            return None;
        }
        let mut path = match self.root() {
            Ok(root) => root.to_path_buf(),
            Err(_) => self.config.root.clone(),
        };
        path.push(uri.mount());
        // The URI grammar has no `.`, `..` or empty segment: pushing cannot climb.
        path.extend(uri.path().split('/').filter(|s| !s.is_empty()));
        Some(path)
    }

    /// The canonical root, resolved on first use and then remembered.
    fn root(&self) -> std::io::Result<&Path> {
        if let Some(root) = self.root.get() {
            return Ok(root);
        }
        let root = self.config.root.canonicalize()?;
        Ok(self.root.get_or_init(|| root))
    }

    /// Reads at most `max_bytes`: the size `fstat` gave is checked first, and the read itself
    /// stops one byte past the cap, since a file can grow after `fstat` (and `/proc`-like files
    /// report size 0).
    fn read_capped(
        &self,
        opened: open::Opened,
        mount: &str,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let limit = self.config.max_bytes;
        let too_large = || ProviderError::TooLarge {
            provider: NAME,
            limit,
        };
        if opened.len > limit {
            return Err(too_large());
        }
        let capacity = usize::try_from(opened.len).unwrap_or(0).saturating_add(1);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        opened
            .file
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| map_io(mount, source))?;
        if bytes.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(bytes)
    }
}

/// A JSON object, or trimmed UTF-8 text. `bytes` is zeroized when it drops.
fn decode(bytes: Zeroizing<Vec<u8>>) -> Result<SecretValue, ProviderError> {
    let trimmed = bytes.trim_ascii();
    if trimmed.first() == Some(&b'{')
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(trimmed)
    {
        return Ok(SecretValue::from_object(map));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(SecretValue::from_text(text.trim())),
        Err(_) => Err(ProviderError::MalformedResponse {
            provider: NAME,
            status: 200,
            reason: "file is neither a JSON object nor UTF-8 text",
        }),
    }
}

fn map_io(mount: &str, source: std::io::Error) -> ProviderError {
    let mount = mount.to_owned();
    match source.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => ProviderError::NotFound {
            provider: NAME,
            mount,
            status: None,
        },
        ErrorKind::PermissionDenied => ProviderError::PermissionDenied {
            provider: NAME,
            mount,
            status: None,
        },
        ErrorKind::IsADirectory => ProviderError::InvalidPath {
            provider: NAME,
            mount,
            reason: "names a directory, not a file",
        },
        _ => ProviderError::Io {
            provider: NAME,
            mount,
            source,
        },
    }
}

impl SecretProvider for FileProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn serves(&self, uri: &SecretUri) -> bool {
        let yaml = cfg!(feature = "yaml") && uri.provider() == Provider::Yaml;
        (uri.provider() == Provider::File || yaml) && uri.engine().is_none()
    }

    fn read<'a>(&'a self, uri: &'a SecretUri) -> ReadFuture<'a> {
        Box::pin(FileProvider::read(self, uri))
    }

    /// The file a read of `uri` opens: `<root>/<mount>/<path>` (`<root>/<mount>` for a URI
    /// naming only a mount) under the canonical root, symlinks in the mount not followed, so
    /// a watcher of its directory sees a Kubernetes-style `..data` swap. The only I/O is
    /// resolving the root once (as the first read does); while it cannot be resolved, the
    /// configured root is used. `None` for a URI this provider does not serve or refuses
    /// before any I/O (a query parameter). Whether the path stays inside its mount is decided
    /// when a read opens it, not here.
    fn local_path(&self, uri: &SecretUri) -> Option<PathBuf> {
        self.path_of(uri)
    }

    fn reads_block(&self) -> bool {
        true
    }

    fn read_blocking(&self, uri: &SecretUri) -> Result<SecretValue, ProviderError> {
        FileProvider::read_blocking(self, uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn setup() -> Result<(tempfile::TempDir, FileProvider), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("mount/a/b"))?;
        std::fs::write(root.join("mount/a/b/c"), r#"{"user": "app", "port": 5432}"#)?;
        std::fs::write(root.join("mount/a/creds"), "wrong: only the last segment")?;
        std::fs::write(root.join("mount/plain"), "  s3cr3t\n")?;
        std::fs::write(root.join("mount/number"), "12345\n")?;
        std::fs::write(root.join("mount/binary"), [0xff, 0xfe, 0x00])?;
        std::fs::write(dir.path().join("outside"), "do not read")?;
        let provider = FileProvider::new(FileConfig::new(&root));
        Ok((dir, provider))
    }

    fn read(provider: &FileProvider, uri: &str) -> Result<SecretValue, ProviderError> {
        let uri: SecretUri = uri
            .parse()
            .map_err(|e| ProviderError::config(NAME, "uri", format!("{e}")))?;
        provider.read_blocking(&uri)
    }

    fn code(result: Result<SecretValue, ProviderError>) -> &'static str {
        result.err().map_or("OK", |e| e.code())
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn yaml_files_share_the_root_the_guard_and_the_cap() -> TestResult {
        let (dir, provider) = setup()?;
        let root = dir.path().join("root");
        std::fs::write(
            root.join("mount/app.yaml"),
            "db:\n  password: y-s3cr3t\nservers:\n  - password: p0\n",
        )?;
        assert_eq!(
            read(&provider, "yaml://mount/app.yaml#db.password")?.expose_str(),
            Some("y-s3cr3t")
        );
        assert_eq!(
            read(&provider, "yaml://mount/app.yaml#servers.0.password")?.expose_str(),
            Some("p0")
        );
        assert_eq!(
            code(read(&provider, "yaml://mount/app.yaml#db.user")),
            "KEY_NOT_FOUND"
        );
        assert_eq!(
            code(read(&provider, "yaml://mount/absent.yaml#a")),
            "NOT_FOUND"
        );
        // A link out of the mount is refused as for file://.
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("mount/out.yaml"))?;
        assert_ne!(code(read(&provider, "yaml://mount/out.yaml")), "OK");
        // The size cap applies before parsing.
        let capped = FileProvider::new(FileConfig::new(&root).with_max_bytes(16));
        assert_eq!(
            code(read(&capped, "yaml://mount/app.yaml#db.password")),
            "TOO_LARGE"
        );
        // Not JSON, not text: a YAML parse error names no content.
        std::fs::write(root.join("mount/bad.yaml"), "db: [y-s3cr3t\n")?;
        let error = read(&provider, "yaml://mount/bad.yaml")
            .err()
            .ok_or("fails")?;
        assert_eq!(error.code(), "MALFORMED_RESPONSE");
        assert!(!format!("{error} {error:?}").contains("y-s3cr3t"));
        Ok(())
    }

    #[test]
    fn reads_the_whole_path() -> TestResult {
        let (_dir, provider) = setup()?;
        let value = read(&provider, "file://mount/a/b/c")?;
        assert_eq!(
            value.expose_json(),
            Some(&serde_json::json!({"user": "app", "port": 5432}))
        );
        assert_eq!(
            read(&provider, "file://mount/a/b/c#user")?.expose_str(),
            Some("app")
        );
        assert_eq!(
            read(&provider, "file://mount/a/b/c#port")?.expose_json(),
            Some(&serde_json::json!(5432))
        );
        // `file://mount/a/b/creds` must not resolve to `<root>/mount/a/creds`.
        assert_eq!(code(read(&provider, "file://mount/a/b/creds")), "NOT_FOUND");
        Ok(())
    }

    #[test]
    fn text_is_trimmed_and_has_no_keys() -> TestResult {
        let (_dir, provider) = setup()?;
        assert_eq!(
            read(&provider, "file://mount/plain")?.expose_str(),
            Some("s3cr3t")
        );
        // A JSON scalar is text, not JSON.
        assert_eq!(
            read(&provider, "file://mount/number")?.expose_str(),
            Some("12345")
        );
        assert_eq!(code(read(&provider, "file://mount/plain#k")), "NOT_JSON");
        assert_eq!(
            code(read(&provider, "file://mount/a/b/c#missing")),
            "KEY_NOT_FOUND"
        );
        assert_eq!(
            code(read(&provider, "file://mount/binary")),
            "MALFORMED_RESPONSE"
        );
        Ok(())
    }

    #[test]
    fn errors_for_missing_directories_versions_and_other_providers() -> TestResult {
        let (dir, provider) = setup()?;
        assert_eq!(code(read(&provider, "file://mount/nope")), "NOT_FOUND");
        assert_eq!(
            code(read(&provider, "file://mount/plain/below")),
            "NOT_FOUND"
        );
        assert_eq!(code(read(&provider, "file://mount")), "INVALID_PATH");
        assert_eq!(code(read(&provider, "file://mount/a")), "INVALID_PATH");
        assert_eq!(
            code(read(&provider, "file://mount/plain?version=2")),
            "UNKNOWN_PARAMETER"
        );
        assert_eq!(
            code(read(&provider, "openbao+kv2://mount/plain")),
            "UNSUPPORTED_PROVIDER"
        );
        let missing_root = FileProvider::new(FileConfig::new(dir.path().join("no-root")));
        assert_eq!(code(read(&missing_root, "file://mount/plain")), "NOT_FOUND");
        Ok(())
    }

    #[test]
    fn files_over_the_cap_are_too_large() -> TestResult {
        let (dir, _) = setup()?;
        let small = FileProvider::new(FileConfig::new(dir.path().join("root")).with_max_bytes(8));
        let result = read(&small, "file://mount/a/b/c");
        assert!(
            matches!(result, Err(ProviderError::TooLarge { limit: 8, .. })),
            "{result:?}"
        );
        assert_eq!(
            read(&small, "file://mount/number")?.expose_str(),
            Some("12345")
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_may_not_leave_the_root() -> TestResult {
        use std::os::unix::fs::symlink;
        let (dir, provider) = setup()?;
        let root = dir.path().join("root");
        symlink(dir.path().join("outside"), root.join("mount/escape"))?;
        symlink(dir.path(), root.join("mount/parent"))?;
        assert_eq!(
            code(read(&provider, "file://mount/escape")),
            "PERMISSION_DENIED"
        );
        assert_eq!(
            code(read(&provider, "file://mount/parent/outside")),
            "PERMISSION_DENIED"
        );
        // Kubernetes secret volumes: `key -> ..data/key`, `..data -> ..2024_01_01`, all inside.
        std::fs::create_dir(root.join("mount/.v1"))?;
        std::fs::write(root.join("mount/.v1/key"), "inside")?;
        symlink(".v1", root.join("mount/.data"))?;
        symlink(".data/key", root.join("mount/key"))?;
        assert_eq!(
            read(&provider, "file://mount/key")?.expose_str(),
            Some("inside")
        );
        // A root that is itself a symlink is resolved first.
        let linked = dir.path().join("linked-root");
        symlink(&root, &linked)?;
        let via_link = FileProvider::new(FileConfig::new(&linked));
        assert_eq!(
            read(&via_link, "file://mount/plain")?.expose_str(),
            Some("s3cr3t")
        );
        Ok(())
    }

    #[test]
    fn config_from_lookup() -> Result<(), ProviderError> {
        let default = FileConfig::from_lookup(|_| None)?;
        assert_eq!(default, FileConfig::new(DEFAULT_FILE_ROOT));
        let custom = FileConfig::from_lookup(|name| match name {
            "FILE_MOUNT_PATH" => Some("/srv/secrets".into()),
            "FILE_MAX_BYTES" => Some("2048".into()),
            _ => None,
        })?;
        assert_eq!(custom, FileConfig::new("/srv/secrets").with_max_bytes(2048));
        let bad = FileConfig::from_lookup(|name| (name == "FILE_MAX_BYTES").then(|| "lots".into()));
        let bad = bad.err();
        assert_eq!(bad.as_ref().map(ProviderError::code), Some("CONFIG"));
        assert_eq!(
            bad.as_ref().and_then(ProviderError::setting),
            Some("FILE_MAX_BYTES")
        );
        assert_eq!(
            bad.map(|e| e.to_string()).as_deref(),
            Some("file: invalid configuration: FILE_MAX_BYTES must be a whole number [CONFIG]")
        );
        // Empty counts as unset, as for every setting; values are trimmed.
        let blank = FileConfig::from_lookup(|name| match name {
            "FILE_MOUNT_PATH" => Some(" /srv/s ".into()),
            _ => Some(String::new()),
        })?;
        assert_eq!(blank, FileConfig::new("/srv/s"));
        Ok(())
    }

    #[test]
    fn local_path_is_the_file_a_read_opens() -> TestResult {
        let (dir, provider) = setup()?;
        let root = dir.path().join("root").canonicalize()?;
        let path = |uri: &str| -> Result<Option<PathBuf>, secret_uri::UriError> {
            Ok(SecretProvider::local_path(&provider, &uri.parse()?))
        };
        assert_eq!(path("file://mount/a/b/c")?, Some(root.join("mount/a/b/c")));
        // The key selects within the same file; a URI naming only a mount reads that entry.
        assert_eq!(
            path("file://mount/a/b/c#user")?,
            Some(root.join("mount/a/b/c"))
        );
        assert_eq!(path("file://mount")?, Some(root.join("mount")));
        // No I/O beyond the root: a file that does not exist yet has a path to watch.
        assert_eq!(path("file://mount/later")?, Some(root.join("mount/later")));
        // Refused before any I/O, or not served.
        assert_eq!(path("file://mount/plain?version=2")?, None);
        assert_eq!(path("openbao+kv2://mount/plain")?, None);
        assert_eq!(path("db+cred://mount/plain")?, None);

        // What is written at that path is what a read returns.
        let later = path("file://mount/later")?.ok_or("no path")?;
        std::fs::write(&later, "written-there")?;
        let value = read(&provider, "file://mount/later")?;
        assert_eq!(value.expose_str(), Some("written-there"));

        // The router forwards to the provider serving the URI.
        let router = crate::ProviderRouter::new().with(
            secret_uri::Provider::File,
            std::sync::Arc::new(provider.clone()),
        );
        assert_eq!(
            router.local_path(&"file://mount/a/b/c".parse()?),
            Some(root.join("mount/a/b/c"))
        );

        // A root that does not exist (yet): the configured one.
        let later = dir.path().join("no-root");
        let missing_root = FileProvider::new(FileConfig::new(&later));
        assert_eq!(
            missing_root.local_path(&"file://mount/x".parse()?),
            Some(later.join("mount/x"))
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn local_path_does_not_follow_links() -> TestResult {
        use std::os::unix::fs::symlink;
        let (dir, provider) = setup()?;
        let root = dir.path().join("root");
        // Kubernetes secret volumes: `key -> ..data/key`, `..data -> ..2024_01_01`.
        std::fs::create_dir(root.join("mount/.v1"))?;
        std::fs::write(root.join("mount/.v1/key"), "inside")?;
        symlink(".v1", root.join("mount/.data"))?;
        symlink(".data/key", root.join("mount/key"))?;
        let uri: SecretUri = "file://mount/key".parse()?;
        assert_eq!(
            provider.local_path(&uri),
            Some(root.canonicalize()?.join("mount/key"))
        );
        // A root reached through a link is resolved, as reads resolve it.
        let linked = dir.path().join("linked-root");
        symlink(&root, &linked)?;
        let via_link = FileProvider::new(FileConfig::new(&linked));
        assert_eq!(
            via_link.local_path(&uri),
            Some(root.canonicalize()?.join("mount/key"))
        );
        Ok(())
    }

    #[tokio::test]
    async fn async_read_matches_blocking_read() -> TestResult {
        let (_dir, provider) = setup()?;
        let uri: SecretUri = "file://mount/a/b/c#user".parse()?;
        assert_eq!(provider.read(&uri).await?.expose_str(), Some("app"));
        let dynamic: &dyn SecretProvider = &provider;
        assert_eq!(dynamic.read(&uri).await?.expose_str(), Some("app"));
        assert_eq!(dynamic.name(), "file");
        Ok(())
    }
}
