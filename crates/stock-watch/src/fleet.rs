//! `stock-watch fleet`: the bridge's fleet in a terminal, for support staff and monitoring
//! scripts: the counts and a table of tills, "needs attention first".
//!
//! `--watch` redraws it every two seconds; `--json` prints the bridge's answer (all pages)
//! as one JSON object (one per redraw with `--watch`). Exit status: 0 when all is well, 1
//! when a till has been offline longer than `--alert-after` (for a monitoring script), 2
//! on a bad argument, an unreachable bridge or a key it does not accept. The support key
//! travels in a header and is never printed.

use chrono::{DateTime, Local, Utc};
use clap::Args;
use serde_json::Value;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// The bridge (its back-office address when it has one).
    #[arg(long, env = "STOCK_BRIDGE_URL", default_value = crate::DEFAULT_URL)]
    pub url: String,
    /// The bridge's support key.
    #[arg(long, env = "STOCK_BRIDGE_SUPPORT_KEY", hide_env_values = true)]
    pub support_key: String,
    /// Only tills in this state: online, connecting, offline, refused or cut.
    #[arg(long, value_parser = ["online", "connecting", "offline", "refused", "cut"])]
    pub state: Option<String>,
    /// Only tills whose name, user or id contains this.
    #[arg(long)]
    pub search: Option<String>,
    /// Redraw every two seconds until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Print the bridge's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 when a till has been offline longer than this (e.g. 90s, 10m, 2h, 1d).
    #[arg(long, value_parser = parse_span)]
    pub alert_after: Option<Duration>,
    /// Extra CA bundle (PEM) to trust besides the system's.
    #[arg(long, env = "STOCK_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `90s`, `10m`, `2h`, `1d`, or plain seconds.
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 10m, 2h, 1d)"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// Tills asked for per page (the bridge's most).
const PER_PAGE: usize = 1000;

pub async fn run(args: FleetArgs) -> ExitCode {
    let trust = match stock_client::Trust::from_ca_file(args.ca_file.as_deref()) {
        Ok(trust) => trust,
        Err(e) => {
            eprintln!("stock-watch fleet: {e}");
            return ExitCode::from(2);
        }
    };
    let http = match trust.http_client().timeout(Duration::from_secs(15)).build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("stock-watch fleet: cannot build the HTTP client: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = stock_process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let fleet = match fetch(&http, &args).await {
            Ok(fleet) => fleet,
            Err(e) => {
                eprintln!("stock-watch fleet: {e}");
                if !args.watch {
                    return ExitCode::from(2);
                }
                Value::Null
            }
        };
        let alerts = if fleet.is_null() { Vec::new() } else { alerts(&fleet, args.alert_after, Utc::now()) };
        if !fleet.is_null() {
            let mut out = std::io::stdout().lock();
            if args.watch && !args.json {
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let text = if args.json { fleet.to_string() } else { table(&fleet, &alerts, Utc::now()) };
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        if !args.watch {
            return if alerts.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) };
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = &mut shutdown => return ExitCode::SUCCESS,
        }
    }
}

/// Every page of the fleet, as one answer: the first page's counts and all the tills.
async fn fetch(http: &reqwest::Client, args: &FleetArgs) -> Result<Value, String> {
    let base = args.url.trim_end_matches('/');
    let mut tills = Vec::new();
    let mut first = None;
    for page in 1.. {
        let mut query = vec![("page", page.to_string()), ("per_page", PER_PAGE.to_string())];
        if let Some(state) = &args.state {
            query.push(("state", state.clone()));
        }
        if let Some(search) = &args.search {
            query.push(("q", search.clone()));
        }
        let res = http
            .get(format!("{base}/fleet"))
            .query(&query)
            .bearer_auth(&args.support_key)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("could not reach {base}: {e}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("no message").to_owned();
            return Err(format!("the bridge answered {}: {message}", status.as_u16()));
        }
        let matching = body["matching"].as_u64().unwrap_or(0) as usize;
        tills.extend(body["tills"].as_array().cloned().unwrap_or_default());
        let done = page * PER_PAGE >= matching;
        first.get_or_insert(body);
        if done {
            break;
        }
    }
    let mut fleet = first.unwrap_or_default();
    fleet["tills"] = Value::Array(tills);
    if let Some(o) = fleet.as_object_mut() {
        o.remove("page");
        o.remove("per_page");
    }
    Ok(fleet)
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str()?.parse().ok()
}

/// When the till's current state began.
fn since(till: &Value) -> Option<DateTime<Utc>> {
    if till["status"] == "online" {
        time(&till["connected_since"])
    } else {
        time(&till["offline_since"]).or(time(&till["last_seen"]))
    }
}

/// Tills (identified ones) offline longer than `after`: their keys.
pub fn alerts(fleet: &Value, after: Option<Duration>, now: DateTime<Utc>) -> Vec<String> {
    let Some(after) = after.and_then(|a| chrono::Duration::from_std(a).ok()) else { return Vec::new() };
    fleet["tills"]
        .as_array()
        .map(|tills| {
            tills
                .iter()
                .filter(|t| t["status"] != "online" && !t["identity"].is_null())
                .filter(|t| since(t).is_some_and(|s| now - s > after))
                .filter_map(|t| t["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else { return "—".into() };
    let secs = (now - at).num_seconds().max(0);
    let span = match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600),
    };
    format!("{} ({span} ago)", at.with_timezone(&Local).format("%Y-%m-%d %H:%M"))
}

/// A till's name, as text a terminal shows safely (no control characters).
fn clean(text: &str, width: usize) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.chars().count() > width { format!("{}…", text.chars().take(width - 1).collect::<String>()) } else { text }
}

/// The counts, then a row per till.
pub fn table(fleet: &Value, alerts: &[String], now: DateTime<Utc>) -> String {
    let c = &fleet["counts"];
    let mut out = format!(
        "{} tills: {} online, {} connecting, {} offline, {} refused, {} cut, {} on an old version (latest {})\n",
        c["total"],
        c["online"],
        c["connecting"],
        c["offline"],
        c["refused"],
        c["cut"],
        c["old_version"],
        fleet["latest_version"].as_str().unwrap_or("—"),
    );
    out.push_str(&format!(
        "{:<24} {:<26} {:<12} {:<34} {:<9} {:<14} {}\n",
        "NAME", "TILL ID", "STATE", "SINCE", "VERSION", "NODE", "WHY"
    ));
    for t in fleet["tills"].as_array().into_iter().flatten() {
        let name = t["identity"]["name"].as_str().filter(|n| !n.is_empty()).unwrap_or("(unnamed)");
        let key = t["key"].as_str().unwrap_or("");
        let why = match t["status"].as_str() {
            Some("online") if t["lagging"] == true => format!("behind by {}", t["behind"]),
            Some("online") => String::new(),
            Some("refused") => format!("refused: {}", t["refusal_code"].as_str().unwrap_or("?")),
            _ => t["end_text"].as_str().unwrap_or("").to_owned(),
        };
        let flag = if alerts.iter().any(|a| a == key) { "  << ALERT" } else { "" };
        out.push_str(&format!(
            "{:<24} {:<26} {:<12} {:<34} {:<9} {:<14} {}{flag}\n",
            clean(name, 24),
            clean(key, 26),
            t["shown"].as_str().unwrap_or(""),
            ago(since(t), now),
            clean(t["identity"]["version"].as_str().unwrap_or("—"), 9),
            clean(t["node"].as_str().unwrap_or(""), 14),
            clean(&why, 60),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spans_read_like_people_write_them() {
        assert_eq!(parse_span("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_span("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_span("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_span("45"), Ok(Duration::from_secs(45)));
        assert!(parse_span("ten minutes").is_err());
        assert!(parse_span("5w").is_err());
    }

    #[test]
    fn only_identified_tills_offline_too_long_alert_and_names_are_shown_as_text() {
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().unwrap();
        let till = |key: &str, status: &str, since: &str, name: &str| {
            json!({"key": key, "status": status, "shown": status, "offline_since": since, "connected_since": since,
                "identity": {"name": name, "version": "0.1.0"}, "node": "n"})
        };
        let fleet = json!({"counts": {"total": 4}, "tills": [
            till("long", "offline", "2026-12-06T09:00:00Z", "Old \u{1b}[31mred"),
            till("short", "offline", "2026-12-06T09:59:00Z", "Recent"),
            till("up", "online", "2026-12-06T08:00:00Z", "Up"),
            {"key": "sid:x", "status": "offline", "offline_since": "2026-12-01T00:00:00Z", "identity": null},
        ]});
        assert_eq!(alerts(&fleet, Some(Duration::from_secs(600)), now), ["long"]);
        assert!(alerts(&fleet, None, now).is_empty());
        let text = table(&fleet, &["long".into()], now);
        assert!(text.contains("<< ALERT"));
        assert!(!text.contains('\u{1b}'), "no escape sequence from a till's name reaches the terminal");
    }
}
