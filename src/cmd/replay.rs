//! `prewarm replay`: streams a trace into a running server as telemetry — an Azure Functions
//! invocations file (per-minute counts; function id = HashFunction; mean durations from an
//! optional durations file) or a CSV series — paced by `--speedup N` or as fast as possible.
//! Prints what was sent, accepted and rejected, and the rate.

use crate::cmd::ExitError;
use anyhow::Context;
use prewarm_scaler::service::proto::prewarm::v1::{
    telemetry_client::TelemetryClient, IngestRequest, IngestResponse, Sample,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Arguments of `prewarm replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Azure invocations CSV (HashFunction + per-minute count columns), or a CSV series:
    /// `function,bin_start_ms,bin_width_ms,invocations[,concurrency][,mean_duration_ms]` or
    /// `timestamp,value` (timestamps `YYYY-MM-DD HH:MM:SS` or ms since the epoch).
    #[arg(long)]
    pub trace: PathBuf,
    /// Server gRPC address, e.g. http://127.0.0.1:9090.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub addr: String,
    /// Replay speed: `N` times real time, or `max`.
    #[arg(long, default_value = "max")]
    pub speedup: String,
    /// Azure durations CSV (HashFunction, Average) for mean durations.
    #[arg(long)]
    pub durations: Option<PathBuf>,
    /// Time of the trace's first minute (Azure traces), ms since the epoch [default: the
    /// current minute minus the trace length, so a wall-clock server accepts every bin].
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Function id for a two-column series [default: the file stem].
    #[arg(long)]
    pub function: Option<String>,
    /// Samples per message.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// TLS and token options.
    #[command(flatten)]
    pub client: crate::cmd::client::ClientArgs,
}

/// Samples grouped by bin start, in time order.
type Timeline = BTreeMap<i64, Vec<Sample>>;

fn sample(id: &str, start: i64, width: i64, n: f64) -> Sample {
    Sample {
        function_id: id.to_string(),
        bin_start_ms: start,
        bin_width_ms: width,
        invocations: n,
        concurrency: None,
        mean_duration_ms: None,
        cold_starts: None,
    }
}

fn bad(path: &Path, line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
    ExitError::data(format!("{}:{line}: {msg}", path.display()))
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD HH:MM[:SS]` (or `T` separated) or integer ms since the epoch.
fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim().trim_matches('"');
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.trim_end_matches('Z').split(':');
    let h = t.next()?.parse::<i64>().ok()?;
    let mi = t.next()?.parse::<i64>().ok()?;
    let se = t.next().map_or(Some(0.0), |x| x.parse::<f64>().ok())?;
    Some((days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60) * 1000 + (se * 1000.0) as i64)
}

fn read_durations(path: &Path) -> anyhow::Result<HashMap<String, f64>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExitError::data(format!("{}: {e}", path.display())))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(f), Some(a)) = (col("HashFunction"), col("Average")) else {
        return Err(bad(path, 1, "needs HashFunction and Average columns"));
    };
    let mut out = HashMap::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if let (Some(id), Some(avg)) = (cells.get(f), cells.get(a).and_then(|x| x.parse().ok())) {
            out.insert(id.to_string(), avg);
        }
    }
    Ok(out)
}

/// Reads a trace into a timeline.
fn read_trace(args: &Args) -> anyhow::Result<Timeline> {
    let path = &args.trace;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ExitError::data(format!("{}: {e}", path.display())))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<String> = lines
        .next()
        .map(|(_, h)| h.split(',').map(|c| c.trim().to_string()).collect())
        .unwrap_or_default();
    let mut tl = Timeline::new();
    if let Some(fcol) = header.iter().position(|h| h == "HashFunction") {
        // Azure: per-minute count columns named `N` or `minute_N`.
        let minutes: Vec<(usize, i64)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                h.trim_start_matches("minute_")
                    .parse::<i64>()
                    .ok()
                    .map(|m| (i, m - 1))
            })
            .collect();
        if minutes.is_empty() {
            return Err(bad(path, 1, "no per-minute count columns"));
        }
        let span = minutes.iter().map(|m| m.1).max().unwrap_or(0) + 1;
        let start = args.start_ms.unwrap_or_else(|| {
            let now = prewarm_scaler::service::grpc::wall_now() as i64;
            now / 60_000 * 60_000 - span * 60_000
        });
        let durations = match &args.durations {
            Some(p) => read_durations(p)?,
            None => HashMap::new(),
        };
        for (ln, line) in lines {
            let cells: Vec<&str> = line.split(',').collect();
            let id = cells
                .get(fcol)
                .ok_or_else(|| bad(path, ln + 1, "missing HashFunction"))?;
            for &(col, m) in &minutes {
                let n: f64 = match cells.get(col).map(|c| c.trim()) {
                    None | Some("") => continue,
                    Some(c) => c
                        .parse()
                        .map_err(|_| bad(path, ln + 1, format!("`{c}` is not a count")))?,
                };
                if n > 0.0 {
                    let mut s = sample(id, start + m * 60_000, 60_000, n);
                    s.mean_duration_ms = durations.get(*id).copied();
                    tl.entry(s.bin_start_ms).or_default().push(s);
                }
            }
        }
    } else if header.first().map(String::as_str) == Some("function") {
        let col = |n: &str| header.iter().position(|h| h == n);
        let (Some(ts), Some(w), Some(inv)) =
            (col("bin_start_ms"), col("bin_width_ms"), col("invocations"))
        else {
            return Err(bad(
                path,
                1,
                "needs bin_start_ms, bin_width_ms, invocations",
            ));
        };
        let (conc, dur) = (col("concurrency"), col("mean_duration_ms"));
        for (ln, line) in lines {
            let c: Vec<&str> = line.split(',').map(str::trim).collect();
            let num = |i: usize| -> anyhow::Result<f64> {
                c.get(i)
                    .and_then(|x| x.parse::<f64>().ok())
                    .ok_or_else(|| bad(path, ln + 1, format!("column {} is not a number", i + 1)))
            };
            let mut s = sample(c[0], num(ts)? as i64, num(w)? as i64, num(inv)?);
            s.concurrency = conc.and_then(|i| c.get(i)?.parse().ok());
            s.mean_duration_ms = dur.and_then(|i| c.get(i)?.parse().ok());
            tl.entry(s.bin_start_ms).or_default().push(s);
        }
    } else {
        // Two-column series: timestamp,value.
        let id = args.function.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "series".into())
        });
        let mut rows = Vec::new();
        for (ln, line) in lines {
            let (t, v) = line
                .split_once(',')
                .ok_or_else(|| bad(path, ln + 1, "expected timestamp,value"))?;
            let t = parse_time_ms(t).ok_or_else(|| bad(path, ln + 1, "bad timestamp"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| bad(path, ln + 1, format!("`{v}` is not a number")))?;
            rows.push((t, v));
        }
        for i in 0..rows.len() {
            let width = if i + 1 < rows.len() {
                rows[i + 1].0 - rows[i].0
            } else if i > 0 {
                rows[i].0 - rows[i - 1].0
            } else {
                60_000
            };
            let s = sample(&id, rows[i].0, width.max(1), rows[i].1.max(0.0));
            tl.entry(s.bin_start_ms).or_default().push(s);
        }
    }
    Ok(tl)
}

/// Counts of a replay.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    rejected: u64,
    reasons: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, r: &IngestResponse) {
        self.accepted += r.accepted;
        self.rejected += r.rejected;
        for x in &r.rejections {
            *self.reasons.entry(x.reason.clone()).or_default() += 1;
        }
    }
}

/// Runs `prewarm replay`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let speedup: Option<f64> = match args.speedup.as_str() {
        "max" => None,
        s => match s.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => Some(x),
            _ => {
                return Err(ExitError::config(format!(
                    "config key `--speedup`: `{s}` is not a positive number or `max`"
                )))
            }
        },
    };
    if args.batch == 0 {
        return Err(ExitError::config(
            "config key `--batch`: must be at least 1",
        ));
    }
    let timeline = read_trace(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let tally = rt.block_on(async {
        let window = prewarm_scaler::service::server::GRPC_STREAM_WINDOW;
        let channel = args
            .client
            .connect(&args.addr, |e| {
                e.initial_stream_window_size(window)
                    .initial_connection_window_size(2 * window)
            })
            .await?;
        let mut client = TelemetryClient::with_interceptor(channel, args.client.bearer()?)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(256 << 20);
        let mut tally = Tally::default();
        let t0 = timeline.keys().next().copied().unwrap_or(0);
        let started = Instant::now();
        for (t, samples) in timeline {
            if let Some(x) = speedup {
                let due = Duration::from_secs_f64((t - t0).max(0) as f64 / 1000.0 / x);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            for chunk in samples.chunks(args.batch) {
                tally.sent += chunk.len() as u64;
                let req = IngestRequest {
                    samples: chunk.to_vec(),
                };
                match client.ingest(req).await {
                    Ok(r) => tally.add(r.get_ref()),
                    Err(st) => match prost::Message::decode(st.details()) {
                        Ok(r) if !st.details().is_empty() => tally.add(&r),
                        _ => return Err(anyhow::anyhow!("ingest failed: {st}")),
                    },
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        outln!(
            "sent {} samples in {secs:.2} s ({:.0} samples/s): {} accepted, {} rejected",
            tally.sent,
            tally.sent as f64 / secs.max(1e-9),
            tally.accepted,
            tally.rejected
        );
        Ok::<Tally, anyhow::Error>(tally)
    })?;
    for (reason, n) in &tally.reasons {
        outln!("  rejected ({reason}): {n} (first details only)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_time_ms("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_time_ms("2014-04-01 00:05:00"),
            Some(1_396_310_700_000)
        );
        assert_eq!(parse_time_ms("1396310700000"), Some(1_396_310_700_000));
        assert_eq!(parse_time_ms("yesterday"), None);
    }
}
