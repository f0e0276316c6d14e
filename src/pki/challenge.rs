//! Signatures over a sign-in challenge, made by a phone's key whose certificate was verified.
//!
//! The key is the verified leaf's SubjectPublicKeyInfo; the algorithm is what the app says it
//! used, and must fit the key: RSA keys sign with PKCS#1 v1.5 or PSS (salt as long as the hash,
//! MGF1 with the same hash, RFC 8017 §9.1), EC keys on P-256 or P-384 with ECDSA (ASN.1 DER or
//! the fixed-width r‖s of IEEE P1363), and Ed25519 keys with Ed25519 (RFC 8032). RSA keys
//! shorter than 2048 bits are refused. Verification is aws-lc-rs's.
//!
//! The waiting page and the app both show a [`compare_code`] of the challenge, so that the
//! user can see the phone is answering the sign-in on their screen and not another one.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

use super::signed::{BIT_STRING, SEQUENCE, bit_string_bytes, expect, read_tlv};

/// A signature scheme the app may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeAlgorithm {
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    EcdsaP256Sha256Der,
    EcdsaP256Sha256P1363,
    EcdsaP384Sha384Der,
    EcdsaP384Sha384P1363,
    Ed25519,
}

impl ChallengeAlgorithm {
    /// Reads the names the app sends: JOSE names (RFC 7518 §3.1, RFC 8037 §3.1), where ES256
    /// and ES384 are P1363, plus `ES256-DER` and `ES384-DER`.
    pub fn from_name(name: &str) -> Option<ChallengeAlgorithm> {
        use ChallengeAlgorithm as A;
        Some(match name {
            "RS256" => A::RsaPkcs1Sha256,
            "RS384" => A::RsaPkcs1Sha384,
            "RS512" => A::RsaPkcs1Sha512,
            "PS256" => A::RsaPssSha256,
            "PS384" => A::RsaPssSha384,
            "PS512" => A::RsaPssSha512,
            "ES256" => A::EcdsaP256Sha256P1363,
            "ES256-DER" => A::EcdsaP256Sha256Der,
            "ES384" => A::EcdsaP384Sha384P1363,
            "ES384-DER" => A::EcdsaP384Sha384Der,
            "EdDSA" | "Ed25519" => A::Ed25519,
            _ => return None,
        })
    }

    fn key_kind(self) -> KeyKind {
        use ChallengeAlgorithm as A;
        match self {
            A::RsaPkcs1Sha256 | A::RsaPkcs1Sha384 | A::RsaPkcs1Sha512 => KeyKind::Rsa,
            A::RsaPssSha256 | A::RsaPssSha384 | A::RsaPssSha512 => KeyKind::Rsa,
            A::EcdsaP256Sha256Der | A::EcdsaP256Sha256P1363 => KeyKind::P256,
            A::EcdsaP384Sha384Der | A::EcdsaP384Sha384P1363 => KeyKind::P384,
            A::Ed25519 => KeyKind::Ed25519,
        }
    }

    fn verifier(self) -> &'static dyn VerificationAlgorithm {
        use ChallengeAlgorithm as A;
        match self {
            A::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            A::RsaPkcs1Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            A::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            A::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            A::RsaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
            A::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            A::EcdsaP256Sha256Der => &signature::ECDSA_P256_SHA256_ASN1,
            A::EcdsaP256Sha256P1363 => &signature::ECDSA_P256_SHA256_FIXED,
            A::EcdsaP384Sha384Der => &signature::ECDSA_P384_SHA384_ASN1,
            A::EcdsaP384Sha384P1363 => &signature::ECDSA_P384_SHA384_FIXED,
            A::Ed25519 => &signature::ED25519,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// Why a challenge signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    #[error("the certificate's public key could not be read")]
    MalformedKey,
    #[error("the certificate's key is not one the app may sign challenges with")]
    UnsupportedKey,
    #[error("the algorithm does not fit the certificate's key")]
    AlgorithmMismatch,
    #[error("the signature does not verify")]
    BadSignature,
}

/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-RSASSA-PSS, 1.2.840.113549.1.1.10.
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1, 1.2.840.10045.3.1.7.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34.
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// id-Ed25519, 1.3.101.112.
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Reads a SubjectPublicKeyInfo into its kind and the key bytes aws-lc-rs takes.
fn read_key(spki: &[u8]) -> Result<(KeyKind, &[u8], bool), ChallengeError> {
    let malformed = ChallengeError::MalformedKey;
    let (outer, trailing) = expect(spki, SEQUENCE).ok_or(malformed)?;
    if !trailing.is_empty() {
        return Err(malformed);
    }
    let (algorithm, rest) = expect(outer.contents, SEQUENCE).ok_or(malformed)?;
    let (bits, rest) = expect(rest, BIT_STRING).ok_or(malformed)?;
    if !rest.is_empty() {
        return Err(malformed);
    }
    let key = bit_string_bytes(bits.contents).ok_or(malformed)?;
    let (oid, params) = expect(algorithm.contents, 0x06).ok_or(malformed)?;
    let kind = match oid.contents {
        OID_RSA => (KeyKind::Rsa, key, false),
        OID_RSA_PSS => (KeyKind::Rsa, key, true),
        OID_ED25519 if params.is_empty() => (KeyKind::Ed25519, key, false),
        OID_EC => {
            let (curve, _) = read_tlv(params).ok_or(malformed)?;
            match curve.contents {
                OID_P256 if curve.tag == 0x06 => (KeyKind::P256, key, false),
                OID_P384 if curve.tag == 0x06 => (KeyKind::P384, key, false),
                _ => return Err(ChallengeError::UnsupportedKey),
            }
        }
        _ => return Err(ChallengeError::UnsupportedKey),
    };
    Ok(kind)
}

/// Verifies `signature` over `message` with the key in `spki` (a whole SubjectPublicKeyInfo).
pub fn verify_challenge(
    spki: &[u8],
    algorithm: ChallengeAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), ChallengeError> {
    let (kind, key, pss_only) = read_key(spki)?;
    if kind != algorithm.key_kind() {
        return Err(ChallengeError::AlgorithmMismatch);
    }
    let is_pss = matches!(
        algorithm,
        ChallengeAlgorithm::RsaPssSha256
            | ChallengeAlgorithm::RsaPssSha384
            | ChallengeAlgorithm::RsaPssSha512
    );
    if pss_only && !is_pss {
        return Err(ChallengeError::AlgorithmMismatch);
    }
    UnparsedPublicKey::new(algorithm.verifier(), key)
        .verify(message, signature)
        .map_err(|_| ChallengeError::BadSignature)
}

/// The six digits the page and the app show for `challenge`, as `123 456`: the first four
/// bytes of SHA-256("vouch-pki compare code" ‖ challenge), big-endian, modulo 10⁶.
pub fn compare_code(challenge: &[u8]) -> String {
    let mut input = b"vouch-pki compare code".to_vec();
    input.extend_from_slice(challenge);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut first = [0u8; 4];
    first.copy_from_slice(&digest.as_ref()[..4]);
    let code = u32::from_be_bytes(first) % 1_000_000;
    format!("{:03} {:03}", code / 1000, code % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compare_code_is_six_digits_an_app_can_compute_from_the_challenge() {
        assert_eq!(compare_code(&[0u8; 32]), "434 505");
        let counting: Vec<u8> = (0..32).collect();
        assert_eq!(compare_code(&counting), "419 957");
        assert_eq!(compare_code(&[]).len(), 7);
    }

    #[test]
    fn garbage_keys_are_refused_with_a_reason() {
        let alg = ChallengeAlgorithm::Ed25519;
        assert_eq!(
            verify_challenge(&[], alg, b"m", b"s"),
            Err(ChallengeError::MalformedKey)
        );
        assert_eq!(
            verify_challenge(&[0x30, 0x80, 0x00], alg, b"m", b"s"),
            Err(ChallengeError::MalformedKey)
        );
    }

    #[test]
    fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let key = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        let spki = [
            &[
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ][..],
            aws_lc_rs::signature::KeyPair::public_key(&key).as_ref(),
        ]
        .concat();
        let sig = key.sign(b"challenge");
        let ok = verify_challenge(
            &spki,
            ChallengeAlgorithm::Ed25519,
            b"challenge",
            sig.as_ref(),
        );
        assert_eq!(ok, Ok(()));
        let wrong = verify_challenge(
            &spki,
            ChallengeAlgorithm::RsaPkcs1Sha256,
            b"challenge",
            sig.as_ref(),
        );
        assert_eq!(wrong, Err(ChallengeError::AlgorithmMismatch));
        let other = verify_challenge(
            &spki,
            ChallengeAlgorithm::Ed25519,
            b"challenge2",
            sig.as_ref(),
        );
        assert_eq!(other, Err(ChallengeError::BadSignature));
    }

    #[test]
    fn app_algorithm_names_follow_jose() {
        assert_eq!(
            ChallengeAlgorithm::from_name("ES256"),
            Some(ChallengeAlgorithm::EcdsaP256Sha256P1363)
        );
        assert_eq!(ChallengeAlgorithm::from_name("none"), None);
        assert_eq!(ChallengeAlgorithm::from_name("HS256"), None);
    }
}
