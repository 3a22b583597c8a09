use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::{fingerprint, PkiError, Result};

fn rcgen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Rcgen { what, source }
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The manager's CA: it signs the manager's server certificate and every agent's client certificate.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// A fresh CA valid for ten years (agents pin it, so it must outlive many agent certificates).
    pub fn generate(common_name: &str) -> Result<(CertificateAuthority, String)> {
        let key = KeyPair::generate().map_err(rcgen_err("generating the CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_err("self-signing the CA certificate"))?;
        let key_pem = key.serialize_pem();
        let ca = CertificateAuthority {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        };
        Ok((ca, key_pem))
    }

    /// Loads a CA saved as PEM by [`CertificateAuthority::generate`].
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority> {
        let key = KeyPair::from_pem(key_pem).map_err(rcgen_err("reading the CA key"))?;
        let der = crate::certs_from_pem(cert_pem, "reading the CA certificate")?.remove(0);
        let issuer =
            Issuer::from_ca_cert_der(&der, key).map_err(rcgen_err("reading the CA certificate"))?;
        Ok(CertificateAuthority {
            cert_pem: cert_pem.to_string(),
            cert_der: der.to_vec(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// The manager's TLS server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[String], valid_days: i64) -> Result<IssuedCertificate> {
        let key = KeyPair::generate().map_err(rcgen_err("generating the server key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(
            names
                .first()
                .map(String::as_str)
                .unwrap_or("bannin-manager"),
        );
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) if rustls::pki_types::DnsName::try_from(n.as_str()).is_ok() => {
                    n.clone().try_into().map(SanType::DnsName).map_err(|_| {
                        PkiError::Tls(format!("`{n}` is neither an IP address nor a DNS name"))
                    })
                }
                Err(_) => Err(PkiError::Tls(format!(
                    "`{n}` is neither an IP address nor a DNS name"
                ))),
            })
            .collect::<Result<_>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, valid_days);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(rcgen_err("signing the server certificate"))?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs an agent's CSR. Only the CSR's public key is used: the subject, usages and validity are
    /// ours, so an agent cannot ask for a CA or server certificate.
    pub fn sign_agent_csr(&self, csr_pem: &str, agent_id: &str, valid_days: i64) -> Result<String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(rcgen_err("reading the CSR"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(agent_id);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        set_validity(&mut params, valid_days);
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(rcgen_err("signing the agent certificate"))?;
        Ok(cert.pem())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Bannin");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, valid_days: i64) {
    let now = OffsetDateTime::now_utc();
    // An hour of slack covers clocks that lag the manager's.
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(valid_days);
}

/// A key pair made on the agent's host, and the CSR that carries its public half to the manager.
pub struct AgentKey {
    pub key_pem: String,
    pub csr_pem: String,
}

impl AgentKey {
    pub fn generate(agent_name: &str) -> Result<AgentKey> {
        let key = KeyPair::generate().map_err(rcgen_err("generating the agent key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(agent_name);
        let csr = params
            .serialize_request(&key)
            .map_err(rcgen_err("making the CSR"))?;
        let csr_pem = csr.pem().map_err(rcgen_err("encoding the CSR"))?;
        Ok(AgentKey {
            key_pem: key.serialize_pem(),
            csr_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_ca_reloads_with_the_same_fingerprint_and_still_signs() {
        let (ca, key_pem) = CertificateAuthority::generate("test CA").unwrap();
        let again = CertificateAuthority::load(ca.cert_pem(), &key_pem).unwrap();
        assert_eq!(ca.fingerprint(), again.fingerprint());
        let agent = AgentKey::generate("web-1").unwrap();
        let pem = again
            .sign_agent_csr(&agent.csr_pem, "agent-id", 30)
            .unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn garbage_csr_is_an_error_naming_the_csr() {
        let (ca, _) = CertificateAuthority::generate("test CA").unwrap();
        let err = ca
            .sign_agent_csr("not a csr", "x", 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("CSR"), "{err}");
    }

    #[test]
    fn server_names_accept_ips_and_dns_names_and_refuse_junk() {
        let (ca, _) = CertificateAuthority::generate("test CA").unwrap();
        ca.issue_server(&["localhost".into(), "127.0.0.1".into(), "::1".into()], 1)
            .unwrap();
        let err = ca.issue_server(&["bad name with spaces\u{0}".into()], 1);
        assert!(err.is_err());
    }
}
