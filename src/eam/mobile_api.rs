//! `POST /eam/mobile/respond`: the phone app's answer to a challenge.
//!
//! The body is JSON, at most [`MAX_BODY_BYTES`]:
//!
//! ```json
//! {"challenge_id": "…", "certificates": ["base64 DER, leaf first", "…"],
//!  "algorithm": "ES256", "signature": "base64 signature over the challenge bytes"}
//! ```
//!
//! Rules:
//! - The whole request is read and checked before the challenge is touched, so a malformed
//!   request burns nothing; once the challenge is claimed, the answer is final whatever it is.
//! - The chain is verified for the user of the challenge's transaction with the tenant's trust
//!   stores, then the signature with the leaf's key (`pki::challenge`).
//! - Every refusal is JSON `{"error": code, "message": words}` with a status that says whose
//!   fault it is; nothing from the request is echoed. The words are English; the browser's
//!   page says the same in the user's language.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use rustls::pki_types::CertificateDer;
use serde::Deserialize;

use super::certificates;
use super::challenges::{ChallengeError, State};
use super::i18n::{Lang, Message, Text};
use super::pages::Page;
use crate::admission::Stage;
use crate::app::App;
use crate::factor::Method;
use crate::pki::ExpectedUser;
use crate::pki::certificate::{MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES};
use crate::pki::challenge::{ChallengeAlgorithm, verify_challenge};

/// The largest response body read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest signature read (RSA-8192 is 1,024 bytes).
const MAX_SIGNATURE_BYTES: usize = 1024;
const MAX_ID_LEN: usize = 64;
const MAX_ALGORITHM_LEN: usize = 16;

const NOT_A_RESPONSE: &str = "The body must be a JSON object with exactly challenge_id, \
                              certificates, algorithm and signature.";
const UNKNOWN_ALGORITHM: &str = "algorithm is not one of RS256, RS384, RS512, PS256, PS384, \
                                 PS512, ES256, ES256-DER, ES384, ES384-DER, EdDSA.";
/// The audit reason of a signature that does not verify.
const BAD_SIGNATURE: &str = "challenge signature refused";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneResponse {
    challenge_id: String,
    certificates: Vec<String>,
    algorithm: String,
    signature: String,
}

/// A response whose every field was read.
struct Checked {
    id: String,
    chain: Vec<CertificateDer<'static>>,
    algorithm: ChallengeAlgorithm,
    signature: Vec<u8>,
}

/// A JSON answer that no cache keeps.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Page {
    let body = Bytes::from(value.to_string());
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    let json = HeaderValue::from_static("application/json");
    headers.insert(header::CONTENT_TYPE, json);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn error(status: StatusCode, code: &str, message: &str) -> Page {
    json(
        status,
        &serde_json::json!({ "error": code, "message": message }),
    )
}

pub async fn respond<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = match read_json(req, app.config.limits.body_timeout).await {
        Ok(body) => body,
        Err(page) => return page,
    };
    let checked = match check(&body) {
        Ok(checked) => checked,
        Err(why) => return error(StatusCode::BAD_REQUEST, "malformed_request", why),
    };
    let fill = app.signer.fill();
    let Some(_ticket) = app.admission.admit(Stage::InTransaction, fill) else {
        let why = "The appliance is busy; try again in a moment.";
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy", why);
    };
    let claimed = match app.challenges.claim(&checked.id, app.clock.now()) {
        Ok(claimed) => claimed,
        Err(e) => return challenge_error(e),
    };

    let subject = &claimed.subject;
    let user = ExpectedUser {
        tid: &subject.tid,
        oid: &subject.oid,
        upn: subject.upn.as_deref(),
    };
    let method = Method::MobilePki;
    let verified = certificates::verify(app, &user, method, &subject.amr, &checked.chain).await;
    let state = match verified {
        Ok(_) => signed(&checked, &claimed.challenge),
        Err(e) if e.is_outage() => {
            tracing::warn!(tid = %subject.tid, error = %e, "phone certificate not checked");
            State::Unavailable {
                reason: certificates::audit_reason(&e),
            }
        }
        Err(e) => {
            tracing::debug!(tid = %subject.tid, error = %e, "phone certificate refused");
            State::Refused {
                message: certificates::user_message(&e),
                reason: certificates::audit_reason(&e),
            }
        }
    };
    app.challenges.settle(&checked.id, state.clone());
    answer(&state)
}

/// Whether the leaf's key signed the challenge with the algorithm the app named.
fn signed(checked: &Checked, challenge: &[u8]) -> State {
    let leaf = checked.chain.first().map(webpki::EndEntityCert::try_from);
    let verified = match leaf {
        Some(Ok(leaf)) => {
            let spki = leaf.subject_public_key_info();
            verify_challenge(
                spki.as_ref(),
                checked.algorithm,
                challenge,
                &checked.signature,
            )
        }
        _ => Err(crate::pki::challenge::ChallengeError::MalformedKey),
    };
    match verified {
        Ok(()) => State::Proven,
        Err(e) => {
            tracing::debug!(error = %e, "phone signature refused");
            State::Refused {
                message: Message::new(Text::MobileBadSignature),
                reason: BAD_SIGNATURE,
            }
        }
    }
}

fn answer(state: &State) -> Page {
    match state {
        State::Proven => json(StatusCode::OK, &serde_json::json!({ "status": "approved" })),
        State::Refused { message, reason } => {
            let code = if *reason == BAD_SIGNATURE {
                "bad_signature"
            } else {
                "certificate_refused"
            };
            error(StatusCode::FORBIDDEN, code, &message.in_lang(Lang::En))
        }
        _ => {
            let why = "The certificate cannot be checked right now; try again later.";
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                why,
            )
        }
    }
}

fn challenge_error(e: ChallengeError) -> Page {
    let (status, code) = match e {
        ChallengeError::Unknown => (StatusCode::NOT_FOUND, "unknown_challenge"),
        ChallengeError::Expired => (StatusCode::GONE, "expired_challenge"),
        ChallengeError::Answered => (StatusCode::CONFLICT, "already_answered"),
        ChallengeError::OtherTransaction => (StatusCode::FORBIDDEN, "other_sign_in"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
    };
    error(status, code, &e.to_string())
}

/// Reads every field of the response, or says which is wrong.
fn check(body: &[u8]) -> Result<Checked, &'static str> {
    let response: PhoneResponse = serde_json::from_slice(body).map_err(|_| NOT_A_RESPONSE)?;
    let id_ok = !response.challenge_id.is_empty() && response.challenge_id.len() <= MAX_ID_LEN;
    if !id_ok {
        return Err("challenge_id is empty or too long.");
    }
    let count = response.certificates.len();
    if count == 0 || count > MAX_CHAIN_CERTIFICATES {
        return Err("certificates must hold 1 to 16 certificates, leaf first.");
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut chain = Vec::with_capacity(count);
    for text in &response.certificates {
        let der = b64
            .decode(text)
            .map_err(|_| "a certificate is not base64.")?;
        if der.is_empty() || der.len() > MAX_CERTIFICATE_BYTES {
            return Err("a certificate is empty or too large.");
        }
        chain.push(CertificateDer::from(der));
    }
    let algorithm = Some(response.algorithm.as_str())
        .filter(|a| a.len() <= MAX_ALGORITHM_LEN)
        .and_then(ChallengeAlgorithm::from_name)
        .ok_or(UNKNOWN_ALGORITHM)?;
    let signature = b64
        .decode(&response.signature)
        .map_err(|_| "signature is not base64.")?;
    if signature.is_empty() || signature.len() > MAX_SIGNATURE_BYTES {
        return Err("signature is empty or too long.");
    }
    Ok(Checked {
        id: response.challenge_id,
        chain,
        algorithm,
        signature,
    })
}

/// Reads a JSON body within [`MAX_BODY_BYTES`] and the body deadline.
async fn read_json<B>(req: Request<B>, deadline: std::time::Duration) -> Result<Bytes, Page>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let why = "Send the response as application/json.";
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_json", why));
    }
    let too_large = || {
        let why = "The response is larger than the appliance reads.";
        error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", why)
    };
    let collected = Limited::new(req.into_body(), MAX_BODY_BYTES).collect();
    match tokio::time::timeout(deadline, collected).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(error(
            StatusCode::BAD_REQUEST,
            "unreadable",
            "The body could not be read.",
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "too_slow",
            "The body did not arrive in time.",
        )),
    }
}
