//! The admin HTTP port: `/metrics` (Prometheus text exposition), `/live` (the process runs) and
//! `/ready` (200 while serving, 503 before start-up finished and while draining; the body's
//! second line gives the persistence state: `persistence: off`, `ok` or `degraded: <why>`).

use super::metrics::Metrics;
use super::persist::PersistStatus;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// State of the admin endpoints.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Readiness flag.
    pub ready: Arc<AtomicBool>,
    /// Redis persistence state. A degraded Redis keeps the service ready (it serves from
    /// memory); the body says so.
    pub persistence: Arc<PersistStatus>,
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn live() -> &'static str {
    "live\n"
}

async fn ready(State(s): State<AdminState>) -> (StatusCode, String) {
    let p = s.persistence.get().describe();
    if s.ready.load(Ordering::Acquire) {
        (StatusCode::OK, format!("ready\npersistence: {p}\n"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\npersistence: {p}\n"),
        )
    }
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/live", get(live))
        .route("/ready", get(ready))
        .with_state(state)
}
