//! Arbitrary bytes never panic the YAML flow guard (`yaml_flow_within_budget`, the linear
//! pre-scan before libyaml), and what it lets through libyaml reads in bounded time (the
//! fuzzer's `-timeout` catches a text it let through that keeps libyaml scanning): every text
//! goes through `secrets_sdk`'s config loader, which runs the same guard before libyaml, as
//! the `yaml://` file provider does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secrets_sdk::config::{self, Format};

fuzz_target!(|data: &[u8]| {
    let within = secret_providers::yaml_flow_within_budget(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The loader runs the guard first: a refused text is refused before libyaml sees it, a
    // text within the budget is parsed (and must finish).
    let parsed = config::from_str::<serde_json::Value>(text, Format::Yaml);
    if !within {
        assert!(parsed.is_err(), "the loader read a text over the flow budget");
    }
});
