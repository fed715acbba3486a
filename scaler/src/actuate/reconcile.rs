//! The reconcile state machine for one actuated target (pure, time-injected).
