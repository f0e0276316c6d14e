//! The security-key step of a sign-in: the page that asks the browser for a WebAuthn
//! assertion, and `POST /eam/fido`, which verifies it and answers Entra.
//!
//! The challenge is derived from the transaction ([`Transactions::challenge`]), so it is
//! single use and dies with the transaction. The browser posts the assertion's fields in
//! base64url; each is bounded and decoded before the verifier sees it. A cancelled or
//! unsupported ceremony shows a page to try again or cancel; it does not end the sign-in.
//! A refused assertion or a counter that went back ends it with `access_denied`.
//!
//! [`Transactions::challenge`]: super::transaction::Transactions::challenge

use bytes::Bytes;
use http::{Request, StatusCode};

use super::i18n::{Lang, Text, text};
use super::pages::{self, MethodPage, Page, button, escape, hidden};
use super::step::{self, bad_request};
use super::transaction::{Transaction, TransactionError};
use crate::admission::Stage;
use crate::app::App;
use crate::factor::Method;
use crate::factor::webauthn::{self, Assertion, StoredCredential, WebAuthnError};
use crate::jose::{b64url_decode, b64url_encode};
use crate::store::FidoCredential;

/// The longest value of each posted field, in base64url characters.
const MAX_CREDENTIAL_ID: usize = 1366;
const MAX_CLIENT_DATA: usize = 5462;
const MAX_AUTHENTICATOR_DATA: usize = 5462;
const MAX_SIGNATURE: usize = 1366;

/// Base64url helpers the ceremony scripts share.
pub(super) const SCRIPT_HELPERS: &str = "function b64d(s){s=s.replace(/-/g,'+')\
.replace(/_/g,'/');while(s.length%4)s+='=';var r=atob(s),a=new Uint8Array(r.length);\
for(var i=0;i<r.length;i++)a[i]=r.charCodeAt(i);return a;}\
function b64e(b){var a=new Uint8Array(b),s='';for(var i=0;i<a.length;i++)\
s+=String.fromCharCode(a[i]);return btoa(s).replace(/\\+/g,'-').replace(/\\//g,'_')\
.replace(/=+$/,'');}";

/// Asks for an assertion with the options on the form's data attributes, then posts it.
const SIGN_IN_SCRIPT: &str = "var f=document.getElementById('fido'),d=f.dataset,\
st=document.getElementById('fido-status'),go=document.getElementById('fido-start');\
function put(n,v){f.elements[n].value=v;}\
function run(){if(!window.PublicKeyCredential||!navigator.credentials){\
put('outcome','unsupported');f.submit();return;}go.disabled=true;st.textContent=d.waiting;\
var ids=d.ids.split(' ').map(function(i){return{type:'public-key',id:b64d(i)};});\
navigator.credentials.get({publicKey:{challenge:b64d(d.challenge),rpId:d.rpId,\
timeout:120000,userVerification:d.uv,allowCredentials:ids}}).then(function(c){\
put('credential_id',b64e(c.rawId));put('client_data_json',b64e(c.response.clientDataJSON));\
put('authenticator_data',b64e(c.response.authenticatorData));\
put('signature',b64e(c.response.signature));put('outcome','ok');f.submit();},\
function(e){put('outcome',e&&e.name==='NotAllowedError'?'cancelled':'failed');f.submit();});}\
go.addEventListener('click',run);if(d.auto==='1')run();";

/// The page that runs the ceremony for the user's keys; `None` when they have none. With
/// `auto` it starts on load; otherwise on the button, which browsers that want a user
/// gesture for WebAuthn need after a first refusal.
pub(crate) fn ceremony_page(app: &App, txn: &Transaction, lang: Lang, auto: bool) -> Option<Page> {
    let keys = app.store.fido(&txn.tid, &txn.oid);
    if keys.is_empty() {
        return None;
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    let uv = super::enrol::uv_option(policy(app, &txn.tid));
    let sealed = app.transactions.seal(txn);
    let body = format!(
        "<p>{intro}</p><noscript><p class=\"error\">{noscript}</p></noscript>\
<p id=\"fido-status\" class=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<form id=\"fido\" method=\"post\" action=\"{action}\" data-challenge=\"{challenge}\" \
data-rp-id=\"{rp_id}\" data-uv=\"{uv}\" data-ids=\"{ids}\" data-waiting=\"{waiting}\" \
data-auto=\"{auto}\">\
{txn}{fields}<div class=\"actions\"><button type=\"button\" id=\"fido-start\">{start}</button>\
{cancel}</div></form>",
        intro = text(lang, Text::FidoIntro),
        noscript = text(lang, Text::FidoNoScript),
        action = escape(&app.routes.fido),
        challenge = b64url_encode(&app.transactions.challenge(txn)),
        rp_id = escape(&app.config.fido.id),
        ids = escape(&ids.join(" ")),
        waiting = text(lang, Text::FidoWaiting),
        auto = u8::from(auto),
        txn = hidden("txn", &sealed),
        fields = [
            "outcome",
            "credential_id",
            "client_data_json",
            "authenticator_data"
        ]
        .into_iter()
        .chain(["signature"])
        .map(|name| hidden(name, ""))
        .collect::<String>(),
        start = text(lang, Text::FidoStart),
        cancel = button("action", "cancel", text(lang, Text::Cancel), true),
    );
    let script = format!("{SCRIPT_HELPERS}{SIGN_IN_SCRIPT}");
    Some(pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::FidoTitle),
        body: &body,
        script: Some(&script),
    }))
}

fn policy(app: &App, tid: &str) -> webauthn::UserVerification {
    app.config
        .tenant(tid)
        .map(|t| t.fido.user_verification)
        .unwrap_or_default()
}

/// The page after a cancelled or unsupported ceremony: try again, or cancel the sign-in.
fn retry_page(app: &App, sealed: &str, lang: Lang, message: Text) -> Page {
    let retry = match message {
        Text::FidoUnsupported => String::new(),
        _ => button("action", "retry", text(lang, Text::TryAgain), false),
    };
    let body = format!(
        "<p class=\"error\" role=\"alert\">{message}</p>\
<form method=\"post\" action=\"{action}\">{txn}<div class=\"actions\">{retry}{cancel}</div>\
</form>",
        message = text(lang, message),
        action = escape(&app.routes.fido),
        txn = hidden("txn", sealed),
        cancel = button("action", "cancel", text(lang, Text::Cancel), true),
    );
    pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::FidoCancelledTitle),
        body: &body,
        script: None,
    })
}

const FIELDS: [&str; 7] = [
    "txn",
    "action",
    "outcome",
    "credential_id",
    "client_data_json",
    "authenticator_data",
    "signature",
];

/// `POST /eam/fido`: the assertion, a failed ceremony, a retry or a cancel.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let posted = match step::read(app, req, FIELDS).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let (source, lang) = (posted.source, posted.lang);
    let [
        sealed,
        action,
        outcome,
        id,
        client_data,
        auth_data,
        signature,
    ] = posted.fields;
    let txn = match step::open(app, sealed.as_deref(), Some(Method::Fido), lang) {
        Ok(txn) => txn,
        Err(page) => return *page,
    };
    let now = app.clock.now();
    let end = async |error, why| {
        super::method::end(app, &txn, (Some(Method::Fido), &source, lang), error, why).await
    };
    if now >= txn.expires {
        return end("temporarily_unavailable", "transaction expired").await;
    }

    let sealed = sealed.unwrap_or_default();
    match (action.as_deref(), outcome.as_deref()) {
        (Some("cancel"), _) => return end("access_denied", "user cancelled").await,
        (Some("retry"), _) => {
            return match ceremony_page(app, &txn, lang, false) {
                Some(page) => page,
                None => end("access_denied", "no security key enrolled").await,
            };
        }
        (Some(_), _) => return bad_request(lang, text(lang, Text::FormIncomplete)),
        (None, Some("ok")) => {}
        (None, Some("cancelled" | "failed")) => {
            return retry_page(app, &sealed, lang, Text::FidoCancelled);
        }
        (None, Some("unsupported")) => {
            return retry_page(app, &sealed, lang, Text::FidoUnsupported);
        }
        (None, _) => return bad_request(lang, text(lang, Text::FormIncomplete)),
    }

    let posted = [
        (id, MAX_CREDENTIAL_ID),
        (client_data, MAX_CLIENT_DATA),
        (auth_data, MAX_AUTHENTICATOR_DATA),
        (signature, MAX_SIGNATURE),
    ];
    let Some([id, client_data, auth_data, signature]) = decode_all(posted) else {
        return end("access_denied", "assertion malformed").await;
    };
    let fill = app.signer.fill();
    let Some(_ticket) = app.admission.admit(Stage::InTransaction, fill) else {
        return end("temporarily_unavailable", "appliance overloaded").await;
    };
    let assertion = Assertion {
        credential_id: &id,
        client_data_json: &client_data,
        authenticator_data: &auth_data,
        signature: &signature,
    };
    let started = std::time::Instant::now();
    let verified = verify(app, &txn, &assertion).await;
    app.oversight
        .step(crate::oversight::Step::Factor, started.elapsed());
    if let Err(why) = verified {
        return end("access_denied", why).await;
    }
    match app.transactions.consume(&txn, now) {
        Ok(()) => super::issue(app, &txn, Method::Fido, now, &source).await,
        Err(TransactionError::Used) => bad_request(lang, text(lang, Text::Finished)),
        Err(e) => {
            tracing::error!(error = %e, "transaction could not be closed");
            end("temporarily_unavailable", "transaction not closed").await
        }
    }
}

/// Decodes each posted base64url field, refusing an absent, empty or oversized one.
fn decode_all(fields: [(Option<String>, usize); 4]) -> Option<[Vec<u8>; 4]> {
    let mut out: [Vec<u8>; 4] = Default::default();
    for (slot, (value, max)) in out.iter_mut().zip(fields) {
        let value = value.filter(|v| !v.is_empty() && v.len() <= max)?;
        *slot = b64url_decode(&value, "assertion field").ok()?;
    }
    Some(out)
}

/// Verifies the assertion against the user's enrolled key and moves its counter; the
/// reason for the audit trail when refused.
async fn verify(
    app: &App,
    txn: &Transaction,
    assertion: &Assertion<'_>,
) -> Result<(), &'static str> {
    let sub = super::hashed(&txn.sub);
    let keys = app.store.fido(&txn.tid, &txn.oid);
    let wanted = b64url_encode(assertion.credential_id);
    let Some(key) = keys.iter().find(|k| k.id == wanted) else {
        tracing::debug!(tid = %txn.tid, sub, "security key refused: not enrolled for the user");
        return Err("security key not enrolled");
    };
    let seen = app.fido_counters.current(&key.id, key.sign_count);
    let stored = stored(key, seen).ok_or("security key record damaged")?;
    let challenge = app.transactions.challenge(txn);
    let policy = policy(app, &txn.tid);
    let checked = webauthn::verify_assertion(
        &app.config.fido,
        policy,
        &challenge,
        &stored.as_credential(),
        assertion,
    );
    let verified = match checked {
        Ok(verified) => verified,
        Err(e @ WebAuthnError::CounterWentBack { .. }) => {
            tracing::warn!(tid = %txn.tid, sub, error = %e, "security key refused");
            return Err("security key counter went back");
        }
        Err(e) => {
            tracing::debug!(tid = %txn.tid, sub, error = %e, "security key refused");
            return Err("security key refused");
        }
    };
    let moved = app
        .fido_counters
        .advance(&key.id, seen, verified.sign_count)
        .await;
    moved.map_err(|e| {
        tracing::debug!(tid = %txn.tid, sub, error = %e, "security key counter not moved");
        "security key counter not moved"
    })
}

/// A stored credential's bytes.
struct Stored {
    id: Vec<u8>,
    public_key: Vec<u8>,
    sign_count: u32,
    backup_eligible: bool,
}

impl Stored {
    fn as_credential(&self) -> StoredCredential<'_> {
        StoredCredential {
            id: &self.id,
            public_key_cose: &self.public_key,
            sign_count: self.sign_count,
            backup_eligible: self.backup_eligible,
        }
    }
}

/// A stored credential's bytes, with the counter it last signed with.
fn stored(key: &FidoCredential, sign_count: u32) -> Option<Stored> {
    Some(Stored {
        id: b64url_decode(&key.id, "credential id").ok()?,
        public_key: b64url_decode(&key.public_key, "public key").ok()?,
        sign_count,
        backup_eligible: key.backup_eligible,
    })
}
