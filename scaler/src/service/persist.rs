//! Redis persistence at run time: the start-up load, the flush loop, reconnection with backoff
//! while Redis is unreachable (the service keeps serving from memory), and the persistence
//! status shown by `/ready` and `prewarm_redis_up`.

use super::engine::Engine;
use super::grpc;
use super::store::{self, RedisStore};
use super::ServiceError;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// First wait before reconnecting to an unreachable Redis.
pub const RECONNECT_MIN: Duration = Duration::from_millis(500);
/// Longest wait between reconnection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// The state of Redis persistence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistState {
    /// No `--redis-url`: state is in memory only.
    Off,
    /// Stored state loaded and flushes succeed.
    Up,
    /// Redis unreachable (or failing): serving from memory, retrying.
    Degraded(String),
}

impl PersistState {
    /// One line for `/ready`: `off`, `ok` or `degraded: <why>`.
    pub fn describe(&self) -> String {
        match self {
            PersistState::Off => "off".into(),
            PersistState::Up => "ok".into(),
            PersistState::Degraded(why) => format!("degraded: {why}"),
        }
    }
}

/// Shared persistence status (written by the flush loop, read by the admin port).
#[derive(Debug)]
pub struct PersistStatus(Mutex<PersistState>);

impl PersistStatus {
    /// A status starting at `s`.
    pub fn new(s: PersistState) -> Self {
        Self(Mutex::new(s))
    }

    /// The current state.
    pub fn get(&self) -> PersistState {
        self.0
            .lock()
            .map(|s| s.clone())
            .unwrap_or(PersistState::Off)
    }

    fn set(&self, engine: &Engine, s: PersistState) {
        engine
            .metrics()
            .redis_up
            .set(i64::from(s == PersistState::Up));
        if let Ok(mut g) = self.0.lock() {
            *g = s;
        }
    }
}

/// Connects to Redis and loads every stored function into the engine (merging with what the
/// engine already holds, see [`Engine::restore`]).
pub async fn connect_and_load(
    url: &str,
    prefix: &str,
    engine: &Engine,
) -> Result<RedisStore, ServiceError> {
    let store = RedisStore::connect(url, prefix).await?;
    let stored = store.load_all().await?;
    let n = engine.restore(stored)?;
    tracing::info!(functions = n, "state loaded from redis");
    Ok(store)
}

/// Start-up: a malformed URL is an error; an unreachable Redis is not (the service starts
/// degraded and [`run`] keeps trying).
pub async fn start(
    url: Option<&str>,
    prefix: &str,
    engine: &Engine,
) -> Result<(Option<RedisStore>, PersistStatus), ServiceError> {
    let Some(url) = url else {
        return Ok((None, PersistStatus::new(PersistState::Off)));
    };
    store::check_url(url)?;
    let status = PersistStatus::new(PersistState::Off);
    match connect_and_load(url, prefix, engine).await {
        Ok(s) => {
            status.set(engine, PersistState::Up);
            Ok((Some(s), status))
        }
        Err(e) => {
            tracing::warn!(error = %e, "redis unreachable at start: serving from memory, reconnecting in the background");
            status.set(engine, PersistState::Degraded(e.to_string()));
            Ok((None, status))
        }
    }
}

/// Flushes what changed. A new Redis `run_id` (restart, failover) first marks everything for
/// a full rewrite, so state flushed before and lost with the old server is written again.
pub async fn flush(
    engine: &Engine,
    store: &RedisStore,
    run_id: &mut Option<String>,
) -> Result<(), ServiceError> {
    let id = store.run_id().await;
    let id = match id {
        Ok(id) => id,
        Err(e) => {
            engine
                .metrics()
                .redis_flushes
                .with_label_values(&["error"])
                .inc();
            return Err(e);
        }
    };
    if run_id.as_ref().is_some_and(|old| *old != id) {
        tracing::warn!("redis server changed (restart or failover): rewriting all state");
        engine.mark_all_unflushed();
    }
    *run_id = Some(id);
    let (dirty, deleted) = engine.take_dirty();
    if dirty.is_empty() && deleted.is_empty() {
        return Ok(());
    }
    let m = engine.metrics();
    let timer = m.redis_flush_seconds.start_timer();
    let span = tracing::info_span!(
        "redis_flush",
        functions = dirty.len(),
        deleted = deleted.len()
    );
    let res = tracing::Instrument::instrument(store.flush(&dirty, &deleted), span).await;
    timer.observe_duration();
    match res {
        Ok(()) => {
            m.redis_flushes.with_label_values(&["ok"]).inc();
            tracing::debug!(functions = dirty.len(), "flushed to redis");
            Ok(())
        }
        Err(e) => {
            m.redis_flushes.with_label_values(&["error"]).inc();
            let ids: Vec<String> = dirty.into_iter().map(|d| d.id).collect();
            engine.mark_unflushed(&ids, deleted);
            Err(e)
        }
    }
}

/// The persistence loop: flushes every `every` while Redis answers; while it does not, keeps
/// serving from memory and reconnects with exponential backoff (jittered, [`RECONNECT_MIN`] ..
/// [`RECONNECT_MAX`]), loading (and merging) the stored state once it is back. Returns the
/// store (if connected) for the final flush when `drain` fires.
pub async fn run(
    engine: Arc<Engine>,
    status: Arc<PersistStatus>,
    url: String,
    prefix: String,
    mut store: Option<RedisStore>,
    every: Duration,
    mut drain: watch::Receiver<bool>,
) -> Option<RedisStore> {
    let mut backoff = RECONNECT_MIN;
    let mut run_id = None;
    loop {
        let wait = match &store {
            Some(_) => every,
            None => jittered(backoff),
        };
        tokio::select! {
            _ = grpc::drained(&mut drain) => return store,
            _ = tokio::time::sleep(wait) => {}
        }
        match &store {
            Some(s) => match flush(&engine, s, &mut run_id).await {
                Ok(()) => status.set(&engine, PersistState::Up),
                Err(e) => {
                    tracing::warn!(error = %e, "redis flush failed; state kept in memory, will retry");
                    status.set(&engine, PersistState::Degraded(e.to_string()));
                }
            },
            None => match connect_and_load(&url, &prefix, &engine).await {
                Ok(s) => {
                    tracing::info!("redis reachable again: persistence restored");
                    // Everything held is written at the next flush (it was never flushed).
                    engine.mark_all_unflushed();
                    status.set(&engine, PersistState::Up);
                    store = Some(s);
                    backoff = RECONNECT_MIN;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "redis still unreachable");
                    status.set(&engine, PersistState::Degraded(e.to_string()));
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                }
            },
        }
    }
}

/// Equal jitter: a wait in `[d/2, d]`, from the clock's sub-second nanos (spreads replicas;
/// no decision depends on it).
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let half = d / 2;
    half + half.mul_f64(f64::from(nanos % 1000) / 1000.0)
}
