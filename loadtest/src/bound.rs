//! The crypto bound: what one core of this machine can do if a sign-in cost nothing but its
//! cryptography, measured through the appliance's own library functions with no I/O.
//!
//! One sign-in's crypto is: verify Entra's hint (RS256), seal and open the transaction
//! (AES-256-GCM), prove the factor, and sign the `id_token` (RS256). The factor is a TOTP
//! code (HMAC), or for mobile PKI the phone's certificate verified for the user through the
//! appliance's own `pki::verify_client_offline` with a loaded trust store (the phone CA is
//! the root, so one ECDSA signature check; no revocation source) and the phone's ES256
//! signature over the challenge through `pki::challenge::verify_challenge`; for a smart card
//! the same two checks with the card CA's store, the signature standing for the one the card
//! makes in the TLS handshake (CertificateVerify, an ES256 verify; the rest of the handshake
//! is TLS, as for any new connection); for FIDO2, the transaction's WebAuthn challenge
//! derived and a security key's ES256 assertion over it verified through
//! `factor::webauthn::verify_assertion` (the key's signing is the browser's side and is not
//! timed). The RSA signatures dominate. A load run divides the appliance's throughput per
//! busy core by this bound; the rest of the gap is TLS, HTTP, HTML and scheduling.
//!
//! The bound is measured twice: on one core while the others idle, and on every core at once,
//! one copy per core. The second is the like-for-like figure for a load run, whose cores are
//! all busy (the appliance on some, the load tool on the rest): a core that shares its
//! physical core, caches or power budget with busy neighbours does less than one that runs
//! alone, whoever the neighbours are.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_sim::authenticator::Authenticator;
use entra_sim::{APP_ID, Authority, SigningKey, TENANT, USER_OID, USER_SUB};
use serde::Serialize;
use vouch::eam::claims::Offer;
use vouch::eam::transaction::{Transaction, Transactions};
use vouch::entra::Cloud;
use vouch::factor::Method;
use vouch::factor::otp::{self, TotpParams};
use vouch::factor::webauthn::{
    Assertion, RelyingParty, StoredCredential, UserVerification, verify_assertion,
};
use vouch::jose::hint::{EntraKey, Expectations, UnverifiedHint};
use vouch::jose::token::{self, IdTokenClaims};
use vouch::pki::challenge::{ChallengeAlgorithm, verify_challenge};
use vouch::pki::{ExpectedUser, Timestamp, TrustStore, verify_client_offline};
use vouch::signer::{SoftwareSigner, TokenSigner as _};

use crate::certs::{self, Kind, UserCa};
use crate::flow::Factor;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoundError {
    #[error("making the bound's keys: {0}")]
    Keys(String),
    #[error("the appliance's {step} refused a well-formed input: {detail}")]
    Refused { step: &'static str, detail: String },
}

/// Microseconds per sign-in for each part, and the sign-ins per second they allow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoundReport {
    /// The factor measured: `otp` or `mobile-pki`.
    pub factor: &'static str,
    pub iterations: u64,
    pub hint_verify_us: f64,
    pub transaction_seal_open_us: f64,
    /// OTP only; 0 for mobile PKI.
    pub totp_verify_us: f64,
    /// Mobile PKI and smart card: the certificate verified for the user; 0 otherwise.
    pub chain_verify_us: f64,
    /// Mobile PKI and smart card: the key's signature (over the phone's challenge, or the
    /// card's in the handshake); 0 otherwise.
    pub challenge_verify_us: f64,
    /// FIDO2 only: the challenge derived and the security key's assertion verified.
    pub assertion_verify_us: f64,
    pub token_sign_us: f64,
    pub signin_us: f64,
    /// One core while the others idle.
    pub signins_per_sec: f64,
    /// Cores that measured at once for the figure below.
    pub cores: usize,
    /// Per core, with every core measuring at once.
    pub busy_signins_per_sec: f64,
}

impl BoundReport {
    pub fn text(&self) -> String {
        let factor = if self.factor == Factor::Otp.name() {
            format!("  TOTP verify        {:>9.1} µs\n", self.totp_verify_us)
        } else if self.factor == Factor::Fido.name() {
            format!(
                "  assertion verify   {:>9.1} µs\n",
                self.assertion_verify_us
            )
        } else {
            let signature = if self.factor == Factor::SmartCard.name() {
                "handshake signature"
            } else {
                "challenge verify"
            };
            format!(
                "  chain verify       {:>9.1} µs\n  {signature:<19}{:>9.1} µs\n",
                self.chain_verify_us, self.challenge_verify_us
            )
        };
        format!(
            "crypto bound, {}, one core, no I/O (fastest slice, {} sign-ins)\n\
             \x20 hint verify        {:>9.1} µs\n\
             \x20 transaction        {:>9.1} µs\n\
             {factor}\
             \x20 token sign         {:>9.1} µs\n\
             \x20 one sign-in        {:>9.1} µs\n\
             bound       {:.1} sign-ins/s on one core, the others idle\n\
             \x20           {:.1} sign-ins/s per core, all {} cores busy\n",
            self.factor,
            self.iterations,
            self.hint_verify_us,
            self.transaction_seal_open_us,
            self.token_sign_us,
            self.signin_us,
            self.signins_per_sec,
            self.busy_signins_per_sec,
            self.cores,
        )
    }
}

/// What one sign-in's crypto works on, made once.
struct Inputs {
    factor: Factor,
    hint: String,
    entra_key: EntraKey,
    issuer: String,
    seed: Vec<u8>,
    params: TotpParams,
    certificate: CertInputs,
    key: KeyInputs,
    transactions: Transactions,
    signer: SoftwareSigner,
}

/// A phone's answer or a card's handshake signature, and the trust store that judges it.
struct CertInputs {
    store: TrustStore,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    challenge: [u8; 32],
    signature: Vec<u8>,
}

/// A security key and what the appliance knows of it.
struct KeyInputs {
    rp: RelyingParty,
    key: RefCell<Authenticator>,
    public_key_cose: Vec<u8>,
}

impl KeyInputs {
    fn new() -> KeyInputs {
        let origin = "https://localhost:8443";
        let key = Authenticator::new("localhost", origin);
        KeyInputs {
            rp: RelyingParty {
                id: "localhost".into(),
                origins: vec![origin.into()],
            },
            public_key_cose: key.public_key_cose(),
            key: RefCell::new(key),
        }
    }
}

const UPN: &str = "user0@loadtest.example";

impl CertInputs {
    fn new(kind: Kind) -> Result<CertInputs, BoundError> {
        let keys = |e: &dyn std::fmt::Display| BoundError::Keys(e.to_string());
        let ca = UserCa::generate(kind).map_err(|e| keys(&e))?;
        let phone = ca.issue(UPN, 1).map_err(|e| keys(&e))?;
        let config = certs::store_config(kind, TENANT);
        let store = TrustStore::build(&config, vec![ca.cert.clone()], Vec::new(), Vec::new())
            .map_err(|e| keys(&e))?;
        let mut challenge = [0u8; 32];
        aws_lc_rs::rand::fill(&mut challenge).map_err(|e| keys(&e))?;
        let signature = phone.sign(&challenge).map_err(|e| keys(&e))?;
        Ok(CertInputs {
            store,
            chain: vec![phone.cert],
            challenge,
            signature,
        })
    }
}

impl Inputs {
    fn new(factor: Factor) -> Result<Inputs, BoundError> {
        let keys = |e: &dyn std::fmt::Display| BoundError::Keys(e.to_string());
        let entra = SigningKey::generate().map_err(|e| keys(&e))?;
        let issuer = format!("https://127.0.0.1:1/{TENANT}/v2.0");
        let now = entra_sim::unix_now();
        let claims = serde_json::json!({
            "ver": "2.0", "iss": issuer, "sub": USER_SUB, "aud": APP_ID, "exp": now - 1,
            "iat": now, "nbf": now, "oid": USER_OID, "tid": TENANT,
        });
        let hint = entra_sim::authority::compact(&entra, &Authority::hint_header(&entra), &claims);
        let jwk = entra.jwk(&issuer);
        let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap_or_default());
        let (n, e) = (
            part("n").map_err(|e| keys(&e))?,
            part("e").map_err(|e| keys(&e))?,
        );
        let entra_key = EntraKey::from_components(entra.kid.clone(), &n, &e)
            .ok_or_else(|| BoundError::Keys("the hint key was refused".into()))?;

        let rsa = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| keys(&e))?;
        let pkcs8 = rsa.as_der().map_err(|e| keys(&e))?;
        let signer =
            SoftwareSigner::new(pkcs8.as_ref(), b"bound".to_vec()).map_err(|e| keys(&e))?;
        Ok(Inputs {
            factor,
            hint,
            entra_key,
            issuer,
            seed: b"12345678901234567890".to_vec(),
            params: TotpParams::default(),
            certificate: CertInputs::new(match factor {
                Factor::SmartCard => Kind::Card,
                _ => Kind::Phone,
            })?,
            key: KeyInputs::new(),
            transactions: Transactions::default(),
            signer,
        })
    }
}

/// Per-part time spent so far.
#[derive(Default)]
struct Spent {
    hint: Duration,
    transaction: Duration,
    totp: Duration,
    chain: Duration,
    challenge: Duration,
    assertion: Duration,
    token: Duration,
}

/// Measures the bound on one core for about `secs`, then on every core at once for as long.
pub fn measure(secs: Duration, factor: Factor) -> Result<BoundReport, BoundError> {
    let mut report = measure_one(secs, factor)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rates = std::thread::scope(|scope| {
        let copies: Vec<_> = (0..cores)
            .map(|_| scope.spawn(|| measure_one(secs, factor)))
            .collect();
        copies
            .into_iter()
            .map(|copy| match copy.join() {
                Ok(measured) => measured.map(|r| r.signins_per_sec),
                Err(_) => Err(BoundError::Keys("a measuring thread panicked".into())),
            })
            .collect::<Result<Vec<f64>, BoundError>>()
    })?;
    report.cores = cores;
    report.busy_signins_per_sec = rates.iter().sum::<f64>() / cores as f64;
    Ok(report)
}

/// Runs sign-in crypto on this thread for about `secs`, in [`SLICES`] slices, and reports the
/// fastest slice: other work on the machine can only slow a slice down, never speed it up.
fn measure_one(secs: Duration, factor: Factor) -> Result<BoundReport, BoundError> {
    let inputs = Inputs::new(factor)?;
    let mut best: Option<BoundReport> = None;
    for _ in 0..SLICES {
        let slice = measure_slice(&inputs, secs / SLICES)?;
        if best.is_none_or(|b| slice.signins_per_sec > b.signins_per_sec) {
            best = Some(slice);
        }
    }
    best.ok_or_else(|| BoundError::Keys("no slice was measured".into()))
}

const SLICES: u32 = 5;

fn measure_slice(inputs: &Inputs, secs: Duration) -> Result<BoundReport, BoundError> {
    let mut spent = Spent::default();
    let started = Instant::now();
    let mut iterations = 0u64;
    while started.elapsed() < secs || iterations < 20 {
        one_signin(inputs, &mut spent)?;
        iterations += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / iterations as f64;
    let factor = spent.totp + spent.chain + spent.challenge + spent.assertion;
    let signin_us = per(spent.hint + spent.transaction + factor + spent.token);
    Ok(BoundReport {
        factor: inputs.factor.name(),
        iterations,
        hint_verify_us: per(spent.hint),
        transaction_seal_open_us: per(spent.transaction),
        totp_verify_us: per(spent.totp),
        chain_verify_us: per(spent.chain),
        challenge_verify_us: per(spent.challenge),
        assertion_verify_us: per(spent.assertion),
        token_sign_us: per(spent.token),
        signin_us,
        signins_per_sec: 1e6 / signin_us,
        cores: 1,
        busy_signins_per_sec: 1e6 / signin_us,
    })
}

fn one_signin(inputs: &Inputs, spent: &mut Spent) -> Result<(), BoundError> {
    let now = entra_sim::unix_now();
    let refused = |step, e: &dyn std::fmt::Display| BoundError::Refused {
        step,
        detail: e.to_string(),
    };

    let t = Instant::now();
    let expect = Expectations {
        issuer: &inputs.issuer,
        audiences: &[APP_ID],
        now,
        max_age: 600,
        skew: 300,
    };
    let hint = UnverifiedHint::parse(&inputs.hint)
        .and_then(|h| h.verify(&inputs.entra_key, &expect))
        .map_err(|e| refused("hint check", &e))?;
    spent.hint += t.elapsed();

    let t = Instant::now();
    let sealed = inputs
        .transactions
        .seal(&transaction(hint.sub, inputs.factor, now));
    let txn = inputs
        .transactions
        .open(&sealed)
        .map_err(|e| refused("transaction", &e))?;
    spent.transaction += t.elapsed();

    match inputs.factor {
        Factor::Otp => totp(inputs, spent, now)?,
        Factor::MobilePki | Factor::SmartCard => certificate(inputs, &txn, spent, now)?,
        Factor::Fido => security_key(inputs, &txn, spent)?,
    }

    let t = Instant::now();
    sign_token(inputs, &txn, now)?;
    spent.token += t.elapsed();
    Ok(())
}

fn totp(inputs: &Inputs, spent: &mut Spent, now: i64) -> Result<(), BoundError> {
    let code = otp::totp(&inputs.seed, inputs.params, now);
    let t = Instant::now();
    otp::matching_step(&inputs.seed, inputs.params, &code, now).map_err(|e| {
        BoundError::Refused {
            step: "TOTP",
            detail: e.to_string(),
        }
    })?;
    spent.totp += t.elapsed();
    Ok(())
}

/// The appliance's part of a phone's answer or a card's handshake: the chain for the
/// transaction's user, then the signature with the leaf's key, read from the leaf as the
/// appliance reads it.
fn certificate(
    inputs: &Inputs,
    txn: &Transaction,
    spent: &mut Spent,
    now: i64,
) -> Result<(), BoundError> {
    let refused = |step, e: &dyn std::fmt::Display| BoundError::Refused {
        step,
        detail: e.to_string(),
    };
    let phone = &inputs.certificate;
    let user = ExpectedUser {
        tid: &txn.tid,
        oid: &txn.oid,
        upn: txn.upn.as_deref(),
    };
    let t = Instant::now();
    verify_client_offline(&phone.store, &phone.chain, Timestamp(now), &user)
        .map_err(|e| refused("certificate check", &e))?;
    spent.chain += t.elapsed();

    let t = Instant::now();
    let leaf = phone.chain.first().map(webpki::EndEntityCert::try_from);
    let Some(Ok(leaf)) = leaf else {
        return Err(refused("challenge check", &"the leaf does not parse"));
    };
    let es256 = ChallengeAlgorithm::from_name(certs::ALGORITHM)
        .ok_or_else(|| refused("challenge check", &"ES256 is not known"))?;
    let spki = leaf.subject_public_key_info();
    verify_challenge(spki.as_ref(), es256, &phone.challenge, &phone.signature)
        .map_err(|e| refused("challenge check", &e))?;
    spent.challenge += t.elapsed();
    Ok(())
}

/// The appliance's part of a security-key sign-in: the transaction's challenge, then the
/// key's assertion over it against the enrolled credential.
fn security_key(inputs: &Inputs, txn: &Transaction, spent: &mut Spent) -> Result<(), BoundError> {
    let key = &inputs.key;
    let challenge = inputs.transactions.challenge(txn);
    let signed = key.key.borrow_mut().assert(&challenge);
    let credential = StoredCredential {
        id: &signed.credential_id,
        public_key_cose: &key.public_key_cose,
        sign_count: 0,
        backup_eligible: false,
    };
    let assertion = Assertion {
        credential_id: &signed.credential_id,
        client_data_json: &signed.client_data_json,
        authenticator_data: &signed.authenticator_data,
        signature: &signed.signature,
    };

    let t = Instant::now();
    let challenge = inputs.transactions.challenge(txn);
    let policy = UserVerification::Required;
    verify_assertion(&key.rp, policy, &challenge, &credential, &assertion).map_err(|e| {
        BoundError::Refused {
            step: "security-key check",
            detail: e.to_string(),
        }
    })?;
    spent.assertion += t.elapsed();
    Ok(())
}

fn transaction(sub: String, factor: Factor, now: i64) -> Transaction {
    let method = match factor {
        Factor::Otp => Method::Totp,
        Factor::MobilePki => Method::MobilePki,
        Factor::SmartCard => Method::SmartCard,
        Factor::Fido => Method::Fido,
    };
    let amr = factor.amr();
    Transaction {
        id: Transaction::new_id(),
        tid: TENANT.into(),
        oid: USER_OID.into(),
        sub,
        upn: matches!(factor, Factor::MobilePki | Factor::SmartCard).then(|| UPN.into()),
        nonce: Some("AwABEgEAAAADAOz_BQD0_8Xk".into()),
        state: Some("rQQIARAAjZE9aMNAFMdfk1I".into()),
        client_id: entra_sim::CLIENT_ID.into(),
        cloud: Cloud::Global,
        offers: vec![Offer {
            method,
            acr: "possessionorinherence".into(),
            amr: amr.into(),
        }],
        client_request_id: None,
        created: now,
        expires: now + 240,
    }
}

fn sign_token(inputs: &Inputs, txn: &Transaction, now: i64) -> Result<String, BoundError> {
    let claims = IdTokenClaims {
        iss: "https://localhost:8443",
        aud: &txn.client_id,
        sub: &txn.sub,
        iat: now,
        nbf: now,
        exp: now + 300,
        nonce: txn.nonce.as_deref(),
        acr: "possessionorinherence",
        amr: [txn.offers[0].amr.as_str()],
    };
    let input = token::signing_input(&inputs.signer.published().kid, &claims);
    let signature = inputs
        .signer
        .sign(input.as_bytes())
        .map_err(|e| BoundError::Refused {
            step: "token signer",
            detail: e.to_string(),
        })?;
    Ok(token::assemble(input, &signature))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_bound_adds_up_its_parts_and_inverts_to_a_rate() {
        let report = measure(Duration::from_millis(10), Factor::Otp).unwrap();
        assert!(report.iterations >= 20);
        let parts = report.hint_verify_us
            + report.transaction_seal_open_us
            + report.totp_verify_us
            + report.token_sign_us;
        assert_eq!(report.chain_verify_us + report.challenge_verify_us, 0.0);
        assert!((parts - report.signin_us).abs() < 1e-6 * parts.max(1.0));
        assert!((report.signins_per_sec * report.signin_us - 1e6).abs() < 1.0);
        assert!(report.token_sign_us > report.totp_verify_us);
    }

    #[test]
    fn the_busy_bound_is_measured_on_every_core() {
        let report = measure(Duration::from_millis(10), Factor::Otp).unwrap();
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(report.cores, cores);
        assert!(report.busy_signins_per_sec > 0.0);
        assert!(report.text().contains(&format!("all {cores} cores busy")));
    }

    #[test]
    fn the_fido_bound_verifies_a_security_key_assertion_instead_of_a_code() {
        let report = measure(Duration::from_millis(10), Factor::Fido).unwrap();
        assert_eq!(report.factor, "fido");
        assert_eq!(report.totp_verify_us + report.chain_verify_us, 0.0);
        assert!(report.assertion_verify_us > 0.0);
        let parts = report.hint_verify_us
            + report.transaction_seal_open_us
            + report.assertion_verify_us
            + report.token_sign_us;
        assert!((parts - report.signin_us).abs() < 1e-6 * parts);
        assert!(report.text().contains("assertion verify"));
        assert!(!report.text().contains("TOTP") && !report.text().contains("chain"));
    }

    #[test]
    fn the_smart_card_bound_verifies_the_cards_chain_and_handshake_signature() {
        let report = measure(Duration::from_millis(10), Factor::SmartCard).unwrap();
        assert_eq!(report.factor, "smart-card");
        assert_eq!(report.totp_verify_us + report.assertion_verify_us, 0.0);
        assert!(report.chain_verify_us > 0.0 && report.challenge_verify_us > 0.0);
        assert!(report.text().contains("chain verify"));
    }

    #[test]
    fn the_mobile_pki_bound_verifies_the_phones_chain_and_signature_instead_of_a_code() {
        let report = measure(Duration::from_millis(10), Factor::MobilePki).unwrap();
        assert_eq!(report.factor, "mobile-pki");
        assert_eq!(report.totp_verify_us, 0.0);
        assert!(report.chain_verify_us > 0.0 && report.challenge_verify_us > 0.0);
        let parts = report.hint_verify_us
            + report.transaction_seal_open_us
            + report.chain_verify_us
            + report.challenge_verify_us
            + report.token_sign_us;
        assert!((parts - report.signin_us).abs() < 1e-6 * parts);
        assert!(report.text().contains("chain verify"));
        assert!(!report.text().contains("TOTP"));
        let json = serde_json::to_value(report).unwrap();
        assert_eq!(json["factor"], "mobile-pki");
        assert!(json["chain_verify_us"].is_number() && json["challenge_verify_us"].is_number());
    }
}
