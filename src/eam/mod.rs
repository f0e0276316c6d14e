//! The EAM protocol endpoints and the state a sign-in carries between them.

pub mod authorize;
pub mod certificates;
pub mod challenges;
pub mod claims;
pub mod enrol;
pub mod fido;
pub mod form;
pub mod i18n;
pub mod links;
pub mod method;
pub mod mobile;
pub mod mobile_api;
pub mod otp;
pub mod pages;
pub mod pki_pages;
pub mod smart_card;
pub mod step;
pub mod transaction;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};

use i18n::{Lang, Text, fill, text};
use pages::Page;

/// Reads a form-encoded request body within the configured size and time, or answers with
/// the 4xx page, in `lang`, that says why not.
pub(crate) async fn read_form<B>(
    req: Request<B>,
    config: &crate::config::Config,
    lang: Lang,
) -> Result<Bytes, Page>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (max, deadline) = (config.max_body_bytes, config.limits.body_timeout);
    let problem =
        |status, title, message: &str| pages::problem_in(lang, status, text(lang, title), message);
    let form_encoded = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_encoded {
        return Err(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Text::NotUnderstoodTitle,
            text(lang, Text::NotForm),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        let message = fill(text(lang, Text::TooLarge), &[("max", &max.to_string())]);
        problem(StatusCode::PAYLOAD_TOO_LARGE, Text::TooLargeTitle, &message)
    };
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(deadline, Limited::new(req.into_body(), max).collect());
    match collected.await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(problem(
            StatusCode::REQUEST_TIMEOUT,
            Text::TooSlowTitle,
            text(lang, Text::TooSlow),
        )),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "request body could not be read");
            Err(problem(
                StatusCode::BAD_REQUEST,
                Text::NotUnderstoodTitle,
                text(lang, Text::Unreadable),
            ))
        }
    }
}

/// A short, stable pseudonym of a user's `sub` for logs.
pub(crate) fn hashed(sub: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sub.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who a sign-in's outcome is about, for its audit record.
pub(crate) struct Outcome<'a> {
    pub tid: &'a str,
    pub oid: &'a str,
    pub method: Option<crate::factor::Method>,
    pub source: &'a str,
    pub client_request_id: Option<&'a str>,
}

impl Outcome<'_> {
    /// Records, durably, that the sign-in is answered with `outcome` (a token or the error
    /// posted to Entra) for `reason`. An error means the trail failed: no token may be sent.
    pub(crate) async fn record(
        &self,
        app: &crate::app::App,
        outcome: &str,
        reason: &str,
    ) -> Result<(), String> {
        self.write(app, outcome, reason, None).await
    }

    /// Records, durably, that a token carrying `amr` is sent.
    async fn record_token(&self, app: &crate::app::App, amr: &str) -> Result<(), String> {
        self.write(app, "token", "factor proven", Some(amr)).await
    }

    async fn write(
        &self,
        app: &crate::app::App,
        outcome: &str,
        reason: &str,
        amr: Option<&str>,
    ) -> Result<(), String> {
        let signin = crate::audit::SignIn {
            tid: self.tid.to_owned(),
            oid: self.oid.to_owned(),
            method: self.method.map(|m| m.name().to_owned()),
            amr: amr.map(str::to_owned),
            outcome: outcome.to_owned(),
            reason: reason.to_owned(),
            source: self.source.to_owned(),
            client_request_id: self.client_request_id.map(str::to_owned),
        };
        app.oversight.answered(signin).await
    }
}

/// The page that ends a sign-in with `error` for Entra: held with what the user can do about
/// `why` when there is something (an expired sign-in, a lockout), else sent on at once.
pub(crate) fn ending(
    lang: i18n::Lang,
    txn: &transaction::Transaction,
    error: &str,
    why: &str,
) -> Page {
    use i18n::Text;
    let notice = match why {
        "transaction expired" => Some(Text::Expired),
        "locked out" | "too many wrong codes" => Some(Text::LockedOut),
        _ => None,
    };
    let (uri, state, answer) = (
        txn.redirect_uri(),
        txn.state.as_deref(),
        pages::Answer::Error(error),
    );
    match notice {
        Some(notice) => pages::form_post_notice(lang, uri, answer, state, notice),
        None => pages::form_post(uri, answer, state),
    }
}

/// Lifetime of the `id_token` posted back to Entra.
pub const TOKEN_LIFETIME_SECS: i64 = 300;

/// Signs the `id_token` for a transaction whose `method` was just proven, and answers with
/// the page that posts it to Entra.
pub(crate) async fn issue(
    app: &crate::app::App,
    txn: &transaction::Transaction,
    method: crate::factor::Method,
    now: i64,
    source: &str,
) -> Page {
    use crate::jose::token::{self, IdTokenClaims};
    use pages::Answer;

    let state = txn.state.as_deref();
    let sub = hashed(&txn.sub);
    let crid = txn.client_request_id.as_deref().unwrap_or("-");
    let Some(offer) = txn.offers.iter().find(|o| o.method == method) else {
        return pages::form_post(txn.redirect_uri(), Answer::Error("access_denied"), state);
    };
    let claims = IdTokenClaims {
        iss: &app.config.issuer,
        aud: &txn.client_id,
        sub: &txn.sub,
        iat: now,
        nbf: now,
        exp: now + TOKEN_LIFETIME_SECS,
        nonce: txn.nonce.as_deref(),
        acr: &offer.acr,
        amr: [offer.amr.as_str()],
    };
    let outcome = Outcome {
        tid: &txn.tid,
        oid: &txn.oid,
        method: Some(method),
        source,
        client_request_id: txn.client_request_id.as_deref(),
    };
    let started = std::time::Instant::now();
    let signed = match app.signer.signing_key() {
        Ok(key) => {
            let input = token::signing_input(&key.published.kid, &claims);
            app.signer
                .sign_with(&key, input.clone())
                .await
                .map(|s| (input, s))
        }
        Err(e) => Err(e),
    };
    app.oversight
        .step(crate::oversight::Step::Signing, started.elapsed());
    crate::oversight::metrics::signer_in_flight(app.signer.in_flight());
    match signed {
        Ok((input, signature)) => {
            if outcome.record_token(app, &offer.amr).await.is_err() {
                return pages::form_post(
                    txn.redirect_uri(),
                    Answer::Error("temporarily_unavailable"),
                    state,
                );
            }
            tracing::debug!(
                client_request_id = crid,
                tid = %txn.tid,
                sub = %sub,
                acr = %offer.acr,
                amr = %offer.amr,
                "sign-in succeeded"
            );
            let id_token = token::assemble(input, &signature);
            pages::form_post(txn.redirect_uri(), Answer::Token(&id_token), state)
        }
        Err(e) => {
            tracing::warn!(
                client_request_id = crid,
                tid = %txn.tid,
                error = %e,
                "token signing failed",
            );
            let kind = match e {
                crate::signer::SignError::Busy { .. } => "busy",
                _ => "backend",
            };
            crate::oversight::metrics::signer_error(kind);
            let _ = outcome
                .record(app, "temporarily_unavailable", "signer")
                .await;
            pages::form_post(
                txn.redirect_uri(),
                Answer::Error("temporarily_unavailable"),
                state,
            )
        }
    }
}
