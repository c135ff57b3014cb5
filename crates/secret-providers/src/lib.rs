//! Secret providers for Canonical Secret URIs.
//!
//! **Not implemented yet.** This crate will hold the provider trait and the `file`,
//! `openbao` and `hashicorp` (KV v2) providers. Until then it exports nothing.
