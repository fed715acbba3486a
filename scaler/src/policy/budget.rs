//! The memory-budget guardrail: one ledger of the idle memory a policy holds across all the
//! functions it manages, and the price that rations it.
//!
//! Every idle hold a policy grants (an instance kept warm, or a loaded pre-warm) is registered
//! with its memory and deadline; a reuse releases it early. While holds stay below 80 % of the
//! budget the price of memory is 1 (each function decides alone). Above that, every function
//! sees memory cost `price = (used / (0.8 × budget))⁴` times more, so the holds worth least per
//! GB·s (long windows, large instances, unlikely reuse) are the first given up, the same way
//! across functions. A hold that would exceed the budget is refused outright.
//!
//! Time only moves forward in the ledger (the latest `now` any function reported); drivers
//! that share one ledger must call it in time order (the simulator then runs functions in one
//! global time order).

use super::Millis;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Identifies a registered hold.
pub type HoldId = u64;

/// Utilisation below which memory is not repriced.
const FREE_SHARE: f64 = 0.8;

#[derive(Debug, Default)]
struct Ledger {
    now: Millis,
    used_gb: f64,
    holds: BTreeMap<(Millis, HoldId), f64>,
    deadline_of: BTreeMap<HoldId, Millis>,
    next_id: HoldId,
    refused: u64,
    peak_gb: f64,
    /// ∫ used dt up to `now`, GB·ms.
    held_gb_ms: f64,
}

impl Ledger {
    fn advance(&mut self, now: Millis) {
        let now = self.now.max(now);
        while let Some((&(until, id), &gb)) = self.holds.first_key_value() {
            if until > now {
                break;
            }
            self.held_gb_ms += self.used_gb * until.saturating_sub(self.now) as f64;
            self.now = self.now.max(until);
            self.holds.remove(&(until, id));
            self.deadline_of.remove(&id);
            self.used_gb -= gb;
        }
        if self.holds.is_empty() {
            self.used_gb = 0.0; // no drift from float sums
        }
        self.held_gb_ms += self.used_gb * (now - self.now) as f64;
        self.now = now;
    }
}

/// A memory budget shared by every function of one policy.
#[derive(Debug)]
pub struct MemoryBudget {
    budget_gb: f64,
    ledger: Mutex<Ledger>,
}

impl MemoryBudget {
    /// A budget of `budget_gb` GB of idle memory.
    pub fn new(budget_gb: f64) -> Self {
        Self {
            budget_gb,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// The budget, GB.
    pub fn budget_gb(&self) -> f64 {
        self.budget_gb
    }

    fn with<R>(&self, now: Millis, f: impl FnOnce(&mut Ledger) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-update; the ledger is still
        // consistent enough to ration memory.
        let mut g = match self.ledger.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.advance(now);
        f(&mut g)
    }

    /// The multiplier on memory cost at `now` (1 while below 80 % of the budget).
    pub fn price(&self, now: Millis) -> f64 {
        let b = self.budget_gb;
        self.with(now, |l| ((l.used_gb / (FREE_SHARE * b)).powi(4)).max(1.0))
    }

    /// Idle memory held at `now`, GB.
    pub fn used_gb(&self, now: Millis) -> f64 {
        self.with(now, |l| l.used_gb)
    }

    /// How many more instances of `mem_gb` fit at `now`.
    pub fn room_for(&self, now: Millis, mem_gb: f64) -> u32 {
        let b = self.budget_gb;
        self.with(now, |l| {
            ((b - l.used_gb) / mem_gb.max(1e-9)).floor().clamp(0.0, 1e9) as u32
        })
    }

    /// Registers a hold of `mem_gb` from `now` until `until`; `None` (and a refusal counted) if
    /// it would exceed the budget.
    pub fn hold(&self, now: Millis, until: Millis, mem_gb: f64) -> Option<HoldId> {
        let b = self.budget_gb;
        self.with(now, |l| {
            if until <= l.now {
                return None;
            }
            if l.used_gb + mem_gb > b + 1e-9 {
                l.refused += 1;
                return None;
            }
            let id = l.next_id;
            l.next_id += 1;
            l.holds.insert((until, id), mem_gb);
            l.deadline_of.insert(id, until);
            l.used_gb += mem_gb;
            l.peak_gb = l.peak_gb.max(l.used_gb);
            Some(id)
        })
    }

    /// Ends a hold early (its instance was reused); unknown or expired ids are ignored.
    pub fn release(&self, now: Millis, id: HoldId) {
        self.with(now, |l| {
            if let Some(until) = l.deadline_of.remove(&id) {
                if let Some(gb) = l.holds.remove(&(until, id)) {
                    l.used_gb -= gb;
                }
            }
        })
    }

    /// Holds refused so far.
    pub fn refused(&self) -> u64 {
        self.with(0, |l| l.refused)
    }

    /// Idle memory time held up to `now`, GB·s (the budget's own account of the waste).
    pub fn held_gb_s(&self, now: Millis) -> f64 {
        self.with(now, |l| l.held_gb_ms / 1000.0)
    }

    /// The most idle memory held at once so far, GB.
    pub fn peak_gb(&self) -> f64 {
        self.with(0, |l| l.peak_gb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_expire_release_and_are_refused_beyond_the_budget() {
        let b = MemoryBudget::new(1.0);
        let a = b.hold(0, 1_000, 0.5).unwrap();
        assert!(b.hold(0, 2_000, 0.5).is_some());
        // Full: a third half-GB hold is refused.
        assert_eq!(b.hold(10, 3_000, 0.5), None);
        assert_eq!(b.refused(), 1);
        assert_eq!(b.room_for(10, 0.25), 0);
        // The first expires at 1000: room again.
        assert_eq!(b.room_for(1_000, 0.25), 2);
        // Releasing an expired hold changes nothing.
        b.release(1_000, a);
        assert!((b.used_gb(1_000) - 0.5).abs() < 1e-12);
        let c = b.hold(1_500, 5_000, 0.25).unwrap();
        b.release(1_600, c);
        assert!((b.used_gb(1_600) - 0.5).abs() < 1e-12);
        assert_eq!(b.used_gb(2_000), 0.0);
        assert!((b.peak_gb() - 1.0).abs() < 1e-12);
        // 0.5 GB for [0, 1000) and [0, 2000), 0.25 GB for [1500, 1600): 1.525 GB·s.
        assert!((b.held_gb_s(5_000) - 1.525).abs() < 1e-9);
    }

    #[test]
    fn memory_is_repriced_only_above_80_percent() {
        let b = MemoryBudget::new(10.0);
        b.hold(0, 100, 7.0);
        assert_eq!(b.price(0), 1.0);
        b.hold(0, 100, 1.0);
        assert!((b.price(0) - 1.0).abs() < 1e-12); // exactly 80 %
        b.hold(0, 100, 1.0);
        // 9 GB: (9 / 8)^4.
        assert!((b.price(0) - 1.601_806_640_625).abs() < 1e-9);
        assert_eq!(b.price(100), 1.0);
    }
}
