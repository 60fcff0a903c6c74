//! Test certificates, made with rcgen at test time (no private key is committed).
//!
//! [`Pki::new`] makes a private CA; [`Pki::issue`] a server certificate signed by it and
//! [`Pki::issue_client`] a client certificate (mutual TLS), written as PEM files in a
//! temporary folder (removed with the [`Pki`]).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// A private certificate authority and a folder for the files it issues.
pub struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (what a client adds to trust this CA).
    pub ca_pem: String,
    pub ca_file: PathBuf,
}

/// A server certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The serial number, as the bytes given (rcgen writes them as they are).
    pub serial: Vec<u8>,
}

/// How a server certificate is made.
#[derive(Debug, Clone)]
pub struct Leaf<'a> {
    /// DNS names and IP addresses it is for.
    pub names: &'a [&'a str],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub serial: u64,
}

impl Default for Leaf<'_> {
    /// Valid now for a year, for `localhost` and `127.0.0.1`.
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        Leaf {
            names: &["localhost", "127.0.0.1"],
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            serial: 1,
        }
    }
}

impl Pki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let key = KeyPair::generate().expect("a key pair");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(2);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key).expect("a self-signed CA");
        let ca_pem = cert.pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write the CA");
        Pki { dir, issuer: Issuer::new(params, key), ca_pem, ca_file }
    }

    /// A server certificate as `leaf` says, written as `<file_stem>.pem` and `<file_stem>.key`.
    pub fn issue(&self, file_stem: &str, leaf: &Leaf<'_>) -> Issued {
        let key = KeyPair::generate().expect("a key pair");
        let names: Vec<String> = leaf.names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, leaf.names.first().copied().unwrap_or("server"));
        params.not_before = leaf.not_before;
        params.not_after = leaf.not_after;
        let serial = leaf.serial.to_be_bytes().to_vec();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params.signed_by(&key, &self.issuer).expect("a signed leaf");
        let cert_file = self.dir.path().join(format!("{file_stem}.pem"));
        let key_file = self.dir.path().join(format!("{file_stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        Issued { cert_file, key_file, serial }
    }

    /// A client certificate (extended key usage `clientAuth`) for `name` (its DNS name
    /// and common name), valid now, written as `<file_stem>.pem` and `<file_stem>.key`.
    pub fn issue_client(&self, file_stem: &str, name: &str) -> Issued {
        let key = KeyPair::generate().expect("a key pair");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("client parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(30);
        let cert = params.signed_by(&key, &self.issuer).expect("a signed client certificate");
        let cert_file = self.dir.path().join(format!("{file_stem}.pem"));
        let key_file = self.dir.path().join(format!("{file_stem}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write the key");
        Issued { cert_file, key_file, serial: Vec::new() }
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// An hour ago, for expired certificates.
pub fn hours_ago(hours: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::hours(hours)
}
