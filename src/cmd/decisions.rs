//! `prewarm decisions`: prints the current decisions of a running server (one function or all),
//! as a table or JSON lines, and optionally follows changes (`--watch`).

use anyhow::Context;
use prewarm_scaler::service::proto::prewarm::v1::{
    decisions_client::DecisionsClient, FunctionDecision, GetDecisionRequest, ListDecisionsRequest,
    WatchDecisionsRequest,
};

/// Arguments of `prewarm decisions`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Server gRPC address, e.g. http://127.0.0.1:9090.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    pub addr: String,
    /// Only this function.
    #[arg(long)]
    pub function: Option<String>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep printing changes until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// TLS and token options.
    #[command(flatten)]
    pub client: crate::cmd::client::ClientArgs,
}

fn json(d: &FunctionDecision) -> String {
    serde_json::json!({
        "function": d.function_id,
        "desired_replicas": d.desired_replicas,
        "active": d.active,
        "reason": d.reason,
        "policy": d.policy,
        "model": d.model,
        "forecast": d.forecast,
        "decided_at_ms": d.decided_at_ms,
        "version": d.version,
    })
    .to_string()
}

fn row(d: &FunctionDecision) -> String {
    format!(
        "{:<40} {:>8} {:>6} {:<18} {:<24} {:>10.2} {:>15}",
        d.function_id,
        d.desired_replicas,
        d.active,
        d.reason,
        d.policy,
        d.forecast,
        d.decided_at_ms
    )
}

/// Runs `prewarm decisions`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let channel = args.client.connect(&args.addr, |e| e).await?;
        let mut c = DecisionsClient::with_interceptor(channel, args.client.bearer()?);
        let print = |d: &FunctionDecision| {
            if args.json {
                outln!("{}", json(d));
            } else {
                outln!("{}", row(d));
            }
        };
        if !args.json {
            outln!(
                "{:<40} {:>8} {:>6} {:<18} {:<24} {:>10} {:>15}",
                "FUNCTION",
                "DESIRED",
                "ACTIVE",
                "REASON",
                "POLICY",
                "FORECAST",
                "DECIDED_AT_MS"
            );
        }
        if args.watch {
            let mut s = c
                .watch_decisions(WatchDecisionsRequest {
                    function_ids: args.function.iter().cloned().collect(),
                })
                .await
                .context("WatchDecisions")?
                .into_inner();
            while let Some(d) = s.message().await.context("WatchDecisions")? {
                print(&d);
            }
            return Ok(());
        }
        match &args.function {
            Some(id) => {
                let d = c
                    .get_decision(GetDecisionRequest {
                        function_id: id.clone(),
                    })
                    .await
                    .with_context(|| format!("GetDecision {id}"))?;
                print(d.get_ref());
            }
            None => {
                let l = c
                    .list_decisions(ListDecisionsRequest {})
                    .await
                    .context("ListDecisions")?;
                l.get_ref().decisions.iter().for_each(print);
            }
        }
        Ok(())
    })
}
