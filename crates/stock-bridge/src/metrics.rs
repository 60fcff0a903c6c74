//! Prometheus metrics: names, and the one process-wide recorder `/metrics` renders.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const CONNECTED_CLIENTS: &str = "stock_bridge_connected_clients";
pub const BROADCASTS_ACCEPTED: &str = "stock_bridge_broadcasts_accepted_total";
pub const BROADCASTS_REJECTED: &str = "stock_bridge_broadcasts_rejected_total";
pub const DELIVERIES: &str = "stock_bridge_deliveries_total";
/// Writes (syscalls) to client connections; fewer than deliveries when bursts coalesce.
pub const SOCKET_WRITES: &str = "stock_bridge_socket_writes_total";
/// Connections that ended, by why (`ping_timeout`, `transport_closed`, `cut_too_slow`, …):
/// which cut dominates when many tills drop at once.
pub const DISCONNECTS: &str = "stock_bridge_disconnects_total";
/// `stock:catch_up` requests by outcome (`answered`, `refused`, `not_joined`: its socket
/// did not join the audience in time, `store_unreadable`, `not_sent`).
pub const CATCH_UPS: &str = "stock_bridge_catch_ups_total";
pub const SLOW_CLIENTS_DISCONNECTED: &str = "stock_bridge_slow_clients_disconnected_total";
pub const CONNECTIONS_REFUSED: &str = "stock_bridge_connections_refused_total";
pub const BROADCAST_LATENCY: &str = "stock_bridge_broadcast_to_emit_seconds";
pub const CACHED_PRODUCTS: &str = "stock_bridge_cached_products";
/// The connection cap in force: `STOCK_BRIDGE_MAX_CONNECTIONS`, or fewer when the
/// process's open-file limit leaves less room.
pub const MAX_CONNECTIONS: &str = "stock_bridge_max_connections";
pub const CONNECTIONS_OVER_CAPACITY: &str = "stock_bridge_connections_over_capacity_total";
pub const CLIENT_EVENTS_REFUSED: &str = "stock_bridge_client_events_refused_total";
/// Sockets closed because their token expired while they were connected.
pub const TOKENS_EXPIRED: &str = "stock_bridge_sockets_closed_token_expired_total";
pub const REDIS_UP: &str = "stock_bridge_redis_up";
/// Broadcast runs this node received from Redis but had no room for (cluster mode).
pub const CLUSTER_RUNS_DROPPED: &str = "stock_bridge_cluster_runs_dropped_total";
/// Unix time at which the served TLS certificate expires (alert on it getting close).
pub const TLS_CERT_NOT_AFTER: &str = "stock_bridge_tls_cert_not_after_seconds";
/// 1 while the served certificate is within its validity, else 0.
pub const TLS_CERT_VALID: &str = "stock_bridge_tls_cert_valid";
/// 1 while the last reload kept the previous pair (a bad or out-of-validity pair on disk).
pub const TLS_RELOAD_FAILED: &str = "stock_bridge_tls_reload_failed";

/// Tills in the fleet view, by state (`online`, `connecting`, `offline`, `refused`, `cut`).
pub const FLEET_TILLS: &str = "stock_bridge_fleet_tills";
/// Identified tills by app version (the 20 most run).
pub const FLEET_TILLS_BY_VERSION: &str = "stock_bridge_fleet_tills_by_version";
/// Health reports, by outcome (`accepted`, `invalid`, `too_frequent`, `not_identified`).
pub const FLEET_REPORTS: &str = "stock_bridge_fleet_reports_total";
/// Batches written to the fleet store, records in them, and writes that failed.
pub const FLEET_WRITES: &str = "stock_bridge_fleet_writes_total";
pub const FLEET_RECORDS_WRITTEN: &str = "stock_bridge_fleet_records_written_total";
pub const FLEET_WRITE_FAILURES: &str = "stock_bridge_fleet_write_failures_total";
/// Fleet messages from other nodes this node had no room for (cluster mode).
pub const FLEET_MESSAGES_DROPPED: &str = "stock_bridge_fleet_messages_dropped_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder once per process (later calls reuse it) and returns its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(BROADCAST_LATENCY.to_owned()),
                    &[0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1],
                )
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if the embedding program installed its own recorder first; then
            // that recorder gets our metrics and `/metrics` renders an empty page.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Health reports counted by outcome, their handles registered once (a report is counted
/// hundreds of times a second with a chain's tills: looking the counter up each time, its
/// name and label hashed, showed in profiles).
pub fn fleet_report(outcome: &'static str) {
    static COUNTERS: OnceLock<[(&'static str, metrics::Counter); 4]> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        ["accepted", "invalid", "too_frequent", "not_identified"]
            .map(|label| (label, metrics::counter!(FLEET_REPORTS, "outcome" => label)))
    });
    match counters.iter().find(|(label, _)| *label == outcome) {
        Some((_, counter)) => counter.increment(1),
        None => metrics::counter!(FLEET_REPORTS, "outcome" => outcome).increment(1),
    }
}
