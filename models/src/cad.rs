//! Contextual Anomaly Detector (after M. Smirnov's CAD OSE, "open-source edition"): values are
//! turned into a few binary facts, pairs (facts of the previous step + the contexts that were
//! active then, facts of this step) are learned online as contexts, and a point's anomaly is the
//! share of the contexts whose left side fired that failed to predict its facts.
//!
//! The model, in the terms used below:
//! - a *fact* is a small integer: the value's bucket number `k` (the range split into
//!   `2^bits - 1` steps) is written in binary and bit `i` with digit `d` gives the fact
//!   `2 i + d`; a value beyond the range gets more binary digits (new facts), and one below it
//!   the extra fact [`BELOW_FACT`]. An active context `c` is the fact `NEURON_BASE + c`.
//! - a *context* is a pair of fact sets, the *left* one (what was true one step ago) and the
//!   *right* one (what is true now). Fact sets are stored once as *semi-contexts*.
//! - every step the pair (last step's facts + its active contexts, this step's facts) is stored
//!   as a zero-level context; when it is new, the overlaps between this step's input and the
//!   stored zero-level contexts are stored too (short left sides only), which is how contexts
//!   generalise.
//! - a context whose left side is wholly present is *selected*; a selected one whose right side
//!   is wholly present now is *active* (it predicted this step). The anomaly of a step is
//!   `(1 − active / selected + new contexts / candidate contexts) / 2`, and after a score of at
//!   least `base_threshold` the detector stays silent for `rest` points.

use crate::anomaly::OnlineDetector;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fact of a value below the range (its bucket number is negative).
pub const BELOW_FACT: u32 = 62;
/// Active context `c` is fact `NEURON_BASE + c`; sensor facts are below it.
pub const NEURON_BASE: u32 = 64;
/// Binary digits a bucket number may use (larger ones are clamped): 2^30 buckets.
const MAX_DIGITS: u32 = 30;
/// Contexts the memory holds at most; once full, no new ones are learned (bounded memory on an
/// unbounded stream).
const MAX_CONTEXTS: usize = 1 << 22;

/// A small multiplicative hasher for integer keys (deterministic, no per-process seed).
#[derive(Debug, Clone, Copy, Default)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

type Fixed = BuildHasherDefault<Fx>;

/// Fingerprint of a left fact set.
fn fingerprint(mask: u64, neurons: &[u32]) -> u64 {
    let mut h = Fx(neurons.len() as u64);
    h.add(mask);
    for &c in neurons {
        h.add(u64::from(c));
    }
    h.0
}

/// A stored left fact set: sensor facts as a mask, active-context facts as sorted ids.
#[derive(Debug, Clone, Default)]
struct LeftSemi {
    mask: u64,
    neurons: Vec<u32>,
    /// (right semi-context, context) pairs it starts.
    contexts: Vec<(u32, u32)>,
    /// Whether one of its contexts is zero level.
    zero_level: bool,
}

/// The context memory's two sides. Right fact sets hold sensor facts only, so a mask is the
/// whole of them. A left set is found whole (all its facts present) through one key: its
/// rarest context fact (when it was stored), or the list of sensor-only sets.
#[derive(Debug, Clone, Default)]
struct Memory {
    left: Vec<LeftSemi>,
    /// Fingerprint of (mask, context ids) → left sets with it.
    left_by: HashMap<u64, Vec<u32>, Fixed>,
    /// Context id → left sets keyed by it.
    keyed: Vec<Vec<u32>>,
    sensor_only: Vec<u32>,
    /// Left sets laid out for the scan of a step with a new context: (sensor mask, start and
    /// length of its context facts in `arena`, has a zero-level context).
    scan: Vec<(u64, u32, u32, bool)>,
    arena: Vec<u32>,
    right: Vec<u64>,
    right_by: HashMap<u64, u32, Fixed>,
}

impl Memory {
    /// The left set of these facts, created if missing.
    fn left_id(&mut self, mask: u64, neurons: &[u32]) -> u32 {
        let key = fingerprint(mask, neurons);
        if let Some(ids) = self.left_by.get(&key) {
            for &id in ids {
                let semi = &self.left[id as usize];
                if semi.mask == mask && semi.neurons == neurons {
                    return id;
                }
            }
        }
        let id = self.left.len() as u32;
        // keyed by its context fact with the fewest sets so far: a set can only be whole when
        // its key is present, and short lists keep the search for whole sets cheap
        let rarest = neurons
            .iter()
            .min_by_key(|&&c| self.keyed.get(c as usize).map_or(0, Vec::len));
        match rarest {
            Some(&c) => {
                let c = c as usize;
                if self.keyed.len() <= c {
                    self.keyed.resize_with(c + 1, Vec::new);
                }
                self.keyed[c].push(id);
            }
            None => self.sensor_only.push(id),
        }
        self.scan
            .push((mask, self.arena.len() as u32, neurons.len() as u32, false));
        self.arena.extend_from_slice(neurons);
        self.left.push(LeftSemi {
            mask,
            neurons: neurons.to_vec(),
            contexts: Vec::new(),
            zero_level: false,
        });
        self.left_by.entry(key).or_default().push(id);
        id
    }

    fn right_id(&mut self, mask: u64) -> u32 {
        let next = self.right.len() as u32;
        let id = *self.right_by.entry(mask).or_insert(next);
        if id == next {
            self.right.push(mask);
        }
        id
    }
}

/// A learned context: how often it fired and whether it was ever seen whole (zero level).
#[derive(Debug, Clone, Copy)]
struct Context {
    hits: u64,
    zero_level: bool,
}

/// Settings of [`Cad`]; the defaults are CAD OSE's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CadParams {
    /// Binary digits of the in-range bucket number (`2^bits` buckets over the range).
    pub bits: u32,
    /// Longest left side of a context learned by overlap.
    pub max_left: usize,
    /// Active contexts (the most-fired) fed back as facts of the next step.
    pub max_active: usize,
    /// A raw score at or above this starts a rest period.
    pub base_threshold: f64,
    /// Points of silence (score 0) after a raw score at or above `base_threshold`; also the
    /// silence at the start.
    pub rest: usize,
}

impl Default for CadParams {
    /// CAD OSE's settings: 3 bits, left sides of at most 7 facts, 15 active contexts, threshold
    /// 0.75, a 30-point rest (NAB's runner sets it to a fifth of the probationary period).
    fn default() -> Self {
        Self {
            bits: 3,
            max_left: 7,
            max_active: 15,
            base_threshold: 0.75,
            rest: 30,
        }
    }
}

/// The contextual anomaly detector; see the module documentation.
#[derive(Debug, Clone)]
pub struct Cad {
    p: CadParams,
    min: f64,
    step: f64,
    mem: Memory,
    contexts: Vec<Context>,
    /// Left facts of the next zero-level context: last step's sensor facts and active contexts.
    prev_mask: u64,
    prev_neurons: Vec<u32>,
    /// Context id → the step at which it was last among `prev_neurons`.
    stamp: Vec<u64>,
    /// Left set → the step at which it was last found whole.
    whole_stamp: Vec<u64>,
    /// Context → the step at which it was last counted as a candidate.
    counted: Vec<u64>,
    /// Left set → (step, bit set of the step's right sets already paired with it).
    seen_rights: Vec<(u64, u64)>,
    /// Steps seen, and the step after the last raw score >= the base threshold (the history
    /// starts with a 1.0, so the first `rest` points are silent).
    t: usize,
    last_high: usize,
    learned: u64,
}

impl Cad {
    /// A detector for values expected in `[min, max]` (e.g. the range of a probationary
    /// period). An empty or non-finite range falls back to buckets of width 1.
    pub fn new(min: f64, max: f64, p: CadParams) -> Self {
        let bits = p.bits.clamp(1, 16);
        let max_bin = ((1u64 << bits) - 1) as f64;
        let (min, range) = if min.is_finite() && max.is_finite() && max > min {
            (min, max - min)
        } else if min.is_finite() {
            (min, max_bin)
        } else {
            (0.0, max_bin)
        };
        Self {
            p: CadParams { bits, ..p },
            min,
            step: range / max_bin,
            mem: Memory::default(),
            contexts: Vec::new(),
            prev_mask: 0,
            prev_neurons: Vec::new(),
            stamp: Vec::new(),
            whole_stamp: Vec::new(),
            counted: Vec::new(),
            seen_rights: Vec::new(),
            t: 0,
            last_high: 0,
            learned: 0,
        }
    }

    /// The detector for a series whose probationary part is `warm`: range = the range of
    /// `warm`, rest = a fifth of its length (NAB's runner's choice).
    pub fn for_warm(warm: &[f64]) -> Self {
        let (lo, hi) = warm
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let p = CadParams {
            rest: (warm.len() / 5).max(1),
            ..CadParams::default()
        };
        Self::new(lo, hi, p)
    }

    /// Number of contexts learned so far.
    pub fn contexts(&self) -> usize {
        self.contexts.len()
    }

    /// The sensor facts of a value, as a mask.
    fn encode(&self, y: f64) -> u64 {
        // truncation toward zero, as the reference does: values a little below the range
        // share bucket 0
        let k = ((y - self.min) / self.step).clamp(-1e12, 1e12) as i64;
        let mag = k.unsigned_abs().min((1u64 << MAX_DIGITS) - 1);
        let digits = (64 - mag.leading_zeros()).max(self.p.bits);
        let mut mask = 0u64;
        for i in 0..digits {
            mask |= 1 << (2 * i + ((mag >> i) & 1) as u32);
        }
        if k < 0 {
            mask |= 1 << BELOW_FACT;
        }
        mask
    }

    /// Stores the context (left, right) unless known; returns whether it is new. A known
    /// context offered as zero level is marked so.
    fn add_context(&mut self, mask: u64, neurons: &[u32], right: u64, zero_level: bool) -> bool {
        let l = self.mem.left_id(mask, neurons);
        let r = self.mem.right_id(right);
        if zero_level {
            let semi = &mut self.mem.left[l as usize];
            if let Some(&(_, c)) = semi.contexts.iter().find(|(rr, _)| *rr == r) {
                self.contexts[c as usize].zero_level = true;
                semi.zero_level = true;
                self.mem.scan[l as usize].3 = true;
                return false;
            }
        }
        let new = self.add_pair(l, r);
        if new && zero_level {
            self.mem.left[l as usize].zero_level = true;
            self.mem.scan[l as usize].3 = true;
            if let Some(ctx) = self.contexts.last_mut() {
                ctx.zero_level = true;
            }
        }
        new
    }

    /// Stores the context (left set `l`, right set `r`) unless known; returns whether it is
    /// new.
    fn add_pair(&mut self, l: u32, r: u32) -> bool {
        let semi = &mut self.mem.left[l as usize];
        if semi.contexts.iter().any(|&(rr, _)| rr == r) || self.contexts.len() >= MAX_CONTEXTS {
            return false;
        }
        semi.contexts.push((r, self.contexts.len() as u32));
        self.contexts.push(Context {
            hits: 0,
            zero_level: false,
        });
        true
    }

    /// Stores the candidate contexts of a step with a new zero-level context `zero`: each
    /// `(left set, right facts)` of `potential` (grouped by left set) stands for (the left set's
    /// facts present last step, those right facts). Returns the share of distinct candidates,
    /// the zero-level one included, that were new.
    fn add_candidates(&mut self, zero: u32, potential: &[(u32, u64)]) -> f64 {
        let t = self.learned;
        if self.counted.len() < self.contexts.len() {
            self.counted.resize(self.contexts.len(), 0);
        }
        self.counted[zero as usize] = t;
        let (mut added, mut distinct) = (1usize, 1usize);
        // right sets seen this step (subsets of `sens`, few): their index is a bit position
        let mut rights: Vec<(u64, u32)> = Vec::new();
        // left sets without context facts seen this step, by mask
        let mut sensor_lefts: Vec<(u64, u32)> = Vec::new();
        let mut neurons: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < potential.len() {
            let l = potential[i].0 as usize;
            let semi = &self.mem.left[l];
            let mask = semi.mask & self.prev_mask;
            neurons.clear();
            neurons.extend(
                semi.neurons
                    .iter()
                    .copied()
                    .filter(|&c| self.stamp.get(c as usize) == Some(&t)),
            );
            let lid = if neurons.is_empty() {
                match sensor_lefts.iter().find(|p| p.0 == mask) {
                    Some(p) => p.1,
                    None => {
                        let id = self.mem.left_id(mask, &neurons);
                        sensor_lefts.push((mask, id));
                        id
                    }
                }
            } else {
                self.mem.left_id(mask, &neurons)
            };
            if self.seen_rights.len() <= lid as usize {
                self.seen_rights.resize(lid as usize + 1, (0, 0));
            }
            while i < potential.len() && potential[i].0 as usize == l {
                let m = potential[i].1;
                i += 1;
                let ri = match rights.iter().position(|p| p.0 == m) {
                    Some(ri) => ri,
                    None => {
                        let rid = self.mem.right_id(m);
                        rights.push((m, rid));
                        rights.len() - 1
                    }
                };
                let rid = rights[ri].1;
                if ri < 64 {
                    let seen = &mut self.seen_rights[lid as usize];
                    if seen.0 != t {
                        *seen = (t, 0);
                    }
                    if seen.1 >> ri & 1 == 1 {
                        continue;
                    }
                    seen.1 |= 1 << ri;
                }
                let found = self.mem.left[lid as usize]
                    .contexts
                    .iter()
                    .find(|p| p.0 == rid)
                    .map(|p| p.1);
                match found {
                    Some(c) => {
                        if self.counted[c as usize] != t {
                            self.counted[c as usize] = t;
                            distinct += 1;
                        }
                    }
                    None => {
                        distinct += 1;
                        if self.add_pair(lid, rid) {
                            added += 1;
                            self.counted.push(t);
                        }
                    }
                }
            }
        }
        added as f64 / distinct as f64
    }

    /// One step of the context machine on the sensor facts `sens`: (share of selected
    /// contexts that are active, share of candidate contexts that were new).
    fn learn(&mut self, sens: u64) -> (f64, f64) {
        self.learned += 1;
        let t = self.learned;
        let prev_neurons = std::mem::take(&mut self.prev_neurons);
        for &c in &prev_neurons {
            let c = c as usize;
            if self.stamp.len() <= c {
                self.stamp.resize(c + 1, 0);
            }
            self.stamp[c] = t;
        }
        let zero = (self.prev_mask != 0 || !prev_neurons.is_empty()) && sens != 0;
        let mut new_context = None;
        if zero {
            let before = self.contexts.len();
            if self.add_context(self.prev_mask, &prev_neurons, sens, true) {
                new_context = Some(before as u32);
            }
        }
        let new_flag = new_context.is_some();
        let right = &self.mem.right;

        // left sets wholly present last step: their contexts are selected
        let mut active: Vec<u32> = Vec::new();
        let mut selected = 0usize;
        // (left set, right facts present now): overlaps that are candidate contexts
        let mut potential: Vec<(u32, u64)> = Vec::new();
        if self.whole_stamp.len() < self.mem.left.len() {
            self.whole_stamp.resize(self.mem.left.len(), 0);
        }
        let keyed = prev_neurons
            .iter()
            .filter_map(|&c| self.mem.keyed.get(c as usize))
            .flatten();
        for &l in self.mem.sensor_only.iter().chain(keyed) {
            let semi = &self.mem.left[l as usize];
            if semi.mask & !self.prev_mask != 0
                || !semi
                    .neurons
                    .iter()
                    .all(|&c| self.stamp.get(c as usize) == Some(&t))
            {
                continue;
            }
            self.whole_stamp[l as usize] = t;
            let short = semi.mask.count_ones() as usize + semi.neurons.len() <= self.p.max_left;
            for &(r, c) in &semi.contexts {
                if new_context == Some(c) {
                    continue;
                }
                selected += 1;
                let m = right[r as usize];
                let ctx = &mut self.contexts[c as usize];
                if m & sens == m {
                    ctx.hits += 1;
                    active.push(c);
                } else if m & sens != 0 && ctx.zero_level && new_flag && short {
                    potential.push((l, m & sens));
                }
            }
        }
        // a new zero-level context: overlaps of last step's input with stored zero-level
        // contexts become candidate contexts
        if new_flag {
            let arena = &self.mem.arena;
            for (l, &(mask, start, len, zero)) in self.mem.scan.iter().enumerate() {
                if !zero || self.whole_stamp[l] == t {
                    continue;
                }
                let mut n = (mask & self.prev_mask).count_ones() as usize;
                if n > self.p.max_left {
                    continue;
                }
                for &c in &arena[start as usize..(start + len) as usize] {
                    n += usize::from(self.stamp.get(c as usize) == Some(&t));
                    if n > self.p.max_left {
                        break;
                    }
                }
                if n == 0 || n > self.p.max_left {
                    continue;
                }
                for &(r, c) in &self.mem.left[l].contexts {
                    let m = right[r as usize] & sens;
                    if m != 0 && new_context != Some(c) && self.contexts[c as usize].zero_level {
                        potential.push((l as u32, m));
                    }
                }
            }
        }
        let share_active = if selected > 0 {
            active.len() as f64 / selected as f64
        } else {
            0.0
        };

        let mut share_new = 0.0;
        if let Some(c) = new_context {
            share_new = self.add_candidates(c, &potential);
        }

        // the most-fired active contexts become facts of the next step's left side
        let contexts = &self.contexts;
        let by_hits = |a: &(u64, u32), b: &(u64, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        let mut ranked: Vec<(u64, u32)> = active
            .iter()
            .map(|&c| (contexts[c as usize].hits, c))
            .collect();
        let keep = self.p.max_active.min(ranked.len());
        if keep > 0 && keep < ranked.len() {
            ranked.select_nth_unstable_by(keep - 1, by_hits);
        }
        ranked.truncate(keep);
        let mut active: Vec<u32> = ranked.into_iter().map(|p| p.1).collect();
        active.sort_unstable();
        active.dedup();
        self.prev_mask = sens;
        self.prev_neurons = active;
        (share_active, share_new)
    }

    /// The raw anomaly of the next value (before the rest period), in [0, 1].
    pub fn raw_step(&mut self, y: f64) -> f64 {
        if !y.is_finite() {
            return 0.0;
        }
        let sens = self.encode(y);
        let (share_active, share_new) = self.learn(sens);
        ((1.0 - share_active + share_new) / 2.0).clamp(0.0, 1.0)
    }
}

impl OnlineDetector for Cad {
    fn name(&self) -> &'static str {
        "cad"
    }
    fn step(&mut self, y: f64) -> f64 {
        let raw = self.raw_step(y);
        self.t += 1;
        let rest = self.p.rest.max(1);
        // silent while a high raw score lies among the last `rest` steps (or the start does)
        let silent = self.last_high.saturating_add(rest) >= self.t;
        if raw >= self.p.base_threshold {
            self.last_high = self.t;
        }
        if silent {
            0.0
        } else {
            raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::score_series;

    /// Sorted facts of a sensor mask.
    fn mask_facts(mask: u64) -> impl Iterator<Item = u32> {
        (0..64u32).filter(move |i| mask >> i & 1 == 1)
    }

    fn periodic(n: usize) -> Vec<f64> {
        (0..n).map(|t| [0.0, 2.0, 5.0, 7.0, 4.0][t % 5]).collect()
    }

    #[test]
    fn encoding_follows_the_binary_bucket_number() {
        let d = Cad::new(0.0, 7.0, CadParams::default());
        let facts = |y: f64| mask_facts(d.encode(y)).collect::<Vec<_>>();
        assert_eq!(facts(5.0), vec![1, 2, 5]); // 101
        assert_eq!(facts(0.0), vec![0, 2, 4]);
        // beyond the range: 1001, a fourth digit
        assert_eq!(facts(9.0), vec![1, 2, 4, 7]);
        // below: bucket -3 = 011 and the below fact
        assert_eq!(facts(-3.0), vec![1, 3, 4, BELOW_FACT]);
    }

    #[test]
    fn a_learned_cycle_stops_being_anomalous() {
        let y = periodic(400);
        let mut d = Cad::new(0.0, 7.0, CadParams::default());
        let s: Vec<f64> = y.iter().map(|&v| d.raw_step(v)).collect();
        assert!(s[1..6].iter().any(|&v| v >= 0.5), "{:?}", &s[..10]);
        assert!(s[300..].iter().all(|&v| v < 0.05), "{:?}", &s[300..320]);
    }

    #[test]
    fn a_break_in_the_cycle_scores_above_everything_before() {
        let mut y = periodic(600);
        y[500] = 1.0; // a value out of its place in the cycle (inside the range)
        let mut d = Cad::new(0.0, 7.0, CadParams::default());
        let s = score_series(&mut d, &y);
        let before = s[200..500].iter().fold(0.0f64, |a, &b| a.max(b));
        assert!(s[500] > before, "{} vs {before}", s[500]);
        assert!(s[500] >= 0.5, "{}", s[500]);
    }

    #[test]
    fn constant_and_odd_inputs_do_not_alarm_or_panic() {
        // a constant series: while the chain of active contexts grows to `max_active` each
        // new link scores 0.5 (below the 0.75 alarm level), then nothing
        let mut d = Cad::for_warm(&[3.0; 50]);
        let s = score_series(&mut d, &[3.0; 500]);
        assert!(s.iter().all(|&v| v < 0.75), "{:?}", &s[..40]);
        assert!(s[40..].iter().all(|&v| v == 0.0), "{:?}", &s[..40]);
        let p = CadParams {
            rest: usize::MAX,
            bits: 99,
            ..CadParams::default()
        };
        let mut d = Cad::new(0.0, 1.0, p);
        assert_eq!(d.step(0.5), 0.0);
        let mut d = Cad::for_warm(&[]);
        for v in [
            f64::NAN,
            f64::INFINITY,
            -1e300,
            1e300,
            0.0,
            f64::NEG_INFINITY,
            5.0,
        ] {
            let s = d.step(v);
            assert!((0.0..=1.0).contains(&s), "{v}: {s}");
        }
    }

    #[test]
    fn rest_period_silences_after_a_high_score() {
        let y = periodic(400);
        let p = CadParams {
            rest: 10,
            ..CadParams::default()
        };
        let mut d = Cad::new(0.0, 7.0, p);
        let s = score_series(&mut d, &y);
        assert!(s[..10].iter().all(|&v| v == 0.0));
    }
}
