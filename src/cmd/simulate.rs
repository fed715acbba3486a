//! `prewarm simulate`: replays a trace through policies and reports cold starts, wasted
//! memory and latency as a table, JSON and SVG plots.

use super::ExitError;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use prewarm_scaler::policy::{PolicyFactory, PolicySpec, ShadowFactory};
use prewarm_simulator::engine::{SimConfig, Timeline};
use prewarm_simulator::run::{self, is_fixed10, Progress, RunError, RunOptions};
use prewarm_simulator::trace::azure::{parse_days, AzureTrace};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The policies run when `--policy` is not given: every baseline.
pub const DEFAULT_POLICIES: &str = "fixed,hybrid-histogram,reactive,none";

/// Arguments of `prewarm simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace directory (Azure Functions 2019 layout). Default: the sample shipped in
    /// data/azure2019-sample.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Days of a 14-day trace to replay, e.g. `1-14` or `3`.
    #[arg(long)]
    pub days: Option<String>,
    /// Comma-separated policies, e.g. `fixed,fixed:20m,hybrid-histogram,reactive,none`.
    #[arg(long, default_value = DEFAULT_POLICIES)]
    pub policy: String,
    /// RNG seed (arrival times inside a minute, durations).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cold-start delay in ms.
    #[arg(long, default_value_t = 1000)]
    pub cold_start_ms: u64,
    /// Invocations one instance serves at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: u32,
    /// Cluster memory capacity in GB; idle instances are evicted LRU-first beyond it.
    #[arg(long)]
    pub capacity_gb: Option<f64>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG plot: the policies on cold starts vs wasted memory, or with --timeline the
    /// function's timeline.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Record the per-minute timeline of this function id (HashFunction).
    #[arg(long)]
    pub timeline: Option<String>,
    /// Also trace each parametrised policy's Pareto curve (fixed keep-alive 1–240 min,
    /// hybrid-histogram ranges 1–4 h, predictive over its cost knob) into `sweep` rows and the
    /// plot.
    #[arg(long)]
    pub sweep: bool,
    /// Write per-function results (policy, function, invocations, cold starts, wasted GB·s,
    /// pre-warms) as CSV to this file.
    #[arg(long)]
    pub per_function: Option<PathBuf>,
    /// Shadow policy: computed beside each `--policy` on that policy's run and reported next to
    /// it (what it would have decided), never applied; e.g. `--policy fixed --shadow predictive`.
    #[arg(long)]
    pub shadow: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The policies of `--sweep`: each parametrised family over its knob.
pub const SWEEP_POLICIES: &str =
    "fixed:1m,fixed:2m,fixed:5m,fixed:10m,fixed:20m,fixed:30m,fixed:60m,fixed:120m,fixed:240m,\
hybrid-histogram:1h,hybrid-histogram:2h,hybrid-histogram:3h,hybrid-histogram:4h,\
predictive:cost=10,predictive:cost=25,predictive:cost=50,predictive:cost=100,predictive:cost=150,\
predictive:cost=250,predictive:cost=400,predictive:cost=700,predictive:cost=1200";

/// The bundled sample trace: next to the working directory, else next to the sources.
pub fn default_trace_dir() -> PathBuf {
    let local = PathBuf::from("data/azure2019-sample");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/azure2019-sample")
    }
}

struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn day(&self, day: u32, active: usize) {
        if let Some(b) = &self.0 {
            b.set_message(format!("day {} ({active} functions)", day + 1));
        }
    }
    fn advance(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
}

/// Parses and builds the policies of a comma-separated list (exit 64 on a bad spec).
pub fn build_policies(list: &str) -> anyhow::Result<Vec<Box<dyn PolicyFactory>>> {
    let specs =
        PolicySpec::parse_list(list).map_err(|e| ExitError::config(format!("--policy: {e}")))?;
    if specs.is_empty() {
        return Err(ExitError::config("--policy: no policy given"));
    }
    specs
        .iter()
        .map(|s| {
            s.build()
                .map_err(|e| ExitError::config(format!("--policy: {e}")))
        })
        .collect()
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.cold_start_ms > 3_600_000 {
        return Err(ExitError::config("--cold-start-ms: at most 3600000"));
    }
    if args.concurrency == 0 {
        return Err(ExitError::config("--concurrency: must be at least 1"));
    }
    if let Some(c) = args.capacity_gb {
        if !(c.is_finite() && c > 0.0) {
            return Err(ExitError::config(
                "--capacity-gb: must be a positive number",
            ));
        }
    }
    let days = match &args.days {
        Some(d) => Some(parse_days(d).map_err(|e| ExitError::config(format!("--days: {e}")))?),
        None => None,
    };
    let mut policies = build_policies(&args.policy)?;
    if let Some(sh) = &args.shadow {
        let build_shadow = || -> anyhow::Result<Box<dyn PolicyFactory>> {
            PolicySpec::parse(sh)
                .and_then(|s| s.build())
                .map_err(|e| ExitError::config(format!("--shadow: {e}")))
        };
        policies = policies
            .into_iter()
            .map(|applied| -> anyhow::Result<Box<dyn PolicyFactory>> {
                Ok(Box::new(ShadowFactory::new(applied, build_shadow()?)))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    let main_count = policies.len();
    if args.sweep {
        policies.extend(build_policies(SWEEP_POLICIES)?);
    }
    let baseline = if policies.iter().any(|p| is_fixed10(p.label())) {
        None
    } else {
        Some(build_policies("fixed")?.remove(0))
    };
    let dir = args.trace.clone().unwrap_or_else(default_trace_dir);
    let mut trace = AzureTrace::open(&dir, days).map_err(|e| ExitError::data(e.to_string()))?;
    if let Some(n) = args.threads {
        // Only the first pool configuration in a process takes effect.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }

    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg} {pos} function-days")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Some(b)
    } else {
        None
    };
    let cancel = super::cancel_flag();
    let opts = RunOptions {
        sim: SimConfig {
            seed: args.seed,
            cold_start_ms: args.cold_start_ms,
            concurrency: args.concurrency,
        },
        capacity_gb: args.capacity_gb,
        timeline: args.timeline.clone(),
        per_function: args.per_function.is_some(),
    };
    let progress = Bar(bar);
    let out = run::simulate(
        &mut trace,
        &policies,
        baseline.as_deref(),
        &opts,
        &progress,
        &cancel,
    );
    if let Some(b) = &progress.0 {
        b.finish_and_clear();
    }
    let mut out = match out {
        Ok(o) => o,
        Err(RunError::Trace(e)) => return Err(ExitError::data(e.to_string())),
        Err(RunError::Interrupted) => return Err(ExitError::interrupted()),
        Err(e @ RunError::UnknownTimelineFunction(_)) => {
            return Err(ExitError::config(e.to_string()))
        }
    };
    let sweep = out.report.results.split_off(main_count);
    out.report.sweep = sweep;
    out.timelines.truncate(main_count);
    out!("{}", out.report.table());
    if let Some(f) = &args.timeline {
        out!("{}", decisions_table(f, &out.timelines));
    }
    if let Some(path) = &args.json {
        let mut value = serde_json::to_value(&out.report)?;
        if let (Some(f), Some(obj)) = (&args.timeline, value.as_object_mut()) {
            let policies: Vec<serde_json::Value> = out
                .timelines
                .iter()
                .map(|(p, t)| serde_json::json!({"policy": p, "minutes": t.minutes, "decisions": t.decisions}))
                .collect();
            obj.insert(
                "timeline".into(),
                serde_json::json!({"function": f, "policies": policies}),
            );
        }
        let body = serde_json::to_string_pretty(&value)?;
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.per_function {
        write_per_function(path, &out.functions)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        match &args.timeline {
            Some(f) => prewarm_simulator::plot::timeline(f, &out.timelines, path)?,
            None => prewarm_simulator::plot::pareto(&out.report, path)?,
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes per-function rows as CSV.
fn write_per_function(path: &Path, rows: &[run::FunctionRow]) -> anyhow::Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(
        w,
        "policy,function,invocations,cold_starts,wasted_memory_gb_s,prewarms"
    )?;
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{:.3},{}",
            r.policy, r.function, r.invocations, r.cold_starts, r.wasted_memory_gb_s, r.prewarms
        )?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// Decisions shown per policy in the `--timeline` table (all of them go to `--json`).
const TIMELINE_ROWS: usize = 25;

/// The explained decisions of the `--timeline` function, per policy.
fn decisions_table(function: &str, timelines: &[(String, Timeline)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (policy, tl) in timelines {
        let _ = writeln!(
            out,
            "\ndecisions for {function} under {policy} ({} recorded; --json has all):",
            tl.decisions.len()
        );
        let _ = writeln!(
            out,
            "{:>12}  {:>6}  {:<18} inputs",
            "time", "target", "reason"
        );
        for d in tl.decisions.iter().take(TIMELINE_ROWS) {
            let target = d.target.map_or("-".to_string(), |t| t.to_string());
            let reason = d.explain.reason.label();
            let inputs = match &d.idle {
                Some(w) if w.until_ms == 0 => format!(
                    "idle window: unload (no window worth its memory; {} idle times)",
                    w.samples
                ),
                Some(w) => format!(
                    "idle window [{}, {}) after idle start, {} instance(s), P(cold) {:.3}, \
                     E[idle held] {:.0} s, {} idle times",
                    fmt_ms(w.from_ms),
                    fmt_ms(w.until_ms),
                    w.instances,
                    w.p_cold,
                    w.expected_idle_s,
                    w.samples
                ),
                None => format!(
                    "model {}, forecast {:.2}, quantile {:.3}, lead {}, unclipped {}",
                    if d.explain.model.is_empty() {
                        "-"
                    } else {
                        d.explain.model
                    },
                    d.explain.forecast,
                    d.explain.quantile,
                    fmt_ms(d.explain.lead_ms),
                    d.explain.unclipped
                ),
            };
            let _ = writeln!(
                out,
                "{:>12}  {target:>6}  {reason:<18} {inputs}",
                fmt_ms(d.at)
            );
        }
    }
    out
}

/// `h:mm:ss` for trace times and durations.
fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
