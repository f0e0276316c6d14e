//! One sign-in as Entra and a browser make it: Entra's form posted to `/eam/authorize`, the
//! user's code posted to the code page's form, and the `id_token` in the answer checked the
//! way Entra checks it (signature against the appliance's JWKS, `iss` against discovery,
//! `aud`, `sub`, `nonce`, `acr`, `amr`, through [`entra_sim::RelyingParty`]).
//!
//! Every answer that is not the next step of a good sign-in is a [`Failure`], named by kind
//! so that a report can count them. Hints, codes and tokens never appear in a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_sim::{CLIENT_ID, DEFAULT_CLAIMS, Expected, Form, REDIRECT_URI, RelyingParty};
use http::StatusCode;

use crate::client::{Browser, ClientError, Page};
use crate::hints::HintBook;
use crate::users::Users;

const ACR: &[&str] = &["possessionorinherence"];
const AMR: &[&str] = &[
    "face", "fido", "fpt", "hwk", "iris", "otp", "pop", "retina", "sc", "sms", "swk", "tel", "vbm",
];

/// The step of a sign-in a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Authorize,
    Otp,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Authorize => "authorize",
            Step::Otp => "otp",
        }
    }
}

/// Why a sign-in did not end with a token Entra accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    Connection {
        step: Step,
    },
    Timeout {
        step: Step,
    },
    Unreadable {
        step: Step,
    },
    Status {
        step: Step,
        status: u16,
    },
    /// The appliance posted an error back to Entra.
    Posted {
        step: Step,
        error: String,
    },
    /// A page that is neither the next step nor an answer to Entra.
    UnexpectedPage {
        step: Step,
    },
    /// The code page came back: the appliance refused the code.
    CodeRefused,
    StateMismatch,
    NoToken,
    Token {
        reason: &'static str,
    },
}

impl Failure {
    /// A short stable name for counting failures of this kind.
    pub fn kind(&self) -> String {
        match self {
            Failure::Connection { step } => format!("{}_connection", step.name()),
            Failure::Timeout { step } => format!("{}_timeout", step.name()),
            Failure::Unreadable { step } => format!("{}_unreadable_page", step.name()),
            Failure::Status { step, status } => format!("{}_http_{status}", step.name()),
            Failure::Posted { step, error } => format!("{}_posted_{error}", step.name()),
            Failure::UnexpectedPage { step } => format!("{}_unexpected_page", step.name()),
            Failure::CodeRefused => "otp_code_refused".into(),
            Failure::StateMismatch => "answer_state_mismatch".into(),
            Failure::NoToken => "answer_without_token".into(),
            Failure::Token { reason } => format!("token_{reason}"),
        }
    }

    fn client(step: Step, e: ClientError) -> Failure {
        match e {
            ClientError::Timeout => Failure::Timeout { step },
            ClientError::Page => Failure::Unreadable { step },
            _ => Failure::Connection { step },
        }
    }
}

/// A sign-in whose authorize step succeeded: the transaction waits for the user's code.
#[derive(Debug, Clone)]
pub struct Pending {
    pub user: usize,
    txn: String,
    nonce: String,
    state: String,
}

/// How long each step of a good sign-in took.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub authorize: Duration,
    pub otp: Duration,
}

/// What every sign-in of a run shares.
pub struct Flow {
    pub users: Arc<Users>,
    pub hints: Arc<HintBook>,
    pub relying: RelyingParty,
    pub otp_path: String,
}

impl Flow {
    /// Posts Entra's form for `user` and reads the code page's transaction.
    pub async fn authorize(&self, browser: &Browser, user: usize) -> Result<Pending, Failure> {
        let step = Step::Authorize;
        let (nonce, state, request_id) = (random_text(), random_text(), random_text());
        let hint = self.hints.get(user, entra_sim::unix_now());
        let fields = [
            ("scope", "openid"),
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("nonce", &nonce),
            ("state", &state),
            ("id_token_hint", &hint),
            ("claims", DEFAULT_CLAIMS),
            ("client-request-id", &request_id),
        ];
        let page = browser
            .post_form("/eam/authorize", &fields)
            .await
            .map_err(|e| Failure::client(step, e))?;
        let form = next_form(step, &page)?;
        if form.action != self.otp_path {
            return Err(Failure::UnexpectedPage { step });
        }
        let txn = form.get("txn").ok_or(Failure::UnexpectedPage { step })?;
        Ok(Pending {
            user,
            txn: txn.to_owned(),
            nonce,
            state,
        })
    }

    /// Sends the user's current code for a pending sign-in and checks the token that comes
    /// back. Returns when the code was computed, for the user's step.
    pub async fn complete(
        &self,
        browser: &Browser,
        pending: &Pending,
    ) -> (i64, Result<(), Failure>) {
        let step = Step::Otp;
        let user = self.users.get(pending.user);
        let code_time = entra_sim::unix_now();
        let code = user.code(self.users.params, code_time);
        let fields = [
            ("txn", pending.txn.as_str()),
            ("code", &code),
            ("action", "verify"),
        ];
        let answer = match browser.post_form(&self.otp_path, &fields).await {
            Ok(page) => self.check_answer(&page, pending),
            Err(e) => Err(Failure::client(step, e)),
        };
        (code_time, answer)
    }

    fn check_answer(&self, page: &Page, pending: &Pending) -> Result<(), Failure> {
        let step = Step::Otp;
        let form = next_form(step, page)?;
        if form.action == self.otp_path {
            return Err(Failure::CodeRefused);
        }
        if form.action != REDIRECT_URI {
            return Err(Failure::UnexpectedPage { step });
        }
        if let Some(error) = form.get("error") {
            return Err(Failure::Posted {
                step,
                error: known_error(error),
            });
        }
        if form.get("state") != Some(pending.state.as_str()) {
            return Err(Failure::StateMismatch);
        }
        let token = form.get("id_token").ok_or(Failure::NoToken)?;
        let expected = Expected {
            client_id: CLIENT_ID,
            sub: &self.users.get(pending.user).sub,
            nonce: Some(&pending.nonce),
            acr_values: ACR,
            amr_values: AMR,
        };
        self.relying
            .validate(token, &expected)
            .map(drop)
            .map_err(|why| Failure::Token {
                reason: token_reason(&why),
            })
    }

    /// A whole sign-in for `user`. Also returns when the code was computed, if it was.
    pub async fn sign_in(
        &self,
        browser: &Browser,
        user: usize,
    ) -> (Option<i64>, Result<Timings, Failure>) {
        let started = Instant::now();
        let pending = match self.authorize(browser, user).await {
            Ok(pending) => pending,
            Err(failure) => return (None, Err(failure)),
        };
        let authorize = started.elapsed();
        let (code_time, answer) = self.complete(browser, &pending).await;
        let otp = started.elapsed() - authorize;
        (Some(code_time), answer.map(|()| Timings { authorize, otp }))
    }
}

/// The form of a 200 page, or the failure the page stands for.
fn next_form(step: Step, page: &Page) -> Result<Form, Failure> {
    if page.status != StatusCode::OK {
        return Err(Failure::Status {
            step,
            status: page.status.as_u16(),
        });
    }
    let form = Form::parse(&page.body).ok_or(Failure::UnexpectedPage { step })?;
    if step == Step::Authorize && form.action == REDIRECT_URI {
        let error = form
            .get("error")
            .map_or_else(|| "nothing".into(), known_error);
        return Err(Failure::Posted { step, error });
    }
    Ok(form)
}

/// The error names the protocol allows; anything else is counted as `other`.
fn known_error(error: &str) -> String {
    match error {
        "access_denied" | "temporarily_unavailable" | "invalid_request" | "server_error" => {
            error.to_owned()
        }
        _ => "other".to_owned(),
    }
}

/// The rule an `id_token` broke, from the relying party's message.
fn token_reason(why: &str) -> &'static str {
    const RULES: [(&str, &str); 13] = [
        ("AADSTS50012:", "kid_not_published"),
        ("InvalidSignature", "signature"),
        ("InvalidIssuer", "iss"),
        ("InvalidAudience", "aud"),
        ("ExpiredSignature", "expired"),
        ("ImmatureSignature", "not_yet_valid"),
        ("MissingRequiredClaim", "missing_claim"),
        ("not RS256", "alg"),
        ("sub ", "sub"),
        ("nonce", "nonce"),
        ("acr", "acr"),
        ("amr", "amr"),
        ("header", "malformed"),
    ];
    RULES
        .iter()
        .find(|(needle, _)| why.contains(needle))
        .map_or("refused", |(_, reason)| reason)
}

/// 16 random bytes, base64url: nonces, states and request ids.
fn random_text() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or_else(|_| unreachable!("the system RNG works"));
    vouch::jose::b64url_encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_refusals_are_counted_by_the_rule_they_broke() {
        let cases = [
            ("token refused: InvalidSignature", "signature"),
            ("token refused: InvalidIssuer", "iss"),
            (
                "AADSTS50012: KeyID of token is 'x', not in the JWKS",
                "kid_not_published",
            ),
            ("nonce Some(\"a\") where Some(\"b\") was sent", "nonce"),
            ("AADSTS5001258: acr x was not requested", "acr"),
            ("AADSTS5001257: amr pwd was not requested", "amr"),
            ("something new", "refused"),
        ];
        for (why, reason) in cases {
            assert_eq!(token_reason(why), reason, "{why}");
        }
    }

    #[test]
    fn failure_kinds_name_the_step_and_never_a_free_text_error() {
        let posted = Failure::Posted {
            step: Step::Otp,
            error: known_error("<script>"),
        };
        assert_eq!(posted.kind(), "otp_posted_other");
        let status = Failure::Status {
            step: Step::Authorize,
            status: 503,
        };
        assert_eq!(status.kind(), "authorize_http_503");
    }
}
