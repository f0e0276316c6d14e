//! Signatures over CRLs and OCSP responses, checked with the same aws-lc-rs algorithm list
//! that path validation uses, plus the few DER steps needed to reach the signed bytes.
//!
//! webpki verifies CRL signatures itself, but only while it validates a path, once per path.
//! vouch verifies each CRL once when it is loaded and each OCSP response once when it arrives,
//! so it needs the signature step on its own.

use std::sync::OnceLock;

use rustls::pki_types::SignatureVerificationAlgorithm;

/// The signature algorithms accepted anywhere in a chain, CRL or OCSP response: rustls's
/// aws-lc-rs list, so the appliance checks what its TLS stack checks.
pub fn algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALL: OnceLock<&'static [&'static dyn SignatureVerificationAlgorithm]> = OnceLock::new();
    ALL.get_or_init(|| {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .all
    })
}

/// One DER element: its tag, its contents and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub whole: &'a [u8],
}

/// Reads the first DER element of `input` and returns it with what follows. Only the
/// definite, minimal length forms DER allows (X.690 §10.1) are read.
pub fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return None;
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let element = Tlv {
        tag,
        contents: &rest[..len],
        whole: &input[..header + len],
    };
    Some((element, &rest[len..]))
}

/// Reads an element that must carry `tag`.
pub fn expect(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (element, rest) = read_tlv(input)?;
    (element.tag == tag).then_some((element, rest))
}

pub const SEQUENCE: u8 = 0x30;
pub const BIT_STRING: u8 = 0x03;

/// The contents of a BIT STRING with no unused bits, as signatures and keys are.
pub fn bit_string_bytes(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, bytes)) => Some(bytes),
        _ => None,
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The key or signature encoding could not be read.
    Malformed,
    /// No accepted algorithm matches the signature algorithm and key type.
    UnsupportedAlgorithm,
    /// The signature does not verify under the key.
    Invalid,
}

/// Verifies `signature` over `message` made with `algorithm` (the contents of an
/// AlgorithmIdentifier) by the key in `spki` (a whole SubjectPublicKeyInfo).
pub fn verify(
    spki: &[u8],
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureProblem> {
    let (spki, _) = expect(spki, SEQUENCE).ok_or(SignatureProblem::Malformed)?;
    let (key_alg, rest) = expect(spki.contents, SEQUENCE).ok_or(SignatureProblem::Malformed)?;
    let (key_bits, _) = expect(rest, BIT_STRING).ok_or(SignatureProblem::Malformed)?;
    let key = bit_string_bytes(key_bits.contents).ok_or(SignatureProblem::Malformed)?;

    let matching = algorithms().iter().filter(|alg| {
        alg.signature_alg_id().as_ref() == algorithm
            && alg.public_key_alg_id().as_ref() == key_alg.contents
    });
    let mut seen = false;
    for alg in matching {
        seen = true;
        if alg.verify_signature(key, message, signature).is_ok() {
            return Ok(());
        }
    }
    Err(if seen {
        SignatureProblem::Invalid
    } else {
        SignatureProblem::UnsupportedAlgorithm
    })
}

/// A signed structure (`SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING }`, RFC 5280 §4.1.1 and
/// §5.1.1, RFC 6960 §4.2.1) split into the parts [`verify`] takes.
pub struct SignedParts<'a> {
    pub tbs: &'a [u8],
    pub algorithm: &'a [u8],
    pub signature: &'a [u8],
}

impl<'a> SignedParts<'a> {
    /// Splits the contents of the outer SEQUENCE.
    pub fn split(contents: &'a [u8]) -> Option<SignedParts<'a>> {
        let (tbs, rest) = expect(contents, SEQUENCE)?;
        let (algorithm, rest) = expect(rest, SEQUENCE)?;
        let (signature, rest) = expect(rest, BIT_STRING)?;
        if !rest.is_empty() {
            return None;
        }
        Some(SignedParts {
            tbs: tbs.whole,
            algorithm: algorithm.contents,
            signature: bit_string_bytes(signature.contents)?,
        })
    }

    pub fn verify(&self, spki: &[u8]) -> Result<(), SignatureProblem> {
        verify(spki, self.algorithm, self.tbs, self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_must_be_minimal_and_within_the_input() {
        assert!(read_tlv(&[0x30, 0x00]).is_some());
        assert!(read_tlv(&[0x30, 0x02, 0x01]).is_none());
        assert!(read_tlv(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_none());
        assert!(read_tlv(&[0x30, 0x82, 0x00, 0x80]).is_none());
        assert!(read_tlv(&[0x30, 0x80]).is_none());
        assert!(read_tlv(&[0x1f, 0x00]).is_none());
        assert!(read_tlv(&[]).is_none());
    }

    #[test]
    fn garbage_keys_and_signatures_are_refused_without_panic() {
        assert_eq!(
            verify(&[], &[], b"m", b"s"),
            Err(SignatureProblem::Malformed)
        );
        assert_eq!(
            verify(&[0x30, 0x03, 0x30, 0x01, 0x00], &[], b"m", b"s"),
            Err(SignatureProblem::Malformed)
        );
        assert!(SignedParts::split(&[0x30, 0x00]).is_none());
    }
}
