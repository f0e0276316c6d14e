//! A phone's key for the mobile-PKI tests: one per signature scheme the app may use, made by
//! aws-lc-rs, with the public key rcgen needs to certify it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

/// A phone's key, with the scheme it signs with.
pub struct Phone {
    pub algorithm: &'static str,
    public: Vec<u8>,
    spki_alg: &'static rcgen::SignatureAlgorithm,
    key: Key,
}

enum Key {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl rcgen::PublicKeyData for Phone {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.spki_alg
    }
}

impl Phone {
    pub fn new(algorithm: &'static str) -> Phone {
        let ec = |alg| EcdsaKeyPair::generate(alg).unwrap();
        let rsa = || RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let (key, spki_alg) = match algorithm {
            "RS256" => (
                Key::Rsa(rsa(), &signature::RSA_PKCS1_SHA256),
                &rcgen::PKCS_RSA_SHA256,
            ),
            "PS256" => (
                Key::Rsa(rsa(), &signature::RSA_PSS_SHA256),
                &rcgen::PKCS_RSA_SHA256,
            ),
            "ES256" => (
                Key::Ec(ec(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            "ES256-DER" => (
                Key::Ec(ec(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            "ES384" => (
                Key::Ec(ec(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)),
                &rcgen::PKCS_ECDSA_P384_SHA384,
            ),
            _ => (
                Key::Ed(Ed25519KeyPair::generate().unwrap()),
                &rcgen::PKCS_ED25519,
            ),
        };
        let public = match &key {
            Key::Rsa(k, _) => k.public_key().as_ref().to_vec(),
            Key::Ec(k) => k.public_key().as_ref().to_vec(),
            Key::Ed(k) => k.public_key().as_ref().to_vec(),
        };
        Phone {
            algorithm,
            public,
            spki_alg,
            key,
        }
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Rsa(k, padding) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(*padding, &rng, message, &mut out).unwrap();
                out
            }
            Key::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Key::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }
}
