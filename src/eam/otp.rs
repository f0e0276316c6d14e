//! `POST /eam/otp`: the user's TOTP code for an open transaction.
//!
//! A wrong code shows the form again with the attempts left; too many wrong codes lock the
//! user out with a growing back-off and end the sign-in with `access_denied`. A code is
//! accepted once: the step it matched, and every earlier one, is spent for that user.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::i18n::{Lang, Text, fill, text};
use super::pages::{self, Answer, MethodPage, Page};
use super::step;
use super::transaction::{Transaction, TransactionError};
use crate::admission::Stage;
use crate::app::App;
use crate::factor::Method;
use crate::factor::limiter::Allowance;
use crate::factor::otp::{self, OtpError};

pub async fn post<B>(app: &App, req: Request<B>) -> Page
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let posted = match step::read(app, req, ["txn", "code", "action"]).await {
        Ok(posted) => posted,
        Err(page) => return page,
    };
    let (source, lang) = (posted.source, posted.lang);
    let [sealed, code, action] = posted.fields;
    let txn = match step::open(app, sealed.as_deref(), Some(Method::Totp), lang) {
        Ok(txn) => txn,
        Err(page) => return *page,
    };
    let now = app.clock.now();
    let sub = super::hashed(&txn.sub);
    let crid = txn.client_request_id.as_deref().unwrap_or("-");
    let outcome = super::Outcome {
        tid: &txn.tid,
        oid: &txn.oid,
        method: Some(Method::Totp),
        source: &source,
        client_request_id: txn.client_request_id.as_deref(),
    };
    let end = async |error: &'static str, why: &str| -> Page {
        match app.transactions.consume(&txn, now) {
            Ok(()) => {
                tracing::debug!(
                    client_request_id = crid,
                    tid = %txn.tid,
                    sub = %sub,
                    error,
                    why,
                    "sign-in ended",
                );
                let _ = outcome.record(app, error, why).await;
                super::ending(lang, &txn, error, why)
            }
            Err(_) => step::bad_request(lang, text(lang, Text::Finished)),
        }
    };
    if now >= txn.expires {
        return end("temporarily_unavailable", "transaction expired").await;
    }
    match action.as_deref() {
        Some("verify") => {}
        Some("cancel") => return end("access_denied", "user cancelled").await,
        _ => return step::bad_request(lang, text(lang, Text::FormIncomplete)),
    }
    let fill = app.signer.fill();
    let Some(_ticket) = app.admission.admit(Stage::InTransaction, fill) else {
        return end("temporarily_unavailable", "appliance overloaded").await;
    };

    let sealed = sealed.unwrap_or_default();
    let code = code.as_deref().unwrap_or_default();
    let user = format!("{}/{}", txn.tid, txn.oid);
    let started = std::time::Instant::now();
    let checked = check_code(app, &txn, code, &source, now, lang);
    app.oversight
        .step(crate::oversight::Step::Factor, started.elapsed());
    match checked {
        Ok(step) => {
            if let Err(e) = app.spent.record(&user, step).await {
                tracing::error!(error = %e, "spent code could not be recorded");
                return end("temporarily_unavailable", "spent-code log unwritable").await;
            }
        }
        Err(Retry::Ask { digits, message }) => {
            return form(lang, &app.routes.otp, &sealed, digits, Some(&message));
        }
        Err(Retry::End { error, why }) => return end(error, why).await,
    }

    match app.transactions.consume(&txn, now) {
        Ok(()) => super::issue(app, &txn, Method::Totp, now, &source).await,
        Err(TransactionError::Used) => step::bad_request(lang, text(lang, Text::Finished)),
        Err(e) => {
            tracing::error!(error = %e, "transaction could not be closed");
            let _ = outcome
                .record(app, "temporarily_unavailable", "transaction not closed")
                .await;
            post_error(&txn, "temporarily_unavailable")
        }
    }
}

/// Why a code did not complete the sign-in.
enum Retry {
    /// Show the form again with this message.
    Ask { digits: u8, message: String },
    /// End the sign-in with this error posted to Entra.
    End {
        error: &'static str,
        why: &'static str,
    },
}

/// Checks a code against the user's seed, the replay guard and the attempt limits, and
/// gives the step it matched.
fn check_code(
    app: &App,
    txn: &Transaction,
    code: &str,
    source: &str,
    now: i64,
    lang: Lang,
) -> Result<i64, Retry> {
    let user = format!("{}/{}", txn.tid, txn.oid);
    let sub = super::hashed(&txn.sub);
    let end = |error, why| Retry::End { error, why };
    if let Allowance::Locked { retry_after } = app.limiter.check(&user, source, now) {
        tracing::debug!(tid = %txn.tid, sub, retry_after, "one-time code refused: locked out");
        return Err(end("access_denied", "locked out"));
    }
    let (params, seed) = match app.store.totp(&txn.tid, &txn.oid) {
        Ok(Some(found)) => found,
        Ok(None) => return Err(end("access_denied", "TOTP no longer enrolled")),
        Err(e) => {
            tracing::error!(tid = %txn.tid, error = %e, "credential store unreadable");
            return Err(end(
                "temporarily_unavailable",
                "credential store unreadable",
            ));
        }
    };
    let ask = |message: String| Retry::Ask {
        digits: params.digits,
        message,
    };

    let checked = otp::matching_step(&seed, params, code.trim(), now)
        .and_then(|step| app.used_steps.claim(&user, step, now).map(|()| step));
    match checked {
        Ok(step) => {
            app.limiter.succeed(&user, source);
            Ok(step)
        }
        Err(OtpError::Format { digits }) => {
            let digits = digits.to_string();
            Err(ask(fill(
                text(lang, Text::OtpFormat),
                &[("digits", &digits)],
            )))
        }
        Err(OtpError::Replayed) => {
            tracing::debug!(tid = %txn.tid, sub, "one-time code refused: already used");
            Err(ask(text(lang, Text::OtpReplayed).into()))
        }
        Err(OtpError::Mismatch) => match app.limiter.fail(&user, source, now) {
            Allowance::Locked { retry_after } => {
                tracing::debug!(tid = %txn.tid, sub, retry_after, "locked out after wrong codes");
                Err(end("access_denied", "too many wrong codes"))
            }
            Allowance::Allowed { remaining } => {
                let remaining = remaining.to_string();
                Err(ask(fill(
                    text(lang, Text::OtpWrong),
                    &[("remaining", &remaining)],
                )))
            }
        },
    }
}

/// The TOTP code page. `message` explains a previous wrong attempt.
pub(crate) fn form(
    lang: Lang,
    action: &str,
    transaction: &str,
    digits: u8,
    message: Option<&str>,
) -> Page {
    let intro = fill(
        text(lang, Text::OtpIntro),
        &[("digits", &digits.to_string())],
    );
    let described = if message.is_some() {
        "code-error"
    } else {
        "code-intro"
    };
    let body = format!(
        "<p id=\"code-intro\">{intro}</p>{alert}<form method=\"post\" action=\"{action}\">\
{txn}<label for=\"code\">{label}</label>\
<input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
autocomplete=\"one-time-code\" aria-describedby=\"{described}\" \
pattern=\"[0-9]{{{digits}}}\" maxlength=\"{digits}\" required autofocus>\
<div class=\"actions\">{verify}{cancel}</div></form>",
        intro = pages::escape(&intro),
        alert = pages::alert("code-error", message),
        txn = pages::hidden("txn", transaction),
        action = pages::escape(action),
        label = text(lang, Text::OtpLabel),
        verify = pages::button("action", "verify", text(lang, Text::OtpVerify), false),
        cancel = pages::button("action", "cancel", text(lang, Text::Cancel), true),
    );
    pages::method_page(MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::OtpTitle),
        body: &body,
        script: None,
    })
}

fn post_error(txn: &Transaction, error: &str) -> Page {
    pages::form_post(
        txn.redirect_uri(),
        Answer::Error(error),
        txn.state.as_deref(),
    )
}
