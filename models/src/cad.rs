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
use rustc_hash::{FxHashMap, FxHasher};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hasher;

/// Fact of a value below the range (its bucket number is negative).
pub const BELOW_FACT: u32 = 62;
/// Active context `c` is fact `NEURON_BASE + c`; sensor facts are below it.
pub const NEURON_BASE: u32 = 64;
/// Binary digits a bucket number may use (larger ones are clamped): 2^30 buckets.
const MAX_DIGITS: u32 = 30;
/// Contexts the memory holds at most; once full, no new ones are learned (bounded memory on an
/// unbounded stream).
const MAX_CONTEXTS: usize = 1 << 22;

/// Fingerprint of a left fact set.
fn fingerprint(mask: u64, neurons: &[u32]) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(neurons.len());
    h.write_u64(mask);
    for &c in neurons {
        h.write_u32(c);
    }
    h.finish()
}

/// Bit of context fact `c` in a signature: a left set can only be whole when its signature
/// (the bits of its context facts) lies inside the signature of the facts present.
fn sig_bit(c: u32) -> u64 {
    1 << (c & 63)
}

/// A context, stored with its left set: its right facts (sensor facts only, so a mask), its
/// id, how often it fired and whether it was ever seen whole (zero level). Kept next to the
/// left set so that a step reads one short array per left set.
#[derive(Debug, Clone, Copy)]
struct Pair {
    right: u64,
    hits: u64,
    id: u32,
    zero_level: bool,
}

/// A stored left fact set: sensor facts as a mask, active-context facts as sorted ids
/// (`len` of them from `start` in [`Memory::arena`]).
#[derive(Debug, Clone, Default)]
struct LeftSemi {
    mask: u64,
    start: u32,
    len: u32,
    /// The contexts it starts (distinct right sides).
    contexts: Vec<Pair>,
    /// Whether one of its contexts is zero level.
    zero_level: bool,
}

/// The context facts of left set `semi`, from the arena of [`Memory`] (a free function, so
/// that the caller may hold other fields of the memory meanwhile).
fn facts<'a>(arena: &'a [u32], semi: &LeftSemi) -> &'a [u32] {
    arena
        .get(semi.start as usize..semi.start as usize + semi.len as usize)
        .unwrap_or(&[])
}

/// An entry of a list searched for whole left sets: what a quick rejection needs (sensor mask,
/// signature of the context facts) and the set's id.
#[derive(Debug, Clone, Copy)]
struct Key {
    mask: u64,
    sig: u64,
    id: u32,
}

/// The context memory. A left set is found whole (all its facts present) through one key: its
/// rarest context fact (when it was stored), or the list of sensor-only sets. The left sets
/// with a zero-level context are also listed in id order, with an index from context fact to
/// them, for the overlap search of a step with a new context.
#[derive(Debug, Clone, Default)]
struct Memory {
    left: Vec<LeftSemi>,
    arena: Vec<u32>,
    /// Fingerprint of (mask, context ids) → left sets with it.
    left_by: FxHashMap<u64, Vec<u32>>,
    /// Context id → left sets keyed by it.
    keyed: Vec<Vec<Key>>,
    sensor_only: Vec<Key>,
    /// Zero-level left sets, ascending, and their sensor masks.
    zero: Vec<u32>,
    zero_mask: Vec<u64>,
    /// Context id → zero-level left sets with that context fact.
    zero_by: Vec<Vec<u32>>,
    /// Contexts stored.
    contexts: usize,
}

impl Memory {
    /// The context facts of left set `l`.
    fn neurons(&self, l: usize) -> &[u32] {
        facts(&self.arena, &self.left[l])
    }

    /// The left set of these facts, created if missing.
    fn left_id(&mut self, mask: u64, neurons: &[u32]) -> u32 {
        let key = fingerprint(mask, neurons);
        if let Some(ids) = self.left_by.get(&key) {
            for &id in ids {
                if self.left[id as usize].mask == mask && self.neurons(id as usize) == neurons {
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
        let entry = Key {
            mask,
            sig: neurons.iter().fold(0, |s, &c| s | sig_bit(c)),
            id,
        };
        match rarest {
            Some(&c) => {
                let c = c as usize;
                if self.keyed.len() <= c {
                    self.keyed.resize_with(c + 1, Vec::new);
                }
                self.keyed[c].push(entry);
            }
            None => self.sensor_only.push(entry),
        }
        self.left.push(LeftSemi {
            mask,
            start: self.arena.len() as u32,
            len: neurons.len() as u32,
            contexts: Vec::new(),
            zero_level: false,
        });
        self.arena.extend_from_slice(neurons);
        self.left_by.entry(key).or_default().push(id);
        id
    }

    /// Marks left set `l` as having a zero-level context.
    fn mark_zero(&mut self, l: u32) {
        let li = l as usize;
        if self.left[li].zero_level {
            return;
        }
        self.left[li].zero_level = true;
        let at = self.zero.partition_point(|&z| z < l);
        self.zero.insert(at, l);
        self.zero_mask.insert(at, self.left[li].mask);
        for &c in facts(&self.arena, &self.left[li]) {
            let c = c as usize;
            if self.zero_by.len() <= c {
                self.zero_by.resize_with(c + 1, Vec::new);
            }
            self.zero_by[c].push(l);
        }
    }

    /// Stores the context (left set `l`, right facts `right`) unless known or the memory is
    /// full; returns whether it is new.
    fn add_pair(&mut self, l: u32, right: u64) -> bool {
        let semi = &mut self.left[l as usize];
        if semi.contexts.iter().any(|p| p.right == right) || self.contexts >= MAX_CONTEXTS {
            return false;
        }
        semi.contexts.push(Pair {
            right,
            hits: 0,
            id: self.contexts as u32,
            zero_level: false,
        });
        self.contexts += 1;
        true
    }
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

/// A candidate context of a step with a new context: (the facts of left set `l` present last
/// step, `right`). Those facts are all of `l`'s when `whole`; else the sensor facts `mask` and
/// the context facts at the positions `bits` of last step's active contexts (found again from
/// `l` when there are more than 64 of these).
#[derive(Debug, Clone, Copy)]
struct Cand {
    l: u32,
    right: u64,
    mask: u64,
    bits: u64,
    whole: bool,
}

/// Buffers reused from step to step (no allocation per step once warm).
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// The most-fired active contexts so far, as (fewer hits, higher id) first: the root is the
    /// weakest kept.
    ranked: BinaryHeap<(Reverse<u64>, u32)>,
    /// Overlaps that are candidate contexts.
    potential: Vec<Cand>,
    /// Left set → positions of the context facts it shares with last step's input, as a bit
    /// set (during the overlap search).
    overlap: Vec<u64>,
    /// Right sides seen in this step's candidates.
    rights: Vec<u64>,
    /// (sensor mask, context facts as a bit set of positions in last step's active contexts)
    /// → left set, for this step's candidates.
    lids: FxHashMap<(u64, u64), u32>,
    neurons: Vec<u32>,
    /// Left sets that may be whole this step (sensor mask and signature inside last step's).
    maybe: Vec<u32>,
}

/// The contextual anomaly detector; see the module documentation.
#[derive(Debug, Clone)]
pub struct Cad {
    p: CadParams,
    min: f64,
    step: f64,
    mem: Memory,
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
    scratch: Scratch,
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
            prev_mask: 0,
            prev_neurons: Vec::new(),
            stamp: Vec::new(),
            whole_stamp: Vec::new(),
            counted: Vec::new(),
            seen_rights: Vec::new(),
            scratch: Scratch::default(),
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
        self.mem.contexts
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

    /// Stores the zero-level context (left facts, right facts) unless known, and marks it zero
    /// level; returns its left set when it is new (it is then the last context of that set).
    fn add_zero_context(&mut self, mask: u64, neurons: &[u32], right: u64) -> Option<u32> {
        let l = self.mem.left_id(mask, neurons);
        let known = self.mem.left[l as usize]
            .contexts
            .iter()
            .position(|p| p.right == right);
        let at = match known {
            Some(i) => i,
            None if self.mem.add_pair(l, right) => self.mem.left[l as usize].contexts.len() - 1,
            None => return None, // the memory is full
        };
        if let Some(p) = self.mem.left[l as usize].contexts.get_mut(at) {
            p.zero_level = true;
        }
        self.mem.mark_zero(l);
        known.is_none().then_some(l)
    }

    /// Stores the candidate contexts of a step with a new zero-level context `zero`: each
    /// candidate of `potential` (grouped by left set) is a context (facts of its left set present
    /// last step, right facts); `prev` are last step's active contexts. Returns the share of
    /// distinct candidates, the zero-level one included, that were new.
    fn add_candidates(&mut self, zero: u32, potential: &[Cand], prev: &[u32]) -> f64 {
        let t = self.learned;
        if self.counted.len() < self.mem.contexts {
            self.counted.resize(self.mem.contexts, 0);
        }
        if let Some(c) = self.counted.get_mut(zero as usize) {
            *c = t;
        }
        let (mut added, mut distinct) = (1usize, 1usize);
        // right sets seen this step (subsets of `sens`, few): their index is a bit position
        let mut rights = std::mem::take(&mut self.scratch.rights);
        rights.clear();
        // left sets met this step: a left set's facts present last step are a sensor mask and
        // a subset of last step's active contexts (a bit set of their positions when <= 64)
        let mut lids = std::mem::take(&mut self.scratch.lids);
        lids.clear();
        let mut neurons = std::mem::take(&mut self.scratch.neurons);
        let mut i = 0;
        while i < potential.len() {
            let first = potential[i];
            let l = first.l;
            let lid = if first.whole {
                // all its facts were present: the overlap is the set itself
                l
            } else if prev.len() <= 64 {
                match lids.get(&(first.mask, first.bits)) {
                    Some(&id) => id,
                    None => {
                        neurons.clear();
                        let mut b = first.bits;
                        while b != 0 {
                            if let Some(&c) = prev.get(b.trailing_zeros() as usize) {
                                neurons.push(c);
                            }
                            b &= b - 1;
                        }
                        let id = self.mem.left_id(first.mask, &neurons);
                        lids.insert((first.mask, first.bits), id);
                        id
                    }
                }
            } else {
                neurons.clear();
                neurons.extend(
                    self.mem
                        .neurons(l as usize)
                        .iter()
                        .copied()
                        .filter(|&c| self.stamp.get(c as usize).is_some_and(|&s| s == t)),
                );
                self.mem.left_id(first.mask, &neurons)
            };
            if self.seen_rights.len() <= lid as usize {
                self.seen_rights.resize(lid as usize + 1, (0, 0));
            }
            while i < potential.len() && potential[i].l == l {
                let m = potential[i].right;
                i += 1;
                let ri = match rights.iter().position(|&r| r == m) {
                    Some(ri) => ri,
                    None => {
                        rights.push(m);
                        rights.len() - 1
                    }
                };
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
                    .find(|p| p.right == m)
                    .map(|p| p.id);
                match found {
                    // a context is always met with the same right set, so one with a right set
                    // among the first 64 is met once (`seen_rights`): it is new to the count
                    // unless it is the zero-level one (no look-up in `counted`)
                    Some(c) if ri < 64 => distinct += usize::from(c != zero),
                    Some(c) => {
                        if self.counted[c as usize] != t {
                            self.counted[c as usize] = t;
                            distinct += 1;
                        }
                    }
                    None => {
                        distinct += 1;
                        if self.mem.add_pair(lid, m) {
                            added += 1;
                            self.counted.push(t);
                        }
                    }
                }
            }
        }
        self.scratch.rights = rights;
        self.scratch.lids = lids;
        self.scratch.neurons = neurons;
        added as f64 / distinct as f64
    }

    /// One step of the context machine on the sensor facts `sens`: (share of selected
    /// contexts that are active, share of candidate contexts that were new).
    fn learn(&mut self, sens: u64) -> (f64, f64) {
        self.learned += 1;
        let t = self.learned;
        let mut prev_neurons = std::mem::take(&mut self.prev_neurons);
        let mut prev_sig = 0u64;
        for &c in &prev_neurons {
            let ci = c as usize;
            if self.stamp.len() <= ci {
                self.stamp.resize(ci + 1, 0);
            }
            self.stamp[ci] = t;
            prev_sig |= sig_bit(c);
        }
        let prev_mask = self.prev_mask;
        let zero = (prev_mask != 0 || !prev_neurons.is_empty()) && sens != 0;
        // the new zero-level context (its id) and its left set, where it is the last context
        let mut new_context = None;
        let mut new_left = None;
        if zero {
            let before = self.mem.contexts;
            new_left = self.add_zero_context(prev_mask, &prev_neurons, sens);
            if new_left.is_some() {
                new_context = Some(before as u32);
            }
        }
        let new_flag = new_context.is_some();

        // left sets wholly present last step: their contexts are selected
        let mut ranked = std::mem::take(&mut self.scratch.ranked);
        ranked.clear();
        let mut selected = 0usize;
        let mut n_active = 0usize;
        let keep = self.p.max_active;
        let mut potential = std::mem::take(&mut self.scratch.potential);
        potential.clear();
        if self.whole_stamp.len() < self.mem.left.len() {
            self.whole_stamp.resize(self.mem.left.len(), 0);
        }
        let stamp = &self.stamp;
        let present = |c: &u32| stamp.get(*c as usize).is_some_and(|&s| s == t);
        let mem = &mut self.mem;
        let keyed = prev_neurons
            .iter()
            .filter_map(|&c| mem.keyed.get(c as usize))
            .flatten();
        // first the quick rejection over the short key lists, then the sets left (the loads of
        // the sets no longer wait on each other)
        let mut maybe = std::mem::take(&mut self.scratch.maybe);
        maybe.clear();
        maybe.extend(
            mem.sensor_only
                .iter()
                .chain(keyed)
                .filter(|key| key.mask & !prev_mask == 0 && key.sig & !prev_sig == 0)
                .map(|key| key.id),
        );
        for &id in &maybe {
            let semi = &mut mem.left[id as usize];
            let neurons = facts(&mem.arena, semi);
            if !neurons.iter().all(present) {
                continue;
            }
            self.whole_stamp[id as usize] = t;
            let short = semi.mask.count_ones() as usize + neurons.len() <= self.p.max_left;
            let gather = new_flag && short;
            // the contexts stored before this step (the new one is the last of its set), 64 at
            // a time: first which are active, as a bit set (no branch per context), then those
            let n = semi.contexts.len() - usize::from(new_left == Some(id));
            selected += n;
            for chunk in semi.contexts.get_mut(..n).unwrap_or(&mut []).chunks_mut(64) {
                let active = chunk.iter().enumerate().fold(0u64, |a, (i, p)| {
                    a | u64::from(p.right & sens == p.right) << i
                });
                n_active += active.count_ones() as usize;
                let mut b = active;
                while b != 0 {
                    let i = b.trailing_zeros() as usize;
                    b &= b - 1;
                    let Some(pair) = chunk.get_mut(i) else {
                        continue;
                    };
                    pair.hits += 1;
                    let rank = (Reverse(pair.hits), pair.id);
                    if ranked.len() < keep {
                        ranked.push(rank);
                    } else if let Some(mut weakest) = ranked.peek_mut() {
                        if rank < *weakest {
                            *weakest = rank;
                        }
                    }
                }
                if gather {
                    for (i, pair) in chunk.iter().enumerate() {
                        let m = pair.right & sens;
                        if active >> i & 1 == 0 && m != 0 && pair.zero_level {
                            potential.push(Cand {
                                l: id,
                                right: m,
                                mask: semi.mask,
                                bits: 0,
                                whole: true,
                            });
                        }
                    }
                }
            }
        }
        // a new zero-level context: overlaps of last step's input with stored zero-level
        // contexts become candidate contexts
        if new_flag {
            let overlap = &mut self.scratch.overlap;
            if overlap.len() < mem.left.len() {
                overlap.resize(mem.left.len(), 0);
            }
            let small = prev_neurons.len() <= 64;
            let shared = |c: &u32| mem.zero_by.get(*c as usize).map_or(&[][..], Vec::as_slice);
            if small {
                for (pos, c) in prev_neurons.iter().enumerate() {
                    for &l in shared(c) {
                        overlap[l as usize] |= 1 << pos;
                    }
                }
            }
            for (&l, &mask) in mem.zero.iter().zip(&mem.zero_mask) {
                let li = l as usize;
                if self.whole_stamp[li] == t {
                    continue;
                }
                let mask = mask & prev_mask;
                let bits = overlap[li];
                let shared_facts = if small {
                    bits.count_ones() as usize
                } else {
                    facts(&mem.arena, &mem.left[li])
                        .iter()
                        .filter(|&c| present(c))
                        .count()
                };
                let n = mask.count_ones() as usize + shared_facts;
                if n == 0 || n > self.p.max_left {
                    continue;
                }
                for pair in &mem.left[li].contexts {
                    let m = pair.right & sens;
                    if m != 0 && new_context != Some(pair.id) && pair.zero_level {
                        potential.push(Cand {
                            l,
                            right: m,
                            mask,
                            bits,
                            whole: false,
                        });
                    }
                }
            }
            if small {
                for l in prev_neurons.iter().flat_map(shared) {
                    overlap[*l as usize] = 0;
                }
            }
        }
        let share_active = if selected > 0 {
            n_active as f64 / selected as f64
        } else {
            0.0
        };

        let mut share_new = 0.0;
        if let Some(c) = new_context {
            share_new = self.add_candidates(c, &potential, &prev_neurons);
        }

        // the most-fired active contexts become facts of the next step's left side
        // (kept while the whole left sets were read: a strict order, so the same set as a sort)
        prev_neurons.clear();
        prev_neurons.extend(ranked.drain().map(|p| p.1));
        prev_neurons.sort_unstable();
        prev_neurons.dedup();
        self.prev_mask = sens;
        self.prev_neurons = prev_neurons;
        self.scratch.ranked = ranked;
        self.scratch.potential = potential;
        self.scratch.maybe = maybe;
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
