//! One sign-in as Entra, a browser and the user's phone make it, and the `id_token` in the
//! answer checked the way Entra checks it (signature against the appliance's JWKS, `iss`
//! against discovery, `aud`, `sub`, `nonce`, `acr`, `amr`, through
//! [`entra_sim::RelyingParty`]).
//!
//! - OTP: Entra's form posted to `/eam/authorize`, the user's code posted to the code page's
//!   form, whose answer goes to Entra.
//! - Mobile PKI: Entra's form posted; if the user is offered several methods, the choice page
//!   posted with `mobile_pki`, as the user would press it; the waiting page read (challenge
//!   id and bytes from the app's link, checked against the form); the phone's JSON posted to
//!   `/eam/mobile/respond`; then the page's form posted with `continue`. The phone's answer
//!   is decided before `/eam/mobile/respond` returns, so the tool posts Continue at once
//!   rather than long-polling `/eam/mobile/wait` as the page's script would.
//! - Smart card: Entra's form posted with the user's UPN in the hint; the choice page posted
//!   with `smart_card`; the card page's form (which posts to the smart-card listener) posted
//!   there on a new connection whose handshake presents the user's card certificate, as a
//!   browser does after the card and PIN prompt; its answer goes to Entra.
//! - Security key: Entra's form posted for a key holder (choosing `fido` if offered several
//!   methods); the security-key page read (transaction, challenge and the allowed credential
//!   from its form); the key's assertion posted to `/eam/fido` as the page's script posts
//!   it, whose answer goes to Entra.
//!
//! Every answer that is not the next step of a good sign-in is a [`Failure`], named by kind
//! so that a report can count them. Hints, codes, challenges and tokens never appear in a
//! failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_sim::{CLIENT_ID, DEFAULT_CLAIMS, Expected, Form, REDIRECT_URI, RelyingParty};
use http::StatusCode;

use crate::certs::CertBook;
use crate::client::{Browser, ClientError, Page};
use crate::hints::HintBook;
use crate::keys::KeyRing;
use crate::users::Users;
use crate::waiting::{self, Waiting};

const ACR: &[&str] = &["possessionorinherence"];
const AMR: &[&str] = &[
    "face", "fido", "fpt", "hwk", "iris", "otp", "pop", "retina", "sc", "sms", "swk", "tel", "vbm",
];

/// The second factor a run's users prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Factor {
    /// A TOTP code from the user's authenticator app.
    #[default]
    Otp,
    /// A challenge signed by the key of the user's phone certificate.
    MobilePki,
    /// The user's smart-card certificate, presented in a TLS handshake.
    SmartCard,
    /// A WebAuthn assertion from the user's security key.
    Fido,
}

impl Factor {
    pub fn name(self) -> &'static str {
        match self {
            Factor::Otp => "otp",
            Factor::MobilePki => "mobile-pki",
            Factor::SmartCard => "smart-card",
            Factor::Fido => "fido",
        }
    }

    /// The `amr` the stand's appliance grants for the factor.
    pub fn amr(self) -> &'static str {
        match self {
            Factor::Otp => "otp",
            Factor::MobilePki => "hwk",
            Factor::SmartCard => "sc",
            Factor::Fido => "fido",
        }
    }
}

/// The step of a sign-in a failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Entra's form posted to `/eam/authorize`.
    Authorize,
    /// The choice page's form posted with the run's method.
    Choose,
    /// The code posted; its answer goes to Entra.
    Otp,
    /// The phone's JSON posted to `/eam/mobile/respond`.
    Phone,
    /// The security key's assertion posted; its answer goes to Entra.
    Key,
    /// The card page's form posted to the smart-card listener; its answer goes to Entra.
    Card,
    /// The waiting page's Continue posted; its answer goes to Entra.
    Answer,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Authorize => "authorize",
            Step::Choose => "choose",
            Step::Otp => "otp",
            Step::Phone => "phone",
            Step::Key => "key",
            Step::Card => "card",
            Step::Answer => "answer",
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
    /// The waiting page is not what the app and the browser read.
    WaitingPage {
        step: Step,
        why: &'static str,
    },
    /// The tool could not issue the user's phone certificate.
    NoPhone,
    /// The security-key page is not one the key can answer.
    KeyPage {
        step: Step,
        why: &'static str,
    },
    /// The run has no security keys, or none for the user.
    NoKey,
    /// The tool could not issue the user's card, or the stand has no smart-card listener.
    NoCard,
    /// The appliance refused the phone's answer with this JSON error code.
    PhoneRefused {
        code: String,
    },
    /// The waiting page came back after Continue: the phone's approval was not seen.
    NotApproved,
    /// The card page came back: the appliance refused the card.
    CardRefused,
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
            Failure::WaitingPage { step, why } => format!("{}_waiting_page_{why}", step.name()),
            Failure::NoPhone => "phone_not_issued".into(),
            Failure::KeyPage { step, why } => format!("{}_key_page_{why}", step.name()),
            Failure::NoKey => "key_not_held".into(),
            Failure::NoCard => "card_not_issued".into(),
            Failure::PhoneRefused { code } => format!("phone_refused_{code}"),
            Failure::NotApproved => "answer_not_approved".into(),
            Failure::CardRefused => "card_refused".into(),
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

/// How long each step of a good sign-in took; the steps its factor does not have are `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub authorize: Duration,
    pub choose: Option<Duration>,
    pub otp: Option<Duration>,
    pub phone: Option<Duration>,
    pub key: Option<Duration>,
    pub card: Option<Duration>,
    pub answer: Option<Duration>,
}

/// The appliance's paths a sign-in posts to.
#[derive(Debug, Clone)]
pub struct Paths {
    pub otp: String,
    pub method: String,
    pub mobile: String,
    pub respond: String,
    pub fido: String,
    /// Where the card page's form posts: the smart-card listener's origin and path.
    pub card_action: String,
    /// That path, posted to on the card's connection.
    pub smart_card: String,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            otp: "/eam/otp".into(),
            method: "/eam/method".into(),
            mobile: "/eam/mobile".into(),
            respond: "/eam/mobile/respond".into(),
            fido: "/eam/fido".into(),
            card_action: String::new(),
            smart_card: "/eam/smartcard".into(),
        }
    }
}

/// What every sign-in of a run shares.
pub struct Flow {
    pub users: Arc<Users>,
    pub hints: Arc<HintBook>,
    pub relying: RelyingParty,
    pub factor: Factor,
    /// Every user's phone; needed for the mobile-PKI factor only.
    pub phones: Option<Arc<CertBook>>,
    /// Every user's card with the agent that presents it; for the smart-card factor only.
    pub cards: Option<Arc<CertBook>>,
    /// The key holders' security keys; needed for the FIDO2 factor only.
    pub keys: Option<Arc<KeyRing>>,
    pub paths: Paths,
}

impl Flow {
    /// Posts Entra's form for `user` and reads the code page's transaction.
    pub async fn authorize(&self, browser: &Browser, user: usize) -> Result<Pending, Failure> {
        let step = Step::Authorize;
        let (page, pending) = self.post_authorize(browser, user).await?;
        let form = next_form(step, &page)?;
        if form.action != self.paths.otp {
            return Err(Failure::UnexpectedPage { step });
        }
        let txn = form.get("txn").ok_or(Failure::UnexpectedPage { step })?;
        Ok(Pending {
            txn: txn.to_owned(),
            ..pending
        })
    }

    /// Posts Entra's form for `user`: the page that answered, and the sign-in it started
    /// (its transaction not read yet).
    async fn post_authorize(
        &self,
        browser: &Browser,
        user: usize,
    ) -> Result<(Page, Pending), Failure> {
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
        let pending = Pending {
            user,
            txn: String::new(),
            nonce,
            state,
        };
        Ok((page, pending))
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
        let answer = match browser.post_form(&self.paths.otp, &fields).await {
            Ok(page) => self.check_answer(step, &page, pending),
            Err(e) => Err(Failure::client(step, e)),
        };
        (code_time, answer)
    }

    /// Checks the answer to Entra that `step` brought: a form posting a token Entra accepts,
    /// or the step's own page again (the factor was refused).
    fn check_answer(&self, step: Step, page: &Page, pending: &Pending) -> Result<(), Failure> {
        let form = next_form(step, page)?;
        if step == Step::Otp && form.action == self.paths.otp {
            return Err(Failure::CodeRefused);
        }
        if step == Step::Answer && form.action == self.paths.mobile {
            return Err(Failure::NotApproved);
        }
        if step == Step::Card && form.action == self.paths.card_action {
            return Err(Failure::CardRefused);
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
        let claims = self
            .relying
            .validate(token, &expected)
            .map_err(|why| Failure::Token {
                reason: token_reason(&why),
            })?;
        if claims["amr"][0] != self.factor.amr() {
            return Err(Failure::Token {
                reason: "amr_not_the_factors",
            });
        }
        Ok(())
    }

    /// A whole sign-in for `user` with the run's factor. Also returns when a TOTP code was
    /// computed, if one was.
    pub async fn sign_in(
        &self,
        browser: &Browser,
        user: usize,
    ) -> (Option<i64>, Result<Timings, Failure>) {
        match self.factor {
            Factor::Otp => self.sign_in_otp(browser, user).await,
            Factor::MobilePki => (None, self.sign_in_mobile(browser, user).await),
            Factor::SmartCard => (None, self.sign_in_card(browser, user).await),
            Factor::Fido => (None, self.sign_in_key(browser, user).await),
        }
    }

    async fn sign_in_otp(
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
        let timings = Timings {
            authorize,
            otp: Some(started.elapsed() - authorize),
            ..Timings::default()
        };
        (Some(code_time), answer.map(|()| timings))
    }

    async fn sign_in_mobile(&self, browser: &Browser, user: usize) -> Result<Timings, Failure> {
        let (mut timings, pending, step, page) = self.reach_method(browser, user).await?;
        let waiting = self.read_waiting(step, &page)?;

        timings.phone = Some(self.phone_answers(browser, user, &waiting).await?);

        let fields = waiting.continue_fields();
        let answer = (Step::Answer, self.paths.mobile.as_str());
        timings.answer = Some(self.post_answer(browser, answer, &fields, &pending).await?);
        Ok(timings)
    }

    async fn sign_in_key(&self, browser: &Browser, user: usize) -> Result<Timings, Failure> {
        let (mut timings, pending, step, page) = self.reach_method(browser, user).await?;
        let form = self.method_form(step, &page, &self.paths.fido)?;
        let ceremony =
            Ceremony::read(&page.body, &form).map_err(|why| Failure::KeyPage { step, why })?;

        let keys = self.keys.as_ref().ok_or(Failure::NoKey)?;
        if !ceremony.allows(&keys.credential_id(user)) {
            return Err(Failure::KeyPage {
                step,
                why: "key_not_allowed",
            });
        }
        let signed = keys.assert(user, &ceremony.challenge);
        let encode = vouch::jose::b64url_encode;
        let fields = [
            ("txn", ceremony.txn.clone()),
            ("outcome", "ok".to_owned()),
            ("credential_id", encode(&signed.credential_id)),
            ("client_data_json", encode(&signed.client_data_json)),
            ("authenticator_data", encode(&signed.authenticator_data)),
            ("signature", encode(&signed.signature)),
        ];
        let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let key = (Step::Key, self.paths.fido.as_str());
        timings.key = Some(self.post_answer(browser, key, &fields, &pending).await?);
        Ok(timings)
    }

    async fn sign_in_card(&self, browser: &Browser, user: usize) -> Result<Timings, Failure> {
        let (mut timings, pending, step, page) = self.reach_method(browser, user).await?;
        let form = self.method_form(step, &page, &self.paths.card_action)?;
        let txn = form.get("txn").ok_or(Failure::UnexpectedPage { step })?;
        let method = form.get("method").unwrap_or_default();

        let cards = self.cards.as_ref().ok_or(Failure::NoCard)?;
        let card = cards
            .card_agent(user)
            .map_err(|_| Failure::NoCard)?
            .browser();
        let fields = [("txn", txn), ("method", method), ("action", "verify")];
        let step = (Step::Card, self.paths.smart_card.as_str());
        timings.card = Some(self.post_answer(&card, step, &fields, &pending).await?);
        Ok(timings)
    }

    /// Posts the form whose answer goes to Entra (`step`, to `path`) and checks that answer;
    /// returns how long the appliance took.
    async fn post_answer(
        &self,
        browser: &Browser,
        (step, path): (Step, &str),
        fields: &[(&str, &str)],
        pending: &Pending,
    ) -> Result<Duration, Failure> {
        let started = Instant::now();
        let page = browser
            .post_form(path, fields)
            .await
            .map_err(|e| Failure::client(step, e))?;
        self.check_answer(step, &page, pending)?;
        Ok(started.elapsed())
    }

    /// Posts Entra's form for `user` and, if the user is offered several methods, chooses the
    /// run's: the first page of the method, the step that brought it, and their timings.
    async fn reach_method(
        &self,
        browser: &Browser,
        user: usize,
    ) -> Result<(Timings, Pending, Step, Page), Failure> {
        let mut timings = Timings::default();
        let started = Instant::now();
        let (page, pending) = self.post_authorize(browser, user).await?;
        timings.authorize = started.elapsed();
        match next_form(Step::Authorize, &page)? {
            form if form.action == self.paths.method => {
                let started = Instant::now();
                let page = self.choose(browser, &form).await?;
                timings.choose = Some(started.elapsed());
                Ok((timings, pending, Step::Choose, page))
            }
            _ => Ok((timings, pending, Step::Authorize, page)),
        }
    }

    /// The form of a method's first page, which must post to `action`; an answer to Entra
    /// instead is the error it posts.
    fn method_form(&self, step: Step, page: &Page, action: &str) -> Result<Form, Failure> {
        let form = next_form(step, page)?;
        if form.action == REDIRECT_URI {
            let error = form
                .get("error")
                .map_or_else(|| "nothing".into(), known_error);
            return Err(Failure::Posted { step, error });
        }
        if form.action != action {
            return Err(Failure::UnexpectedPage { step });
        }
        Ok(form)
    }

    /// Presses the choice page's button for the run's factor.
    async fn choose(&self, browser: &Browser, form: &Form) -> Result<Page, Failure> {
        let step = Step::Choose;
        let txn = form.get("txn").ok_or(Failure::UnexpectedPage { step })?;
        let method = match self.factor {
            Factor::Otp => "totp",
            Factor::MobilePki => "mobile_pki",
            Factor::SmartCard => "smart_card",
            Factor::Fido => "fido",
        };
        let fields = [("txn", txn), ("method", method)];
        browser
            .post_form(&self.paths.method, &fields)
            .await
            .map_err(|e| Failure::client(step, e))
    }

    fn read_waiting(&self, step: Step, page: &Page) -> Result<Waiting, Failure> {
        if page.status != StatusCode::OK {
            return Err(Failure::Status {
                step,
                status: page.status.as_u16(),
            });
        }
        if let Some(form) = Form::parse(&page.body).filter(|f| f.action == REDIRECT_URI) {
            let error = form
                .get("error")
                .map_or_else(|| "nothing".into(), known_error);
            return Err(Failure::Posted { step, error });
        }
        Waiting::read(&page.body, &self.paths.mobile).map_err(|e| Failure::WaitingPage {
            step,
            why: e.kind(),
        })
    }

    /// The phone signs the challenge and posts its JSON. Returns how long the appliance took
    /// to approve it, from the post (the phone's signing is not the appliance's time).
    async fn phone_answers(
        &self,
        browser: &Browser,
        user: usize,
        waiting: &Waiting,
    ) -> Result<Duration, Failure> {
        let step = Step::Phone;
        let phones = self.phones.as_ref().ok_or(Failure::NoPhone)?;
        let phone = phones.get(user).map_err(|_| Failure::NoPhone)?;
        let body = phone
            .answer(&waiting.challenge_id, &waiting.challenge)
            .map_err(|_| Failure::NoPhone)?;

        let started = Instant::now();
        let page = browser
            .post_json(&self.paths.respond, body)
            .await
            .map_err(|e| Failure::client(step, e))?;
        let took = started.elapsed();
        waiting::phone_verdict(&page)
            .map(|()| took)
            .map_err(|code| match code {
                Some(code) => Failure::PhoneRefused { code },
                None if page.status == StatusCode::OK => Failure::Unreadable { step },
                None => Failure::Status {
                    step,
                    status: page.status.as_u16(),
                },
            })
    }
}

/// What the security-key page gives the key: the page is external input, so only the form's
/// transaction and the challenge and allowed credentials on its data attributes are read,
/// each bounded.
struct Ceremony {
    txn: String,
    challenge: Vec<u8>,
    allowed: String,
}

/// The longest challenge the tool's keys sign, and the longest list of allowed credentials.
const MAX_CEREMONY_CHALLENGE: usize = 1024;
const MAX_ALLOWED: usize = 16 * 1024;

impl Ceremony {
    fn read(html: &str, form: &Form) -> Result<Ceremony, &'static str> {
        let txn = form
            .get("txn")
            .filter(|t| !t.is_empty())
            .ok_or("no_transaction")?;
        let challenge = data_attribute(html, "challenge")
            .filter(|c| c.len() <= MAX_CEREMONY_CHALLENGE)
            .and_then(|c| vouch::jose::b64url_decode(c, "challenge").ok())
            .filter(|c| !c.is_empty())
            .ok_or("bad_challenge")?;
        let allowed = data_attribute(html, "ids")
            .filter(|ids| ids.len() <= MAX_ALLOWED)
            .ok_or("no_credentials")?;
        Ok(Ceremony {
            txn: txn.to_owned(),
            challenge,
            allowed: allowed.to_owned(),
        })
    }

    /// Whether the page lets the key with `credential_id` answer.
    fn allows(&self, credential_id: &[u8]) -> bool {
        let id = vouch::jose::b64url_encode(credential_id);
        self.allowed.split(' ').any(|allowed| allowed == id)
    }
}

/// The value of the first `data-NAME` attribute on the page.
fn data_attribute<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!(" data-{name}=\"");
    let start = html.find(&needle)? + needle.len();
    let len = html[start..].find('"')?;
    Some(&html[start..start + len])
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
    fn mobile_failures_are_counted_by_step_and_the_phones_error_code() {
        let refused = Failure::PhoneRefused {
            code: "bad_signature".into(),
        };
        assert_eq!(refused.kind(), "phone_refused_bad_signature");
        assert_eq!(Failure::NotApproved.kind(), "answer_not_approved");
        let page = Failure::WaitingPage {
            step: Step::Choose,
            why: "no_link",
        };
        assert_eq!(page.kind(), "choose_waiting_page_no_link");
        assert_eq!(Factor::MobilePki.name(), "mobile-pki");
    }

    #[test]
    fn the_key_reads_only_a_bounded_challenge_and_the_allowed_ids_from_its_page() {
        let page = |challenge: &str| {
            format!(
                "<form id=\"fido\" method=\"post\" action=\"/eam/fido\" \
                 data-challenge=\"{challenge}\" data-rp-id=\"localhost\" data-ids=\"AQID BAUG\">\
                 <input type=\"hidden\" name=\"txn\" value=\"sealed\"></form>"
            )
        };
        let html = page("AAEC");
        let form = Form::parse(&html).unwrap();
        let ceremony = Ceremony::read(&html, &form).unwrap();
        assert_eq!(ceremony.challenge, [0, 1, 2]);
        assert_eq!(ceremony.txn, "sealed");
        assert!(ceremony.allows(&[4, 5, 6]));
        assert!(!ceremony.allows(&[4, 5]));

        for (challenge, why) in [("", "bad_challenge"), ("!!", "bad_challenge")] {
            let html = page(challenge);
            let form = Form::parse(&html).unwrap();
            assert_eq!(
                Ceremony::read(&html, &form).err(),
                Some(why),
                "{challenge:?}"
            );
        }
        let long = page(&"A".repeat(MAX_CEREMONY_CHALLENGE + 4));
        let form = Form::parse(&long).unwrap();
        assert_eq!(Ceremony::read(&long, &form).err(), Some("bad_challenge"));
        let failure = Failure::KeyPage {
            step: Step::Authorize,
            why: "bad_challenge",
        };
        assert_eq!(failure.kind(), "authorize_key_page_bad_challenge");
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
