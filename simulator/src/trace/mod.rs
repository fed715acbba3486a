//! Invocation traces: the in-memory shape the engine consumes, and the readers that stream it
//! from files (Azure Functions 2019 layouts) one day at a time.
//!
//! A reader never holds per-invocation records: it yields, for each day, the per-minute
//! invocation counts of the functions active that day (sparse), plus per-function metadata
//! (memory, duration percentiles) known before the day is simulated.

use serde::{Deserialize, Serialize};

pub mod azure;

/// Execution-time percentiles of a function in ms: p0, p1, p25, p50, p75, p99, p100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DurationTable {
    /// The seven percentiles, non-decreasing.
    pub pct: [f64; 7],
}

impl DurationTable {
    /// The percentile levels (in [0, 1]) that `pct` holds.
    pub const LEVELS: [f64; 7] = [0.0, 0.01, 0.25, 0.50, 0.75, 0.99, 1.0];

    /// A constant duration.
    pub fn constant(ms: f64) -> Self {
        Self { pct: [ms; 7] }
    }

    /// The duration at quantile `u` in [0, 1): linear interpolation between the percentiles,
    /// at least 1 ms, rounded to whole ms.
    pub fn sample(&self, u: f64) -> u64 {
        let l = &Self::LEVELS;
        // The segment: how many of the inner levels `u` reaches (branch-free; the levels
        // ascend, so this is the first segment whose upper level exceeds `u`).
        let i = usize::from(u >= l[1])
            + usize::from(u >= l[2])
            + usize::from(u >= l[3])
            + usize::from(u >= l[4])
            + usize::from(u >= l[5]);
        let (x0, x1) = (l[i], l[i + 1]);
        let (y0, y1) = (self.pct[i], self.pct[i + 1]);
        let y = y0 + (y1 - y0) * ((u - x0) / (x1 - x0)).clamp(0.0, 1.0);
        round_to_ms(y).max(1)
    }
}

/// `y.round() as u64` (half away from zero, saturating; negative and NaN give 0) without the
/// libm call that `f64::round` compiles to on baseline x86-64.
#[inline]
fn round_to_ms(y: f64) -> u64 {
    let whole = y as u64;
    // Exact: for 0 <= y < 2^53 `whole` is floor(y) and the fraction is representable; above,
    // y is an integer and the fraction is 0. Negative and NaN y give 0 and a fraction < 0.5.
    let frac = y - whole as f64;
    whole.saturating_add(u64::from(frac >= 0.5))
}

/// What the simulator knows about a function before simulating it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMeta {
    /// The function's id (HashFunction in Azure traces).
    pub id: String,
    /// The app it belongs to (HashApp).
    pub app: String,
    /// The owner (HashOwner).
    pub owner: String,
    /// Trigger type, when the trace has one.
    pub trigger: Option<String>,
    /// Memory one instance holds, in MB (the app's average allocated memory split evenly across
    /// the app's functions).
    pub memory_mb: f64,
    /// Execution-time distribution.
    pub durations: DurationTable,
}

/// One function's invocation counts for one day, as sparse (minute, count) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDay {
    /// Dense index of the function in [`TraceDay::new_functions`] order (stable across days).
    pub function: u32,
    /// Non-zero bins: absolute minute since trace start (strictly increasing) and count.
    pub bins: Vec<(u32, u32)>,
}

/// Everything read for one day of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDay {
    /// 0-based day number.
    pub day: u32,
    /// Absolute minute at which this day starts.
    pub start_minute: u32,
    /// Minutes in this day (1440 for Azure days).
    pub minutes: u32,
    /// Metadata of functions first seen on this day, with their dense indices (contiguous,
    /// continuing from the previous days).
    pub new_functions: Vec<FunctionMeta>,
    /// Counts of the functions invoked on this day, in ascending `function` order.
    pub rows: Vec<FunctionDay>,
}

/// A trace read or validation failure, naming the file, line and column where it applies.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is malformed.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column (field number for CSV), 0 when the whole line is at fault.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A required file is missing from a trace directory.
    #[error("{path}: missing trace file ({message})")]
    Missing {
        /// The expected path.
        path: String,
        /// Which file and why it is needed.
        message: String,
    },
}

/// A source of trace days, read in order.
pub trait TraceSource {
    /// The next day, or `None` at the end of the trace.
    fn next_day(&mut self) -> Result<Option<TraceDay>, TraceError>;
}

/// A trace held in memory (for tests, synthetic traces and benches).
#[derive(Debug, Clone, Default)]
pub struct MemoryTrace {
    days: std::collections::VecDeque<TraceDay>,
}

impl MemoryTrace {
    /// A one-day trace of `minutes` minutes from metadata and per-function sparse bins.
    pub fn single_day(
        minutes: u32,
        functions: Vec<FunctionMeta>,
        bins: Vec<Vec<(u32, u32)>>,
    ) -> Self {
        let rows = bins
            .into_iter()
            .enumerate()
            .filter(|(_, b)| !b.is_empty())
            .map(|(i, b)| FunctionDay {
                function: i as u32,
                bins: b,
            })
            .collect();
        Self::from_days(vec![TraceDay {
            day: 0,
            start_minute: 0,
            minutes,
            new_functions: functions,
            rows,
        }])
    }

    /// A trace from already-built days.
    pub fn from_days(days: Vec<TraceDay>) -> Self {
        Self { days: days.into() }
    }
}

impl TraceSource for MemoryTrace {
    fn next_day(&mut self) -> Result<Option<TraceDay>, TraceError> {
        Ok(self.days.pop_front())
    }
}

/// Totals of a whole trace, as counted by [`count_trace`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCounts {
    /// Functions with metadata (including those never invoked).
    pub functions: u64,
    /// Functions with at least one invocation.
    pub invoked_functions: u64,
    /// Total invocations.
    pub invocations: u64,
    /// Minutes covered (end of the last day).
    pub minutes: u64,
    /// Days read.
    pub days: u64,
}

/// Drains `source` and counts its functions, invocations and minutes (one day in memory at a
/// time).
pub fn count_trace(source: &mut dyn TraceSource) -> Result<TraceCounts, TraceError> {
    let mut c = TraceCounts::default();
    let mut invoked: Vec<bool> = Vec::new();
    while let Some(day) = source.next_day()? {
        c.days += 1;
        c.functions += day.new_functions.len() as u64;
        c.minutes = c
            .minutes
            .max(u64::from(day.start_minute) + u64::from(day.minutes));
        invoked.resize(c.functions as usize, false);
        for row in &day.rows {
            if let Some(slot) = invoked.get_mut(row.function as usize) {
                *slot = true;
            }
            c.invocations += row.bins.iter().map(|&(_, n)| u64::from(n)).sum::<u64>();
        }
    }
    c.invoked_functions = invoked.iter().filter(|&&b| b).count() as u64;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_ms_matches_f64_round() {
        let mut vals = vec![
            0.0,
            -0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            -0.3,
            -0.5,
            -2.5,
            4503599627370495.5,
            9007199254740993.0,
            1.8446744073709552e19,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut x = 0.001_f64;
        while x < 1e7 {
            vals.extend([x, x + 0.5, x.next_up(), x.next_down()]);
            x *= 1.37;
        }
        for y in vals {
            assert_eq!(round_to_ms(y), y.round() as u64, "{y}");
        }
    }

    #[test]
    fn duration_interpolates_between_percentiles() {
        let t = DurationTable {
            pct: [10.0, 20.0, 100.0, 200.0, 300.0, 1000.0, 2000.0],
        };
        assert_eq!(t.sample(0.0), 10);
        assert_eq!(t.sample(0.005), 15);
        assert_eq!(t.sample(0.5), 200);
        assert_eq!(t.sample(0.625), 250);
        assert_eq!(t.sample(0.995), 1500);
        assert_eq!(DurationTable::constant(0.2).sample(0.3), 1);
    }
}
