//! A counting TCP proxy for tests (filled in by the SecretsClient work).
