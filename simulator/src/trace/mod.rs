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
        let mut i = 0;
        while i + 2 < l.len() && u >= l[i + 1] {
            i += 1;
        }
        let (x0, x1) = (l[i], l[i + 1]);
        let (y0, y1) = (self.pct[i], self.pct[i + 1]);
        let y = y0 + (y1 - y0) * ((u - x0) / (x1 - x0)).clamp(0.0, 1.0);
        (y.round() as u64).max(1)
    }
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
