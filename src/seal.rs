//! Authenticated encryption for data vouch keeps at rest or hands to the browser:
//! AES-256-GCM with a random 96-bit nonce, the nonce stored in front of the ciphertext.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand;

pub const KEY_LEN: usize = 32;

pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8]) -> Option<Sealer> {
        let key = UnboundKey::new(&AES_256_GCM, key).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// A sealer with a fresh random key, for data that must not outlive the process.
    pub fn ephemeral() -> Sealer {
        let key = random_bytes::<KEY_LEN>();
        let key = UnboundKey::new(&AES_256_GCM, &key).unwrap_or_else(|_| unreachable!());
        Sealer {
            key: LessSafeKey::new(key),
        }
    }

    /// `nonce || ciphertext || tag`; `aad` binds the box to its context.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(NONCE_LEN);
        let nonce = Nonce::assume_unique_for_key(nonce);
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut body)
            .unwrap_or_else(|_| unreachable!("AES-GCM seals any length we produce"));
        out.extend_from_slice(&body);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + 16 {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::fill(&mut out).unwrap_or_else(|_| unreachable!("the system RNG does not fail"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_only_with_the_same_context() {
        let s = Sealer::ephemeral();
        let boxed = s.seal(b"ctx", b"secret");
        assert_eq!(s.open(b"ctx", &boxed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(s.open(b"other", &boxed), None);
    }

    #[test]
    fn refuses_tampered_truncated_and_foreign_boxes() {
        let s = Sealer::ephemeral();
        let mut boxed = s.seal(b"", b"secret");
        let last = boxed.len() - 1;
        boxed[last] ^= 1;
        assert_eq!(s.open(b"", &boxed), None);
        assert_eq!(s.open(b"", &boxed[..10]), None);
        assert_eq!(s.open(b"", &[]), None);
        let other = Sealer::ephemeral();
        assert_eq!(other.open(b"", &s.seal(b"", b"x")), None);
    }

    #[test]
    fn refuses_keys_of_the_wrong_length() {
        assert!(Sealer::new(&[0; 16]).is_none());
        assert!(Sealer::new(&[0; 32]).is_some());
    }
}
