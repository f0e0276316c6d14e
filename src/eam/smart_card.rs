//! Smart-card sign-in: the method page, and `POST /eam/smartcard` on the client-certificate
//! listener, where the browser arrives with the certificate it presented in the handshake.
//!
//! Rules:
//! - The chain comes from the TLS connection (a [`ClientChain`] the server loop sets), never
//!   from the form; the form carries only the sealed transaction and the user's choice.
//! - A certificate that is refused (revoked, expired, another user's, wrong key usage,
//!   unknown issuer), or no certificate at all, shows the page again with the reason, so the
//!   user may try another card or cancel; each refusal is audited. An outage of revocation
//!   data ends the sign-in with `temporarily_unavailable`; cancel ends it with
//!   `access_denied`.
//! - Each page is in the language the browser asks for on that request, on either listener.

use bytes::Bytes;
use http::Request;

use super::certificates;
use super::i18n::{Lang, Text, text};
use super::pages::Page;
use super::pki_pages;
use super::step::{self, bad_request};
use super::transaction::Transaction;
use crate::admission::Stage;
use crate::app::App;
use crate::factor::Method;
use crate::server::ClientChain;

/// The method page: explains, and posts the transaction to the client-certificate listener.
pub(crate) fn start(app: &App, txn: &Transaction, lang: Lang) -> Page {
    page(app, lang, &app.transactions.seal(txn), None)
}

fn page(app: &App, lang: Lang, sealed: &str, message: Option<&str>) -> Page {
    let origin = app
        .config
        .client_cert
        .as_ref()
        .map(|c| c.origin.as_str())
        .unwrap_or_default();
    let issuer = crate::app::issuer_origin(&app.config.issuer);
    let to = pki_pages::SmartCardForm {
        verify: &format!("{origin}{}", app.routes.smart_card),
        verify_origin: origin,
        cancel: &format!("{issuer}{}", app.routes.method),
        cancel_origin: issuer,
    };
    pki_pages::smart_card(lang, &to, sealed, message)
}

/// `POST /eam/smartcard`: verify the presented certificate, or cancel.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let chain = req.extensions().get::<ClientChain>().cloned();
    let posted = match step::read(app, req, ["txn", "action"]).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let (source, lang) = (posted.source, posted.lang);
    let [sealed, action] = posted.fields;
    let txn = match step::open(app, sealed.as_deref(), Some(Method::SmartCard), lang) {
        Ok(txn) => txn,
        Err(page) => return *page,
    };
    let outcome = certificates::outcome(&txn, Method::SmartCard, &source);
    let end = async |error, why| certificates::end(app, (&txn, lang), &outcome, error, why).await;

    if app.clock.now() >= txn.expires {
        return end("temporarily_unavailable", "transaction expired").await;
    }
    match action.as_deref() {
        Some("verify") => {}
        Some("cancel") => return end("access_denied", "user cancelled").await,
        _ => return bad_request(lang, text(lang, Text::FormIncomplete)),
    }
    let sealed = sealed.unwrap_or_default();
    let Some(chain) = chain.filter(|c| !c.0.is_empty()) else {
        return page(app, lang, &sealed, Some(text(lang, Text::SmartCardNone)));
    };

    let fill = app.signer.fill();
    let Some(_ticket) = app.admission.admit(Stage::InTransaction, fill) else {
        return end("temporarily_unavailable", "appliance overloaded").await;
    };
    let started = std::time::Instant::now();
    let user = certificates::expected_user(&txn);
    let amr = certificates::offer_amr(&txn, Method::SmartCard);
    let verified = certificates::verify(app, &user, Method::SmartCard, amr, &chain.0).await;
    app.oversight
        .step(crate::oversight::Step::Factor, started.elapsed());

    match verified {
        Ok(certificate) => {
            tracing::debug!(
                tid = %txn.tid,
                store = %certificate.store,
                serial = %certificate.serial,
                "smart card accepted"
            );
            certificates::finish(app, (&txn, lang), Method::SmartCard, &source).await
        }
        Err(e) if e.is_outage() => {
            tracing::warn!(tid = %txn.tid, error = %e, "smart card could not be checked");
            end("temporarily_unavailable", certificates::audit_reason(&e)).await
        }
        Err(e) => {
            tracing::debug!(tid = %txn.tid, error = %e, "smart card refused");
            let _ = outcome
                .record(app, "certificate_refused", certificates::audit_reason(&e))
                .await;
            let message = certificates::user_message(&e).in_lang(lang);
            page(app, lang, &sealed, Some(&message))
        }
    }
}
