//! Loopback fake of the Kubernetes API for the Knative resources the actuator uses.
