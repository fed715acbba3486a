//! The reconcile state machine for one actuated target (pure, time-injected): from the desired
//! count (a published decision) and the observed platform state it decides when to read, when
//! to write and what, with the cost guardrail, a per-target change-rate limit, exponential
//! backoff with jitter on errors, and shadow mode. The async driver in the service only carries
//! out the [`Step`]s this returns; nothing here does I/O or reads a clock.
//!
//! Rules (each pinned by a test below):
//! - the desired count is clamped by the target's guardrails (`max_concurrency`, and
//!   `max_gbs_per_hour` ÷ (memory GB × 3600)); the clamp is reported in the status;
//! - a write happens only when the platform's requested value differs from the clamped
//!   desired value, at most once per `min_interval` per target (the change rate);
//! - the state is re-read before every write when the last read is older than `resync`, after
//!   every write (to follow Lambda's `IN_PROGRESS` → `READY`, every `poll` while in progress),
//!   and after a conflict; no write is issued while the platform reports a change in progress;
//! - errors back off exponentially from `backoff_base` to `backoff_max` with "equal jitter"
//!   (half fixed, half uniform), seeded per target so runs are reproducible; a throttle honours
//!   the platform's Retry-After; a rejection (limits, not found) waits `backoff_max`;
//! - shadow mode reads but never writes: it records what it would have written, in the same
//!   sequence and at the same rate as applied mode, and compares later decisions against that.

use super::{ActuateError, Observed};
use crate::policy::Millis;
use serde::{Deserialize, Serialize};

/// Reconcile settings shared by all targets (the `[actuator]` config table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileConfig {
    /// Compute and report, never write.
    pub shadow: bool,
    /// Fewest ms between two writes to one target (the change rate).
    pub min_interval_ms: Millis,
    /// First retry delay after an error, ms.
    pub backoff_base_ms: Millis,
    /// Longest retry delay, ms (also the wait after a rejection).
    pub backoff_max_ms: Millis,
    /// Re-read the platform state at least this often, ms (drift from other writers).
    pub resync_ms: Millis,
    /// Re-read interval while a change is in progress on the platform, ms.
    pub poll_ms: Millis,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            shadow: false,
            min_interval_ms: 30_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            resync_ms: 60_000,
            poll_ms: 5_000,
        }
    }
}

/// Per-target cost guardrails (from the target's config).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Guardrail {
    /// Highest value ever written.
    pub max: Option<u32>,
    /// Most GB·s per hour the warm capacity may cost.
    pub max_gbs_per_hour: Option<f64>,
    /// Memory of one instance, MB (prices `max_gbs_per_hour`).
    pub memory_mb: f64,
}

impl Guardrail {
    /// The clamped value and, when the clamp bit, which guardrail did.
    pub fn clamp(&self, desired: u32) -> (u32, Option<String>) {
        let mut v = desired;
        let mut hit = None;
        if let Some(m) = self.max {
            if v > m {
                v = m;
                hit = Some(format!("max_concurrency {m}"));
            }
        }
        if let Some(g) = self.max_gbs_per_hour {
            if self.memory_mb > 0.0 {
                let per_instance = self.memory_mb / 1024.0 * 3600.0;
                let cap = (g / per_instance).floor().clamp(0.0, u32::MAX as f64) as u32;
                if v > cap {
                    v = cap;
                    hit = Some(format!("max_gbs_per_hour {g} (≤ {cap} instances)"));
                }
            }
        }
        (v, hit)
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read the platform state, then call [`Reconciler::on_observed`].
    Observe,
    /// Write `value`, then call [`Reconciler::on_applied`].
    Apply {
        /// The value to write.
        value: u32,
    },
    /// Nothing to do before `until` (ms) unless the desired count changes.
    Wait {
        /// When to ask again.
        until: Millis,
    },
}

/// A target's reconcile status, served by the API and exported as metrics.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetStatus {
    /// Desired count from the decision, before guardrails.
    pub desired: u32,
    /// Desired count after guardrails (what is written).
    pub target: u32,
    /// The guardrail that clamped the desired count, if one did.
    pub guardrail: Option<String>,
    /// Last platform state read.
    pub observed: Option<Observed>,
    /// When it was read, ms.
    pub observed_at_ms: Option<Millis>,
    /// Last value written (or, in shadow mode, that would have been written).
    pub last_applied: Option<u32>,
    /// When, ms.
    pub last_applied_at_ms: Option<Millis>,
    /// Last error, if the last platform call failed.
    pub last_error: Option<String>,
    /// When, ms.
    pub last_error_at_ms: Option<Millis>,
    /// Earliest time of the next platform call, ms.
    pub next_attempt_ms: Millis,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Writes done (or, in shadow mode, that would have been done).
    pub applies: u64,
    /// Failed platform calls.
    pub errors: u64,
    /// Shadow mode: nothing is written.
    pub shadow: bool,
}

/// The reconcile state machine of one target.
#[derive(Debug, Clone)]
pub struct Reconciler {
    cfg: ReconcileConfig,
    guard: Guardrail,
    status: TargetStatus,
    /// The platform's requested value as far as this reconciler knows (in shadow mode: the
    /// value it would have written).
    believed: Option<u32>,
    /// A re-read is due at this time (after a write, a conflict, or while in progress).
    reread_at: Option<Millis>,
    last_write_at: Option<Millis>,
    rng: u64,
}

impl Reconciler {
    /// A reconciler for one target; `seed` makes its jitter reproducible (e.g. a hash of the
    /// function id).
    pub fn new(cfg: ReconcileConfig, guard: Guardrail, seed: u64) -> Self {
        let status = TargetStatus {
            shadow: cfg.shadow,
            ..TargetStatus::default()
        };
        Self {
            cfg,
            guard,
            status,
            believed: None,
            reread_at: None,
            last_write_at: None,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The status as of the last call.
    pub fn status(&self) -> &TargetStatus {
        &self.status
    }

    /// Sets the desired count (a new decision).
    pub fn set_desired(&mut self, desired: u32) {
        let (target, hit) = self.guard.clamp(desired);
        self.status.desired = desired;
        self.status.target = target;
        self.status.guardrail = hit;
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Millis) -> Step {
        if now < self.status.next_attempt_ms {
            return Step::Wait {
                until: self.status.next_attempt_ms,
            };
        }
        let Some(obs_at) = self.status.observed_at_ms else {
            return Step::Observe;
        };
        if self.reread_at.is_some_and(|t| now >= t) || now >= obs_at + self.cfg.resync_ms {
            return Step::Observe;
        }
        let in_progress = self.status.observed.as_ref().is_some_and(|o| o.in_progress);
        let target = self.status.target;
        if in_progress && !self.cfg.shadow {
            // Never write over a change the platform is still applying.
            return Step::Wait {
                until: self.earliest(obs_at + self.cfg.poll_ms),
            };
        }
        // `believed` is None only after the platform reported a failed change: write again.
        if self.believed == Some(target) {
            return Step::Wait {
                until: self.earliest(obs_at + self.cfg.resync_ms),
            };
        }
        if let Some(t) = self.last_write_at {
            let allowed = t + self.cfg.min_interval_ms;
            if now < allowed {
                return Step::Wait { until: allowed };
            }
        }
        if self.cfg.shadow {
            // Record what applied mode would write, at the rate it would write it.
            self.record_write(target, now);
            return self.next(now);
        }
        Step::Apply { value: target }
    }

    fn earliest(&self, t: Millis) -> Millis {
        match self.reread_at {
            Some(r) => r.min(t),
            None => t,
        }
    }

    fn record_write(&mut self, value: u32, now: Millis) {
        self.believed = Some(value);
        self.last_write_at = Some(now);
        self.status.last_applied = Some(value);
        self.status.last_applied_at_ms = Some(now);
        self.status.applies += 1;
    }

    /// The result of [`Step::Observe`].
    pub fn on_observed(&mut self, res: Result<Observed, ActuateError>, now: Millis) {
        match res {
            Ok(o) if o.failed && !self.cfg.shadow => {
                // The platform accepted the write but could not carry it out (Lambda FAILED):
                // an error with backoff, after which the value is written again.
                let reason = o.detail.clone();
                self.believed = None;
                self.reread_at = None;
                self.status.observed = Some(o);
                self.status.observed_at_ms = Some(now);
                self.failed(
                    ActuateError::Transient(format!("the platform failed the change: {reason}")),
                    now,
                );
            }
            Ok(o) => {
                self.succeeded();
                if !self.cfg.shadow || self.believed.is_none() {
                    self.believed = Some(o.requested);
                }
                self.reread_at =
                    (o.in_progress && !self.cfg.shadow).then(|| now + self.cfg.poll_ms);
                self.status.observed = Some(o);
                self.status.observed_at_ms = Some(now);
            }
            Err(e) => self.failed(e, now),
        }
    }

    /// The result of [`Step::Apply`] for `value`.
    pub fn on_applied(&mut self, value: u32, res: Result<(), ActuateError>, now: Millis) {
        match res {
            Ok(()) => {
                // A rewrite after a failed change counts as recovered only once the platform
                // reports it applied (so repeated failures keep backing off further).
                if !self.status.observed.as_ref().is_some_and(|o| o.failed) {
                    self.succeeded();
                }
                self.record_write(value, now);
                // Read back to confirm (and to follow an asynchronous allocation).
                self.reread_at = Some(now + self.cfg.poll_ms);
            }
            Err(e) => self.failed(e, now),
        }
    }

    fn succeeded(&mut self) {
        self.status.consecutive_failures = 0;
        self.status.last_error = None;
    }

    fn failed(&mut self, e: ActuateError, now: Millis) {
        self.status.consecutive_failures = self.status.consecutive_failures.saturating_add(1);
        self.status.errors += 1;
        let exp = self.status.consecutive_failures.saturating_sub(1).min(30);
        let backoff = self
            .cfg
            .backoff_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.cfg.backoff_max_ms)
            .max(1);
        let jittered = backoff / 2 + self.uniform(backoff - backoff / 2 + 1);
        let delay = match &e {
            ActuateError::Throttled { retry_after_ms, .. } => {
                jittered.max(retry_after_ms.unwrap_or(0))
            }
            ActuateError::Conflict(_) => {
                // Someone else wrote: re-read before the next write.
                self.status.observed_at_ms = None;
                jittered
            }
            ActuateError::Rejected(_) => self.cfg.backoff_max_ms,
            ActuateError::Transient(_) => jittered,
        };
        self.status.last_error = Some(e.to_string());
        self.status.last_error_at_ms = Some(now);
        self.status.next_attempt_ms = now + delay;
    }

    /// Uniform integer in [0, n) from a splitmix64 stream.
    fn uniform(&mut self, n: u64) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        if n == 0 {
            0
        } else {
            z % n
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> ReconcileConfig {
        ReconcileConfig {
            shadow: false,
            min_interval_ms: 30_000,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            resync_ms: 60_000,
            poll_ms: 5_000,
        }
    }

    fn obs(requested: u32) -> Observed {
        Observed {
            requested,
            ready: requested,
            ..Observed::default()
        }
    }

    #[test]
    fn reads_first_then_writes_only_a_difference() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(3);
        assert_eq!(r.next(0), Step::Observe);
        r.on_observed(Ok(obs(3)), 0);
        assert_eq!(r.next(1), Step::Wait { until: 60_000 });
        r.set_desired(5);
        assert_eq!(r.next(2), Step::Apply { value: 5 });
        r.on_applied(5, Ok(()), 2);
        assert_eq!(r.status().last_applied, Some(5));
        // Read back after `poll`.
        assert_eq!(r.next(3), Step::Wait { until: 5_002 });
        assert_eq!(r.next(5_002), Step::Observe);
    }

    #[test]
    fn change_rate_is_limited_per_target() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(2);
        r.on_observed(Ok(obs(0)), 0);
        assert_eq!(r.next(0), Step::Apply { value: 2 });
        r.on_applied(2, Ok(()), 0);
        r.on_observed(Ok(obs(2)), 5_000);
        r.set_desired(6);
        // The next write waits for min_interval after the last one.
        assert_eq!(r.next(6_000), Step::Wait { until: 30_000 });
        assert_eq!(r.next(30_000), Step::Apply { value: 6 });
    }

    #[test]
    fn stale_state_is_reread_before_a_write() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(1);
        r.on_observed(Ok(obs(1)), 0);
        r.set_desired(4);
        assert_eq!(r.next(70_000), Step::Observe);
        r.on_observed(Ok(obs(4)), 70_000);
        // Someone else already set it: nothing to write.
        assert_eq!(r.next(70_001), Step::Wait { until: 130_000 });
    }

    #[test]
    fn no_write_while_the_platform_is_applying() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(5);
        let mut o = obs(3);
        o.in_progress = true;
        o.ready = 0;
        r.on_observed(Ok(o), 0);
        assert_eq!(r.next(1), Step::Wait { until: 5_000 });
        assert_eq!(r.next(5_000), Step::Observe);
        r.on_observed(Ok(obs(3)), 5_000);
        assert_eq!(r.next(5_001), Step::Apply { value: 5 });
    }

    #[test]
    fn guardrails_clamp_and_say_so() {
        let g = Guardrail {
            max: Some(10),
            max_gbs_per_hour: Some(3_600.0 * 2.0),
            memory_mb: 512.0,
        };
        // 512 MB = 0.5 GB; 7200 GB·s/h ÷ (0.5 × 3600) = 4 instances.
        assert_eq!(g.clamp(3), (3, None));
        let (v, hit) = g.clamp(8);
        assert_eq!(v, 4);
        assert!(hit.unwrap().contains("max_gbs_per_hour"));
        let g = Guardrail {
            max: Some(10),
            ..Guardrail::default()
        };
        assert_eq!(g.clamp(12).0, 10);
        let mut r = Reconciler::new(cfg(), g, 1);
        r.set_desired(12);
        r.on_observed(Ok(obs(0)), 0);
        assert_eq!(r.next(0), Step::Apply { value: 10 });
        assert_eq!(r.status().guardrail.as_deref(), Some("max_concurrency 10"));
    }

    #[test]
    fn errors_back_off_exponentially_with_jitter() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 7);
        r.set_desired(2);
        let mut now = 0;
        let mut delays = Vec::new();
        for _ in 0..8 {
            assert_eq!(r.next(now), Step::Observe);
            r.on_observed(
                Err(ActuateError::Transient("connection refused".into())),
                now,
            );
            let next = r.status().next_attempt_ms;
            delays.push(next - now);
            assert_eq!(r.next(now), Step::Wait { until: next });
            now = next;
        }
        // Equal jitter: delay n within [b·2^n / 2, b·2^n], capped at backoff_max.
        for (i, d) in delays.iter().enumerate() {
            let full = (1_000u64 << i).min(60_000);
            assert!(*d >= full / 2 && *d <= full, "attempt {i}: {d} vs {full}");
        }
        assert_eq!(r.status().consecutive_failures, 8);
        assert!(r
            .status()
            .last_error
            .as_deref()
            .unwrap()
            .contains("refused"));
        // Success resets.
        r.on_observed(Ok(obs(0)), now);
        assert_eq!(r.status().consecutive_failures, 0);
        assert_eq!(r.next(now), Step::Apply { value: 2 });
        // Same seed, same delays.
        let mut r2 = Reconciler::new(cfg(), Guardrail::default(), 7);
        r2.set_desired(2);
        r2.on_observed(Err(ActuateError::Transient("x".into())), 0);
        assert_eq!(r2.status().next_attempt_ms, delays[0]);
    }

    #[test]
    fn throttle_honours_retry_after_and_rejection_waits_longest() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(2);
        r.on_observed(Ok(obs(0)), 0);
        r.on_applied(
            2,
            Err(ActuateError::Throttled {
                message: "Rate exceeded".into(),
                retry_after_ms: Some(20_000),
            }),
            0,
        );
        assert_eq!(r.status().next_attempt_ms, 20_000);
        assert_eq!(r.next(20_000), Step::Apply { value: 2 });
        r.on_applied(
            2,
            Err(ActuateError::Rejected("exceeds reserved".into())),
            20_000,
        );
        assert_eq!(r.status().next_attempt_ms, 80_000);
    }

    #[test]
    fn a_failed_change_is_an_error_then_written_again_with_growing_backoff() {
        let mut c = cfg();
        c.min_interval_ms = 0;
        let mut r = Reconciler::new(c, Guardrail::default(), 3);
        r.set_desired(6);
        r.on_observed(Ok(obs(0)), 0);
        assert_eq!(r.next(0), Step::Apply { value: 6 });
        r.on_applied(6, Ok(()), 0);
        let failed = |t| Observed {
            requested: 6,
            ready: 0,
            failed: true,
            detail: format!("FAILED: no capacity ({t})"),
            ..Observed::default()
        };
        let mut delays = Vec::new();
        let mut now = 5_000;
        for _ in 0..3 {
            assert_eq!(r.next(now), Step::Observe);
            r.on_observed(Ok(failed(now)), now);
            let st = r.status();
            assert!(st
                .last_error
                .as_deref()
                .unwrap()
                .contains("FAILED: no capacity"));
            let at = st.next_attempt_ms;
            delays.push(at - now);
            assert_eq!(r.next(at - 1), Step::Wait { until: at });
            // The same value is written again (the platform no longer holds it).
            assert_eq!(r.next(at), Step::Apply { value: 6 });
            r.on_applied(6, Ok(()), at);
            now = at + 5_000;
        }
        assert_eq!(r.status().consecutive_failures, 3);
        assert!(delays[2] > delays[0], "backoff grows: {delays:?}");
        // READY at last: recovered.
        assert_eq!(r.next(now), Step::Observe);
        r.on_observed(Ok(obs(6)), now);
        assert_eq!(r.status().consecutive_failures, 0);
        assert_eq!(r.status().last_error, None);
        assert!(matches!(r.next(now), Step::Wait { .. }));
    }

    #[test]
    fn a_conflict_forces_a_reread() {
        let mut r = Reconciler::new(cfg(), Guardrail::default(), 1);
        r.set_desired(2);
        r.on_observed(Ok(obs(0)), 0);
        r.on_applied(2, Err(ActuateError::Conflict("resourceVersion".into())), 0);
        let t = r.status().next_attempt_ms;
        assert!((500..=1_000).contains(&t));
        assert_eq!(r.next(t), Step::Observe);
    }

    #[test]
    fn shadow_records_the_same_writes_without_writing() {
        let mut shadow_cfg = cfg();
        shadow_cfg.shadow = true;
        let mut applied = Reconciler::new(cfg(), Guardrail::default(), 1);
        let mut shadow = Reconciler::new(shadow_cfg, Guardrail::default(), 1);
        let mut platform = obs(0);
        let mut writes_applied = Vec::new();
        let desired = [(0, 2), (10_000, 5), (50_000, 5), (90_000, 1), (200_000, 0)];
        for (now, d) in desired {
            for (r, is_shadow) in [(&mut applied, false), (&mut shadow, true)] {
                r.set_desired(d);
                let mut t = now;
                loop {
                    match r.next(t) {
                        Step::Observe => {
                            let o = if is_shadow { obs(0) } else { platform.clone() };
                            r.on_observed(Ok(o), t);
                        }
                        Step::Apply { value } => {
                            assert!(!is_shadow, "shadow mode never writes");
                            platform = obs(value);
                            writes_applied.push((t, value));
                            r.on_applied(value, Ok(()), t);
                        }
                        Step::Wait { until } => {
                            if until > now + 40_000 {
                                break;
                            }
                            t = until;
                        }
                    }
                }
            }
        }
        assert_eq!(
            writes_applied,
            vec![(0, 2), (30_000, 5), (90_000, 1), (200_000, 0)]
        );
        assert_eq!(shadow.status().applies, applied.status().applies);
        assert_eq!(shadow.status().last_applied, Some(0));
        assert_eq!(shadow.status().last_applied_at_ms, Some(200_000));
    }
}
