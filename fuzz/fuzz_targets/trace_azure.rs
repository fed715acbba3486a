//! Fuzz target `trace_azure`: see `prewarm_fuzz::trace_azure`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = prewarm_fuzz::trace_azure(data);
});
