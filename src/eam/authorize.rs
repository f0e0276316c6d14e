//! `POST /eam/authorize`: Entra's request, checked in the protocol reference's order (§3.4).
//!
//! Until the `redirect_uri` is known to be Entra's and the hint is verified, every problem is
//! a 400 page and nothing is posted anywhere. After that, a user or policy failure is posted
//! back as `access_denied` and an outage as `temporarily_unavailable`, each with `state`.
//! [`Refusal`] carries that distinction, and [`post`] alone turns it into a page.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::claims::{self, Candidate, Offer};
use super::form;
use super::i18n::{Lang, Text, fill, text};
use super::pages::{self, Answer, Page};
use super::transaction::Transaction;
use crate::app::App;
use crate::config::Tenant;
use crate::entra::Cloud;
use crate::entra::keys::KeyError;
use crate::factor::Method;
use crate::jose::hint::{Expectations, UnverifiedHint, VerifiedHint};

/// The parameters of Entra's request that vouch reads; any others are ignored.
pub const FIELDS: [&str; 10] = [
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "id_token_hint",
    "client_id",
    "claims",
    "nonce",
    "state",
    "client-request-id",
];

/// The longest `nonce` and `state` carried into the transaction.
const MAX_ECHO_LEN: usize = 4096;
/// The longest `client-request-id` kept for logs.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Why a sign-in request goes no further.
enum Refusal {
    /// The request is not trusted yet: a 400 page explains, nothing is posted.
    BadRequest(String),
    /// The request is Entra's: the error is posted back to its `redirect_uri`.
    Post {
        cloud: Cloud,
        state: Option<String>,
        error: &'static str,
        /// The user as far as known (`tid`, `oid`), and why, for the audit trail.
        tid: String,
        oid: String,
        why: &'static str,
    },
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::BadRequest(message.into())
}

/// The parameters of Entra's request, shape already checked.
struct AuthorizeRequest {
    cloud: Cloud,
    hint: String,
    client_id: Option<String>,
    claims: Option<String>,
    nonce: Option<String>,
    state: Option<String>,
    client_request_id: Option<String>,
}

impl AuthorizeRequest {
    /// Reads the form and checks what needs no key: `redirect_uri` first, exactly, then
    /// `response_type`, `response_mode` and `scope` (§3.4 steps 2 and 3).
    fn parse(body: &[u8]) -> Result<AuthorizeRequest, Refusal> {
        let fields = form::parse(body, FIELDS)
            .map_err(|e| bad(format!("The request could not be read: {e}.")))?;
        let [
            redirect,
            response_type,
            mode,
            scope,
            hint,
            client_id,
            claims,
            nonce,
            state,
            crid,
        ] = fields;

        let cloud = redirect
            .as_deref()
            .and_then(Cloud::from_redirect_uri)
            .ok_or_else(|| bad("The redirect_uri is not one of Microsoft Entra ID's."))?;
        let response_type = response_type.unwrap_or_default();
        if !response_type.eq_ignore_ascii_case("id_token") {
            return Err(bad("response_type must be id_token."));
        }
        if mode.as_deref() != Some("form_post") {
            return Err(bad("response_mode must be form_post."));
        }
        if !scope.is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
            return Err(bad("scope must include openid."));
        }
        let too_long = |v: &Option<String>| v.as_ref().is_some_and(|v| v.len() > MAX_ECHO_LEN);
        if too_long(&nonce) || too_long(&state) {
            return Err(bad("nonce or state is too long."));
        }
        let hint = hint.ok_or_else(|| bad("The request carries no id_token_hint."))?;

        Ok(AuthorizeRequest {
            cloud,
            hint,
            client_id,
            claims,
            nonce,
            state,
            client_request_id: crid.filter(|id| id.len() <= MAX_REQUEST_ID_LEN),
        })
    }

    fn crid(&self) -> &str {
        self.client_request_id.as_deref().unwrap_or("-")
    }

    fn post(&self, error: &'static str, tid: &str, oid: &str, why: &'static str) -> Refusal {
        Refusal::Post {
            cloud: self.cloud,
            state: self.state.clone(),
            error,
            tid: tid.to_owned(),
            oid: oid.to_owned(),
            why,
        }
    }
}

pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let source = crate::app::Peer::source_of(&req);
    let lang = Lang::of(&req);
    let body = match super::read_form(req, &app.config, lang).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    match authorize(app, &body, &source, lang).await {
        Ok(page) => page,
        Err(Refusal::BadRequest(message)) => {
            app.oversight.refused();
            let title = text(lang, Text::RequestRefusedTitle);
            let message = fill(text(lang, Text::RequestRefused), &[("why", &message)]);
            pages::problem_in(lang, StatusCode::BAD_REQUEST, title, &message)
        }
        Err(Refusal::Post {
            cloud,
            state,
            error,
            tid,
            oid,
            why,
        }) => {
            let outcome = super::Outcome {
                tid: &tid,
                oid: &oid,
                method: None,
                source: &source,
                client_request_id: None,
            };
            let _ = outcome.record(app, error, why).await;
            pages::form_post(cloud.redirect_uri(), Answer::Error(error), state.as_deref())
        }
    }
}

async fn authorize(app: &App, body: &[u8], source: &str, lang: Lang) -> Result<Page, Refusal> {
    let request = AuthorizeRequest::parse(body).inspect_err(|r| {
        if let Refusal::BadRequest(why) = r {
            tracing::debug!(why, "authorize: request refused");
        }
    })?;
    let started = std::time::Instant::now();
    let verified = verify_hint(app, &request).await;
    app.oversight
        .step(crate::oversight::Step::Hint, started.elapsed());
    let (tenant, hint) = verified?;

    if request.client_id.as_deref() != Some(tenant.client_id.as_str()) {
        tracing::debug!(
            client_request_id = request.crid(),
            tid = %hint.tid,
            "authorize: client_id refused",
        );
        return Err(bad(
            "The client_id is not the one configured for this directory.",
        ));
    }
    let offers = negotiate(app, &request, &hint)?;

    let now = app.clock.now();
    let txn = Transaction {
        id: Transaction::new_id(),
        tid: hint.tid,
        oid: hint.oid,
        sub: hint.sub,
        upn: hint.preferred_username,
        nonce: request.nonce,
        state: request.state,
        client_id: tenant.client_id.clone(),
        cloud: request.cloud,
        offers,
        client_request_id: request.client_request_id,
        created: now,
        expires: now + app.config.transaction_ttl,
    };
    Ok(ceremony(app, &txn, source, lang).await)
}

/// The hint and the onboarded tenant it comes from (§4.4). The unverified `tid` only picks
/// the tenant; its cloud must be the one whose `redirect_uri` the request carries.
async fn verify_hint<'a>(
    app: &'a App,
    request: &AuthorizeRequest,
) -> Result<(&'a Tenant, VerifiedHint), Refusal> {
    let crid = request.crid();
    let refused = |e: &dyn std::fmt::Display| {
        tracing::debug!(client_request_id = crid, error = %e, "authorize: hint refused");
        bad(format!("The id_token_hint was refused: {e}."))
    };
    let unverified = UnverifiedHint::parse(&request.hint).map_err(|e| refused(&e))?;

    let claimed = unverified.claimed_tenant().to_ascii_lowercase();
    let Some(tenant) = app.config.tenant(&claimed) else {
        tracing::debug!(
            client_request_id = crid,
            tid = %claimed,
            "authorize: tenant not onboarded",
        );
        return Err(bad("This directory is not set up to use this appliance."));
    };
    if tenant.cloud != request.cloud {
        return Err(bad(
            "The redirect_uri belongs to another cloud than this directory.",
        ));
    }

    let unknown = || bad("The id_token_hint is signed with a key Entra does not publish.");
    let keys = match app.keys.key_set(&tenant.id, unverified.kid()).await {
        Ok(keys) => keys,
        Err(KeyError::Unavailable { detail, .. }) => {
            tracing::warn!(
                client_request_id = crid,
                tid = %tenant.id,
                detail,
                "authorize: Entra keys unavailable",
            );
            return Err(request.post(
                "temporarily_unavailable",
                &tenant.id,
                "-",
                "Entra keys unavailable",
            ));
        }
        Err(e) => {
            tracing::debug!(
                client_request_id = crid,
                tid = %tenant.id,
                error = %e,
                "authorize: hint key unknown",
            );
            return Err(unknown());
        }
    };
    let key = keys.get(unverified.kid()).ok_or_else(unknown)?;

    let issuer = tenant.hint_issuer();
    let mut audiences = vec![tenant.app_id.as_str()];
    if tenant.accept_client_id_audience {
        audiences.push(tenant.client_id.as_str());
    }
    let expect = Expectations {
        issuer: &issuer,
        audiences: &audiences,
        now: app.clock.now(),
        max_age: app.config.hint_max_age,
        skew: app.config.clock_skew,
    };
    let hint = unverified.verify(key, &expect).map_err(|e| refused(&e))?;
    tracing::debug!(
        client_request_id = crid,
        tid = %hint.tid,
        sub = %super::hashed(&hint.sub),
        hint_lifetime = hint.lifetime,
        "authorize: hint verified"
    );
    Ok((tenant, hint))
}

/// The user's enrolled methods that can meet the requested `acr` and `amr` (§5.4); none is
/// a refusal before any ceremony starts.
fn negotiate(
    app: &App,
    request: &AuthorizeRequest,
    hint: &VerifiedHint,
) -> Result<Vec<Offer>, Refusal> {
    let requested = claims::parse(request.claims.as_deref())
        .map_err(|e| bad(format!("The claims parameter was refused: {e}.")))?;
    let candidates = candidates(app, hint);
    let offers = claims::negotiate(&requested, &candidates);
    if offers.is_empty() {
        tracing::debug!(
            client_request_id = request.crid(),
            tid = %hint.tid,
            sub = %super::hashed(&hint.sub),
            candidates = candidates.len(),
            requested_acr = ?requested.acr,
            "sign-in denied: no enrolled method meets the request"
        );
        return Err(request.post(
            "access_denied",
            &hint.tid,
            &hint.oid,
            "no enrolled method meets the request",
        ));
    }
    Ok(offers)
}

/// Every method the user could prove, each with the `amr` it would earn: what the credential
/// store holds for them, then the certificate flows a trust store of their tenant offers.
fn candidates(app: &App, hint: &VerifiedHint) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = app
        .store
        .methods(&hint.tid, &hint.oid)
        .into_iter()
        .map(Candidate::from)
        .collect();
    let user = crate::pki::ExpectedUser::from(hint);
    candidates.extend(super::certificates::candidates(app, &user));
    candidates
}

/// The page that starts the only offered method, or lets the user choose among several.
async fn ceremony(app: &App, txn: &Transaction, source: &str, lang: Lang) -> Page {
    match txn.offers.as_slice() {
        [only] => super::method::start(app, txn, only.method, source, lang).await,
        offers => {
            let sealed = app.transactions.seal(txn);
            let methods: Vec<Method> = offers.iter().map(|o| o.method).collect();
            super::method::choice_page(lang, &app.routes.method, &sealed, &methods)
        }
    }
}
