//! TLS on the bridge's listener, with rustls through `tokio-rustls` (the rustls project's
//! own tokio integration; rustls because it is memory-safe and needs no system OpenSSL,
//! with the `ring` provider because it builds without cmake, unlike `aws-lc-rs`).
//!
//! - [`TlsFiles`]: the PEM files, `STOCK_BRIDGE_TLS_CERT` (the chain, leaf first) and
//!   `STOCK_BRIDGE_TLS_KEY`. Misconfiguration (unreadable, no certificate, no key, a key
//!   that is not the certificate's) is refused at start with the variable and the file.
//! - [`ServedCert`]: the pair being served, replaceable while running: [`ServedCert::watch`]
//!   reloads on SIGHUP and when either file changes on disk (checked every
//!   [`RELOAD_CHECK`] unless `STOCK_BRIDGE_TLS_RELOAD_CHECK_SECS` says otherwise). Open connections keep their session; the next handshake gets the
//!   new certificate. A reload that fails keeps the old pair and says why in the log.
//! - Its expiry is in `/healthz` and in `/metrics` (`stock_bridge_tls_cert_not_after_seconds`).
//! - [`ClientCa`]: mutual TLS on the back-office listener: the CA its clients' certificates
//!   must come from, and optionally the names they must carry; both checked in the
//!   handshake, so a wrong client never gets to send a byte of HTTP.

use chrono::{DateTime, Utc};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use x509_parser::extensions::GeneralName;

pub const CERT_VAR: &str = "STOCK_BRIDGE_TLS_CERT";
pub const KEY_VAR: &str = "STOCK_BRIDGE_TLS_KEY";
/// How often the files are checked for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

pub const ADMIN_CERT_VAR: &str = "STOCK_BRIDGE_ADMIN_TLS_CERT";
pub const ADMIN_KEY_VAR: &str = "STOCK_BRIDGE_ADMIN_TLS_KEY";
pub const ADMIN_CLIENT_CA_VAR: &str = "STOCK_BRIDGE_ADMIN_CLIENT_CA";

/// Where the certificate chain and its key are, and the variables that named them (for
/// error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_var: &'static str,
    pub key_var: &'static str,
}

impl TlsFiles {
    /// The public listener's pair (`STOCK_BRIDGE_TLS_CERT` / `_KEY`).
    pub fn public(cert: PathBuf, key: PathBuf) -> Self {
        TlsFiles { cert, key, cert_var: CERT_VAR, key_var: KEY_VAR }
    }

    /// The back-office listener's own pair (`STOCK_BRIDGE_ADMIN_TLS_CERT` / `_KEY`).
    pub fn admin(cert: PathBuf, key: PathBuf) -> Self {
        TlsFiles { cert, key, cert_var: ADMIN_CERT_VAR, key_var: ADMIN_KEY_VAR }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{var}: cannot read {}: {source}", path.display())]
    Unreadable { var: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{var}: {} holds no PEM certificate", path.display())]
    NoCertificate { var: &'static str, path: PathBuf },
    #[error("{var}: {} holds no PEM private key", path.display())]
    NoKey { var: &'static str, path: PathBuf },
    #[error("{var}: {}: {why}", path.display())]
    Invalid { var: &'static str, path: PathBuf, why: String },
    #[error("{key_var} ({}) is not the key of the certificate in {cert_var} ({})", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf, cert_var: &'static str, key_var: &'static str },
    /// Expired, or not valid yet: a reload keeps the pair it has (issue 22, F11).
    #[error("{var}: the certificate in {} is not valid now (valid from {not_before} to {not_after})", path.display())]
    OutOfValidity { var: &'static str, path: PathBuf, not_before: DateTime<Utc>, not_after: DateTime<Utc> },
}

/// A loaded pair and what operators want to know about it.
pub struct Served {
    pub key: Arc<CertifiedKey>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The leaf's serial number, hex.
    pub serial: String,
}

/// Reads and checks `files`.
pub fn load(files: &TlsFiles) -> Result<Served, TlsError> {
    let read = |var: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Unreadable { var, path: path.to_owned(), source })
    };
    let (cert_var, key_var) = (files.cert_var, files.key_var);
    let cert_pem = read(cert_var, &files.cert)?;
    let key_pem = read(key_var, &files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Invalid { var: cert_var, path: files.cert.clone(), why: e.to_string() })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate { var: cert_var, path: files.cert.clone() });
    };
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey { var: key_var, path: files.key.clone() })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::Invalid {
        var: cert_var,
        path: files.cert.clone(),
        why: e.to_string(),
    })?;
    let not_before = DateTime::from_timestamp(parsed.validity().not_before.timestamp(), 0).unwrap_or_default();
    let not_after = DateTime::from_timestamp(parsed.validity().not_after.timestamp(), 0).unwrap_or_default();
    let serial = parsed.raw_serial_as_string();
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| TlsError::Invalid {
        var: key_var,
        path: files.key.clone(),
        why: e.to_string(),
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        cert_var,
        key_var,
    })?;
    Ok(Served { key: Arc::new(certified), not_before, not_after, serial })
}

impl Served {
    /// Whether the certificate is within its validity at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// See the module docs.
pub struct ServedCert {
    files: TlsFiles,
    current: RwLock<Arc<Served>>,
    check_every: Duration,
    /// Why the last reload kept the previous pair (cleared by one that succeeds).
    reload_failure: RwLock<Option<String>>,
}

impl fmt::Debug for ServedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.current();
        f.debug_struct("ServedCert")
            .field("files", &self.files)
            .field("serial", &current.serial)
            .field("not_after", &current.not_after)
            .finish()
    }
}

impl ServedCert {
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        Self::load_checking_every(files, RELOAD_CHECK)
    }

    /// [`ServedCert::load`], looking at the files every `check_every`. A pair that is not
    /// valid now is still served (there is no other), but said loudly.
    pub fn load_checking_every(files: TlsFiles, check_every: Duration) -> Result<Arc<Self>, TlsError> {
        let served = load(&files)?;
        if !served.is_valid_at(Utc::now()) {
            tracing::warn!(
                not_before = %served.not_before,
                not_after = %served.not_after,
                "{}: the certificate in {} is not valid now: clients will refuse it until it is replaced",
                files.cert_var,
                files.cert.display()
            );
        }
        Ok(Arc::new(ServedCert {
            files,
            current: RwLock::new(Arc::new(served)),
            check_every,
            reload_failure: RwLock::new(None),
        }))
    }

    pub fn current(&self) -> Arc<Served> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why the last reload kept the previous pair, if it did.
    pub fn reload_failure(&self) -> Option<String> {
        self.reload_failure.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again; on an error, or a pair that is not valid now, the served pair
    /// stays as it was and the reason is kept for `/healthz` and `/metrics`.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = load(&self.files).and_then(|served| {
            if served.is_valid_at(Utc::now()) {
                Ok(served)
            } else {
                Err(TlsError::OutOfValidity {
                    var: self.files.cert_var,
                    path: self.files.cert.clone(),
                    not_before: served.not_before,
                    not_after: served.not_after,
                })
            }
        });
        let served = match loaded {
            Ok(served) => served,
            Err(e) => {
                *self.reload_failure.write().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
                return Err(e);
            }
        };
        tracing::info!(serial = %served.serial, not_after = %served.not_after, "TLS certificate reloaded");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(served);
        *self.reload_failure.write().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// A rustls acceptor that always serves the current pair (HTTP/1.1 only).
    pub fn acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        self.acceptor_for(None)
    }

    /// [`ServedCert::acceptor`], asking for a client certificate from `clients` when given
    /// (mutual TLS: a client without one is refused in the handshake).
    pub fn acceptor_for(self: &Arc<Self>, clients: Option<&ClientCa>) -> tokio_rustls::TlsAcceptor {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(clients) => builder.with_client_cert_verifier(clients.verifier.clone()),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Reloads on SIGHUP and when a file changes; stops when the handle is dropped.
    pub fn watch(self: &Arc<Self>) -> Watcher {
        let served = self.clone();
        Watcher(tokio::spawn(async move {
            let mut seen = served.modified();
            #[cfg(unix)]
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            let mut check = tokio::time::interval(served.check_every.max(Duration::from_millis(100)));
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let signalled = async {
                    match hangup.as_mut() {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let signalled = std::future::pending::<Option<()>>();
                let why = tokio::select! {
                    _ = signalled => "SIGHUP",
                    _ = check.tick() => {
                        let now = served.modified();
                        if now == seen { continue; }
                        seen = now;
                        "the files changed"
                    }
                };
                if let Err(e) = served.reload() {
                    tracing::warn!("TLS reload ({why}) failed, still serving the previous certificate: {e}");
                }
            }
        }))
    }

    fn modified(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (m(&self.files.cert), m(&self.files.key))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The CA whose client certificates the back-office listener accepts
/// (`STOCK_BRIDGE_ADMIN_CLIENT_CA`), and the names allowed
/// (`STOCK_BRIDGE_ADMIN_CLIENT_NAMES`; empty: any certificate from the CA).
#[derive(Clone)]
pub struct ClientCa {
    pub file: PathBuf,
    pub names: Vec<String>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa").field("file", &self.file).field("names", &self.names).finish()
    }
}

impl ClientCa {
    /// Reads the CA bundle (at least one certificate) and builds the verifier.
    pub fn load(file: PathBuf, names: Vec<String>) -> Result<Self, TlsError> {
        let var = ADMIN_CLIENT_CA_VAR;
        let pem = std::fs::read(&file).map_err(|source| TlsError::Unreadable { var, path: file.clone(), source })?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Invalid { var, path: file.clone(), why: e.to_string() })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate { var, path: file });
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::Invalid { var, path: file.clone(), why: e.to_string() })?;
        }
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Invalid { var, path: file.clone(), why: e.to_string() })?;
        let verifier: Arc<dyn ClientCertVerifier> =
            if names.is_empty() { inner } else { Arc::new(NamedClients { inner, names: names.clone() }) };
        Ok(ClientCa { file, names, verifier })
    }
}

/// The names a certificate is for: its DNS, e-mail and URI subject alternative names and
/// its common name.
pub fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else { return Vec::new() };
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) | GeneralName::RFC822Name(n) | GeneralName::URI(n) => {
                    names.push((*n).to_owned())
                }
                _ => {}
            }
        }
    }
    for cn in parsed.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            names.push(cn.to_owned());
        }
    }
    names
}

/// On a request's extensions: the connection presented a client certificate that
/// [`ClientCa`] verified, for these names.
#[derive(Debug, Clone)]
pub struct VerifiedClient {
    pub names: Arc<[String]>,
}

/// The client certificate's verifier, then the allow-list of names: a certificate from the
/// right CA but for another name is refused in the handshake too.
#[derive(Debug)]
struct NamedClients {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<String>,
}

impl ClientCertVerifier for NamedClients {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let names = certificate_names(end_entity);
        if names.iter().any(|n| self.names.iter().any(|allowed| allowed.eq_ignore_ascii_case(n))) {
            Ok(verified)
        } else {
            tracing::info!(?names, "client certificate refused: no name on STOCK_BRIDGE_ADMIN_CLIENT_NAMES");
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ResolvesServerCert for ServedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key.clone())
    }
}

/// The reload task; dropping it stops the task.
pub struct Watcher(JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stock_testkit::{Leaf, Pki, hours_ago};

    fn write_pair(pki: &Pki, into: &TlsFiles, leaf: &Leaf<'_>) {
        let issued = pki.issue("next", leaf);
        std::fs::copy(&issued.cert_file, &into.cert).unwrap();
        std::fs::copy(&issued.key_file, &into.key).unwrap();
    }

    #[test]
    fn a_reload_keeps_the_served_pair_when_the_new_one_is_expired_or_not_yet_valid() {
        let pki = Pki::new("test CA");
        let first = pki.issue("served", &Leaf { serial: 1, ..Leaf::default() });
        let files = TlsFiles::public(first.cert_file.clone(), first.key_file.clone());
        let served = ServedCert::load(files.clone()).unwrap();
        assert!(served.current().is_valid_at(Utc::now()));
        assert_eq!(served.reload_failure(), None);
        let before = served.current().serial.clone();

        let expired = Leaf { serial: 2, not_before: hours_ago(30 * 24), not_after: hours_ago(48), ..Leaf::default() };
        let not_yet = Leaf { serial: 3, not_before: hours_ago(-48), not_after: hours_ago(-30 * 24), ..Leaf::default() };
        for leaf in [expired, not_yet] {
            write_pair(&pki, &files, &leaf);
            let refused = served.reload();
            assert!(matches!(refused, Err(TlsError::OutOfValidity { .. })), "{refused:?}");
            assert_eq!(served.current().serial, before, "the served pair is kept");
            let failure = served.reload_failure().expect("the failure is kept for /healthz and /metrics");
            assert!(failure.contains("not valid now"), "{failure}");
        }

        write_pair(&pki, &files, &Leaf { serial: 4, ..Leaf::default() });
        served.reload().unwrap();
        assert_ne!(served.current().serial, before, "a valid pair is taken");
        assert_eq!(served.reload_failure(), None, "and the failure is cleared");
    }
}
