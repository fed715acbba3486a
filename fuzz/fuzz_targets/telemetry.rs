//! Fuzz target `telemetry`: see `prewarm_fuzz::telemetry`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prewarm_fuzz::telemetry(data);
});
