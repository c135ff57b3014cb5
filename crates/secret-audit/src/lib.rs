//! Non-leaky audit events for secret reads.
//!
//! **Not implemented yet.** This crate will hold audit events keyed by an HMAC `resource_ref`
//! and their sinks (Kafka, tracing/OTLP). Until then it exports nothing.
