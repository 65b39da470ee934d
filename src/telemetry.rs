//! Prometheus metrics on `/metrics`.
//!
//! Label values come only from bounded sets: operation names, AWS error codes and
//! `success`. Never a secret name, a workspace id or a value.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;

/// Request duration histogram, by operation and status.
pub const OPERATION_DURATION: &str = "vault_secret_operation_duration_seconds";
/// Request counter, by operation and status.
pub const OPERATIONS_TOTAL: &str = "vault_secret_operations_total";

/// Install the global Prometheus recorder; `None` if one is already installed.
pub fn install() -> Option<PrometheusHandle> {
    let buckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &buckets)
        .ok()?
        .set_buckets_for_metric(Matcher::Prefix("vault_audit_".into()), &buckets)
        .ok()?
        .install_recorder()
        .ok()?;
    describe();
    let upkeep = handle.clone();
    // Histograms are drained by upkeep; without it they grow without bound.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

fn describe() {
    metrics::describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Time to serve a request, by operation and status"
    );
    metrics::describe_counter!(OPERATIONS_TOTAL, "Requests served, by operation and status");
    metrics::describe_counter!("vault_cache_hits_total", "Secret cache hits, by cache");
    metrics::describe_counter!("vault_cache_misses_total", "Secret cache misses, by cache");
    metrics::describe_counter!(
        "vault_cache_rechecks_total",
        "Background rechecks of cached secret states, by result (current, stale or failed)"
    );
    metrics::describe_histogram!(
        "vault_cache_recheck_seconds",
        metrics::Unit::Seconds,
        "Time to read the rows of one batch of rechecks"
    );
    metrics::describe_histogram!("vault_audit_batch_size", "Audit rows per group commit");
    metrics::describe_histogram!(
        "vault_audit_commit_seconds",
        metrics::Unit::Seconds,
        "Time to commit one audit batch"
    );
    metrics::describe_gauge!("vault_db_pool_connections", "Database connections open");
    metrics::describe_gauge!("vault_db_pool_idle", "Database connections idle");
    metrics::describe_gauge!("vault_db_pool_in_use", "Database connections in use");
}

/// Request metric handles, resolved once per label set.
///
/// `metrics::counter!` looks its series up in the recorder's registry on every call (a key
/// with a label vector, hashed and compared): 2.6% of a hot read's CPU. The label values
/// here are `&'static str`s, so their addresses identify them; the same text at two
/// addresses only makes two entries for one series. Build it after [`install`]: handles
/// resolved before a recorder exists go nowhere.
#[derive(Default)]
pub struct RequestMetrics {
    handles: std::sync::RwLock<std::collections::HashMap<[usize; 3], Handles>>,
}

#[derive(Clone)]
struct Handles {
    total: metrics::Counter,
    duration: metrics::Histogram,
}

impl RequestMetrics {
    /// Record one served request.
    pub fn record(
        &self,
        api: &'static str,
        operation: &'static str,
        status: &'static str,
        elapsed: Duration,
    ) {
        let key = [api.as_ptr(), operation.as_ptr(), status.as_ptr()].map(|p| p as usize);
        let known = self
            .handles
            .read()
            .ok()
            .and_then(|map| map.get(&key).cloned());
        let handles = known.unwrap_or_else(|| {
            let labels = [("api", api), ("operation", operation), ("status", status)];
            let handles = Handles {
                total: metrics::counter!(OPERATIONS_TOTAL, &labels),
                duration: metrics::histogram!(OPERATION_DURATION, &labels),
            };
            if let Ok(mut map) = self.handles.write() {
                map.insert(key, handles.clone());
            }
            handles
        });
        handles.total.increment(1);
        handles.duration.record(elapsed.as_secs_f64());
    }
}

/// Hit and miss counters of one cache, resolved once (see [`RequestMetrics`]).
pub struct CacheMetrics {
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl CacheMetrics {
    /// The counters of the cache called `name`.
    pub fn new(name: &'static str) -> CacheMetrics {
        CacheMetrics {
            hits: metrics::counter!("vault_cache_hits_total", "cache" => name),
            misses: metrics::counter!("vault_cache_misses_total", "cache" => name),
        }
    }

    /// Count one lookup.
    pub fn count(&self, hit: bool) {
        if hit {
            self.hits.increment(1);
        } else {
            self.misses.increment(1);
        }
    }
}
