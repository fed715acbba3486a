//! Synthetic Azure-format traces: realistic invocation shapes written in the 14-day layout.
//!
//! [`write_synth_trace`] writes, for each day `NN` (01, 02, ...),
//! `invocations_per_function_md.anon.dNN.csv` (`HashOwner,HashApp,HashFunction,Trigger,1..1440`),
//! `function_durations_percentiles.anon.dNN.csv` and `app_memory_percentiles.anon.dNN.csv`,
//! exactly the files [`crate::trace::azure::AzureTrace`] reads. Rows are generated and written
//! one at a time: memory is O(functions), whatever the number of invocations.
//!
//! The population (deterministic for a seed and a function count):
//!
//! - **apps and owners**: functions are grouped in apps (60 % of apps have one function, a few
//!   have up to 20), apps in owners (most owners have one app); hashes are 64 hex digits;
//! - **popularity**: the function of popularity rank `k` (ranks shuffled) has a mean rate of
//!   `peak_rate * k^-zipf_exponent` invocations a minute, times a log-normal jitter
//!   (`exp(0.5 z)`): with the defaults, a few functions run thousands of times a minute at
//!   their daily peak and most run less than once a minute;
//! - **kinds**: 25 % are **timer** functions (trigger `timer`) firing every 1, 5, 10, 15, 30 or
//!   60 minutes with a fixed phase, 1 invocation a tick (sometimes 2–5), 40 % of them exact and
//!   the others jittered by ±1 minute on 30 % of ticks and missing 2 % of ticks; 15 % are
//!   **bursty** (on/off: geometric off periods of 30–300 minutes on average, on periods of 2–20
//!   minutes, 90 % of the volume in bursts); the rest are **steady** (http, queue, event,
//!   storage, orchestration, others);
//! - **shape** of steady and bursty rates: a daily cycle `1 + a1 sin(2π(t/1440 - φ)) +
//!   a2 sin(4π(t/1440 - φ2))` (a1 in [0.1, 0.8], a2 in [0, 0.2]; 70 % of the phases cluster
//!   around a common 14:00 peak, the rest uniform), a weekend factor in [0.4, 1] on days 6 and 7
//!   of each week (day 1 is a Monday), and a log-normal AR(1) noise (ρ = 0.98 a minute, σ in
//!   [0.1, 0.5], mean 1); counts are Poisson draws of the rate;
//! - **durations**: per function, median `exp(N(ln 700 ms, 1.7))` clamped to [1 ms, 10 min],
//!   log-normal spread σ in [0.05, 1.2] giving the seven percentiles;
//! - **memory**: per app, `AverageAllocatedMb` log-normal (median 150 MB, σ 0.6, 5 % of apps ×3),
//!   clamped to [32, 8192] MB.
//!
//! A day's row is written only for functions invoked that day (as in the Azure files), with a
//! durations row carrying that day's `Count`; the memory file has a row for every app with at
//! least one function in that day's invocation file.
//!
//! [`SynthConfig::target_invocations`] scales the non-timer rates so that the expected total
//! matches the target; the actual total varies around it by a few percent (the most popular
//! functions carry much of the volume and their noise does not average out). Without it, 2,000
//! functions write about 2.5 M invocations a day with the default popularity.

use crate::trace::azure::{durations_file_name, invocations_file_name, memory_file_name};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Minutes in a synthetic day (as in the Azure trace).
pub const MINUTES_PER_DAY: u32 = 1440;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of functions (at least 1).
    pub functions: u32,
    /// Number of days (1..=99; the Azure release has 14).
    pub days: u32,
    /// RNG seed: the same config writes the same bytes.
    pub seed: u64,
    /// Scale the non-timer rates so the expected total invocation count is this.
    pub target_invocations: Option<u64>,
    /// Mean invocations a minute of the most popular function (before jitter and target
    /// scaling).
    pub peak_rate: f64,
    /// Exponent of the Zipf-like popularity law.
    pub zipf_exponent: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            functions: 1000,
            days: 14,
            seed: 1,
            target_invocations: None,
            peak_rate: 1000.0,
            zipf_exponent: 1.7,
        }
    }
}

/// A synthetic trace could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The configuration is invalid.
    #[error("invalid synthetic trace configuration: {0}")]
    Config(String),
    /// A file could not be created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where a running [`write_synth_trace`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthProgress {
    /// Function-days generated so far.
    pub done: u64,
    /// Function-days in total (functions × days).
    pub total: u64,
    /// Invocations written so far.
    pub invocations: u64,
}

/// What [`write_synth_trace`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSummary {
    /// Functions in the population.
    pub functions: u32,
    /// Functions invoked at least once.
    pub invoked_functions: u32,
    /// Apps in the population.
    pub apps: u32,
    /// Days written.
    pub days: u32,
    /// Total invocations.
    pub invocations: u64,
    /// Bytes written over all files.
    pub bytes: u64,
    /// The files written, in order.
    pub files: Vec<PathBuf>,
}

/// How a function's invocations arrive.
#[derive(Debug, Clone)]
enum Kind {
    Steady {
        rate: f64,
        shape: Shape,
    },
    Bursty {
        base: f64,
        burst: f64,
        on_mean: f64,
        off_mean: f64,
        shape: Shape,
    },
    Timer {
        period: u32,
        offset: u32,
        count: u32,
        exact: bool,
    },
}

/// Daily / weekly modulation and noise of a rate.
#[derive(Debug, Clone)]
struct Shape {
    a1: f64,
    phase1: f64,
    a2: f64,
    phase2: f64,
    weekend: f64,
    sigma: f64,
}

impl Shape {
    fn factor(&self, minute_of_day: u32, weekday: u32) -> f64 {
        let x = f64::from(minute_of_day) / f64::from(MINUTES_PER_DAY);
        let tau = std::f64::consts::TAU;
        let d = 1.0
            + self.a1 * (tau * (x - self.phase1)).sin()
            + self.a2 * (2.0 * tau * (x - self.phase2)).sin();
        let w = if weekday >= 5 { self.weekend } else { 1.0 };
        d.max(0.02) * w
    }
}

#[derive(Debug, Clone)]
struct Function {
    app: u32,
    id: String,
    trigger: &'static str,
    kind: Kind,
    /// Seven duration percentiles in ms, non-decreasing.
    durations: [u64; 7],
    average_ms: u64,
}

#[derive(Debug, Clone)]
struct App {
    owner: String,
    hash: String,
    memory_mb: f64,
}

/// Per-function generator state carried across days.
struct State {
    rng: Xoshiro256PlusPlus,
    noise: f64,
    on: bool,
    left: u32,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn normal(rng: &mut impl Rng) -> f64 {
    // Box-Muller; u1 in (0, 1].
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Poisson draw: inversion below 12, a rounded normal approximation above.
fn poisson(rng: &mut impl Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda < 12.0 {
        let u: f64 = rng.random::<f64>();
        let mut p = (-lambda).exp();
        let mut s = p;
        let mut k = 0u32;
        while u > s && k < 100 {
            k += 1;
            p *= lambda / f64::from(k);
            s += p;
        }
        k
    } else {
        let v = lambda + lambda.sqrt() * normal(rng) + 0.5;
        v.clamp(0.0, f64::from(u32::MAX)) as u32
    }
}

/// A geometric-like duration of mean about `mean` minutes, at least 1.
fn geometric(rng: &mut impl Rng, mean: f64) -> u32 {
    let u: f64 = 1.0 - rng.random::<f64>();
    (1.0 + (-mean * u.ln())).min(1e6) as u32
}

fn hash64(rng: &mut impl Rng) -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rng.random::<u64>(),
        rng.random::<u64>(),
        rng.random::<u64>(),
        rng.random::<u64>()
    )
}

fn pick<T: Copy>(rng: &mut impl Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|x| x.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(v, w) in items {
        if u < w {
            return v;
        }
        u -= w;
    }
    items[items.len() - 1].0
}

/// The synthetic population of a config.
struct Population {
    apps: Vec<App>,
    functions: Vec<Function>,
}

impl Population {
    fn new(cfg: &SynthConfig) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(splitmix(cfg.seed));
        let n = cfg.functions as usize;
        // Apps and owners.
        let mut apps: Vec<App> = Vec::new();
        let mut app_of = Vec::with_capacity(n);
        let mut owner = hash64(&mut rng);
        let mut owner_apps_left = 0u32;
        while app_of.len() < n {
            if owner_apps_left == 0 {
                owner = hash64(&mut rng);
                owner_apps_left = pick(&mut rng, &[(1, 0.7), (2, 0.15), (3, 0.1), (4, 0.05)]);
            }
            owner_apps_left -= 1;
            let size = match pick(
                &mut rng,
                &[(1u32, 0.6), (2, 0.15), (3, 0.1), (5, 0.1), (12, 0.05)],
            ) {
                5 => rng.random_range(4..=8),
                12 => rng.random_range(9..=20),
                s => s,
            };
            let mut mb = (150f64.ln() + 0.6 * normal(&mut rng)).exp();
            if rng.random::<f64>() < 0.05 {
                mb *= 3.0;
            }
            apps.push(App {
                owner: owner.clone(),
                hash: hash64(&mut rng),
                memory_mb: mb.clamp(32.0, 8192.0).round(),
            });
            for _ in 0..size {
                if app_of.len() < n {
                    app_of.push(apps.len() as u32 - 1);
                }
            }
        }
        // Popularity ranks, shuffled.
        let mut ranks: Vec<u32> = (1..=cfg.functions).collect();
        for i in (1..ranks.len()).rev() {
            let j = rng.random_range(0..=i);
            ranks.swap(i, j);
        }
        let mut functions = Vec::with_capacity(n);
        for (i, &app) in app_of.iter().enumerate() {
            let rate = cfg.peak_rate
                * f64::from(ranks[i]).powf(-cfg.zipf_exponent)
                * (0.5 * normal(&mut rng)).exp();
            let shape = Shape {
                a1: rng.random_range(0.1..0.8),
                phase1: if rng.random::<f64>() < 0.7 {
                    // Peak at 14:00: sin is maximal at x - φ = 0.25.
                    14.0 / 24.0 - 0.25 + normal(&mut rng) * 1.5 / 24.0
                } else {
                    rng.random::<f64>()
                },
                a2: rng.random_range(0.0..0.2),
                phase2: rng.random::<f64>(),
                weekend: rng.random_range(0.4..1.0),
                sigma: rng.random_range(0.1..0.5),
            };
            let u = rng.random::<f64>();
            let (kind, trigger) = if u < 0.25 {
                let period = pick(
                    &mut rng,
                    &[
                        (1u32, 0.1),
                        (5, 0.2),
                        (10, 0.15),
                        (15, 0.2),
                        (30, 0.15),
                        (60, 0.2),
                    ],
                );
                let count = if rng.random::<f64>() < 0.8 {
                    1
                } else {
                    rng.random_range(2..=5)
                };
                let kind = Kind::Timer {
                    period,
                    offset: rng.random_range(0..period),
                    count,
                    exact: rng.random::<f64>() < 0.4,
                };
                (kind, "timer")
            } else if u < 0.40 {
                let on_mean = rng.random_range(2.0..20.0);
                let off_mean = rng.random_range(30.0..300.0);
                let duty = on_mean / (on_mean + off_mean);
                let kind = Kind::Bursty {
                    base: 0.1 * rate,
                    burst: 0.9 * rate / duty,
                    on_mean,
                    off_mean,
                    shape,
                };
                let t = pick(&mut rng, &[("http", 0.5), ("queue", 0.3), ("event", 0.2)]);
                (kind, t)
            } else {
                let t = pick(
                    &mut rng,
                    &[
                        ("http", 0.55),
                        ("queue", 0.2),
                        ("event", 0.15),
                        ("storage", 0.05),
                        ("orchestration", 0.03),
                        ("others", 0.02),
                    ],
                );
                (Kind::Steady { rate, shape }, t)
            };
            let median = (700f64.ln() + 1.7 * normal(&mut rng))
                .exp()
                .clamp(1.0, 600_000.0);
            let spread: f64 = rng.random_range(0.05..1.2);
            let z = [-3.0, -2.326, -0.674, 0.0, 0.674, 2.326, 3.5];
            let mut durations = [0u64; 7];
            for (k, zk) in z.iter().enumerate() {
                durations[k] = ((median * (spread * zk).exp()).round() as u64).max(1);
                if k > 0 {
                    durations[k] = durations[k].max(durations[k - 1]);
                }
            }
            functions.push(Function {
                app,
                id: hash64(&mut rng),
                trigger,
                kind,
                durations,
                average_ms: ((median * (spread * spread / 2.0).exp()).round() as u64).max(1),
            });
        }
        Self { apps, functions }
    }

    /// Expected invocations of (timer functions, other functions) over `days` days.
    fn expected(&self, days: u32) -> (f64, f64) {
        let mut timer = 0.0;
        let mut other = 0.0;
        let day_weight = |s: &Shape| -> f64 {
            (0..days)
                .map(|d| if d % 7 >= 5 { s.weekend } else { 1.0 })
                .sum::<f64>()
                * f64::from(MINUTES_PER_DAY)
        };
        for f in &self.functions {
            match &f.kind {
                Kind::Timer { period, count, .. } => {
                    timer +=
                        f64::from(days * MINUTES_PER_DAY) / f64::from(*period) * f64::from(*count)
                }
                Kind::Steady { rate, shape } => other += rate * day_weight(shape),
                Kind::Bursty {
                    base,
                    burst,
                    on_mean,
                    off_mean,
                    shape,
                } => {
                    let duty = on_mean / (on_mean + off_mean);
                    other += (duty * burst + (1.0 - duty) * base) * day_weight(shape)
                }
            }
        }
        (timer, other)
    }

    fn scale(&mut self, k: f64) {
        for f in &mut self.functions {
            match &mut f.kind {
                Kind::Steady { rate, .. } => *rate *= k,
                Kind::Bursty { base, burst, .. } => {
                    *base *= k;
                    *burst *= k;
                }
                Kind::Timer { .. } => {}
            }
        }
    }
}

/// Fills `out` with one day of counts for a function.
fn day_counts(f: &Function, st: &mut State, day: u32, out: &mut [u32]) {
    let weekday = day % 7;
    let rng = &mut st.rng;
    match &f.kind {
        Kind::Timer {
            period,
            offset,
            count,
            exact,
        } => {
            out.fill(0);
            let start = day * MINUTES_PER_DAY;
            let first = (offset + period - start % period) % period;
            let mut m = first;
            while m < MINUTES_PER_DAY {
                let mut at = m as i64;
                let mut fire = true;
                if !exact {
                    let u: f64 = rng.random::<f64>();
                    if u < 0.02 {
                        fire = false;
                    } else if u < 0.17 {
                        at -= 1;
                    } else if u < 0.32 {
                        at += 1;
                    }
                }
                if fire {
                    let at = at.clamp(0, i64::from(MINUTES_PER_DAY) - 1) as usize;
                    out[at] += count;
                }
                m += period;
            }
        }
        Kind::Steady { rate, shape } => {
            let rho: f64 = 0.98;
            let innov = (1.0 - rho * rho).sqrt() * shape.sigma;
            let bias = shape.sigma * shape.sigma / 2.0;
            for (m, c) in out.iter_mut().enumerate() {
                st.noise = rho * st.noise + innov * normal(rng);
                let lambda = rate * shape.factor(m as u32, weekday) * (st.noise - bias).exp();
                *c = poisson(rng, lambda);
            }
        }
        Kind::Bursty {
            base,
            burst,
            on_mean,
            off_mean,
            shape,
        } => {
            for (m, c) in out.iter_mut().enumerate() {
                if st.left == 0 {
                    st.on = !st.on;
                    st.left = geometric(rng, if st.on { *on_mean } else { *off_mean });
                }
                st.left -= 1;
                let r = if st.on { *burst } else { *base };
                *c = poisson(rng, r * shape.factor(m as u32, weekday));
            }
        }
    }
}

/// A file being written, counting its bytes.
struct Out {
    path: PathBuf,
    w: BufWriter<File>,
    bytes: u64,
}

impl Out {
    fn create(path: PathBuf) -> Result<Self, SynthError> {
        let f = File::create(&path).map_err(|e| io(&path, e))?;
        Ok(Self {
            w: BufWriter::with_capacity(1 << 20, f),
            path,
            bytes: 0,
        })
    }
    fn write(&mut self, b: &[u8]) -> Result<(), SynthError> {
        self.bytes += b.len() as u64;
        self.w.write_all(b).map_err(|e| io(&self.path, e))
    }
    fn finish(mut self) -> Result<u64, SynthError> {
        self.w.flush().map_err(|e| io(&self.path, e))?;
        Ok(self.bytes)
    }
}

fn io(path: &Path, source: std::io::Error) -> SynthError {
    SynthError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        buf.push(b'0');
        return;
    }
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v > 0 {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Checks a config; the message names the offending field.
pub fn validate(cfg: &SynthConfig) -> Result<(), SynthError> {
    if cfg.functions == 0 || cfg.functions > 10_000_000 {
        return Err(SynthError::Config(format!(
            "functions must be in 1..=10000000, got {}",
            cfg.functions
        )));
    }
    if cfg.days == 0 || cfg.days > 99 {
        return Err(SynthError::Config(format!(
            "days must be in 1..=99, got {}",
            cfg.days
        )));
    }
    if !(cfg.peak_rate.is_finite() && cfg.peak_rate > 0.0) {
        return Err(SynthError::Config(format!(
            "peak rate must be a positive number, got {}",
            cfg.peak_rate
        )));
    }
    if !(cfg.zipf_exponent.is_finite() && cfg.zipf_exponent >= 0.0) {
        return Err(SynthError::Config(format!(
            "zipf exponent must be a non-negative number, got {}",
            cfg.zipf_exponent
        )));
    }
    if cfg.target_invocations == Some(0) {
        return Err(SynthError::Config(
            "target invocations must be positive".into(),
        ));
    }
    Ok(())
}

/// Writes a synthetic trace in the 14-day Azure layout into `out` (created if needed),
/// calling `progress` now and then. Deterministic: the same config writes the same bytes.
pub fn write_synth_trace(
    cfg: &SynthConfig,
    out: &Path,
    progress: &mut dyn FnMut(SynthProgress),
) -> Result<SynthSummary, SynthError> {
    validate(cfg)?;
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut pop = Population::new(cfg);
    if let Some(target) = cfg.target_invocations {
        let (timer, other) = pop.expected(cfg.days);
        let want = target as f64 - timer;
        let k = if other > 0.0 && want > 0.0 {
            want / other
        } else {
            1e-6
        };
        pop.scale(k);
    }
    let mut states: Vec<State> = pop
        .functions
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut rng =
                Xoshiro256PlusPlus::seed_from_u64(splitmix(cfg.seed ^ splitmix(i as u64 + 0x5EED)));
            // The AR(1) noise starts from its stationary distribution N(0, σ²).
            let noise = match &f.kind {
                Kind::Steady { shape, .. } => shape.sigma * normal(&mut rng),
                _ => 0.0,
            };
            State {
                rng,
                noise,
                // Bursty functions start with an off period.
                on: true,
                left: 0,
            }
        })
        .collect();
    let total = u64::from(cfg.functions) * u64::from(cfg.days);
    let mut summary = SynthSummary {
        functions: cfg.functions,
        invoked_functions: 0,
        apps: pop.apps.len() as u32,
        days: cfg.days,
        invocations: 0,
        bytes: 0,
        files: Vec::new(),
    };
    let mut invoked = vec![false; pop.functions.len()];
    let mut counts = vec![0u32; MINUTES_PER_DAY as usize];
    let mut line: Vec<u8> = Vec::with_capacity(1 << 14);
    let mut inv_header = b"HashOwner,HashApp,HashFunction,Trigger".to_vec();
    for m in 1..=MINUTES_PER_DAY {
        inv_header.push(b',');
        push_u64(&mut inv_header, u64::from(m));
    }
    inv_header.push(b'\n');
    let mut done = 0u64;
    for day in 0..cfg.days {
        let file_day = day + 1;
        let inv_path = out.join(invocations_file_name(file_day));
        let dur_path = out.join(durations_file_name(file_day));
        let mem_path = out.join(memory_file_name(file_day));
        let mut inv = Out::create(inv_path.clone())?;
        let mut dur = Out::create(dur_path.clone())?;
        inv.write(&inv_header)?;
        dur.write(
            b"HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,\
percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,\
percentile_Average_99,percentile_Average_100\n",
        )?;
        let mut app_present = vec![false; pop.apps.len()];
        for (i, f) in pop.functions.iter().enumerate() {
            day_counts(f, &mut states[i], day, &mut counts);
            let n: u64 = counts.iter().map(|&c| u64::from(c)).sum();
            done += 1;
            if n > 0 {
                invoked[i] = true;
                summary.invocations += n;
                let app = &pop.apps[f.app as usize];
                app_present[f.app as usize] = true;
                line.clear();
                line.extend_from_slice(app.owner.as_bytes());
                line.push(b',');
                line.extend_from_slice(app.hash.as_bytes());
                line.push(b',');
                line.extend_from_slice(f.id.as_bytes());
                line.push(b',');
                line.extend_from_slice(f.trigger.as_bytes());
                for &c in &counts {
                    line.push(b',');
                    push_u64(&mut line, u64::from(c));
                }
                line.push(b'\n');
                inv.write(&line)?;
                line.clear();
                line.extend_from_slice(app.owner.as_bytes());
                line.push(b',');
                line.extend_from_slice(app.hash.as_bytes());
                line.push(b',');
                line.extend_from_slice(f.id.as_bytes());
                let d = &f.durations;
                for v in [f.average_ms, n, d[0]] {
                    line.push(b',');
                    push_u64(&mut line, v);
                }
                line.extend_from_slice(b".0,");
                push_u64(&mut line, d[6]);
                line.extend_from_slice(b".0");
                for &v in d {
                    line.push(b',');
                    push_u64(&mut line, v);
                }
                line.push(b'\n');
                dur.write(&line)?;
            }
            if done.is_multiple_of(256) {
                progress(SynthProgress {
                    done,
                    total,
                    invocations: summary.invocations,
                });
            }
        }
        let mut mem = Out::create(mem_path.clone())?;
        mem.write(
            b"HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,\
AverageAllocatedMb_pct5,AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,\
AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,AverageAllocatedMb_pct99,\
AverageAllocatedMb_pct100\n",
        )?;
        for (a, app) in pop.apps.iter().enumerate() {
            if !app_present[a] {
                continue;
            }
            line.clear();
            line.extend_from_slice(app.owner.as_bytes());
            line.push(b',');
            line.extend_from_slice(app.hash.as_bytes());
            line.push(b',');
            push_u64(&mut line, 1440);
            let mb = app.memory_mb;
            for k in [1.0, 0.7, 0.8, 0.9, 1.0, 1.05, 1.2, 1.35, 1.5] {
                line.push(b',');
                push_u64(&mut line, (mb * k).round() as u64);
            }
            line.push(b'\n');
            mem.write(&line)?;
        }
        for (o, p) in [(inv, inv_path), (dur, dur_path), (mem, mem_path)] {
            summary.bytes += o.finish()?;
            summary.files.push(p);
        }
        progress(SynthProgress {
            done,
            total,
            invocations: summary.invocations,
        });
    }
    summary.invoked_functions = invoked.iter().filter(|&&b| b).count() as u32;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_mean_is_lambda() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for lambda in [0.01, 0.5, 3.0, 40.0, 2000.0] {
            let n = 20_000;
            let s: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, lambda))).sum();
            let mean = s as f64 / f64::from(n);
            let se = (lambda / f64::from(n)).sqrt();
            assert!((mean - lambda).abs() < 5.0 * se + 1e-3, "{lambda}: {mean}");
        }
    }

    #[test]
    fn push_u64_formats() {
        let mut b = Vec::new();
        for v in [0, 7, 10, 1440, u64::MAX] {
            b.clear();
            push_u64(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes());
        }
    }

    #[test]
    fn timer_fires_on_its_period() {
        let f = Function {
            app: 0,
            id: String::new(),
            trigger: "timer",
            kind: Kind::Timer {
                period: 15,
                offset: 4,
                count: 2,
                exact: true,
            },
            durations: [1; 7],
            average_ms: 1,
        };
        let mut st = State {
            rng: Xoshiro256PlusPlus::seed_from_u64(1),
            noise: 0.0,
            on: false,
            left: 0,
        };
        let mut c = vec![0; 1440];
        // Day 1 starts at minute 1440 = 96 * 15, so ticks are at minutes 4, 19, ... of the day.
        day_counts(&f, &mut st, 1, &mut c);
        let fired: Vec<usize> = (0..1440).filter(|&m| c[m] > 0).collect();
        assert_eq!(fired.len(), 96);
        assert_eq!(&fired[..3], &[4, 19, 34]);
        assert!(fired.iter().all(|&m| c[m] == 2));
    }
}
