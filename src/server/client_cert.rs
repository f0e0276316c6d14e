//! The TLS side of smart-card sign-in: a listener that asks the browser for a client
//! certificate.
//!
//! Rules:
//! - The handshake takes any certificate chain, so that a certificate the trust stores refuse
//!   still reaches the sign-in page and the user learns why; the chain is judged after the
//!   handshake by `pki::verify_client` with the tenant's store.
//! - The client's handshake signature is always checked (RFC 8446 §4.4.3): the chain handed
//!   on belongs to whoever holds its key.
//! - A client certificate is asked for, never required: without one the user gets a page that
//!   says so instead of a failed connection.
//! - The acceptable CA names offered are the subjects of every trust store's roots.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::pki::TrustStores;

/// The chain a client presented on the client-certificate listener, leaf first; empty when it
/// presented none. Set on every request of such a connection.
#[derive(Debug, Clone, Default)]
pub struct ClientChain(pub Arc<Vec<CertificateDer<'static>>>);

/// Accepts any chain at the TLS layer and checks the client's proof of its key.
#[derive(Debug)]
struct AnyClientCertificate {
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client-certificate listener's TLS settings: the main listener's certificate and
/// protocols, asking for a client certificate from the trust stores' roots.
pub fn tls_config(
    main: &rustls::ServerConfig,
    stores: &TrustStores,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut subjects: Vec<DistinguishedName> = Vec::new();
    for anchor in stores.iter().flat_map(|s| s.anchors.iter()) {
        if !seen.contains(&anchor.subject.as_ref()) {
            seen.push(anchor.subject.as_ref());
            subjects.push(DistinguishedName::in_sequence(anchor.subject.as_ref()));
        }
    }
    let verifier = AnyClientCertificate {
        subjects,
        algorithms: provider.signature_verification_algorithms,
    };

    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(main.cert_resolver.clone());
    config.alpn_protocols = main.alpn_protocols.clone();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_asks_for_a_certificate_without_requiring_one() {
        let verifier = AnyClientCertificate {
            subjects: Vec::new(),
            algorithms: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms,
        };
        assert!(verifier.offer_client_auth());
        assert!(!verifier.client_auth_mandatory());
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
