use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, ServerConfig,
    SignatureScheme,
};

use crate::{certs_from_pem, fingerprint, PkiError, Result};

/// The one crypto provider of the project. Passing it explicitly means no process-wide default has to
/// be installed, and nothing else can pick another one by accident.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An agent's client certificate and key, PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

fn key_from_pem(pem: &str, what: &'static str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| PkiError::Pem {
        what,
        detail: e.to_string(),
    })
}

fn roots_from_pem(ca_pem: &str) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem, "reading the CA certificate")? {
        roots
            .add(cert)
            .map_err(|e| PkiError::Tls(format!("CA certificate not usable as a root: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// The manager's server config. Client certificates are optional at the TLS layer (enrollment, admin
/// and health routes have none), but one that is presented must chain to our CA or the handshake
/// fails; agent routes then insist on one being present.
pub fn server_config(
    server_cert_pem: &str,
    server_key_pem: &str,
    ca_pem: &str,
) -> Result<ServerConfig> {
    let provider = crypto_provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots_from_pem(ca_pem)?, provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| PkiError::Tls(e.to_string()))?;
    let mut chain = certs_from_pem(server_cert_pem, "reading the server certificate")?;
    // Send the CA along so that a freshly enrolling agent can check it against its pinned fingerprint.
    chain.extend(certs_from_pem(ca_pem, "reading the CA certificate")?);
    let key = key_from_pem(server_key_pem, "reading the server key")?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| PkiError::Tls(format!("server certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn finish_client(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig> {
    let mut config = match identity {
        Some(id) => {
            let chain = certs_from_pem(&id.cert_pem, "reading the agent certificate")?;
            let key = key_from_pem(&id.key_pem, "reading the agent key")?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                PkiError::Tls(format!("agent certificate and key do not match: {e}"))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client config that trusts exactly the given CA (agents after enrollment, the admin CLI).
pub fn client_config_trusting(
    ca_pem: &str,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .with_root_certificates(roots_from_pem(ca_pem)?);
    finish_client(builder, identity)
}

/// A client config for first contact: the server's chain must contain a CA certificate with the pinned
/// SHA-256 fingerprint, and the server certificate must verify against that CA (name included).
pub fn client_config_pinned(
    ca_fingerprint: &str,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig> {
    let verifier = PinnedCaVerifier {
        fingerprint: crate::normalize_fingerprint(ca_fingerprint)?,
        provider: crypto_provider(),
    };
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    finish_client(builder, identity)
}

#[derive(Debug)]
struct PinnedCaVerifier {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, TlsError> {
        let presented: Vec<String> = intermediates.iter().map(|c| fingerprint(c)).collect();
        let Some(ca) = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.fingerprint)
        else {
            return Err(TlsError::General(format!(
                "the manager's CA fingerprint does not match: expected {}, the manager presented {}; \
                 check --ca-fingerprint against the output of `bannin-manager init`",
                self.fingerprint,
                if presented.is_empty() { "no CA certificate".to_string() } else { presented.join(", ") }
            )));
        };
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| TlsError::General(format!("pinned CA is unusable: {e}")))?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| TlsError::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentKey, CertificateAuthority};

    #[test]
    fn configs_build_from_freshly_issued_material() {
        let (ca, _) = CertificateAuthority::generate("t").unwrap();
        let server = ca.issue_server(&["localhost".into()], 1).unwrap();
        server_config(&server.cert_pem, &server.key_pem, ca.cert_pem()).unwrap();
        let agent = AgentKey::generate("a").unwrap();
        let cert = ca.sign_agent_csr(&agent.csr_pem, "id", 1).unwrap();
        let id = ClientIdentity {
            cert_pem: cert,
            key_pem: agent.key_pem,
        };
        client_config_trusting(ca.cert_pem(), Some(&id)).unwrap();
        client_config_pinned(&ca.fingerprint(), None).unwrap();
    }

    #[test]
    fn mismatched_client_key_is_reported() {
        let (ca, _) = CertificateAuthority::generate("t").unwrap();
        let a = AgentKey::generate("a").unwrap();
        let b = AgentKey::generate("b").unwrap();
        let cert = ca.sign_agent_csr(&a.csr_pem, "id", 1).unwrap();
        let id = ClientIdentity {
            cert_pem: cert,
            key_pem: b.key_pem,
        };
        let err = client_config_trusting(ca.cert_pem(), Some(&id))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("do not match"), "{err}");
    }
}
