//! Whether a verified certificate belongs to the user Entra sent.
//!
//! The user comes from the verified `id_token_hint` (its `tid`, `oid` and, when Entra gives it,
//! `preferred_username`), never from anything the browser or the phone says. UPNs and email
//! addresses compare without regard to ASCII case, as Entra treats them.

use super::certificate::CertificateFacts;
use super::config::BindingRule;
use super::error::Refusal;
use super::store::TrustStore;
use crate::jose::hint::VerifiedHint;

/// The user a certificate must belong to, as the verified hint names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedUser<'a> {
    pub tid: &'a str,
    pub oid: &'a str,
    /// The hint's `preferred_username` (the UPN), when present.
    pub upn: Option<&'a str>,
}

impl<'a> From<&'a VerifiedHint> for ExpectedUser<'a> {
    fn from(hint: &'a VerifiedHint) -> ExpectedUser<'a> {
        ExpectedUser {
            tid: &hint.tid,
            oid: &hint.oid,
            upn: hint.preferred_username.as_deref(),
        }
    }
}

/// Checks the store's binding rule for `facts` (the leaf) against `user`.
pub fn check(
    store: &TrustStore,
    facts: &CertificateFacts,
    user: &ExpectedUser<'_>,
) -> Result<(), Refusal> {
    let refuse = |detail: String| Err(Refusal::NoBinding { detail });
    match store.binding {
        BindingRule::Upn | BindingRule::Email => {
            let (names, kind) = match store.binding {
                BindingRule::Upn => (&facts.upns, "UPN (SAN otherName 1.3.6.1.4.1.311.20.2.3)"),
                _ => (&facts.emails, "RFC 822 name"),
            };
            let Some(upn) = user.upn else {
                return refuse(format!(
                    "the hint carries no UPN to compare with the certificate's {kind}"
                ));
            };
            if names.iter().any(|n| n.eq_ignore_ascii_case(upn)) {
                return Ok(());
            }
            if names.is_empty() {
                return refuse(format!("the certificate has no {kind}"));
            }
            refuse(format!(
                "the certificate's {kind} {} is not {upn}",
                names.join(", ")
            ))
        }
        BindingRule::Enrolled => match store.enrolled_user(&facts.sha256) {
            Some((tid, oid))
                if tid.eq_ignore_ascii_case(user.tid) && oid.eq_ignore_ascii_case(user.oid) =>
            {
                Ok(())
            }
            Some(_) => refuse("the certificate is enrolled for another user".into()),
            None => refuse(format!(
                "the certificate is not enrolled for user {} in tenant {}",
                user.oid, user.tid
            )),
        },
    }
}
