//! [`Server`]: a server under test (ours, ours ×2 with Redis, a Node peer, the floor),
//! started, read through /proc (RSS, CPU time) and stopped.

use crate::args::Tls;
use crate::procfs::{proc_cpu, proc_status_kib};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// One server under test: one or more processes.
pub(crate) struct Server {
    pub(crate) name: String,
    pub(crate) procs: Vec<Child>,
    /// Where clients connect (round robin, from [`Server::clients_from`]) and where
    /// broadcasts are posted (the first).
    pub(crate) addrs: Vec<SocketAddr>,
    /// The first address clients connect to (1 with two nodes: all clients on the node
    /// the broadcasts are not posted to).
    pub(crate) clients_from: usize,
    /// Served over TLS: clients use this connector and `wss://`, posts `https://`.
    pub(crate) tls: Option<native_tls::TlsConnector>,
    /// The CA the posts trust, over TLS.
    pub(crate) ca_pem: Option<String>,
}

impl Server {
    pub(crate) fn scheme(&self) -> (&'static str, &'static str) {
        if self.tls.is_some() { ("wss", "https") } else { ("ws", "http") }
    }
}

impl Server {
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(|p| p.id()).collect()
    }
    /// Resident memory of all processes, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.pids().iter().map(|pid| proc_status_kib(*pid, "VmRSS:")).sum()
    }
    /// CPU time (user + system) of all processes.
    pub(crate) fn cpu(&self) -> Duration {
        self.pids().iter().map(|pid| proc_cpu(*pid)).sum()
    }
    /// Kills the last process with SIGKILL (a node lost); its readings then leave the sums.
    pub(crate) async fn kill_last(&mut self) {
        if let Some(mut last) = self.procs.pop() {
            let _ = last.kill().await;
        }
    }

    pub(crate) async fn stop(mut self) {
        for p in &mut self.procs {
            let _ = p.kill().await;
        }
    }
}

pub(crate) async fn spawn_listening(mut cmd: Command, cpu: Option<usize>) -> Result<(Child, SocketAddr), String> {
    if let Some(cpu) = cpu {
        let program = cmd.as_std().get_program().to_owned();
        let args: Vec<_> = cmd.as_std().get_args().map(|a| a.to_owned()).collect();
        let envs: Vec<_> = cmd.as_std().get_envs().map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned()))).collect();
        let mut pinned = Command::new("taskset");
        pinned.arg("-c").arg(cpu.to_string()).arg(program).args(args);
        for (k, v) in envs {
            if let Some(v) = v {
                pinned.env(k, v);
            }
        }
        cmd = pinned;
    }
    // A server's log is dropped unless FANOUT_SERVER_LOGS names a folder to keep it in
    // (one file per server started: why a node ended, what it warned of).
    let stderr = match std::env::var_os("FANOUT_SERVER_LOGS") {
        Some(dir) => {
            static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::path::Path::new(&dir).join(format!("server-{n}.log"));
            std::fs::File::create(&path).map(Stdio::from).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Stdio::null(),
    };
    cmd.stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start server: {e}"))?;
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("server did not start listening")?;
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().trim_end_matches('/').parse().ok())
        .or_else(|| line.rsplit(' ').next()?.trim().parse().ok())
        .ok_or(format!("no port in {line:?}"))?;
    Ok((child, SocketAddr::from(([127, 0, 0, 1], port))))
}

pub(crate) async fn ours(
    bin: &PathBuf,
    cpu: Option<usize>,
    redis: Option<&str>,
    nodes: usize,
    tls: Option<&Tls>,
) -> Result<Server, String> {
    let name = match (redis, tls) {
        (Some(_), _) => format!("stock-bridge x{nodes} + Redis"),
        (None, Some(_)) => "stock-bridge (wss)".into(),
        (None, None) => "stock-bridge".into(),
    };
    let mut server = Server {
        name,
        procs: vec![],
        addrs: vec![],
        clients_from: 0,
        tls: tls.map(Tls::connector),
        ca_pem: tls.map(|t| t.ca_pem.clone()),
    };
    for _ in 0..nodes {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "1000000",
            "--client-buffer",
            "4096",
            "--handshake-rate",
            "1000000",
        ])
        .env("RUST_LOG", "error");
        if let Some(url) = redis {
            cmd.args(["--redis-url", url, "--redis-prefix", "bench"]);
        }
        if let Some(tls) = tls {
            cmd.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        }
        let (child, addr) = spawn_listening(cmd, cpu).await?;
        server.procs.push(child);
        server.addrs.push(addr);
    }
    Ok(server)
}

pub(crate) async fn node(name: &str, script: &PathBuf, cpu: Option<usize>) -> Result<Server, String> {
    let mut cmd = Command::new("node");
    cmd.arg(script).env("PORT", "0");
    let (child, addr) = spawn_listening(cmd, cpu).await?;
    Ok(Server { name: name.into(), procs: vec![child], addrs: vec![addr], clients_from: 0, tls: None, ca_pem: None })
}

pub(crate) async fn floor(bin: &PathBuf, cpu: Option<usize>) -> Result<Server, String> {
    let (child, addr) = spawn_listening(Command::new(bin), cpu).await?;
    Ok(Server { name: FLOOR.into(), procs: vec![child], addrs: vec![addr], clients_from: 0, tls: None, ca_pem: None })
}

/// `nodes` processes of the Node cluster peer (`tests/node/cluster-bridge.js`: the old
/// bridge on socket.io's Redis adapter) sharing the Redis at `redis`.
pub(crate) async fn node_cluster(
    script: &PathBuf,
    cpu: Option<usize>,
    redis: &str,
    nodes: usize,
) -> Result<Server, String> {
    let mut server =
        Server { name: NODE_CLUSTER.into(), procs: vec![], addrs: vec![], clients_from: 0, tls: None, ca_pem: None };
    for _ in 0..nodes {
        let mut cmd = Command::new("node");
        cmd.arg(script).env("PORT", "0").env("REDIS_URL", redis);
        let (child, addr) = spawn_listening(cmd, cpu).await?;
        server.procs.push(child);
        server.addrs.push(addr);
    }
    Ok(server)
}

pub(crate) const NODE: &str = "Node bridge";
/// The cluster peer: the Node bridge on socket.io's Redis adapter.
pub(crate) const NODE_CLUSTER: &str = "Node bridge + Redis adapter";
pub(crate) const UWS: &str = "socket.io on uWS";
pub(crate) const FLOOR: &str = "floor";

/// What the floor says about its write loop (`GET /stats`).
pub(crate) async fn floor_stats(server: &Server) -> Option<String> {
    let url = format!("http://{}/stats", server.addrs[0]);
    reqwest::get(url).await.ok()?.text().await.ok()
}

pub(crate) async fn redis_server(port: u16) -> Result<Child, String> {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(child);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("redis-server did not start".into())
}
