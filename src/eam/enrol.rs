//! `GET /eam/enrol?t=…`: the page an enrolment link opens, which asks the browser to make a
//! WebAuthn credential; `POST /eam/enrol`: the attestation, verified and stored.
//!
//! Each page load draws a fresh challenge and seals it, with the link it belongs to, into
//! the page under a process key; the post must bring it back unaltered before the link's
//! expiry. The link is spent only when a credential verifies, so a cancelled ceremony can be
//! tried again, and a spent, expired or forged link shows the same "not valid" page. The
//! ceremony starts on the button, after the user has had the chance to name the key.

use bytes::Bytes;
use http::{Request, StatusCode};
use serde::{Deserialize, Serialize};

use super::form;
use super::i18n::{Lang, Text, fill, text};
use super::links::{Link, token_hash};
use super::pages::{self, MethodPage, Page, alert, escape, hidden};
use crate::app::App;
use crate::config::TenantFido;
use crate::factor::webauthn::{self, Attestation, Registration, UserVerification, WebAuthnError};
use crate::jose::{b64url_decode, b64url_encode};
use crate::store::FidoCredential;

const AAD: &[u8] = b"vouch-enrol-page-v1";
/// How long one enrolment page stays usable, within the link's own lifetime.
const PAGE_SECS: i64 = 600;
const MAX_TOKEN: usize = 64;
const MAX_CLIENT_DATA: usize = 5462;
const MAX_ATTESTATION: usize = 32 * 1024;
const MAX_NAME: usize = 64;

/// Makes a credential with the options on the form's data attributes, then posts it.
const ENROL_SCRIPT: &str = "var f=document.getElementById('enrol'),d=f.dataset,\
st=document.getElementById('enrol-status'),go=document.getElementById('enrol-start');\
function put(n,v){f.elements[n].value=v;}\
function run(){if(!window.PublicKeyCredential||!navigator.credentials){\
put('outcome','unsupported');f.submit();return;}go.disabled=true;st.textContent=d.waiting;\
var ex=d.exclude?d.exclude.split(' ').map(function(i){return{type:'public-key',id:b64d(i)};}):[];\
navigator.credentials.create({publicKey:{challenge:b64d(d.challenge),\
rp:{id:d.rpId,name:d.rpId},user:{id:b64d(d.userId),name:d.userName,displayName:d.userName},\
pubKeyCredParams:[{type:'public-key',alg:-7},{type:'public-key',alg:-8},\
{type:'public-key',alg:-257}],timeout:120000,attestation:d.attestation,excludeCredentials:ex,\
authenticatorSelection:{userVerification:d.uv,residentKey:'discouraged'}}}).then(function(c){\
put('client_data_json',b64e(c.response.clientDataJSON));\
put('attestation_object',b64e(c.response.attestationObject));put('outcome','ok');f.submit();},\
function(e){put('outcome',e&&e.name==='NotAllowedError'?'cancelled':'failed');f.submit();});}\
go.addEventListener('click',run);";

/// What an enrolment page seals for its post.
#[derive(Debug, Serialize, Deserialize)]
struct PageState {
    hash: String,
    tid: String,
    oid: String,
    upn: Option<String>,
    challenge: String,
    expires: i64,
}

fn link_invalid(lang: Lang) -> Page {
    let title = text(lang, Text::LinkInvalidTitle);
    pages::problem_in(
        lang,
        StatusCode::NOT_FOUND,
        title,
        text(lang, Text::LinkInvalid),
    )
}

/// `GET /eam/enrol?t=TOKEN`.
pub fn get<B>(app: &App, req: Request<B>) -> Page {
    let lang = Lang::of(&req);
    let query = req.uri().query().unwrap_or_default().as_bytes();
    let token = match form::parse(query, ["t"]) {
        Ok([Some(token)]) if !token.is_empty() && token.len() <= MAX_TOKEN => token,
        _ => return link_invalid(lang),
    };
    let hash = token_hash(&token);
    match app.links.find(&hash, app.clock.now()) {
        Ok(link) => ceremony_page(app, &hash, &link, lang, None),
        Err(e) => {
            tracing::debug!(error = %e, "enrolment link refused");
            link_invalid(lang)
        }
    }
}

fn tenant_policy(app: &App, tid: &str) -> TenantFido {
    let fido = app.config.tenant(tid).map(|t| t.fido.clone());
    fido.unwrap_or_default()
}

/// The page that makes a credential for the link's user, with a fresh sealed challenge.
fn ceremony_page(app: &App, hash: &str, link: &Link, lang: Lang, message: Option<&str>) -> Page {
    let now = app.clock.now();
    let challenge = crate::seal::random_bytes::<32>();
    let state = PageState {
        hash: hash.to_owned(),
        tid: link.tid.clone(),
        oid: link.oid.clone(),
        upn: link.upn.clone(),
        challenge: b64url_encode(&challenge),
        expires: link.expires.min(now + PAGE_SECS),
    };
    let json = serde_json::to_vec(&state).unwrap_or_default();
    let sealed = b64url_encode(&app.links.pages.seal(AAD, &json));
    let policy = tenant_policy(app, &link.tid);
    let (uv, direct) = (policy.user_verification, policy.attestation_roots.is_some());
    let exclude: Vec<String> = app
        .store
        .fido(&link.tid, &link.oid)
        .into_iter()
        .map(|k| k.id)
        .collect();
    let user_name = link.upn.clone().unwrap_or_else(|| link.oid.clone());
    let user_id = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("vouch-user/{}/{}", link.tid, link.oid).as_bytes(),
    );
    let body = format!(
        "<p>{intro}</p>{alert}<noscript><p class=\"error\">{noscript}</p></noscript>\
<p id=\"enrol-status\" class=\"status\" role=\"status\" aria-live=\"polite\"></p>\
<form id=\"enrol\" method=\"post\" action=\"{action}\" data-challenge=\"{challenge}\" \
data-rp-id=\"{rp_id}\" data-user-id=\"{user_id}\" data-user-name=\"{user_name}\" \
data-uv=\"{uv}\" data-attestation=\"{attestation}\" data-exclude=\"{exclude}\" \
data-waiting=\"{waiting}\">{state}{fields}<label for=\"key-name\">{name_label}</label>\
<input type=\"text\" id=\"key-name\" name=\"name\" maxlength=\"{MAX_NAME}\" \
autocomplete=\"off\"><div class=\"actions\">\
<button type=\"button\" id=\"enrol-start\">{start}</button></div></form>",
        intro = escape(&fill(text(lang, Text::EnrolIntro), &[("user", &user_name)])),
        alert = alert("enrol-error", message),
        noscript = text(lang, Text::FidoNoScript),
        action = escape(&app.routes.enrol),
        challenge = state.challenge,
        rp_id = escape(&app.config.fido.id),
        user_id = b64url_encode(&user_id.as_ref()[..16]),
        user_name = escape(&user_name),
        uv = uv_option(uv),
        attestation = if direct { "direct" } else { "none" },
        exclude = escape(&exclude.join(" ")),
        waiting = text(lang, Text::FidoWaiting),
        state = hidden("state", &sealed),
        fields = ["outcome", "client_data_json", "attestation_object"]
            .map(|n| hidden(n, ""))
            .concat(),
        name_label = text(lang, Text::KeyName),
        start = text(lang, Text::EnrolStart),
    );
    let script = format!("{}{ENROL_SCRIPT}", super::fido::SCRIPT_HELPERS);
    pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::EnrolTitle),
        body: &body,
        script: Some(&script),
    })
}

pub(super) fn uv_option(uv: UserVerification) -> &'static str {
    match uv {
        UserVerification::Required => "required",
        UserVerification::Preferred => "preferred",
        UserVerification::Discouraged => "discouraged",
    }
}

/// `POST /eam/enrol`: the new credential, or a failed ceremony.
pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let lang = Lang::of(&req);
    let body = match super::read_form(req, &app.config, lang).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    let wanted = [
        "state",
        "outcome",
        "client_data_json",
        "attestation_object",
        "name",
    ];
    let [state, outcome, client_data, attestation, name] = match form::parse(&body, wanted) {
        Ok(fields) => fields,
        Err(_) => return link_invalid(lang),
    };
    let now = app.clock.now();
    let Some(state) = state.as_deref().and_then(|s| open_state(app, s)) else {
        return link_invalid(lang);
    };
    let link = match app.links.find(&state.hash, now) {
        Ok(link) if now < state.expires => link,
        _ => return link_invalid(lang),
    };
    let retry = |message: &str| ceremony_page(app, &state.hash, &link, lang, Some(message));
    match outcome.as_deref() {
        Some("ok") => {}
        Some("cancelled" | "failed") => return retry(text(lang, Text::EnrolCancelled)),
        Some("unsupported") => return retry(text(lang, Text::FidoUnsupported)),
        _ => return retry(text(lang, Text::EnrolCancelled)),
    }

    let fields = (
        client_data.filter(|v| !v.is_empty() && v.len() <= MAX_CLIENT_DATA),
        attestation.filter(|v| !v.is_empty() && v.len() <= MAX_ATTESTATION),
    );
    let decoded = match fields {
        (Some(c), Some(a)) => b64url_decode(&c, "client data")
            .ok()
            .zip(b64url_decode(&a, "attestation").ok()),
        _ => None,
    };
    let Some((client_data, attestation)) = decoded else {
        return retry(&refused(lang, "the browser sent a malformed answer."));
    };
    let name = key_name(name.as_deref(), now);
    let registration = Registration {
        client_data_json: &client_data,
        attestation_object: &attestation,
    };
    match register(app, &state, &registration, &name, now) {
        Ok(link) => {
            record(app, &link).await;
            done(lang)
        }
        Err(Refusal::Link) => link_invalid(lang),
        Err(Refusal::Key(reason)) => retry(&refused(lang, &reason)),
    }
}

fn refused(lang: Lang, reason: &str) -> String {
    fill(text(lang, Text::EnrolRefused), &[("reason", reason)])
}

/// The name the user gave the key, cleaned, or one made from the date.
fn key_name(given: Option<&str>, now: i64) -> String {
    let cleaned: String = given
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    match cleaned.trim() {
        "" => {
            let date = time::OffsetDateTime::from_unix_timestamp(now).map(|t| t.date());
            date.map_or("Security key".into(), |d| format!("Security key added {d}"))
        }
        name => name.to_owned(),
    }
}

fn open_state(app: &App, sealed: &str) -> Option<PageState> {
    if sealed.len() > 4096 {
        return None;
    }
    let bytes = b64url_decode(sealed, "state").ok()?;
    let json = app.links.pages.open(AAD, &bytes)?;
    serde_json::from_slice(&json).ok()
}

enum Refusal {
    /// The link was spent or expired meanwhile.
    Link,
    /// The key cannot be enrolled, for this reason the user may read.
    Key(String),
}

/// Verifies the registration, spends the link and stores the credential; a credential the
/// store refuses (the user's key limit, a full disk) puts the link back.
fn register(
    app: &App,
    state: &PageState,
    registration: &Registration<'_>,
    name: &str,
    now: i64,
) -> Result<Link, Refusal> {
    let policy = tenant_policy(app, &state.tid);
    let challenge = b64url_decode(&state.challenge, "challenge").map_err(|_| Refusal::Link)?;
    let rp = &app.config.fido;
    let allowed = policy.allowed_aaguids.as_deref();
    let refused = |e: WebAuthnError| {
        tracing::debug!(tid = %state.tid, error = %e, "security key enrolment refused");
        Refusal::Key(format!("{e}."))
    };
    let verified = webauthn::verify_registration(
        rp,
        policy.user_verification,
        &challenge,
        allowed,
        registration,
    )
    .map_err(refused)?;
    if let Some(roots) = &policy.attestation_roots {
        let at = u64::try_from(now).unwrap_or_default();
        match &verified.attestation {
            Attestation::Certified { chain } => roots.verify(chain, at).map_err(refused)?,
            _ => {
                let why = "the key gave no attestation certificate to check".to_owned();
                return Err(refused(WebAuthnError::UntrustedAttestation(why)));
            }
        }
    }
    let credential = FidoCredential::from_new(&verified, name, now);
    if app
        .store
        .fido(&state.tid, &state.oid)
        .iter()
        .any(|k| k.id == credential.id)
    {
        return Err(Refusal::Key("this key is already enrolled.".into()));
    }
    let link = app
        .links
        .spend(&state.hash, now)
        .map_err(|_| Refusal::Link)?;
    let upn = link.upn.as_deref();
    let stored = app.store.add_fido(&state.tid, &state.oid, upn, credential);
    if let Err(e) = stored {
        tracing::warn!(tid = %state.tid, error = %e, "security key not stored");
        if let Err(e) = app.links.restore(&state.hash, link, now) {
            tracing::warn!(tid = %state.tid, error = %e, "enrolment link not put back");
        }
        return Err(Refusal::Key(format!("{e}.")));
    }
    tracing::debug!(tid = %state.tid, "security key enrolled through a link");
    Ok(link)
}

/// Puts the enrolment on the audit trail.
async fn record(app: &App, link: &Link) {
    let event = crate::audit::Event::Enrolment {
        tid: link.tid.clone(),
        oid: link.oid.clone(),
        method: "fido".into(),
        action: "enrol".into(),
        uid: link.uid,
    };
    if let Err(e) = app.oversight.audit.record(event).await {
        tracing::error!(error = %e, "security key enrolment not recorded on the trail");
    }
}

fn done(lang: Lang) -> Page {
    let body = format!("<p role=\"status\">{}</p>", text(lang, Text::EnrolDone));
    pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::EnrolDoneTitle),
        body: &body,
        script: None,
    })
}
