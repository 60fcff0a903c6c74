//! Which servers the client trusts over `https://` and `wss://`, and what to say when one
//! is not trusted.
//!
//! Both the login (reqwest) and the socket (rust_socketio 0.6, which takes a
//! `native_tls::TlsConnector`) use native-tls: the operating system's TLS and trust store
//! (OpenSSL and its CA bundle on Linux, SChannel on Windows, Security.framework on macOS),
//! so they trust the same servers. [`Trust::with_ca_file`] adds a private CA bundle (PEM)
//! to both. There is no way to turn verification off.
//!
//! When a TLS connection fails, [`diagnose`] repeats the handshake with OpenSSL and reads
//! the verification result's *code* (never the error's words) to name the problem:
//! unknown issuer, expired, not yet valid, or a certificate for another name. (On Windows
//! and macOS the TLS stack is not OpenSSL: there the failure is reported without a
//! diagnosis.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where to find the extra CA bundle, as `stock-watch` reads it.
pub const CA_FILE_VAR: &str = "STOCK_CA_FILE";

/// The operating system's trust store, plus an optional private CA bundle.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The bundle's PEM text and where it came from.
    extra: Option<Arc<(PathBuf, Vec<u8>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the CA file {}: {why}", path.display())]
    Unreadable { path: PathBuf, why: String },
    #[error("the CA file {} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("the CA file {}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
}

impl Trust {
    /// The operating system's trust store only.
    pub fn system() -> Self {
        Trust::default()
    }

    /// The system's store plus the certificates in `path` (a readable PEM file with at least one).
    pub fn with_ca_file(path: &Path) -> Result<Self, TrustError> {
        let pem =
            std::fs::read(path).map_err(|e| TrustError::Unreadable { path: path.to_owned(), why: e.to_string() })?;
        let trust = Trust { extra: Some(Arc::new((path.to_owned(), pem))) };
        if trust.certificates()?.is_empty() {
            return Err(TrustError::NoCertificate { path: path.to_owned() });
        }
        Ok(trust)
    }

    /// [`Trust::with_ca_file`] when a CA file is given, else [`Trust::system`].
    pub fn from_ca_file(path: Option<&Path>) -> Result<Self, TrustError> {
        path.map_or_else(|| Ok(Trust::system()), Trust::with_ca_file)
    }

    /// The extra CA file, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.extra.as_ref().map(|e| e.0.as_path())
    }

    /// Each certificate of the extra bundle, as DER.
    fn certificates(&self) -> Result<Vec<Vec<u8>>, TrustError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let Some(extra) = &self.extra else { return Ok(Vec::new()) };
        CertificateDer::pem_slice_iter(&extra.1)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| TrustError::Invalid { path: extra.0.clone(), why: e.to_string() })
    }

    /// An HTTP client builder that trusts what this does.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder();
        for der in self.certificates().unwrap_or_default() {
            if let Ok(cert) = reqwest::Certificate::from_der(&der) {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
    }

    /// The TLS connector for the socket (rust_socketio).
    pub fn socket_connector(&self) -> Result<native_tls::TlsConnector, String> {
        let mut builder = native_tls::TlsConnector::builder();
        for der in self.certificates().map_err(|e| e.to_string())? {
            builder.add_root_certificate(native_tls::Certificate::from_der(&der).map_err(|e| e.to_string())?);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Why a server's certificate is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertProblem {
    /// Signed by no authority this client trusts (a private CA not given, a self-signed one).
    UnknownIssuer,
    Expired,
    NotYetValid,
    /// Valid, but for another host name.
    WrongHost,
    /// Another verification failure (OpenSSL's code).
    Other(i32),
}

impl std::fmt::Display for CertProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertProblem::UnknownIssuer => f.write_str("unknown issuer"),
            CertProblem::Expired => f.write_str("expired"),
            CertProblem::NotYetValid => f.write_str("not valid yet"),
            CertProblem::WrongHost => f.write_str("it is for another name"),
            CertProblem::Other(code) => write!(f, "verification error {code}"),
        }
    }
}

/// "the certificate of socket.example.com is not trusted (unknown issuer)"
pub fn untrusted_text(host: &str, problem: CertProblem) -> String {
    format!("the certificate of {host} is not trusted ({problem})")
}

/// How long a diagnosis may take.
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Repeats the TLS handshake with `url`'s host to name a certificate problem; `None` when
/// the URL is not TLS, the handshake works, or the problem is not the certificate.
pub async fn diagnose(url: &str, trust: &Trust) -> Option<CertProblem> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "https" | "wss") {
        return None;
    }
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = url.port_or_known_default()?;
    let certificates = trust.certificates().ok()?;
    tokio::time::timeout(DIAGNOSIS_TIMEOUT, tokio::task::spawn_blocking(move || verify(&host, port, &certificates)))
        .await
        .ok()?
        .ok()?
}

#[cfg(all(unix, not(target_os = "macos")))]
fn verify(host: &str, port: u16, extra: &[Vec<u8>]) -> Option<CertProblem> {
    use openssl::ssl::{HandshakeError, SslConnector, SslMethod};
    use openssl::x509::X509;
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    for der in extra {
        builder.cert_store_mut().add_cert(X509::from_der(der).ok()?).ok()?;
    }
    let connector = builder.build();
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).ok()?.next()?;
    let tcp = std::net::TcpStream::connect_timeout(&addr, DIAGNOSIS_TIMEOUT).ok()?;
    tcp.set_read_timeout(Some(DIAGNOSIS_TIMEOUT)).ok()?;
    tcp.set_write_timeout(Some(DIAGNOSIS_TIMEOUT)).ok()?;
    match connector.connect(host, tcp) {
        Ok(_) => None,
        Err(HandshakeError::Failure(mid)) => {
            let code = mid.ssl().verify_result().as_raw();
            // X509_V_OK is 0: the handshake failed for another reason than the certificate.
            (code != 0).then(|| classify(code))
        }
        Err(_) => None,
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn verify(_host: &str, _port: u16, _extra: &[Vec<u8>]) -> Option<CertProblem> {
    None
}

/// OpenSSL's `X509_V_ERR_*` codes (used where the diagnosis runs: Linux and the BSDs).
#[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
fn classify(code: i32) -> CertProblem {
    match code {
        9 => CertProblem::NotYetValid,                       // CERT_NOT_YET_VALID
        10 => CertProblem::Expired,                          // CERT_HAS_EXPIRED
        2 | 18 | 19 | 20 | 21 => CertProblem::UnknownIssuer, // issuer unknown, self-signed, chain incomplete
        62 | 64 => CertProblem::WrongHost,                   // HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
        other => CertProblem::Other(other),
    }
}

/// True for an http:// or ws:// address to a host other than this computer.
pub fn is_unencrypted_remote(address: &str) -> bool {
    let Ok(url) = url::Url::parse(address) else { return false };
    let local = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => true,
    };
    matches!(url.scheme(), "http" | "ws") && !local
}

/// Why a server cannot be reached, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    NameNotFound { host: String },
    Refused { host: String, port: u16 },
    TimedOut { host: String, port: u16 },
    Certificate { host: String, problem: CertProblem },
    Other { host: String, port: u16, kind: std::io::ErrorKind },
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::NameNotFound { host } => write!(f, "the name {host} was not found (DNS)"),
            Unreachable::Refused { host, port } => {
                write!(f, "{host}:{port} refused the connection (nothing listens there)")
            }
            Unreachable::TimedOut { host, port } => write!(f, "{host}:{port} did not answer (timed out)"),
            Unreachable::Certificate { host, problem } => f.write_str(&untrusted_text(host, *problem)),
            Unreachable::Other { host, port, kind } => write!(f, "could not connect to {host}:{port} ({kind})"),
        }
    }
}

/// Finds out why `url` cannot be reached: its name, a TCP connection, and for TLS the
/// server's certificate, each checked by its typed result. `None` when all of them work
/// (the failure was above: HTTP or Socket.IO).
pub async fn why_unreachable(url: &str, trust: &Trust) -> Option<Unreachable> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default()?;
    let lookup = tokio::time::timeout(DIAGNOSIS_TIMEOUT, tokio::net::lookup_host((host.clone(), port))).await;
    let addrs = match lookup {
        Err(_) => return Some(Unreachable::TimedOut { host, port }),
        Ok(Err(_)) => return Some(Unreachable::NameNotFound { host }),
        Ok(Ok(addrs)) => addrs.collect::<Vec<_>>(),
    };
    let Some(addr) = addrs.first() else { return Some(Unreachable::NameNotFound { host }) };
    match tokio::time::timeout(DIAGNOSIS_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Some(Unreachable::TimedOut { host, port }),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Some(Unreachable::Refused { host, port });
        }
        Ok(Err(e)) => return Some(Unreachable::Other { host, port, kind: e.kind() }),
        Ok(Ok(_)) => {}
    }
    diagnose(url, trust).await.map(|problem| Unreachable::Certificate { host, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_be_readable_and_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("stock-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(matches!(Trust::with_ca_file(&missing), Err(TrustError::Unreadable { .. })));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let err = Trust::with_ca_file(&empty).unwrap_err();
        assert_eq!(err, TrustError::NoCertificate { path: empty.clone() });
        assert!(err.to_string().contains("empty.pem"), "names the file: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn problems_read_as_people_say_them() {
        assert_eq!(
            untrusted_text("socket.example.com", CertProblem::UnknownIssuer),
            "the certificate of socket.example.com is not trusted (unknown issuer)"
        );
        assert_eq!(classify(10), CertProblem::Expired);
        assert_eq!(classify(62), CertProblem::WrongHost);
        assert_eq!(classify(20), CertProblem::UnknownIssuer);
    }

    #[tokio::test]
    async fn unreachable_servers_are_named_by_cause() {
        // A port held but not listening: refused.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let why = why_unreachable(&format!("http://{addr}"), &Trust::system()).await.unwrap();
        assert_eq!(why, Unreachable::Refused { host: "127.0.0.1".into(), port: addr.port() });
        assert!(why.to_string().contains("refused the connection"));
        drop(socket);
        // (A name that is not found would need a DNS query off this machine: not tested here.)
    }
}
