//! What the two certificate sign-ins share: which trust stores may judge a certificate for a
//! transaction, the verification itself, and the words users and the audit trail get.
//!
//! Rules:
//! - The user a certificate must belong to is the transaction's (`tid`, `oid` and the UPN
//!   from the verified hint), never anything the browser or the phone sends.
//! - A method is offered once, with the `amr` of the first store of the tenant that serves
//!   it and can bind the user; only stores granting that same `amr` may then accept a
//!   certificate, so the token never carries an `amr` other than the one negotiated.
//! - A refusal is the certificate's fault and the user may try another; an outage ends the
//!   sign-in with `temporarily_unavailable`.

use super::step::bad_request;
use std::sync::Arc;

use super::claims::Candidate;
use super::i18n::{Lang, Message, Text, text};
use super::pages::Page;
use super::transaction::Transaction;
use crate::app::App;
use crate::factor::Method;
use crate::pki::{
    BindingRule, CertificateError, ExpectedUser, Refusal, Timestamp, TrustStore,
    VerifiedCertificate,
};
use rustls::pki_types::CertificateDer;

/// The certificate methods a trust store of the user's tenant offers, in method order.
pub(crate) fn candidates(app: &App, user: &ExpectedUser<'_>) -> Vec<Candidate> {
    [Method::SmartCard, Method::MobilePki]
        .into_iter()
        .filter(|m| runs_here(app, *m))
        .filter_map(|method| {
            let store = app
                .trust_stores
                .for_tenant(user.tid)
                .find(|s| s.methods.contains(&method) && can_bind(s, user))?;
            Some(Candidate {
                method,
                amr: store.amr.as_str(),
            })
        })
        .collect()
}

/// Smart cards need the client-certificate listener; the phone flow needs nothing more.
fn runs_here(app: &App, method: Method) -> bool {
    match method {
        Method::SmartCard => app.config.client_cert.is_some(),
        _ => true,
    }
}

/// Whether the store has a way to tie one of its certificates to the user.
fn can_bind(store: &TrustStore, user: &ExpectedUser<'_>) -> bool {
    match store.binding {
        BindingRule::Upn | BindingRule::Email => user.upn.is_some(),
        BindingRule::Enrolled => store.has_enrolled_user(user.tid, user.oid),
    }
}

/// The user the transaction is for, as the verified hint named them.
pub(crate) fn expected_user(txn: &Transaction) -> ExpectedUser<'_> {
    ExpectedUser {
        tid: &txn.tid,
        oid: &txn.oid,
        upn: txn.upn.as_deref(),
    }
}

/// The `amr` the transaction's offer of `method` negotiated.
pub(crate) fn offer_amr(txn: &Transaction, method: Method) -> &str {
    let offer = txn.offers.iter().find(|o| o.method == method);
    offer.map(|o| o.amr.as_str()).unwrap_or_default()
}

/// The stores of the tenant that may accept a certificate for `method` granting `amr`.
fn stores_for(app: &App, tid: &str, method: Method, amr: &str) -> Vec<Arc<TrustStore>> {
    app.trust_stores
        .for_tenant(tid)
        .filter(|s| s.methods.contains(&method) && s.amr.as_str() == amr)
        .cloned()
        .collect()
}

/// Verifies `chain` for `user` with each store that may accept it for `method` and `amr`.
/// When all refuse, the answer is the refusal of a store the chain leads to, if any.
pub(crate) async fn verify(
    app: &App,
    user: &ExpectedUser<'_>,
    method: Method,
    amr: &str,
    chain: &[CertificateDer<'_>],
) -> Result<VerifiedCertificate, CertificateError> {
    let at = Timestamp(app.clock.now());
    let mut answer: Option<CertificateError> = None;
    for store in stores_for(app, user.tid, method, amr) {
        let error = match crate::pki::verify_client(&store, chain, at, user).await {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        if answer.as_ref().is_none_or(is_foreign) {
            answer = Some(error);
        }
    }
    Err(answer.unwrap_or_else(|| {
        let (store, tid) = ("(none for this sign-in)".to_owned(), user.tid.to_owned());
        Refusal::WrongTenant { store, tid }.into()
    }))
}

/// Whether the store refused the chain for leading to none of its roots.
fn is_foreign(error: &CertificateError) -> bool {
    matches!(
        error,
        CertificateError::Refused(Refusal::UnknownIssuer { .. })
    )
}

/// What a user reads about a certificate that was not accepted, in the language they read.
pub(crate) fn user_message(error: &CertificateError) -> Message {
    let CertificateError::Refused(refusal) = error else {
        return Message::new(Text::CertUnavailable);
    };
    let key = match refusal {
        Refusal::Empty => Text::CertEmpty,
        Refusal::Expired { not_after } => {
            return Message::new(Text::CertExpired).with("date", day(*not_after));
        }
        Refusal::NotYetValid { .. } => Text::CertNotYetValid,
        Refusal::Revoked { .. } => Text::CertRevoked,
        Refusal::UnknownIssuer { .. } | Refusal::WrongTenant { .. } => Text::CertUntrusted,
        Refusal::WrongEku { .. } => Text::CertWrongUse,
        Refusal::NoBinding { .. } => Text::CertNotYours,
        _ => Text::CertRefused,
    };
    Message::new(key)
}

/// The UTC day of `at` as `YYYY-MM-DD`, which reads the same in every language.
fn day(at: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(at.0)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| at.to_string())
}

/// A short reason for the audit trail and logs; no certificate contents.
pub(crate) fn audit_reason(error: &CertificateError) -> &'static str {
    let CertificateError::Refused(refusal) = error else {
        return "certificate revocation status unavailable";
    };
    match refusal {
        Refusal::Empty => "no certificate presented",
        Refusal::Expired { .. } => "certificate expired",
        Refusal::NotYetValid { .. } => "certificate not yet valid",
        Refusal::Revoked { .. } => "certificate revoked",
        Refusal::UnknownIssuer { .. } => "certificate from an unknown issuer",
        Refusal::WrongTenant { .. } => "no trust store for the tenant",
        Refusal::WrongEku { .. } => "certificate key usage not allowed",
        Refusal::NoBinding { .. } => "certificate of another user",
        Refusal::BudgetExceeded { .. } => "certificate path too long or looping",
        _ => "certificate refused",
    }
}

/// The audit subject of a certificate sign-in.
pub(crate) fn outcome<'a>(
    txn: &'a Transaction,
    method: Method,
    source: &'a str,
) -> super::Outcome<'a> {
    super::Outcome {
        tid: &txn.tid,
        oid: &txn.oid,
        method: Some(method),
        source,
        client_request_id: txn.client_request_id.as_deref(),
    }
}

/// Ends the sign-in with `error` posted to Entra, once; a second end is a 400 page. An end
/// the user can act on (an expired sign-in) is said in their language before Entra's page.
pub(crate) async fn end(
    app: &App,
    (txn, lang): (&Transaction, Lang),
    outcome: &super::Outcome<'_>,
    error: &'static str,
    why: &str,
) -> Page {
    if app.transactions.consume(txn, app.clock.now()).is_err() {
        return bad_request(lang, text(lang, Text::Finished));
    }
    tracing::debug!(tid = %txn.tid, error, why, "certificate sign-in ended");
    let _ = outcome.record(app, error, why).await;
    super::ending(lang, txn, error, why)
}

/// Completes the sign-in: the transaction is consumed and the token issued.
pub(crate) async fn finish(
    app: &App,
    (txn, lang): (&Transaction, Lang),
    method: Method,
    source: &str,
) -> Page {
    let now = app.clock.now();
    if app.transactions.consume(txn, now).is_err() {
        return bad_request(lang, text(lang, Text::Finished));
    }
    super::issue(app, txn, method, now, source).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_certificate_is_told_with_its_day_in_the_readers_language() {
        let expired = Refusal::Expired {
            not_after: Timestamp(1_767_225_600),
        };
        let message = user_message(&expired.into());
        assert_eq!(
            message.in_lang(Lang::En),
            "This certificate expired on 2026-01-01. Ask for a renewed one."
        );
        assert_eq!(
            message.in_lang(Lang::De),
            "Dieses Zertifikat ist am 2026-01-01 abgelaufen. Fordern Sie ein erneuertes an."
        );
    }

    #[test]
    fn a_revoked_or_foreign_certificate_is_told_apart_in_german() {
        let revoked = Refusal::Revoked {
            serial: "09".into(),
            revoked_at: Timestamp(0),
            reason: None,
            source_name: "CRL".into(),
        };
        let german = user_message(&revoked.into()).in_lang(Lang::De);
        assert_eq!(german, "Dieses Zertifikat wurde gesperrt.");
        let (store, tid) = ("s".to_owned(), "t".to_owned());
        let foreign = user_message(&Refusal::WrongTenant { store, tid }.into());
        assert_eq!(foreign.key, Text::CertUntrusted);
    }
}
