//! Loopback HTTP fakes of the platform APIs the actuators call (feature `fakes`): no cluster or
//! AWS account can be reached from CI, so the tests run the real clients against these. Each
//! fake checks what the real API checks (paths, verbs, content types, bodies, signatures) and
//! rejects what it rejects.

pub mod kube;
pub mod lambda;
