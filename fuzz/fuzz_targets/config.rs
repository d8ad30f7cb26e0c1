//! The configuration parsers a user (or a configuration management tool) feeds: the YAML file,
//! exporter prefixes (`access:`, `--allow-exporter`), flow record rules (`--flow-rule`) and
//! listen addresses. Each input is tried as every one of them; none may panic.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run config -- -max_total_time=600`
#![no_main]

use flowtel::pipeline::select::{Action, RuleConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flowtel::config::parse_yaml(text);
    let _ = text.parse::<flowtel::prefix::Prefix>();
    let _ = RuleConfig::parse_flag(Action::Keep, text);
    let _ = flowtel::config::parse_socket_addr(text);
});
