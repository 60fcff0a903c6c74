//! A real `redis-server` for cluster tests, on a Unix socket in a folder of its own (no
//! TCP port to pick, and a restart comes back at the same address). Unix only.

use crate::{WAIT, eventually};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A running `redis-server`, killed when dropped.
pub struct Redis {
    socket: PathBuf,
    child: tokio::process::Child,
}

impl Redis {
    /// Starts one whose socket is in `dir` (the test's temporary folder).
    pub async fn start(dir: &Path) -> Redis {
        let socket = dir.join("redis.sock");
        let _ = std::fs::remove_file(&socket);
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        eventually("redis-server to start", WAIT, || async { tokio::net::UnixStream::connect(&socket).await.is_ok() })
            .await;
        Redis { socket, child }
    }

    /// Its URL for the bridge (`STOCK_BRIDGE_REDIS_URL`).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
