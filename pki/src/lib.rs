//! Bannin's internal PKI: the manager's certificate authority, agent certificates issued from CSRs, and the
//! rustls configurations both sides use for mutual TLS (one crypto provider: `ring`).
//!
//! It must never write files or log key material: callers decide where PEM goes, and errors describe
//! certificates by fingerprint, never by their private parts.

mod ca;
mod tls;

pub use ca::{AgentKey, CertificateAuthority, IssuedCertificate};
pub use tls::{
    client_config_pinned, client_config_trusting, crypto_provider, server_config, ClientIdentity,
};

use rustls::pki_types::CertificateDer;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{what}: {source}")]
    Rcgen {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("{what}: {detail}")]
    Pem { what: &'static str, detail: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("`{0}` is not a SHA-256 fingerprint (expected 64 hex digits, colons allowed)")]
    BadFingerprint(String),
}

pub type Result<T> = std::result::Result<T, PkiError>;

/// SHA-256 of a certificate's DER, as 64 lowercase hex digits. This is what `init` prints and what
/// `enroll --ca-fingerprint` pins.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Accepts `AB:CD:...` (as openssl prints) or plain hex, in either case.
pub fn normalize_fingerprint(text: &str) -> Result<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(PkiError::BadFingerprint(text.to_string()))
    }
}

/// SHA-256 of arbitrary bytes, hex. Used to store secrets (tokens) hashed.
pub fn sha256_hex(data: &[u8]) -> String {
    fingerprint(data)
}

/// Fills a buffer from the OS random source; tokens and ids come from here.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random source is available");
    buf
}

/// Parses every certificate in a PEM text.
pub fn certs_from_pem(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PkiError::Pem {
            what,
            detail: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_normalization_accepts_openssl_style_and_rejects_short_text() {
        let fp = fingerprint(b"x");
        let colon: String = fp
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(normalize_fingerprint(&colon).unwrap(), fp);
        assert!(normalize_fingerprint("abcd")
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes::<32>(), random_bytes::<32>());
    }
}
