//! Generated gRPC code (built by `build.rs` from `proto/` with protox + tonic-prost-build) and
//! the encoded descriptor set served by reflection.

/// prewarm's own API.
pub mod prewarm {
    /// Version 1.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("prewarm.v1");
    }
}

/// The KEDA external-scaler contract (wire-compatible with KEDA v2.20).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod externalscaler {
    tonic::include_proto!("externalscaler");
}

/// Encoded `FileDescriptorSet` of both packages (for server reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));
