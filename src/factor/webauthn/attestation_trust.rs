//! Whether an attestation certificate chain leads to a root the tenant trusts (§7.1 step 22,
//! "assess the attestation trustworthiness").
//!
//! A `packed` statement with `x5c` proves only that some key signed the new credential; the
//! AAGUID its certificate vouches for is worth something only when that certificate chains
//! to a vendor's attestation root the operator chose to trust (the roots the FIDO Metadata
//! Service lists, or a vendor's own). So a tenant that allows only some models also names
//! their attestation roots, and a chain is validated against them with rustls-webpki, at the
//! time of enrolment, as a path of the leaf through the chain's other certificates.
//!
//! WebAuthn sets no extended key usage for attestation certificates (§8.2.1 lists what they
//! must hold: the AAGUID extension is checked with the statement), so any well-formed one is
//! read past; webpki still checks validity periods, CA flags and every signature.

use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::WebAuthnError;

/// Accepts any well-formed extended key usage.
struct AnyPurpose;

impl ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, mut purposes: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        purposes.try_for_each(|p| p.map(drop))
    }
}

/// The most certificates read from one `x5c`: a leaf and a few intermediates.
const MAX_CHAIN: usize = 5;

/// The attestation roots one tenant trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRoots {
    anchors: Vec<TrustAnchor<'static>>,
}

impl AttestationRoots {
    /// Roots from DER certificates; each must parse as a trust anchor.
    pub fn from_der(roots: &[CertificateDer<'_>]) -> Result<AttestationRoots, String> {
        if roots.is_empty() {
            return Err("no attestation root was given".into());
        }
        let anchors = roots
            .iter()
            .enumerate()
            .map(|(i, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|a| a.to_owned())
                    .map_err(|e| format!("root {} is not a usable certificate: {e:?}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AttestationRoots { anchors })
    }

    /// Roots from the certificates of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<AttestationRoots, String> {
        use rustls::pki_types::pem::PemObject as _;
        let roots = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not PEM certificates: {e}"))?;
        AttestationRoots::from_der(&roots)
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Validates `chain` (leaf first, DER, as `x5c` gives it) to one of the roots at
    /// `unix_secs`.
    pub fn verify(&self, chain: &[Vec<u8>], unix_secs: u64) -> Result<(), WebAuthnError> {
        let untrusted = |why: String| WebAuthnError::UntrustedAttestation(why);
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| untrusted("the statement carries no certificate".into()))?;
        if chain.len() > MAX_CHAIN {
            return Err(untrusted(format!(
                "x5c holds {} certificates; at most {MAX_CHAIN} are read",
                chain.len()
            )));
        }
        let leaf = CertificateDer::from(leaf.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let cert = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| untrusted(format!("the attestation certificate is malformed: {e:?}")))?;
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(unix_secs)),
            AnyPurpose,
            None,
            None,
        )
        .map(drop)
        .map_err(|e| untrusted(describe(&e)))
    }
}

/// An operator's words for why the chain did not lead to a trusted root.
fn describe(error: &webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::UnknownIssuer => "the chain leads to no attestation root this tenant trusts".into(),
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            "a certificate of the chain is outside its validity period".into()
        }
        E::InvalidSignatureForPublicKey => "a signature of the chain does not verify".into(),
        other => format!("the chain is not valid: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyPair,
    };

    use super::*;

    const NOW: u64 = 1_800_000_000;

    struct Vendor {
        params: CertificateParams,
        key: KeyPair,
        der: Vec<u8>,
    }

    fn vendor(name: &str) -> Vendor {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Vendor { params, key, der }
    }

    fn attestation_cert(by: &Vendor, purposes: Vec<ExtendedKeyUsagePurpose>) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Batch attestation");
        params.extended_key_usages = purposes;
        params.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4],
            vec![
                0x04, 0x10, 0xaa, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        )];
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&by.params, &by.key);
        params.signed_by(&key, &issuer).unwrap().der().to_vec()
    }

    fn roots(of: &[&Vendor]) -> AttestationRoots {
        let ders: Vec<CertificateDer<'_>> = of
            .iter()
            .map(|v| CertificateDer::from(v.der.as_slice()))
            .collect();
        AttestationRoots::from_der(&ders).unwrap()
    }

    #[test]
    fn a_chain_to_a_trusted_vendor_root_is_accepted() {
        let yubico = vendor("Vendor A attestation root");
        let leaf = attestation_cert(&yubico, vec![]);
        assert_eq!(roots(&[&yubico]).verify(&[leaf], NOW), Ok(()));
    }

    #[test]
    fn a_chain_to_another_root_or_a_self_made_one_is_refused() {
        let trusted = vendor("Vendor A attestation root");
        let lookalike = vendor("Vendor A attestation root");
        let leaf = attestation_cert(&lookalike, vec![]);
        let refused = roots(&[&trusted]).verify(&[leaf], NOW).unwrap_err();
        assert!(refused.to_string().contains("does not verify"), "{refused}");

        let own = vendor("Self-made root");
        let leaf = attestation_cert(&own, vec![]);
        let refused = roots(&[&trusted]).verify(&[leaf], NOW).unwrap_err();
        assert!(
            refused.to_string().contains("no attestation root"),
            "{refused}"
        );
    }

    #[test]
    fn an_attestation_certificate_with_key_purposes_still_chains() {
        let vendor = vendor("Vendor A attestation root");
        let leaf = attestation_cert(&vendor, vec![ExtendedKeyUsagePurpose::ClientAuth]);
        assert_eq!(roots(&[&vendor]).verify(&[leaf], NOW), Ok(()));
    }

    #[test]
    fn a_chain_through_an_intermediate_is_accepted_and_a_missing_one_refused() {
        let root = vendor("Vendor A attestation root");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Vendor A batch CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&root.params, &root.key);
        let der = params.signed_by(&key, &issuer).unwrap().der().to_vec();
        let batch = Vendor { params, key, der };
        let leaf = attestation_cert(&batch, vec![]);
        let trusted = roots(&[&root]);
        assert_eq!(
            trusted.verify(&[leaf.clone(), batch.der.clone()], NOW),
            Ok(())
        );
        assert!(trusted.verify(&[leaf], NOW).is_err());
    }

    #[test]
    fn empty_overlong_or_malformed_chains_are_refused_without_panic() {
        let vendor = vendor("Vendor A attestation root");
        let trusted = roots(&[&vendor]);
        let leaf = attestation_cert(&vendor, vec![]);
        assert!(trusted.verify(&[], NOW).is_err());
        assert!(trusted.verify(&vec![leaf.clone(); 6], NOW).is_err());
        for junk in [
            vec![],
            vec![0x30],
            vec![0x30, 0x82, 0xff, 0xff],
            vec![0u8; 300],
        ] {
            assert!(trusted.verify(&[junk], NOW).is_err());
        }
        let mut flipped = leaf;
        let last = flipped.len() - 3;
        flipped[last] ^= 0x01;
        assert!(trusted.verify(&[flipped], NOW).is_err());
    }

    #[test]
    fn roots_must_be_given_and_parse() {
        assert!(AttestationRoots::from_der(&[]).is_err());
        assert!(AttestationRoots::from_pem(b"not pem").is_err());
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(AttestationRoots::from_der(&[junk]).is_err());
        let vendor = vendor("Vendor A attestation root");
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &vendor.der)
        );
        assert_eq!(AttestationRoots::from_pem(pem.as_bytes()).unwrap().len(), 1);
    }
}
