//! `stock-bridge send`: posts one event to a bridge exactly as the Laravel back office's
//! `testWebSocket` does (`{"event", "data"}` with the key header, 5 s timeout, 2 s to
//! connect), prints the answer and fails with the reason on anything but a 2xx. Over
//! HTTPS it trusts the system's CAs plus `--cacert`, and presents `--cert`/`--key` to a
//! back-office listener with mutual TLS.
//!
//! With `--file events.jsonl` it posts a file of events (one `{"event", "data", "to"}`
//! object per line) as batches of `--batch-size`, in order, and stops at the first batch
//! the bridge refuses, naming the file's lines it objected to.

use clap::Args;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Where `send` posts unless told otherwise.
pub const DEFAULT_BROADCAST_URL: &str = "http://127.0.0.1:3001/broadcast";

#[derive(Args, Debug, Clone)]
pub struct SendArgs {
    /// The bridge's /broadcast URL.
    #[arg(long, env = "VITE_STOCK_BROADCAST_URL", default_value = DEFAULT_BROADCAST_URL)]
    pub url: String,
    /// The bridge's API key (sent as Authorization: Bearer).
    #[arg(long, env = "STOCK_BRIDGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Event name.
    #[arg(long, default_value = "add_stock")]
    pub event: String,
    /// The whole `data` object as JSON; when given, the field flags below are not used.
    #[arg(long)]
    pub data: Option<String>,
    /// Deliver only to these recipients (e.g. user:42; repeatable).
    #[arg(long)]
    pub to: Vec<String>,
    #[arg(long)]
    pub product_id: Option<i64>,
    #[arg(long)]
    pub in_stock: Option<i64>,
    #[arg(long)]
    pub discount_price: Option<f64>,
    #[arg(long)]
    pub peak_hour_price: Option<f64>,
    #[arg(long)]
    pub mediboy_offer_price: Option<f64>,
    /// RFC 3339 timestamp [default: now].
    #[arg(long)]
    pub sync_at: Option<String>,
    /// Post the events of this JSON Lines file (one {"event","data"[,"to"]} object per line) in batches.
    #[arg(long, conflicts_with_all = ["data", "product_id", "to"])]
    pub file: Option<PathBuf>,
    /// Events per batch with --file (at most the bridge's STOCK_BRIDGE_BATCH_MAX).
    #[arg(long, default_value_t = stock_bridge::config::DEFAULT_BATCH_MAX as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// PEM CA bundle to trust besides the system's (a bridge with a private CA's certificate).
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate, for a back-office listener with mutual TLS; needs --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, `BEGIN PRIVATE KEY`) of --cert.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

/// Why `send` did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("--data is not valid JSON: {0}")]
    InvalidData(serde_json::Error),
    #[error("give --data '{{...}}' or all of: {}", .0.join(", "))]
    MissingFields(Vec<String>),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{flag}: cannot read {}: {source}", path.display())]
    Unreadable { flag: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{flag}: {}: {why}", path.display())]
    BadPem { flag: &'static str, path: PathBuf, why: String },
    #[error("could not reach {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the bridge answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("{}:{line}: {why}", path.display())]
    BadLine { path: PathBuf, line: usize, why: String },
    #[error("{}: no events in the file (one JSON object per line)", .0.display())]
    EmptyFile(PathBuf),
    #[error(
        "batch {batch} (lines {first_line}-{last_line}) was refused with {status}; {sent} events were sent before it, \
         nothing of it or after it: {}",
        .why.join("; ")
    )]
    BatchRefused { batch: usize, first_line: usize, last_line: usize, sent: usize, status: u16, why: Vec<String> },
}

impl SendArgs {
    /// The body to post, or why it cannot be built.
    pub fn body(&self) -> Result<Value, SendError> {
        let data = match &self.data {
            Some(text) => serde_json::from_str::<Value>(text).map_err(SendError::InvalidData)?,
            None => {
                let mut data = Map::new();
                let mut missing = Vec::new();
                let mut put = |name: &str, v: Option<Value>| match v {
                    Some(v) => {
                        data.insert(name.to_owned(), v);
                    }
                    None => missing.push(format!("--{}", name.replace('_', "-"))),
                };
                put("product_id", self.product_id.map(Value::from));
                put("in_stock", self.in_stock.map(Value::from));
                put("discount_price", self.discount_price.map(Value::from));
                put("peak_hour_price", self.peak_hour_price.map(Value::from));
                put("mediboy_offer_price", self.mediboy_offer_price.map(Value::from));
                if !missing.is_empty() {
                    return Err(SendError::MissingFields(missing));
                }
                let sync_at = self
                    .sync_at
                    .clone()
                    .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                data.insert("sync_at".into(), sync_at.into());
                Value::Object(data)
            }
        };
        let mut body = json!({"event": self.event, "data": data});
        if !self.to.is_empty() {
            body["to"] = json!(self.to);
        }
        Ok(body)
    }
}

/// The HTTP client `send` posts with: the system's trust store plus `--cacert`, and the
/// client certificate of `--cert`/`--key`.
pub fn http_client(args: &SendArgs) -> Result<reqwest::Client, SendError> {
    let read = |flag: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|source| SendError::Unreadable { flag, path: path.clone(), source })
    };
    let mut builder =
        reqwest::Client::builder().timeout(Duration::from_secs(5)).connect_timeout(Duration::from_secs(2));
    if let Some(path) = &args.cacert {
        let pem = read("--cacert", path)?;
        let bad = |why: String| SendError::BadPem { flag: "--cacert", path: path.clone(), why };
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        let cert_pem = read("--cert", cert)?;
        let key_pem = read("--key", key)?;
        if !String::from_utf8_lossy(&cert_pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(SendError::BadPem {
                flag: "--cert",
                path: cert.clone(),
                why: "holds no PEM certificate".into(),
            });
        }
        let identity = reqwest::Identity::from_pkcs8_pem(&cert_pem, &key_pem).map_err(|e| SendError::BadPem {
            flag: "--key",
            path: key.clone(),
            why: format!(
                "not a PKCS#8 private key of --cert ({e}); convert one with `openssl pkcs8 -topk8 -nocrypt -in key.pem`"
            ),
        })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(SendError::Client)
}

/// Why a request got no answer, in words: a TLS problem by name, else the innermost
/// cause (refused, name not found, ...); and whether the reason was named (a timeout, a
/// TLS problem) or only the cause could be given.
fn unreachable_why(e: reqwest::Error) -> (String, bool) {
    if e.is_timeout() {
        return ("no answer within 5 s".to_owned(), true);
    }
    let mut innermost: &(dyn std::error::Error + 'static) = &e;
    let mut tls = None;
    loop {
        tls = tls.or_else(|| tls_problem(innermost));
        match innermost.source() {
            Some(source) => innermost = source,
            None => break,
        }
    }
    match tls {
        Some(problem) => (format!("TLS failed: {problem} ({innermost})"), true),
        None if e.is_connect() => (format!("connection failed: {innermost} (is the bridge running?)"), false),
        None => {
            let cause = innermost.to_string();
            (format!("{}: {cause}", e.without_url()), false)
        }
    }
}

/// Over TLS 1.3 the bridge refuses a client certificate only after our side of the
/// handshake is done; hyper's connection task may then read that alert and close before
/// the request is handed to it, and the request fails as "connection was not ready" with
/// the reason lost (1 run in 50 under load). This asks again with a bare handshake and
/// reads the bridge's first word (an alert, or nothing within 2 s) to name the refusal.
#[cfg(all(unix, not(target_os = "macos")))]
async fn probe_tls(args: &SendArgs) -> Option<&'static str> {
    use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
    let url = url::Url::parse(&args.url).ok().filter(|u| u.scheme() == "https")?;
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default()?;
    let (cacert, cert, key) = (args.cacert.clone(), args.cert.clone(), args.key.clone());
    let probe = move || -> Option<&'static str> {
        let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
        if let Some(ca) = &cacert {
            builder.set_ca_file(ca).ok()?;
        }
        if let (Some(cert), Some(key)) = (&cert, &key) {
            builder.set_certificate_chain_file(cert).ok()?;
            builder.set_private_key_file(key, SslFiletype::PEM).ok()?;
        }
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).ok()?.next()?;
        let tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        tcp.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut tls = match builder.build().connect(&host, tcp) {
            Ok(tls) => tls,
            Err(openssl::ssl::HandshakeError::Failure(mid)) => return tls_problem(mid.error()),
            Err(_) => return None,
        };
        let mut first = [0u8; 1];
        match tls.ssl_read(&mut first) {
            Err(e) => tls_problem(&e),
            Ok(_) => None,
        }
    };
    tokio::task::spawn_blocking(probe).await.ok().flatten()
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn probe_tls(_: &SendArgs) -> Option<&'static str> {
    None
}

/// A TLS failure, named by OpenSSL's reason code.
#[cfg(all(unix, not(target_os = "macos")))]
fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    // OpenSSL's SSL_R_* reason codes (ssl/sslerr.h).
    const CERTIFICATE_VERIFY_FAILED: i32 = 134;
    const ALERT_BAD_CERTIFICATE: i32 = 1042;
    const ALERT_CERTIFICATE_UNKNOWN: i32 = 1046;
    const ALERT_UNKNOWN_CA: i32 = 1048;
    const ALERT_ACCESS_DENIED: i32 = 1049;
    const ALERT_CERTIFICATE_REQUIRED: i32 = 1116;
    let stack = match e.downcast_ref::<openssl::ssl::Error>() {
        Some(ssl) => ssl.ssl_error()?,
        None => e.downcast_ref::<openssl::error::ErrorStack>()?,
    };
    let reason = stack.errors().iter().map(openssl::error::Error::reason_code).next()?;
    Some(match reason {
        CERTIFICATE_VERIFY_FAILED => "the bridge's certificate is not trusted (a private CA needs --cacert)",
        ALERT_CERTIFICATE_REQUIRED => "the bridge requires a client certificate (give --cert and --key)",
        ALERT_UNKNOWN_CA | ALERT_BAD_CERTIFICATE | ALERT_CERTIFICATE_UNKNOWN | ALERT_ACCESS_DENIED => {
            "the bridge refused our client certificate (not from its client CA, or a name it does not allow)"
        }
        _ => "the TLS handshake failed",
    })
}

/// Elsewhere the TLS stack's own text (the innermost cause) says it.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn tls_problem(_: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    None
}

/// Runs `send`: Ok when the bridge answered 2xx (to every batch, with `--file`).
pub async fn run(args: SendArgs) -> Result<(), SendError> {
    if let Some(path) = args.file.clone() {
        return run_file(&args, &path).await;
    }
    let body = args.body()?;
    let client = http_client(&args)?;
    let (status, text) = post(&client, &args, &body).await?;
    if (200..300).contains(&status) {
        println!("{status} {}", text.trim());
        Ok(())
    } else {
        Err(SendError::Refused { status, body: text.trim().to_owned() })
    }
}

async fn post(client: &reqwest::Client, args: &SendArgs, body: &Value) -> Result<(u16, String), SendError> {
    let mut request = client.post(&args.url).json(body);
    if let Some(key) = args.api_key.as_deref().filter(|k| !k.is_empty()) {
        request = request.bearer_auth(key);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => {
            let (mut why, named) = unreachable_why(e);
            if !named && let Some(problem) = probe_tls(args).await {
                why = format!("TLS failed: {problem} ({why})");
            }
            return Err(SendError::Unreachable { url: args.url.clone(), why });
        }
    };
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// The events of a JSON Lines file with their line numbers (blank lines skipped); the
/// whole file is read and checked before anything is posted.
pub fn read_events(path: &PathBuf) -> Result<Vec<(usize, Value)>, SendError> {
    let text = std::fs::read_to_string(path).map_err(|source| SendError::Unreadable {
        flag: "--file",
        path: path.clone(),
        source,
    })?;
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| SendError::BadLine { path: path.clone(), line: line_no, why };
        match serde_json::from_str::<Value>(line) {
            Ok(v @ Value::Object(_)) => events.push((line_no, v)),
            Ok(_) => return Err(bad("not a JSON object (one {\"event\", \"data\"} object per line)".into())),
            Err(e) => return Err(bad(format!("not valid JSON: {e}"))),
        }
    }
    if events.is_empty() {
        return Err(SendError::EmptyFile(path.clone()));
    }
    Ok(events)
}

/// `send --file`: posts the file's events in batches, in order, printing each answer.
async fn run_file(args: &SendArgs, path: &PathBuf) -> Result<(), SendError> {
    let events = read_events(path)?;
    let client = http_client(args)?;
    let batches: Vec<&[(usize, Value)]> = events.chunks(args.batch_size as usize).collect();
    let mut sent = 0;
    for (i, batch) in batches.iter().enumerate() {
        let (first_line, last_line) = (batch[0].0, batch[batch.len() - 1].0);
        let body = json!({"events": batch.iter().map(|(_, v)| v).collect::<Vec<_>>()});
        let (status, text) = post(&client, args, &body).await?;
        if !(200..300).contains(&status) {
            return Err(SendError::BatchRefused {
                batch: i + 1,
                first_line,
                last_line,
                sent,
                status,
                why: refusal_lines(status, &text, batch),
            });
        }
        sent += batch.len();
        println!("batch {}/{} (lines {first_line}-{last_line}): {status} {}", i + 1, batches.len(), text.trim());
    }
    println!("sent {sent} events from {} in {} batches", path.display(), batches.len());
    Ok(())
}

/// The bridge's objections to a batch, each bad event named by its line in the file.
fn refusal_lines(status: u16, text: &str, batch: &[(usize, Value)]) -> Vec<String> {
    let answer: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.trim().to_owned()));
    if let Some(items) = answer.get("items").and_then(Value::as_array) {
        return items
            .iter()
            .flat_map(|item| {
                let line = item["index"].as_u64().and_then(|i| batch.get(i as usize)).map_or(0, |(line, _)| *line);
                let errors: Vec<String> = item["errors"]
                    .as_array()
                    .map(|e| e.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                errors.into_iter().map(move |e| format!("line {line}: {e}"))
            })
            .collect();
    }
    let message = answer.get("message").and_then(Value::as_str).map_or_else(|| answer.to_string(), str::to_owned);
    if status == 413 { vec![format!("{message} (try a smaller --batch-size)")] } else { vec![message] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: SendArgs,
    }

    fn args(list: &[&str]) -> SendArgs {
        T::parse_from(std::iter::once("send").chain(list.iter().copied())).args
    }

    #[test]
    fn builds_add_stock_from_flags_with_sync_at_now() {
        let body = args(&[
            "--product-id",
            "5486",
            "--in-stock",
            "10",
            "--discount-price",
            "120",
            "--peak-hour-price",
            "140",
            "--mediboy-offer-price",
            "90.5",
        ])
        .body()
        .unwrap();
        assert_eq!(body["event"], "add_stock");
        assert_eq!(body["data"]["product_id"], 5486);
        assert_eq!(body["data"]["mediboy_offer_price"], 90.5);
        let sync_at = body["data"]["sync_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(sync_at).is_ok(), "{sync_at}");
        assert!(body.get("to").is_none());
    }

    #[test]
    fn a_file_is_checked_whole_and_its_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("send-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        std::fs::write(&path, "{\"event\":\"sale_mode\",\"data\":{}}\n\n[1]\n").unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("events.jsonl:3: not a JSON object (one {\"event\", \"data\"} object per line)"),
            "{err}"
        );
        std::fs::write(&path, "{\"event\":\"sale_mode\",\"data\":{}}\n\n{\"event\":\"add_stock\"}\n").unwrap();
        let events = read_events(&path).unwrap();
        assert_eq!(events.iter().map(|(line, _)| *line).collect::<Vec<_>>(), [1, 3]);
        let answer = r#"{"message":"Invalid batch","items":[{"index":1,"errors":["data is missing"]}]}"#;
        assert_eq!(refusal_lines(400, answer, &events), ["line 3: data is missing"]);
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(read_events(&path).unwrap_err(), SendError::EmptyFile(_)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn says_which_flags_are_missing() {
        let err = args(&["--product-id", "1"]).body().unwrap_err();
        assert_eq!(
            err.to_string(),
            "give --data '{...}' or all of: --in-stock, --discount-price, --peak-hour-price, --mediboy-offer-price"
        );
        assert!(matches!(args(&["--data", "{oops"]).body().unwrap_err(), SendError::InvalidData(_)));
    }
}
