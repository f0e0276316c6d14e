//! `POST /eam/authorize`: Entra's request, checked in the protocol reference's order (§3.4).
//!
//! Until the `redirect_uri` is known to be Entra's and the hint is verified, every problem is
//! a 400 page and nothing is posted anywhere. After that, a user or policy failure is posted
//! back as `access_denied` and an outage as `temporarily_unavailable`, each with `state`.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::claims::{self, Offer};
use super::form;
use super::pages::{self, Answer, Page};
use super::transaction::Transaction;
use crate::app::App;
use crate::entra::Cloud;
use crate::entra::keys::KeyError;
use crate::factor::Method;
use crate::jose::hint::{Expectations, UnverifiedHint};

const FIELDS: [&str; 10] = [
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

fn bad_request(message: &str) -> Page {
    pages::problem(StatusCode::BAD_REQUEST, "Sign-in request refused", message)
}

pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = match super::read_form(req, app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    let fields = match form::parse(&body, FIELDS) {
        Ok(fields) => fields,
        Err(e) => {
            tracing::debug!(error = %e, "authorize: unreadable form");
            return bad_request(&format!("The request could not be read: {e}."));
        }
    };
    let [
        redirect_uri,
        response_type,
        response_mode,
        scope,
        hint,
        client_id,
        claims,
        nonce,
        state,
        client_request_id,
    ] = fields;
    let crid = client_request_id
        .as_deref()
        .filter(|id| id.len() <= 64)
        .unwrap_or("-");

    let Some(cloud) = redirect_uri.as_deref().and_then(Cloud::from_redirect_uri) else {
        tracing::debug!(client_request_id = crid, "authorize: redirect_uri refused");
        return bad_request("The redirect_uri is not one of Microsoft Entra ID's.");
    };
    if !response_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("id_token"))
    {
        return bad_request("response_type must be id_token.");
    }
    if response_mode.as_deref() != Some("form_post") {
        return bad_request("response_mode must be form_post.");
    }
    if !scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        return bad_request("scope must include openid.");
    }
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_ECHO_LEN)
        || state.as_ref().is_some_and(|s| s.len() > MAX_ECHO_LEN)
    {
        return bad_request("nonce or state is too long.");
    }

    let Some(hint) = hint.as_deref() else {
        return bad_request("The request carries no id_token_hint.");
    };
    let unverified = match UnverifiedHint::parse(hint) {
        Ok(h) => h,
        Err(e) => {
            tracing::debug!(client_request_id = crid, error = %e, "authorize: hint refused");
            return bad_request(&format!("The id_token_hint was refused: {e}."));
        }
    };
    let claimed = unverified.claimed_tenant().to_ascii_lowercase();
    let Some(tenant) = app.config.tenant(&claimed) else {
        tracing::debug!(client_request_id = crid, tid = %claimed, "authorize: tenant not onboarded");
        return bad_request("This directory is not set up to use this appliance.");
    };
    if tenant.cloud != cloud {
        return bad_request("The redirect_uri belongs to another cloud than this directory.");
    }

    let state = state.as_deref();
    let post_error =
        |error: &str| pages::form_post(cloud.redirect_uri(), Answer::Error(error), state);

    let keys = match app.keys.key_set(&tenant.id, unverified.kid()).await {
        Ok(keys) => keys,
        Err(KeyError::Unavailable { detail, .. }) => {
            tracing::warn!(client_request_id = crid, tid = %tenant.id, detail, "authorize: Entra keys unavailable");
            return post_error("temporarily_unavailable");
        }
        Err(e) => {
            tracing::debug!(client_request_id = crid, tid = %tenant.id, error = %e, "authorize: hint key unknown");
            return bad_request("The id_token_hint is signed with a key Entra does not publish.");
        }
    };
    let Some(key) = keys.get(unverified.kid()) else {
        return bad_request("The id_token_hint is signed with a key Entra does not publish.");
    };
    let issuer = tenant.hint_issuer();
    let mut audiences = vec![tenant.app_id.as_str()];
    if tenant.accept_client_id_audience {
        audiences.push(tenant.client_id.as_str());
    }
    let now = app.clock.now();
    let expect = Expectations {
        issuer: &issuer,
        audiences: &audiences,
        now,
        max_age: app.config.hint_max_age,
        skew: app.config.clock_skew,
    };
    let hint = match unverified.verify(key, &expect) {
        Ok(hint) => hint,
        Err(e) => {
            tracing::debug!(client_request_id = crid, tid = %tenant.id, error = %e, "authorize: hint refused");
            return bad_request(&format!("The id_token_hint was refused: {e}."));
        }
    };
    let sub = super::hashed(&hint.sub);
    tracing::debug!(
        client_request_id = crid,
        tid = %hint.tid,
        sub = %sub,
        hint_lifetime = hint.lifetime,
        "authorize: hint verified"
    );

    if client_id.as_deref() != Some(tenant.client_id.as_str()) {
        tracing::debug!(client_request_id = crid, tid = %hint.tid, "authorize: client_id refused");
        return bad_request("The client_id is not the one configured for this directory.");
    }
    let requested = match claims::parse(claims.as_deref()) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("The claims parameter was refused: {e}.")),
    };
    let methods = app.store.methods(&hint.tid, &hint.oid);
    let offers = claims::negotiate(&requested, &methods);
    if offers.is_empty() {
        tracing::debug!(
            client_request_id = crid,
            tid = %hint.tid,
            sub = %sub,
            enrolled = methods.len(),
            requested_acr = ?requested.acr,
            "sign-in denied: no enrolled method meets the request"
        );
        return post_error("access_denied");
    }

    let txn = Transaction {
        id: Transaction::new_id(),
        tid: hint.tid,
        oid: hint.oid,
        sub: hint.sub,
        nonce,
        state: state.map(str::to_owned),
        client_id: tenant.client_id.clone(),
        cloud,
        offers,
        client_request_id: client_request_id.filter(|id| id.len() <= 64),
        created: now,
        expires: now + app.config.transaction_ttl,
    };
    ceremony(app, &txn)
}

/// The page that starts the first offered method.
fn ceremony(app: &App, txn: &Transaction) -> Page {
    let Some(Offer { method, .. }) = txn.offers.first() else {
        return pages::form_post(
            txn.redirect_uri(),
            Answer::Error("access_denied"),
            txn.state.as_deref(),
        );
    };
    match method {
        Method::Totp => match app.store.totp(&txn.tid, &txn.oid) {
            Ok(Some((params, _))) => {
                let sealed = app.transactions.seal(txn);
                pages::otp_form(&app.routes.otp, &sealed, params.digits, None)
            }
            Ok(None) => pages::form_post(
                txn.redirect_uri(),
                Answer::Error("access_denied"),
                txn.state.as_deref(),
            ),
            Err(e) => {
                tracing::error!(tid = %txn.tid, error = %e, "credential store unreadable");
                pages::form_post(
                    txn.redirect_uri(),
                    Answer::Error("temporarily_unavailable"),
                    txn.state.as_deref(),
                )
            }
        },
    }
}
