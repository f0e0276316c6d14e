//! Mobile-PKI sign-in, the browser's side: the page that shows a challenge for the phone,
//! `POST /eam/mobile/wait` that the page's script long-polls, and `POST /eam/mobile` (its
//! Continue and Cancel) that completes the sign-in once the phone proved its certificate.
//!
//! Rules:
//! - The browser never proves anything: it learns whether the challenge its transaction owns
//!   was answered, and only that challenge (another transaction's is refused).
//! - A long poll answers as soon as the phone's answer is decided, or after [`LONG_POLL`] with
//!   `waiting`; it holds no admission ticket and costs one idle task.
//! - A refused phone answer shows a fresh challenge with the reason and is audited; an outage
//!   ends the sign-in with `temporarily_unavailable`; Cancel with `access_denied`.
//! - Every page is in the language of the request that shows it. The phone's answer is judged
//!   before that is known, so a refusal is kept as a [`Message`] and written out per page.
//!
//! [`Message`]: super::i18n::Message

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};

use super::certificates;
use super::challenges::{ChallengeError, State, Subject};
use super::form;
use super::i18n::{Lang, Text, text};
use super::mobile_api::json;
use super::pages::Page;
use super::pki_pages::{self, MobileWait};
use super::step::{self, bad_request};
use super::transaction::Transaction;
use crate::app::App;
use crate::factor::Method;
use crate::jose::b64url_encode;

/// The longest a long poll waits before answering `waiting`.
pub const LONG_POLL: Duration = Duration::from_secs(25);

/// A new challenge for the transaction and the page that shows it in `lang`; `message` says
/// why an earlier one did not complete the sign-in.
pub(crate) async fn start(
    app: &App,
    (txn, lang): (&Transaction, Lang),
    message: Option<&str>,
    source: &str,
) -> Page {
    let subject = Subject {
        txn_id: txn.id.clone(),
        tid: txn.tid.clone(),
        oid: txn.oid.clone(),
        upn: txn.upn.clone(),
        amr: certificates::offer_amr(txn, Method::MobilePki).to_owned(),
        expires: txn.expires,
    };
    match app.challenges.issue(subject, app.clock.now()) {
        Ok((id, challenge)) => {
            let sealed = app.transactions.seal(txn);
            waiting(app, lang, &sealed, (&id, &challenge), message)
        }
        Err(e) => {
            tracing::warn!(tid = %txn.tid, error = %e, "phone challenge not issued");
            let outcome = certificates::outcome(txn, Method::MobilePki, source);
            let why = "too many phone sign-ins waiting";
            let error = "temporarily_unavailable";
            certificates::end(app, (txn, lang), &outcome, error, why).await
        }
    }
}

/// The waiting page for the challenge `id` with bytes `challenge`.
fn waiting(
    app: &App,
    lang: Lang,
    sealed: &str,
    (id, challenge): (&str, &[u8]),
    message: Option<&str>,
) -> Page {
    let origin = crate::app::issuer_origin(&app.config.issuer);
    let api = format!("{origin}{}", app.routes.mobile_respond);
    let code = crate::pki::challenge::compare_code(challenge);
    let challenge = b64url_encode(challenge);
    let api: String = form_urlencoded::byte_serialize(api.as_bytes()).collect();
    let link = format!("vouch-pki://sign?api={api}&challenge_id={id}&challenge={challenge}");
    pki_pages::mobile_wait(&MobileWait {
        lang,
        action: &app.routes.mobile,
        wait: &app.routes.mobile_wait,
        transaction: sealed,
        challenge_id: id,
        compare_code: &code,
        link: &link,
        message,
    })
}

/// `POST /eam/mobile`: Continue (check once, finish when proven) or Cancel.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let posted = match step::read(app, req, ["txn", "challenge", "action"]).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let (source, lang) = (posted.source, posted.lang);
    let [sealed, id, action] = posted.fields;
    let txn = match step::open(app, sealed.as_deref(), Some(Method::MobilePki), lang) {
        Ok(txn) => txn,
        Err(page) => return *page,
    };
    let outcome = certificates::outcome(&txn, Method::MobilePki, &source);
    let end = async |error, why| certificates::end(app, (&txn, lang), &outcome, error, why).await;
    let again = async |message: Option<&str>| start(app, (&txn, lang), message, &source).await;

    if app.clock.now() >= txn.expires {
        return end("temporarily_unavailable", "transaction expired").await;
    }
    let id = id.unwrap_or_default();
    match action.as_deref() {
        None | Some("continue") => {}
        Some("cancel") => {
            if app.challenges.watch(&id, &txn.id).is_ok() {
                app.challenges.remove(&id);
            }
            return end("access_denied", "user cancelled").await;
        }
        _ => return bad_request(lang, text(lang, Text::FormIncomplete)),
    }

    let watched = match app.challenges.watch(&id, &txn.id) {
        Ok(watched) => watched,
        Err(ChallengeError::OtherTransaction) => {
            return bad_request(lang, text(lang, Text::OtherSignIn));
        }
        Err(_) => return again(Some(text(lang, Text::MobileReplaced))).await,
    };
    let state = watched.state.borrow().clone();
    let sealed = sealed.unwrap_or_default();
    match state {
        State::Waiting | State::Checking => {
            let challenge = (id.as_str(), watched.challenge.as_slice());
            let not_yet = text(lang, Text::MobileNotYet);
            waiting(app, lang, &sealed, challenge, Some(not_yet))
        }
        State::Proven => {
            app.challenges.remove(&id);
            certificates::finish(app, (&txn, lang), Method::MobilePki, &source).await
        }
        State::Refused { message, reason } => {
            app.challenges.remove(&id);
            let _ = outcome.record(app, "certificate_refused", reason).await;
            again(Some(&message.in_lang(lang))).await
        }
        State::Unavailable { reason } => {
            app.challenges.remove(&id);
            end("temporarily_unavailable", reason).await
        }
    }
}

/// `POST /eam/mobile/wait`: answers `{"status": …}` once the phone's answer is decided
/// (`done`), after the long-poll time (`waiting`), or at once when the challenge is gone.
pub async fn wait<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let status = |code, status: &str| json(code, &serde_json::json!({ "status": status }));
    let lang = Lang::of(&req);
    let body = match super::read_form(req, &app.config, lang).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    let Ok([sealed, id]) = form::parse(&body, ["txn", "challenge"]) else {
        return status(StatusCode::BAD_REQUEST, "malformed");
    };
    let txn = match sealed.as_deref().map(|s| app.transactions.open(s)) {
        Some(Ok(txn)) => txn,
        _ => return status(StatusCode::BAD_REQUEST, "unknown_sign_in"),
    };
    if app.transactions.is_used(&txn) {
        return status(StatusCode::OK, "finished");
    }
    let mut watched = match app
        .challenges
        .watch(id.as_deref().unwrap_or_default(), &txn.id)
    {
        Ok(watched) => watched,
        Err(ChallengeError::OtherTransaction) => {
            return status(StatusCode::FORBIDDEN, "other_sign_in");
        }
        Err(_) => return status(StatusCode::OK, "gone"),
    };

    let left = u64::try_from(txn.expires - app.clock.now()).unwrap_or_default();
    let limit = LONG_POLL.min(Duration::from_secs(left));
    let settled = watched.state.wait_for(State::is_settled);
    match tokio::time::timeout(limit, settled).await {
        Ok(Ok(_)) => status(StatusCode::OK, "done"),
        Ok(Err(_)) => status(StatusCode::OK, "gone"),
        Err(_) if left == 0 => status(StatusCode::OK, "expired"),
        Err(_) => status(StatusCode::OK, "waiting"),
    }
}
