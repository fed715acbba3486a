//! Change detection for credential files (certificate, key, client CA, token file): their
//! contents are fingerprinted and polled on an interval; a changed version that fails to load
//! is reported once (log and metrics) while the previous good one stays in use.

use super::metrics::Metrics;
use super::ServiceError;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Reads every file in full; the error names the file that failed.
pub fn read_files(paths: &[&Path]) -> Result<Vec<Vec<u8>>, ServiceError> {
    paths
        .iter()
        .map(|p| {
            std::fs::read(p).map_err(|e| ServiceError::credentials(p, format!("cannot read: {e}")))
        })
        .collect()
}

/// A fingerprint of file contents (or of a read error), to notice changes. Not a security
/// boundary: a collision only delays a reload.
pub fn fingerprint<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// What one poll found.
#[derive(Debug)]
pub enum Reload {
    /// The files are the version in use.
    Unchanged,
    /// A new version was loaded and is now in use.
    Reloaded,
    /// A new version failed to load; the previous one stays in use.
    Rejected(ServiceError),
    /// The version that failed before is still there (already reported).
    StillRejected,
}

/// Which version is in use and which one was last rejected.
#[derive(Debug)]
pub struct Tracker {
    applied: u64,
    rejected: Option<u64>,
}

impl Tracker {
    /// A tracker whose version in use has fingerprint `applied`.
    pub fn new(applied: u64) -> Self {
        Tracker {
            applied,
            rejected: None,
        }
    }

    /// Polls once: `read` gets the current contents, `apply` loads them (called only for a
    /// version not seen before).
    pub fn poll<T: Hash>(
        &mut self,
        read: impl FnOnce() -> Result<T, ServiceError>,
        apply: impl FnOnce(T) -> Result<(), ServiceError>,
    ) -> Reload {
        let (fp, contents) = match read() {
            Ok(c) => (fingerprint(&c), Ok(c)),
            Err(e) => (fingerprint(&e.to_string()), Err(e)),
        };
        if fp == self.applied {
            self.rejected = None;
            return Reload::Unchanged;
        }
        if self.rejected == Some(fp) {
            return Reload::StillRejected;
        }
        match contents.and_then(apply) {
            Ok(()) => {
                self.applied = fp;
                self.rejected = None;
                Reload::Reloaded
            }
            Err(e) => {
                self.rejected = Some(fp);
                Reload::Rejected(e)
            }
        }
    }
}

/// Something whose files can be polled for changes.
pub trait Reloadable: Send + Sync + 'static {
    /// Label for logs and metrics (`tls`, `tokens`).
    fn what(&self) -> &'static str;
    /// Checks the files once and loads a changed version.
    fn reload(&self) -> Reload;
}

/// Runs `target.reload()` every `every_ms` until the server drains; logs and counts the
/// outcomes (the error text names the file, never a secret).
pub fn spawn_poller<R: Reloadable>(
    target: Arc<R>,
    every_ms: u64,
    metrics: Arc<Metrics>,
    mut drain: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let what = target.what();
    metrics
        .credential_reload_failing
        .with_label_values(&[what])
        .set(0);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = drain.wait_for(|d| *d) => return,
                _ = tokio::time::sleep(Duration::from_millis(every_ms)) => {}
            }
            let t = target.clone();
            let Ok(outcome) = tokio::task::spawn_blocking(move || t.reload()).await else {
                continue;
            };
            let failing = metrics.credential_reload_failing.with_label_values(&[what]);
            match outcome {
                Reload::Unchanged => failing.set(0),
                Reload::StillRejected => failing.set(1),
                Reload::Reloaded => {
                    failing.set(0);
                    metrics
                        .credential_reloads
                        .with_label_values(&[what, "ok"])
                        .inc();
                    tracing::info!(what, "credential files changed: reloaded");
                }
                Reload::Rejected(e) => {
                    failing.set(1);
                    metrics
                        .credential_reloads
                        .with_label_values(&[what, "error"])
                        .inc();
                    tracing::warn!(what, error = %e, "changed credential files rejected; keeping the previous ones");
                }
            }
        }
    })
}

/// Shared [`Tracker`] behind a mutex (the poller and tests reload through `&self`).
#[derive(Debug)]
pub struct SharedTracker(Mutex<Tracker>);

impl SharedTracker {
    /// A tracker whose version in use has fingerprint `applied`.
    pub fn new(applied: u64) -> Self {
        SharedTracker(Mutex::new(Tracker::new(applied)))
    }

    /// [`Tracker::poll`] under the lock.
    pub fn poll<T: Hash>(
        &self,
        read: impl FnOnce() -> Result<T, ServiceError>,
        apply: impl FnOnce(T) -> Result<(), ServiceError>,
    ) -> Reload {
        match self.0.lock() {
            Ok(mut t) => t.poll(read, apply),
            Err(poisoned) => poisoned.into_inner().poll(read, apply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_version_is_reported_once_and_a_good_one_applies() {
        let mut t = Tracker::new(fingerprint(&1u32));
        assert!(matches!(t.poll(|| Ok(1u32), |_| Ok(())), Reload::Unchanged));
        let bad = |_: u32| Err(ServiceError::InvalidArgument("bad".into()));
        assert!(matches!(t.poll(|| Ok(2u32), bad), Reload::Rejected(_)));
        assert!(matches!(t.poll(|| Ok(2u32), bad), Reload::StillRejected));
        assert!(matches!(t.poll(|| Ok(3u32), |_| Ok(())), Reload::Reloaded));
        assert!(matches!(t.poll(|| Ok(3u32), bad), Reload::Unchanged));
    }
}
