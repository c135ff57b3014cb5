//! Providers and engines: the `provider[+engine]` scheme.

use std::fmt;

/// The secret store a URI names: the part of the scheme before `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Provider {
    /// `openbao`: OpenBao. Engines: `kv2`.
    OpenBao,
    /// `hashicorp`: HashiCorp Vault. Engines: `kv2`.
    HashiCorp,
    /// `db`: database credentials. Engines: `cred`, `db`.
    Db,
    /// `bootstrap`: bootstrap material. No engines.
    Bootstrap,
    /// `file`: files under a mount root. No engines.
    File,
    /// `yaml`: YAML documents. No engines.
    Yaml,
}

/// The secrets engine of a provider: the part of the scheme after `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Engine {
    /// `kv2`: the key/value secrets engine, version 2.
    Kv2,
    /// `cred`: dynamic credentials.
    Cred,
    /// `db`: database engine.
    Db,
}

impl Provider {
    /// Every provider, in declaration order.
    pub const ALL: [Provider; 6] = [
        Self::OpenBao,
        Self::HashiCorp,
        Self::Db,
        Self::Bootstrap,
        Self::File,
        Self::Yaml,
    ];

    /// The canonical (lowercase) name, as written in a scheme.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenBao => "openbao",
            Self::HashiCorp => "hashicorp",
            Self::Db => "db",
            Self::Bootstrap => "bootstrap",
            Self::File => "file",
            Self::Yaml => "yaml",
        }
    }

    /// The engines this provider accepts after `+`.
    #[must_use]
    pub const fn engines(self) -> &'static [Engine] {
        match self {
            Self::OpenBao | Self::HashiCorp => &[Engine::Kv2],
            Self::Db => &[Engine::Cred, Engine::Db],
            Self::Bootstrap | Self::File | Self::Yaml => &[],
        }
    }

    /// Looks a provider up by name, ASCII case-insensitively.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }
}

impl Engine {
    /// The canonical (lowercase) name, as written in a scheme.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kv2 => "kv2",
            Self::Cred => "cred",
            Self::Db => "db",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
