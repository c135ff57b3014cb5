//! Policy Enforcement Point for secret reads.
//!
//! **Not implemented yet.** This crate will hold the PEP: grants issued by a Policy Decision
//! Point, audience checks, `jti` anti-replay, sender binding and use counting. Until then it
//! exports nothing, so nothing can depend on behaviour it does not have.
