//! Starting a method: straight from the authorize request when only one is offered, or from
//! `POST /eam/method` when the user picked one on the choice page.
//!
//! The choice page carries the sealed transaction and the method's name. Only a method the
//! transaction offers can be started; anything else is a 400 page, since the browser, not
//! Entra, sent it. Method pages whose own endpoint lives elsewhere (the smart-card listener)
//! cancel here, naming their method for the audit trail.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::i18n::{Lang, Text, text};
use super::pages::{self, Answer, MethodPage, Page};
use super::step;
use super::transaction::Transaction;
use crate::app::App;
use crate::factor::Method;

/// `POST /eam/method`: the user chose `method`, or cancelled the sign-in.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let posted = match step::read(app, req, ["txn", "method", "action"]).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let (source, lang) = (posted.source, posted.lang);
    let [sealed, method, action] = posted.fields;
    let txn = match step::open(app, sealed.as_deref(), None, lang) {
        Ok(txn) => txn,
        Err(page) => return *page,
    };
    let now = app.clock.now();
    if now >= txn.expires {
        let (error, why) = ("temporarily_unavailable", "transaction expired");
        return end(app, &txn, (None, &source, lang), error, why).await;
    }
    let chosen = method.as_deref().and_then(Method::from_name);
    let offered = chosen.filter(|m| txn.offers.iter().any(|o| o.method == *m));
    if action.as_deref() == Some("cancel") {
        return end(
            app,
            &txn,
            (offered, &source, lang),
            "access_denied",
            "user cancelled",
        )
        .await;
    }
    match offered {
        Some(method) => start(app, &txn, method, &source, lang).await,
        None => step::bad_request(lang, text(lang, Text::NotOffered)),
    }
}

/// The first page of `method` for the transaction.
pub(crate) async fn start(
    app: &App,
    txn: &Transaction,
    method: Method,
    source: &str,
    lang: Lang,
) -> Page {
    let outcome = super::Outcome {
        tid: &txn.tid,
        oid: &txn.oid,
        method: Some(method),
        source,
        client_request_id: txn.client_request_id.as_deref(),
    };
    let post_error = async |error, why| {
        let _ = outcome.record(app, error, why).await;
        pages::form_post(
            txn.redirect_uri(),
            Answer::Error(error),
            txn.state.as_deref(),
        )
    };
    match method {
        Method::Totp => match app.store.totp(&txn.tid, &txn.oid) {
            Ok(Some((params, _))) => {
                let sealed = app.transactions.seal(txn);
                super::otp::form(lang, &app.routes.otp, &sealed, params.digits, None)
            }
            Ok(None) => post_error("access_denied", "TOTP no longer enrolled").await,
            Err(e) => {
                tracing::error!(tid = %txn.tid, error = %e, "credential store unreadable");
                post_error("temporarily_unavailable", "credential store unreadable").await
            }
        },
        Method::SmartCard => super::smart_card::start(app, txn, lang),
        Method::MobilePki => super::mobile::start(app, (txn, lang), None, source).await,
        Method::Fido => match super::fido::ceremony_page(app, txn, lang, true) {
            Some(page) => page,
            None => post_error("access_denied", "no security key enrolled").await,
        },
    }
}

/// What the choice page calls a method.
fn method_label(lang: Lang, method: crate::factor::Method) -> &'static str {
    use crate::factor::Method;
    match method {
        Method::Totp => text(lang, Text::MethodTotp),
        Method::Fido => text(lang, Text::MethodFido),
        Method::SmartCard => text(lang, Text::MethodSmartCard),
        Method::MobilePki => text(lang, Text::MethodMobilePki),
    }
}

/// The page that lets the user pick one of the `methods` the sign-in offers.
pub(crate) fn choice_page(
    lang: Lang,
    action: &str,
    transaction: &str,
    methods: &[crate::factor::Method],
) -> Page {
    let buttons: String = methods
        .iter()
        .map(|m| {
            format!(
                "<li>{}</li>",
                pages::button("method", m.name(), method_label(lang, *m), false)
            )
        })
        .collect();
    let body = format!(
        "<form method=\"post\" action=\"{action}\">{txn}\
<ul class=\"methods\">{buttons}</ul>\
<div class=\"actions\">{cancel}</div></form>",
        txn = pages::hidden("txn", transaction),
        action = pages::escape(action),
        cancel = pages::button("action", "cancel", text(lang, Text::Cancel), true),
    );
    pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::ChooseTitle),
        body: &body,
        script: None,
    })
}

/// Ends the sign-in with `error` posted to Entra, once; the method is the one the user was
/// on, when the form said.
pub(super) async fn end(
    app: &App,
    txn: &Transaction,
    (method, source, lang): (Option<Method>, &str, Lang),
    error: &'static str,
    why: &'static str,
) -> Page {
    if app.transactions.consume(txn, app.clock.now()).is_err() {
        return step::bad_request(lang, text(lang, Text::Finished));
    }
    let outcome = super::Outcome {
        tid: &txn.tid,
        oid: &txn.oid,
        method,
        source,
        client_request_id: txn.client_request_id.as_deref(),
    };
    let _ = outcome.record(app, error, why).await;
    super::ending(lang, txn, error, why)
}
