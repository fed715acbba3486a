//! Persistence of per-function state in Redis (`--redis-url`): configuration, tiered history,
//! policy inputs and the last decision, so a restarted (or second) replica carries on.
//!
//! Key layout (prefix `prewarm:` by default):
//! - `{p}functions`: SET of function ids;
//! - `{p}fn:{id}`: HASH with `config` (JSON), `meta` (JSON: ring heads, counts, last tick,
//!   current desired) and `decision` (JSON);
//! - `{p}fn:{id}:r0` .. `r3`: STRING, the rings as little-endian f32 (10 s, 1 min, 5 min counts,
//!   then the 10 s concurrency integral); only changed slots are written (`SETRANGE`).
//!
//! Every flush is one atomic MULTI/EXEC pipeline per chunk of functions, run every
//! `flush_interval` (default 5 s, bounded to 1 s ..= 60 s) and once more at shutdown; so at most
//! one flush interval of telemetry is lost on a crash. Policy state is not serialised: it is
//! rebuilt at load by replaying the last `warm_replay` (default 1 h) of stored history through
//! a fresh policy, and the stored decision is served until the next tick.

use super::config::FunctionConfig;
use super::engine::{DirtyFunction, FunctionMeta, StoredFunction};
use super::ServiceError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::time::Duration;

/// Functions per flush pipeline.
const CHUNK: usize = 256;

/// Longest wait for a TCP connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one Redis reply (a flush pipeline of [`CHUNK`] functions included).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

fn rerr(e: redis::RedisError) -> ServiceError {
    ServiceError::Redis(e.to_string())
}

/// A Redis-backed store. The connection re-establishes itself after an I/O error (the command
/// that saw the error fails; the next one reconnects), so a flush that failed is simply retried
/// at the next interval.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

/// Checks a Redis URL without connecting (a malformed URL is a configuration error, an
/// unreachable server is not).
pub fn check_url(url: &str) -> Result<redis::Client, ServiceError> {
    redis::Client::open(url)
        .map_err(|e| ServiceError::InvalidArgument(format!("redis_url `{url}`: {e}")))
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (and pings) `url`: one attempt bounded by [`CONNECT_TIMEOUT`]; the caller
    /// owns retrying.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ServiceError> {
        let client = check_url(url)?;
        let cfg = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let mut conn = ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(rerr)?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(rerr)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// The server's `run_id` (from `INFO server`): it changes when Redis restarts or another
    /// server answers, the sign that what was flushed before may be gone.
    pub async fn run_id(&self) -> Result<String, ServiceError> {
        let mut conn = self.conn.clone();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(rerr)?;
        info.lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| ServiceError::Redis("INFO server has no run_id".into()))
    }

    fn fn_key(&self, id: &str) -> String {
        format!("{}fn:{id}", self.prefix)
    }

    /// Reads every stored function.
    pub async fn load_all(&self) -> Result<Vec<StoredFunction>, ServiceError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(format!("{}functions", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(rerr)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let k = self.fn_key(&id);
            type Row = (
                HashMap<String, String>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
            );
            let (hash, r0, r1, r2, r3): Row = redis::pipe()
                .cmd("HGETALL")
                .arg(&k)
                .cmd("GET")
                .arg(format!("{k}:r0"))
                .cmd("GET")
                .arg(format!("{k}:r1"))
                .cmd("GET")
                .arg(format!("{k}:r2"))
                .cmd("GET")
                .arg(format!("{k}:r3"))
                .query_async(&mut conn)
                .await
                .map_err(rerr)?;
            let Some(config) = hash
                .get("config")
                .and_then(|c| serde_json::from_str::<FunctionConfig>(c).ok())
            else {
                tracing::warn!(function = %id, "stored function has no readable config; skipped");
                continue;
            };
            let meta: FunctionMeta = hash
                .get("meta")
                .and_then(|m| serde_json::from_str(m).ok())
                .unwrap_or_default();
            let decision = hash
                .get("decision")
                .and_then(|d| serde_json::from_str(d).ok());
            out.push(StoredFunction {
                config,
                meta,
                decision,
                rings: [r0, r1, r2, r3],
            });
        }
        Ok(out)
    }

    /// Writes what changed and removes deleted functions.
    pub async fn flush(
        &self,
        dirty: &[DirtyFunction],
        deleted: &[String],
    ) -> Result<(), ServiceError> {
        let mut conn = self.conn.clone();
        let set = format!("{}functions", self.prefix);
        if !deleted.is_empty() {
            let mut p = redis::pipe();
            p.atomic();
            for id in deleted {
                let k = self.fn_key(id);
                p.cmd("DEL")
                    .arg(&k)
                    .arg(format!("{k}:r0"))
                    .arg(format!("{k}:r1"))
                    .arg(format!("{k}:r2"))
                    .arg(format!("{k}:r3"))
                    .ignore();
                p.cmd("SREM").arg(&set).arg(id).ignore();
            }
            p.query_async::<()>(&mut conn).await.map_err(rerr)?;
        }
        for chunk in dirty.chunks(CHUNK) {
            let mut p = redis::pipe();
            p.atomic();
            for f in chunk {
                let k = self.fn_key(&f.id);
                p.cmd("SADD").arg(&set).arg(&f.id).ignore();
                let mut h = p.cmd("HSET");
                h = h.arg(&k).arg("meta").arg(&f.meta);
                h = h.arg("decision").arg(&f.decision);
                if let Some(c) = &f.config {
                    h = h.arg("config").arg(c);
                }
                h.ignore();
                for (ring, offset, bytes) in &f.ring_runs {
                    p.cmd("SETRANGE")
                        .arg(format!("{k}:r{ring}"))
                        .arg(*offset)
                        .arg(bytes.as_slice())
                        .ignore();
                }
            }
            p.query_async::<()>(&mut conn).await.map_err(rerr)?;
        }
        Ok(())
    }
}
