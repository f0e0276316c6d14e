//! Starting a method: straight from the authorize request when only one is offered, or from
//! `POST /eam/method` when the user picked one on the choice page.
//!
//! The choice page carries the sealed transaction and the method's name. Only a method the
//! transaction offers can be started; anything else is a 400 page, since the browser, not
//! Entra, sent it. Method pages whose own endpoint lives elsewhere (the smart-card listener)
//! cancel here, naming their method for the audit trail.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::form;
use super::i18n::{Lang, Text, text};
use super::pages::{self, Answer, MethodPage, Page};
use super::transaction::Transaction;
use crate::app::App;
use crate::factor::Method;

fn bad_request(message: &str) -> Page {
    pages::problem(StatusCode::BAD_REQUEST, "Sign-in cannot continue", message)
}

/// `POST /eam/method`: the user chose `method`, or cancelled the sign-in.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let source = crate::app::Peer::source_of(&req);
    let lang = Lang::of(&req);
    let body = match super::read_form(req, &app.config).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    let [sealed, method, action] = match form::parse(&body, ["txn", "method", "action"]) {
        Ok(fields) => fields,
        Err(e) => return bad_request(&format!("The form could not be read: {e}.")),
    };
    let txn = match sealed.as_deref().map(|s| app.transactions.open(s)) {
        Some(Ok(txn)) => txn,
        _ => return bad_request("This sign-in is not one this appliance started."),
    };
    if app.transactions.is_used(&txn) {
        return bad_request(
            "This sign-in has already finished. Start again from the sign-in page.",
        );
    }
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
        None => bad_request("That way of signing in is not offered for this sign-in."),
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
        return bad_request("This sign-in has already finished.");
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
