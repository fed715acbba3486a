//! Input validation of telemetry samples and function ids: every rejection has a
//! machine-readable reason (the metric label and the API `reason`) and a precise message.

use super::proto::prewarm::v1::Sample;
use crate::policy::Millis;

/// Earliest accepted bin start: 2000-01-01T00:00:00Z.
pub const MIN_TIME_MS: i64 = 946_684_800_000;
/// Latest accepted bin start: 2100-01-01T00:00:00Z.
pub const MAX_TIME_MS: i64 = 4_102_444_800_000;
/// Widest accepted bin: 1 h.
pub const MAX_WIDTH_MS: i64 = 3_600_000;
/// How far past the clock a bin may end in wall mode: 5 min.
pub const WALL_FUTURE_MS: Millis = 5 * 60_000;
/// How far past the event clock a bin may end in event mode: 1 day.
pub const EVENT_FUTURE_MS: Millis = 86_400_000;

/// Why a sample was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Empty, too long, or with characters outside `[A-Za-z0-9._:/-]`.
    BadFunctionId,
    /// Invocation or cold-start count NaN, infinite, negative or absurdly large.
    BadCount,
    /// Bin width outside 1 ms ..= 1 h.
    BadWidth,
    /// Concurrency NaN, infinite or negative.
    BadConcurrency,
    /// Mean duration NaN, infinite, negative or over a day.
    BadDuration,
    /// Bin older than the history keeps (or before 2000).
    TooOld,
    /// Bin in the future (or after 2100).
    TooNew,
    /// Function not configured and auto-registration is off.
    UnknownFunction,
    /// Function cap reached.
    TooManyFunctions,
}

impl RejectReason {
    /// Every reason, for metric pre-registration.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::BadFunctionId,
        RejectReason::BadCount,
        RejectReason::BadWidth,
        RejectReason::BadConcurrency,
        RejectReason::BadDuration,
        RejectReason::TooOld,
        RejectReason::TooNew,
        RejectReason::UnknownFunction,
        RejectReason::TooManyFunctions,
    ];

    /// The label used in metrics and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::BadFunctionId => "bad_function_id",
            RejectReason::BadCount => "bad_count",
            RejectReason::BadWidth => "bad_width",
            RejectReason::BadConcurrency => "bad_concurrency",
            RejectReason::BadDuration => "bad_duration",
            RejectReason::TooOld => "too_old",
            RejectReason::TooNew => "too_new",
            RejectReason::UnknownFunction => "unknown_function",
            RejectReason::TooManyFunctions => "too_many_functions",
        }
    }
}

/// A rejected sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Index in the batch.
    pub index: usize,
    /// Function id as sent.
    pub function_id: String,
    /// Reason.
    pub reason: RejectReason,
    /// Detail.
    pub message: String,
}

/// Checks a function id: 1-253 characters of `[A-Za-z0-9._:/-]`.
pub fn check_function_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("function id is empty".into());
    }
    if id.len() > 253 {
        return Err(format!("function id is {} bytes long (max 253)", id.len()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-')))
    {
        return Err(format!(
            "function id `{}` contains {c:?} (allowed: A-Z a-z 0-9 . _ : / -)",
            id.escape_debug()
        ));
    }
    Ok(())
}

fn finite_nonneg(x: f64, max: f64) -> bool {
    x.is_finite() && (0.0..=max).contains(&x)
}

/// Validates one sample against the clock `now` (wall time, or the event clock if set) and
/// returns its concurrency integral in invocation·ms.
pub fn check_sample(
    s: &Sample,
    now: Option<Millis>,
    future_ms: Millis,
    default_duration_ms: f64,
) -> Result<f64, (RejectReason, String)> {
    use RejectReason::*;
    check_function_id(&s.function_id).map_err(|m| (BadFunctionId, m))?;
    if !finite_nonneg(s.invocations, 1e12) {
        return Err((
            BadCount,
            format!("invocations {} is not a finite count >= 0", s.invocations),
        ));
    }
    if let Some(c) = s.cold_starts {
        if !finite_nonneg(c, 1e12) {
            return Err((
                BadCount,
                format!("cold_starts {c} is not a finite count >= 0"),
            ));
        }
        if c > s.invocations {
            return Err((
                BadCount,
                format!(
                    "cold_starts {c} exceeds invocations {} (each cold start is an invocation)",
                    s.invocations
                ),
            ));
        }
    }
    if !(1..=MAX_WIDTH_MS).contains(&s.bin_width_ms) {
        return Err((
            BadWidth,
            format!("bin_width_ms {} is outside 1..=3600000", s.bin_width_ms),
        ));
    }
    if let Some(c) = s.concurrency {
        if !finite_nonneg(c, 1e9) {
            return Err((
                BadConcurrency,
                format!("concurrency {c} is not a finite value >= 0"),
            ));
        }
    }
    if let Some(d) = s.mean_duration_ms {
        if !finite_nonneg(d, 86_400_000.0) {
            return Err((
                BadDuration,
                format!("mean_duration_ms {d} is not within 0..=86400000"),
            ));
        }
    }
    if s.bin_start_ms < MIN_TIME_MS {
        return Err((
            TooOld,
            format!("bin_start_ms {} is before 2000-01-01", s.bin_start_ms),
        ));
    }
    if s.bin_start_ms >= MAX_TIME_MS {
        return Err((
            TooNew,
            format!("bin_start_ms {} is after 2100-01-01", s.bin_start_ms),
        ));
    }
    let start = s.bin_start_ms as Millis;
    let end = start + s.bin_width_ms as Millis;
    if let Some(now) = now {
        if end > now.saturating_add(future_ms) {
            return Err((
                TooNew,
                format!(
                    "bin ends at {end} ms, more than {future_ms} ms after the clock ({now} ms)"
                ),
            ));
        }
        if end + super::history::RETENTION_MS <= now {
            return Err((
                TooOld,
                format!("bin ends at {end} ms, older than the 28 d history ({now} ms now)"),
            ));
        }
    }
    let width = s.bin_width_ms as f64;
    Ok(match (s.concurrency, s.mean_duration_ms) {
        (Some(c), _) => c * width,
        (None, Some(d)) => s.invocations * d,
        (None, None) => s.invocations * default_duration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, n: f64) -> Sample {
        Sample {
            function_id: id.into(),
            bin_start_ms: 1_700_000_000_000,
            bin_width_ms: 10_000,
            invocations: n,
            concurrency: None,
            mean_duration_ms: Some(200.0),
            cold_starts: None,
        }
    }

    #[test]
    fn rejects_with_reasons() {
        let now = Some(1_700_000_010_000);
        let r = |s: &Sample| check_sample(s, now, WALL_FUTURE_MS, 1000.0).map_err(|e| e.0);
        assert_eq!(r(&sample("a", 10.0)), Ok(2000.0));
        assert_eq!(r(&sample("a", f64::NAN)), Err(RejectReason::BadCount));
        assert_eq!(r(&sample("a", -1.0)), Err(RejectReason::BadCount));
        assert_eq!(r(&sample("", 1.0)), Err(RejectReason::BadFunctionId));
        assert_eq!(r(&sample("a b", 1.0)), Err(RejectReason::BadFunctionId));
        let mut s = sample("a", 1.0);
        s.bin_start_ms += 3_600_000;
        assert_eq!(r(&s), Err(RejectReason::TooNew));
        s.bin_start_ms = 1_600_000_000_000;
        assert_eq!(r(&s), Err(RejectReason::TooOld));
        s.bin_start_ms = 5;
        assert_eq!(r(&s), Err(RejectReason::TooOld));
        let mut s = sample("a", 1.0);
        s.bin_width_ms = 0;
        assert_eq!(r(&s), Err(RejectReason::BadWidth));
        let mut s = sample("a", 1.0);
        s.concurrency = Some(f64::INFINITY);
        assert_eq!(r(&s), Err(RejectReason::BadConcurrency));
    }
}
