//! Credential public keys as COSE_Key (RFC 9052 §7, RFC 9053 §2 and §7) and the signatures
//! they verify (§6.5.1.1, §6.5.6).

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use ciborium::Value;

use super::WebAuthnError;

/// COSE algorithm identifiers (IANA "COSE Algorithms").
pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const ES384: i64 = -35;
pub const ES512: i64 = -36;
pub const RS256: i64 = -257;

/// A public key and the one algorithm it signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An uncompressed point (`04 ‖ x ‖ y`) on the curve `alg` names.
    Ec {
        alg: i64,
        point: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

fn bad(what: impl Into<String>) -> WebAuthnError {
    WebAuthnError::Key(what.into())
}

impl PublicKey {
    /// Parses an encoded COSE_Key, which must name its algorithm and match it.
    pub fn from_cose(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let mut reader = bytes;
        let value: Value =
            ciborium::from_reader(&mut reader).map_err(|e| bad(super::cbor_error(e)))?;
        if !reader.is_empty() {
            return Err(bad("trailing bytes after the key"));
        }
        let Value::Map(entries) = value else {
            return Err(bad("not a CBOR map"));
        };
        let params = Params::new(&entries)?;
        let kty = params.int(1)?.ok_or_else(|| bad("no kty"))?;
        let alg = params.int(3)?.ok_or_else(|| bad("no alg"))?;

        match (kty, alg) {
            (2, ES256 | ES384 | ES512) => ec(&params, alg),
            (1, EDDSA) => {
                if params.int(-1)? != Some(6) {
                    return Err(WebAuthnError::UnsupportedAlgorithm(alg));
                }
                let x = params.bytes(-2, 32)?;
                Ok(PublicKey::Ed25519 { x })
            }
            (3, RS256) => {
                let n = params.bytes_any(-1)?;
                let e = params.bytes_any(-2)?;
                Ok(PublicKey::Rsa { n, e })
            }
            (1..=3, ES256 | ES384 | ES512 | EDDSA | RS256) => {
                Err(bad(format!("key type {kty} does not fit algorithm {alg}")))
            }
            _ => Err(WebAuthnError::UnsupportedAlgorithm(alg)),
        }
    }

    /// The COSE algorithm this key signs with.
    pub fn alg(&self) -> i64 {
        match self {
            PublicKey::Ec { alg, .. } => *alg,
            PublicKey::Ed25519 { .. } => EDDSA,
            PublicKey::Rsa { .. } => RS256,
        }
    }

    /// Verifies `signature` over `message` (§6.5.6: ECDSA signatures are DER encoded).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebAuthnError> {
        let verified = match self {
            PublicKey::Ec { alg, point } => {
                let algorithm = match *alg {
                    ES256 => &signature::ECDSA_P256_SHA256_ASN1,
                    ES384 => &signature::ECDSA_P384_SHA384_ASN1,
                    _ => &signature::ECDSA_P521_SHA512_ASN1,
                };
                UnparsedPublicKey::new(algorithm, point).verify(message, signature)
            }
            PublicKey::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature)
            }
            PublicKey::Rsa { n, e } => RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
        };
        verified.map_err(|_| WebAuthnError::BadSignature)
    }
}

fn ec(params: &Params<'_>, alg: i64) -> Result<PublicKey, WebAuthnError> {
    // RFC 9053 §2.1: ES256 on P-256 (crv 1), ES384 on P-384 (2), ES512 on P-521 (3).
    let (crv, len) = match alg {
        ES256 => (1, 32),
        ES384 => (2, 48),
        _ => (3, 66),
    };
    if params.int(-1)? != Some(crv) {
        return Err(bad(format!("curve does not fit algorithm {alg}")));
    }
    let mut point = vec![0x04];
    point.extend_from_slice(&params.bytes(-2, len)?);
    point.extend_from_slice(&params.bytes(-3, len)?);
    Ok(PublicKey::Ec { alg, point })
}

/// The key's parameters by label, with duplicates refused.
struct Params<'a>(Vec<(i64, &'a Value)>);

impl<'a> Params<'a> {
    fn new(entries: &'a [(Value, Value)]) -> Result<Self, WebAuthnError> {
        let mut params = Vec::with_capacity(entries.len());
        for (label, value) in entries {
            let Some(label) = label.as_integer().and_then(|i| i64::try_from(i).ok()) else {
                continue;
            };
            if params.iter().any(|(l, _)| *l == label) {
                return Err(bad(format!("parameter {label} appears twice")));
            }
            params.push((label, value));
        }
        Ok(Params(params))
    }

    fn get(&self, label: i64) -> Option<&'a Value> {
        self.0.iter().find(|(l, _)| *l == label).map(|(_, v)| *v)
    }

    fn int(&self, label: i64) -> Result<Option<i64>, WebAuthnError> {
        match self.get(label) {
            None => Ok(None),
            Some(v) => v
                .as_integer()
                .and_then(|i| i64::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| bad(format!("parameter {label} is not an integer"))),
        }
    }

    fn bytes_any(&self, label: i64) -> Result<Vec<u8>, WebAuthnError> {
        self.get(label)
            .and_then(Value::as_bytes)
            .filter(|b| !b.is_empty())
            .cloned()
            .ok_or_else(|| bad(format!("parameter {label} is missing or not a byte string")))
    }

    fn bytes(&self, label: i64, len: usize) -> Result<Vec<u8>, WebAuthnError> {
        let bytes = self.bytes_any(label)?;
        if bytes.len() != len {
            return Err(bad(format!("parameter {label} is not {len} bytes")));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entries: Vec<(i64, Value)>) -> Vec<u8> {
        let map = Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect());
        let mut out = Vec::new();
        ciborium::into_writer(&map, &mut out).expect("encodes");
        out
    }

    fn p256(x: usize, y: usize) -> Vec<(i64, Value)> {
        vec![
            (1, 2.into()),
            (3, ES256.into()),
            (-1, 1.into()),
            (-2, Value::Bytes(vec![1; x])),
            (-3, Value::Bytes(vec![2; y])),
        ]
    }

    #[test]
    fn an_es256_key_becomes_an_uncompressed_point() {
        let key = PublicKey::from_cose(&encode(p256(32, 32))).expect("parses");
        let PublicKey::Ec { alg, point } = key else {
            panic!("not EC");
        };
        assert_eq!(alg, ES256);
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4);
    }

    #[test]
    fn keys_that_do_not_fit_their_algorithm_are_refused() {
        let mut wrong_curve = p256(32, 32);
        wrong_curve[2] = (-1, 2.into());
        let mut okp_for_es256 = p256(32, 32);
        okp_for_es256[0] = (1, 1.into());
        let ed448 = vec![(1, 1.into()), (3, (-53).into()), (-1, 7.into())];
        let mut twice = p256(32, 32);
        twice.push((3, ES256.into()));
        let no_alg = vec![(1, 2.into()), (-1, 1.into())];
        let cases = [
            (encode(p256(31, 32)), "32 bytes"),
            (encode(p256(32, 33)), "32 bytes"),
            (encode(wrong_curve), "curve"),
            (encode(okp_for_es256), "does not fit"),
            (encode(ed448), "-53"),
            (encode(twice), "twice"),
            (encode(no_alg), "no alg"),
            (vec![0x82, 0x01, 0x02], "map"),
            ([encode(p256(32, 32)), vec![0]].concat(), "trailing"),
            (vec![0xBF], "too soon"),
        ];
        for (bytes, why) in cases {
            let err = PublicKey::from_cose(&bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
