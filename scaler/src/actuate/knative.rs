//! Knative actuator: min-scale on a Revision or PodAutoscaler through kube-rs.
