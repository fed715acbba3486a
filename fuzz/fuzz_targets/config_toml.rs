//! Fuzz target `config_toml`: see `prewarm_fuzz::config_toml`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prewarm_fuzz::config_toml(data);
});
