//! Generates the gRPC code (prewarm.v1, KEDA externalscaler) when the `service` feature is on.
//! Uses protox (pure Rust), so no system `protoc` is needed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SERVICE").is_none() {
        return;
    }
    #[cfg(feature = "service")]
    service::generate();
}

#[cfg(feature = "service")]
mod service {
    use std::path::PathBuf;

    pub fn generate() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
        let files = [
            root.join("prewarm/v1/prewarm.proto"),
            root.join("externalscaler.proto"),
        ];
        for f in &files {
            println!("cargo:rerun-if-changed={}", f.display());
        }
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
        let fds = match protox::compile(&files, [&root]) {
            Ok(f) => f,
            Err(e) => panic!("cannot compile the .proto files: {e}"),
        };
        let bytes = prost::Message::encode_to_vec(&fds);
        if let Err(e) = std::fs::write(out.join("descriptor.bin"), bytes) {
            panic!("cannot write descriptor.bin: {e}");
        }
        if let Err(e) = tonic_prost_build::configure().compile_fds(fds) {
            panic!("cannot generate the gRPC code: {e}");
        }
    }
}
