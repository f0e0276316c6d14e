//! Attestation certificates (§8.2.1): the requirements a `packed` attestation certificate
//! must meet, and the signature its key makes over the new credential.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519, Oid,
};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};

use super::WebAuthnError;
use super::cose::{EDDSA, ES256, ES384, ES512, RS256};

/// id-fido-gen-ce-aaguid (§8.2.1): the authenticator model the certificate speaks for.
const AAGUID_EXTENSION: &str = "1.3.6.1.4.1.45724.1.1.4";

fn invalid(what: impl Into<String>) -> WebAuthnError {
    WebAuthnError::Attestation(what.into())
}

pub struct AttestationCertificate<'a> {
    cert: X509Certificate<'a>,
}

impl<'a> AttestationCertificate<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, WebAuthnError> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| invalid(format!("attestation certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid("attestation certificate has trailing bytes"));
        }
        Ok(AttestationCertificate { cert })
    }

    /// §8.2.1: version 3; subject C, O, CN and OU "Authenticator Attestation"; not a CA;
    /// and, when it names a model, the model of the new credential.
    pub fn check_packed_requirements(&self, aaguid: &[u8; 16]) -> Result<(), WebAuthnError> {
        let cert = &self.cert;
        if cert.version() != X509Version::V3 {
            return Err(invalid("attestation certificate is not X.509 version 3"));
        }
        let subject = cert.subject();
        let has = |mut it: Box<dyn Iterator<Item = &_> + '_>, want: Option<&str>| {
            it.any(
                |a: &x509_parser::x509::AttributeTypeAndValue<'_>| match a.as_str() {
                    Ok(v) => want.is_none_or(|w| v == w) && !v.is_empty(),
                    Err(_) => false,
                },
            )
        };
        let complete = has(Box::new(subject.iter_country()), None)
            && has(Box::new(subject.iter_organization()), None)
            && has(Box::new(subject.iter_common_name()), None)
            && has(
                Box::new(subject.iter_organizational_unit()),
                Some("Authenticator Attestation"),
            );
        if !complete {
            return Err(invalid(
                "attestation certificate subject lacks C, O, CN or OU Authenticator Attestation",
            ));
        }
        let constraints = cert
            .basic_constraints()
            .map_err(|_| invalid("attestation certificate basic constraints are malformed"))?;
        if constraints.is_some_and(|c| c.value.ca) {
            return Err(invalid("attestation certificate is a CA certificate"));
        }
        for ext in cert.extensions() {
            if ext.oid.to_id_string() != AAGUID_EXTENSION {
                continue;
            }
            // The extension value is an OCTET STRING holding the 16-byte AAGUID.
            let named = match ext.value {
                [0x04, 0x10, rest @ ..] if rest.len() == 16 => rest,
                _ => return Err(invalid("attestation certificate AAGUID is malformed")),
            };
            if ext.critical || named != aaguid {
                return Err(invalid("attestation certificate names another AAGUID"));
            }
        }
        Ok(())
    }

    /// Verifies `sig` over `signed` with the certificate's key under COSE algorithm `alg`.
    pub fn verify(&self, alg: i64, signed: &[u8], sig: &[u8]) -> Result<(), WebAuthnError> {
        let spki = self.cert.public_key();
        let key_type = &spki.algorithm.algorithm;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| Oid::try_from(p.clone()).ok());
        let algorithm: &'static dyn VerificationAlgorithm = match alg {
            ES256 if ec_on(key_type, &curve, &OID_EC_P256) => &signature::ECDSA_P256_SHA256_ASN1,
            ES384 if ec_on(key_type, &curve, &OID_NIST_EC_P384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            ES512 if ec_on(key_type, &curve, &OID_NIST_EC_P521) => {
                &signature::ECDSA_P521_SHA512_ASN1
            }
            RS256 if *key_type == OID_PKCS1_RSAENCRYPTION => &signature::RSA_PKCS1_2048_8192_SHA256,
            EDDSA if *key_type == OID_SIG_ED25519 => &signature::ED25519,
            ES256 | ES384 | ES512 | RS256 | EDDSA => {
                return Err(invalid(
                    "the certificate's key does not fit the statement's alg",
                ));
            }
            other => return Err(WebAuthnError::UnsupportedAlgorithm(other)),
        };
        UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
            .verify(signed, sig)
            .map_err(|_| invalid("the attestation signature does not verify"))
    }
}

fn ec_on(key_type: &Oid<'_>, curve: &Option<Oid<'_>>, want: &Oid<'_>) -> bool {
    *key_type == OID_KEY_TYPE_EC_PUBLIC_KEY && curve.as_ref() == Some(want)
}
