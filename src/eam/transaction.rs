//! Sign-in transactions: everything a sign-in is bound to between Entra's request and
//! vouch's answer (protocol reference §3.4 step 7).
//!
//! A transaction is sealed with AES-256-GCM under a key that lives only in this process and
//! handed to the browser as an opaque string; the appliance keeps nothing per pending sign-in
//! but, once a transaction completes, its id in a used-set until it would have expired. So a
//! transaction is single use, dies after its deadline, cannot be forged or altered, and costs
//! almost no memory while it waits. A restart invalidates every pending transaction, which
//! is the safe way round: none can be completed twice across the restart.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};

use super::claims::Offer;
use crate::entra::Cloud;
use crate::jose::{b64url_decode, b64url_encode};
use crate::seal::{self, Sealer};

const AAD: &[u8] = b"vouch-transaction-v1";
/// Completed transactions remembered at once; past this, new sign-ins are refused.
const MAX_USED: usize = 2_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    /// The hint's `preferred_username`, for methods that bind a credential to the UPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub client_id: String,
    pub cloud: Cloud,
    pub offers: Vec<Offer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    pub created: i64,
    pub expires: i64,
}

impl Transaction {
    pub fn redirect_uri(&self) -> &'static str {
        self.cloud.redirect_uri()
    }

    pub fn new_id() -> String {
        b64url_encode(&seal::random_bytes::<16>())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    #[error("the transaction is not one this appliance issued, or it was altered")]
    Invalid,
    #[error("the transaction has already been completed")]
    Used,
    #[error("the appliance holds too many completed transactions")]
    Full,
}

pub struct Transactions {
    sealer: Sealer,
    /// Derives each transaction's WebAuthn challenge; lives only in this process.
    challenges: hmac::Key,
    used: Mutex<HashMap<String, i64>>,
}

impl Default for Transactions {
    fn default() -> Self {
        let key = seal::random_bytes::<32>();
        Self {
            sealer: Sealer::ephemeral(),
            challenges: hmac::Key::new(hmac::HMAC_SHA256, &key),
            used: Mutex::default(),
        }
    }
}

impl Transactions {
    /// The WebAuthn challenge of a transaction: HMAC-SHA-256 of its id under a process key.
    /// It needs no storage, is unguessable without the key, and is single use because the
    /// transaction is; a restart changes the key, as it invalidates the transaction.
    pub fn challenge(&self, txn: &Transaction) -> Vec<u8> {
        let mut input = b"vouch-fido-signin-v1/".to_vec();
        input.extend_from_slice(txn.id.as_bytes());
        hmac::sign(&self.challenges, &input).as_ref().to_vec()
    }

    pub fn seal(&self, txn: &Transaction) -> String {
        let json = serde_json::to_vec(txn).unwrap_or_default();
        b64url_encode(&self.sealer.seal(AAD, &json))
    }

    /// Opens a sealed transaction; whether it expired or was used is for the caller to ask.
    pub fn open(&self, sealed: &str) -> Result<Transaction, TransactionError> {
        if sealed.len() > 32 * 1024 {
            return Err(TransactionError::Invalid);
        }
        let bytes = b64url_decode(sealed, "transaction").map_err(|_| TransactionError::Invalid)?;
        let json = self
            .sealer
            .open(AAD, &bytes)
            .ok_or(TransactionError::Invalid)?;
        serde_json::from_slice(&json).map_err(|_| TransactionError::Invalid)
    }

    pub fn is_used(&self, txn: &Transaction) -> bool {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&txn.id)
    }

    /// Marks the transaction completed; fails if it already was.
    pub fn consume(&self, txn: &Transaction, now: i64) -> Result<(), TransactionError> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if used.contains_key(&txn.id) {
            return Err(TransactionError::Used);
        }
        if used.len() >= MAX_USED {
            used.retain(|_, expires| *expires > now);
            if used.len() >= MAX_USED {
                return Err(TransactionError::Full);
            }
        }
        used.insert(txn.id.clone(), txn.expires);
        Ok(())
    }

    /// Forgets completed transactions that have expired anyway.
    pub fn prune(&self, now: i64) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, expires| *expires > now);
    }

    pub fn used_count(&self) -> usize {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::factor::Method;

    fn txn() -> Transaction {
        Transaction {
            id: Transaction::new_id(),
            tid: "t".into(),
            oid: "o".into(),
            sub: "s".into(),
            upn: Some("ada@example.com".into()),
            nonce: Some("n".into()),
            state: None,
            client_id: "c".into(),
            cloud: Cloud::Global,
            offers: vec![Offer {
                method: Method::Totp,
                acr: "possession".into(),
                amr: "otp".into(),
            }],
            client_request_id: None,
            created: 0,
            expires: 240,
        }
    }

    #[test]
    fn a_sealed_transaction_opens_to_the_same_values() {
        let t = Transactions::default();
        let original = txn();
        assert_eq!(t.open(&t.seal(&original)), Ok(original));
    }

    #[test]
    fn altered_or_foreign_transactions_are_invalid() {
        let t = Transactions::default();
        let sealed = t.seal(&txn());
        let mut altered = sealed.clone().into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("ascii");
        assert_eq!(t.open(&altered), Err(TransactionError::Invalid));
        assert_eq!(
            Transactions::default().open(&sealed),
            Err(TransactionError::Invalid)
        );
        for junk in ["", "!!!", "AAAA", &"A".repeat(40_000)] {
            assert_eq!(t.open(junk), Err(TransactionError::Invalid));
        }
    }

    #[test]
    fn a_transaction_completes_once() {
        let t = Transactions::default();
        let x = txn();
        assert_eq!(t.consume(&x, 0), Ok(()));
        assert!(t.is_used(&x));
        assert_eq!(t.consume(&x, 0), Err(TransactionError::Used));
        t.prune(241);
        assert_eq!(t.used_count(), 0);
    }

    #[test]
    fn a_challenge_is_stable_for_its_transaction_and_differs_between_them_and_processes() {
        let t = Transactions::default();
        let (a, b) = (txn(), txn());
        assert_eq!(t.challenge(&a), t.challenge(&a));
        assert_eq!(t.challenge(&a).len(), 32);
        assert_ne!(t.challenge(&a), t.challenge(&b));
        assert_ne!(t.challenge(&a), Transactions::default().challenge(&a));
    }

    #[test]
    fn two_transactions_get_different_ids() {
        assert_ne!(Transaction::new_id(), Transaction::new_id());
    }
}
