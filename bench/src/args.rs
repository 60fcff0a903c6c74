//! The benchmark's command line: [`Args`], the cases (`CLIENTSxEVENTS@RATE` or
//! `@batch`, `/slow` for clients that read slower than the bridge writes) and the TLS
//! files of a run over wss.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(about = "Fan-out benchmark: stock-bridge vs the Node.js bridge")]
pub(crate) struct Args {
    /// The stock-bridge binary.
    #[arg(long, env = "STOCK_BRIDGE_BIN")]
    pub(crate) bridge: PathBuf,
    /// The Node reference bridge script.
    #[arg(long, default_value = "tests/node/reference-bridge.js")]
    pub(crate) node_bridge: PathBuf,
    /// The cluster peer script (the Node bridge on socket.io's Redis adapter).
    #[arg(long, default_value = "tests/node/cluster-bridge.js")]
    pub(crate) node_cluster: PathBuf,
    /// The socket.io-on-uWebSockets.js peer script.
    #[arg(long, default_value = "tests/node/uws-bridge.js")]
    pub(crate) uws_bridge: PathBuf,
    /// The floor program [default: fanout-floor beside this program].
    #[arg(long)]
    pub(crate) floor: Option<PathBuf>,
    /// Configurations: [nodes x] clients (per node) x events @ rate (0 = as fast as possible;
    /// `batch` = posted as batches), comma-separated. With nodes, that many of ours share a
    /// redis-server, beside the Node cluster peer, the clients split over them.
    #[arg(long, default_value = "1x2000@0,1000x200@50,1000x1000@batch,10000x50@10")]
    pub(crate) cases: String,
    /// Also run the middle one-node case on two nodes sharing a redis-server, ours and the Node
    /// cluster peer, with the clients split over both nodes and with all of them on the
    /// node the broadcasts are not posted to.
    #[arg(long)]
    pub(crate) redis: bool,
    /// Pin servers to this CPU (the generator should be pinned to another, e.g. with taskset).
    #[arg(long)]
    pub(crate) server_cpu: Option<usize>,
    /// Clients one process holds at most; a case with more runs its clients in
    /// `fanout-bench generate` processes of this size (this machine allows 20,000 open
    /// files per process).
    #[arg(long, default_value_t = DEFAULT_CLIENTS_PER_PROCESS)]
    pub(crate) clients_per_process: usize,
    /// Run each cluster case (`NODESx…`) once more on our nodes, killing the last node with
    /// SIGKILL halfway through its events; its clients must move on and catch up.
    #[arg(long)]
    pub(crate) kill_node: bool,
    /// Exit non-zero if our bridge loses or duplicates anything.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Skip the Node peers (for profiling our bridge alone; no ratios to them are printed).
    #[arg(long)]
    pub(crate) no_node: bool,
    /// Skip the floor.
    #[arg(long)]
    pub(crate) no_floor: bool,
    /// Also run each case on our bridge over TLS (wss:// and https://, a certificate from a
    /// private CA made for the run), and print what TLS costs.
    #[arg(long)]
    pub(crate) wss: bool,
}

/// TLS for a run over wss: the bridge's files and what clients trust.
pub(crate) struct Tls {
    /// Keeps the files alive.
    pub(crate) _pki: stock_testkit::Pki,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca_pem: String,
}

impl Tls {
    pub(crate) fn new() -> Tls {
        let pki = stock_testkit::Pki::new("fanout-bench CA");
        let issued = pki.issue("bridge", &stock_testkit::Leaf::default());
        Tls { cert: issued.cert_file, key: issued.key_file, ca_pem: pki.ca_pem.clone(), _pki: pki }
    }

    pub(crate) fn connector(&self) -> native_tls::TlsConnector {
        let ca = native_tls::Certificate::from_pem(self.ca_pem.as_bytes()).expect("the CA");
        native_tls::TlsConnector::builder().add_root_certificate(ca).build().expect("a TLS connector")
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Case {
    /// Bridge nodes sharing a redis-server (1: a bridge alone); written `NODESx` in front.
    pub(crate) nodes: usize,
    /// Clients in all (`NODESxPERNODExEVENTS` gives `NODES * PERNODE`).
    pub(crate) clients: usize,
    /// Clients one process holds at most (`--clients-per-process`); more run in
    /// generator processes of that size.
    pub(crate) per_process: usize,
    pub(crate) events: usize,
    pub(crate) rate: f64,
    /// Posted as batches of up to [`BATCH`] events, as fast as possible.
    pub(crate) batch: bool,
    /// The clients read slower than the bridge writes (`/slow` after the rate): see
    /// [`crate::load::Reading::Throttled`].
    pub(crate) slow: bool,
}

/// See [`Args::clients_per_process`].
pub(crate) const DEFAULT_CLIENTS_PER_PROCESS: usize = 17_500;

/// Events per batch body in `@batch` cases (the bridge's default maximum).
pub(crate) const BATCH: usize = 1000;

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nodes > 1 {
            write!(f, "{} nodes x {} clients, ", self.nodes, self.clients / self.nodes)?;
        }
        if self.batch {
            write!(f, "{} clients x {} events posted as batches of up to {BATCH}", self.clients, self.events)?;
        } else if self.rate > 0.0 {
            write!(f, "{} clients x {} events at {}/s", self.clients, self.events, self.rate)?;
        } else {
            write!(f, "{} clients x {} events, as fast as possible", self.clients, self.events)?;
        }
        if self.slow {
            write!(f, ", read slowly (16 KiB receive buffers, at most 1,000 events/s a client)")?;
        }
        Ok(())
    }
}

pub(crate) fn parse_cases(s: &str) -> Result<Vec<Case>, String> {
    s.split(',')
        .map(|c| {
            let (ce, rate) = c.trim().split_once('@').ok_or(format!("{c}: expected [NODESx]CLIENTSxEVENTS@RATE"))?;
            let (rate, slow) = rate.strip_suffix("/slow").map_or((rate, false), |rate| (rate, true));
            let numbers: Vec<&str> = ce.split('x').collect();
            let (nodes, clients, events) = match numbers[..] {
                [clients, events] => ("1", clients, events),
                [nodes, clients, events] => (nodes, clients, events),
                _ => return Err(format!("{c}: expected [NODESx]CLIENTSxEVENTS@RATE")),
            };
            let nodes: usize = nodes.parse().ok().filter(|n| *n >= 1).ok_or(format!("{c}: bad node count"))?;
            let batch = rate == "batch";
            Ok(Case {
                nodes,
                per_process: DEFAULT_CLIENTS_PER_PROCESS,
                clients: nodes * clients.parse::<usize>().map_err(|_| format!("{c}: bad client count"))?,
                events: events.parse().map_err(|_| format!("{c}: bad event count"))?,
                rate: if batch {
                    0.0
                } else {
                    rate.parse().map_err(|_| format!("{c}: bad rate (a number or `batch`)"))?
                },
                batch,
                slow,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_may_ask_for_slow_readers() {
        let cases = parse_cases("1000x1000@batch/slow,2x10x5@1,10x5@0").unwrap();
        assert_eq!(
            cases.iter().map(|c| (c.nodes, c.clients, c.batch, c.slow)).collect::<Vec<_>>(),
            [(1, 1000, true, true), (2, 20, false, false), (1, 10, false, false)]
        );
        assert!(
            cases[0].to_string().ends_with("read slowly (16 KiB receive buffers, at most 1,000 events/s a client)")
        );
        assert!(parse_cases("10x5@fast/slow").is_err());
    }
}
