//! The tables: one row per server and case, and ratios.

use crate::load::Outcome;

pub(crate) fn row(name: &str, o: &Outcome) -> String {
    format!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.0} |",
        o.connected,
        o.p50_ms,
        o.p99_ms,
        o.max_ms,
        o.lost(),
        o.dups(),
        o.post_per_s,
        o.post_p50_ms,
        o.rss_idle_kib as f64 / 1024.0,
        o.rss_peak_kib as f64 / 1024.0,
        o.rss_after_kib as f64 / 1024.0,
        o.kb_per_connection(),
        o.cpu_us_per_delivery,
        o.deliveries_per_cpu_second() / 1e6,
        o.load_cpu_pct,
    )
}

pub(crate) fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 && ours.is_finite() && theirs.is_finite() { format!("{:.2}", ours / theirs) } else { "n/a".into() }
}
