//! What every step after Entra's request does first: read the browser's form, then open the
//! sealed transaction it carries.
//!
//! Until the transaction is open and unused, nothing can be posted to Entra, so every problem
//! is a 400 page in the reader's language; what happens after (expiry, cancel, a wrong
//! factor) is for the step to answer, since by then it knows where to post.

use bytes::Bytes;
use http::{Request, StatusCode};

use super::form;
use super::i18n::{Lang, Text, text};
use super::pages::{self, Page};
use super::transaction::Transaction;
use crate::app::App;
use crate::factor::Method;

/// A step's form, read, and who sent it.
pub(crate) struct StepForm<const N: usize> {
    /// The client's address, for the audit trail and attempt limits.
    pub source: String,
    pub lang: Lang,
    /// The form's fields in the order they were asked for.
    pub fields: [Option<String>; N],
}

/// Reads the form fields `names` of a step's POST, or answers with the page that says why
/// it could not be read.
pub(crate) async fn read<B, const N: usize>(
    app: &App,
    req: Request<B>,
    names: [&'static str; N],
) -> Result<StepForm<N>, Page>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let source = crate::app::Peer::source_of(&req);
    let lang = Lang::of(&req);
    let body = super::read_form(req, &app.config, lang).await?;
    let fields = form::parse(&body, names).map_err(|e| {
        tracing::debug!(error = %e, "step form refused");
        bad_request(lang, text(lang, Text::FormUnreadable))
    })?;
    Ok(StepForm {
        source,
        lang,
        fields,
    })
}

/// Opens the form's sealed transaction: it must be one this appliance issued, not yet
/// completed, and, when `method` is given, offering it. Otherwise the answer is the 400 page.
pub(crate) fn open(
    app: &App,
    sealed: Option<&str>,
    method: Option<Method>,
    lang: Lang,
) -> Result<Transaction, Box<Page>> {
    let refuse = |why: &str| Box::new(bad_request(lang, why));
    let txn = match sealed.map(|s| app.transactions.open(s)) {
        Some(Ok(txn)) => txn,
        _ => return Err(refuse(text(lang, Text::NotOurs))),
    };
    if app.transactions.is_used(&txn) {
        return Err(refuse(text(lang, Text::Finished)));
    }
    let offered = |m: Method| txn.offers.iter().any(|o| o.method == m);
    if method.is_some_and(|m| !offered(m)) {
        return Err(refuse(text(lang, Text::NotOffered)));
    }
    Ok(txn)
}

/// The 400 page for a form the browser got wrong; nothing is posted to Entra.
pub(crate) fn bad_request(lang: Lang, message: &str) -> Page {
    let title = text(lang, Text::ProblemTitle);
    pages::problem_in(lang, StatusCode::BAD_REQUEST, title, message)
}
