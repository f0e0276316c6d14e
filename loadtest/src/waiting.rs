//! The mobile-PKI waiting page as the phone app and the browser read it, and the appliance's
//! verdict on the phone's answer.
//!
//! The page is external input: the tool takes from it only the form's transaction and
//! challenge id and the app link's challenge, refuses a page where the link and the form
//! disagree, and never echoes any of it in a failure.

use http::StatusCode;

use crate::client::Page;

/// The scheme and path of the link the page's QR code carries.
const LINK: &str = "href=\"vouch-pki://sign?";
/// The longest challenge the tool signs.
const MAX_CHALLENGE: usize = 1024;

/// Why a waiting page cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    #[error("the page has no form posting to the phone sign-in")]
    NoForm,
    #[error("the form has no transaction")]
    NoTransaction,
    #[error("the page has no link for the phone app")]
    NoLink,
    #[error("the app link has no challenge id, or not the form's")]
    IdMismatch,
    #[error("the app link's challenge is missing, not base64url, empty or too long")]
    BadChallenge,
}

impl PageError {
    /// A short stable name for counting failures of this kind.
    pub fn kind(self) -> &'static str {
        match self {
            PageError::NoForm => "no_form",
            PageError::NoTransaction => "no_transaction",
            PageError::NoLink => "no_link",
            PageError::IdMismatch => "id_mismatch",
            PageError::BadChallenge => "bad_challenge",
        }
    }
}

/// What a waiting page gives the phone and the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// The sealed transaction the form carries.
    pub txn: String,
    pub challenge_id: String,
    /// The challenge's bytes, which the phone signs.
    pub challenge: Vec<u8>,
}

impl Waiting {
    /// Reads the page whose form must post to `action`.
    pub fn read(html: &str, action: &str) -> Result<Waiting, PageError> {
        let form = entra_sim::Form::parse(html)
            .filter(|f| f.action == action)
            .ok_or(PageError::NoForm)?;
        let txn = form
            .get("txn")
            .filter(|t| !t.is_empty())
            .ok_or(PageError::NoTransaction)?;
        let link = app_link(html).ok_or(PageError::NoLink)?;
        let param = |name: &str| {
            form_urlencoded::parse(link.as_bytes())
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.into_owned())
        };
        let id = param("challenge_id").filter(|id| !id.is_empty());
        if id.is_none() || id.as_deref() != form.get("challenge") {
            return Err(PageError::IdMismatch);
        }
        let challenge = param("challenge")
            .and_then(|c| vouch::jose::b64url_decode(&c, "challenge").ok())
            .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE)
            .ok_or(PageError::BadChallenge)?;
        Ok(Waiting {
            txn: txn.to_owned(),
            challenge_id: id.unwrap_or_default(),
            challenge,
        })
    }

    /// The form's fields with Continue pressed.
    pub fn continue_fields(&self) -> [(&str, &str); 3] {
        [
            ("txn", &self.txn),
            ("challenge", &self.challenge_id),
            ("action", "continue"),
        ]
    }
}

/// The query of the app link, with the page's `&amp;` read back as `&`.
fn app_link(html: &str) -> Option<String> {
    let start = html.find(LINK)? + LINK.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].replace("&amp;", "&"))
}

/// `Ok` when the appliance approved the phone's answer; else its JSON error code (a known
/// one, or `other`), or `None` when the answer is not the appliance's JSON.
pub fn phone_verdict(page: &Page) -> Result<(), Option<String>> {
    let json: serde_json::Value = serde_json::from_str(&page.body).map_err(|_| None)?;
    if page.status == StatusCode::OK && json["status"] == "approved" {
        return Ok(());
    }
    let code = json["error"].as_str().ok_or(None)?;
    Err(Some(known_code(code).to_owned()))
}

/// The error codes `/eam/mobile/respond` answers with; anything else is `other`.
fn known_code(code: &str) -> &str {
    const KNOWN: [&str; 13] = [
        "malformed_request",
        "busy",
        "unknown_challenge",
        "expired_challenge",
        "already_answered",
        "other_sign_in",
        "bad_signature",
        "certificate_refused",
        "temporarily_unavailable",
        "not_json",
        "too_large",
        "unreadable",
        "too_slow",
    ];
    KNOWN.into_iter().find(|k| *k == code).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn page(action: &str, txn: &str, form_id: &str, link: &str) -> String {
        format!(
            "<main><p><a href=\"{link}\">Open</a></p>\
             <form id=\"wait\" method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"txn\" value=\"{txn}\">\
             <input type=\"hidden\" name=\"challenge\" value=\"{form_id}\">\
             <button type=\"submit\" name=\"action\" value=\"continue\">Continue</button>\
             </form></main>"
        )
    }

    fn link(id: &str, challenge: &str) -> String {
        format!(
            "vouch-pki://sign?api=https%3A%2F%2Flocalhost%2Feam%2Fmobile%2Frespond\
             &amp;challenge_id={id}&amp;challenge={challenge}"
        )
    }

    #[test]
    fn a_waiting_page_gives_the_forms_transaction_and_the_links_challenge() {
        let html = page("/eam/mobile", "sealed", "id1", &link("id1", CHALLENGE));
        let waiting = Waiting::read(&html, "/eam/mobile").unwrap();
        assert_eq!(waiting.txn, "sealed");
        assert_eq!(waiting.challenge_id, "id1");
        assert_eq!(waiting.challenge, (0u8..32).collect::<Vec<u8>>());
        let fields = waiting.continue_fields();
        assert_eq!(fields[2], ("action", "continue"));
    }

    #[test]
    fn malformed_waiting_pages_are_refused_with_the_reason() {
        let good = link("id1", CHALLENGE);
        let cases = [
            ("<p>no form</p>".to_owned(), PageError::NoForm),
            (page("/eam/otp", "t", "id1", &good), PageError::NoForm),
            (
                page("/eam/mobile", "", "id1", &good),
                PageError::NoTransaction,
            ),
            (
                page("/eam/mobile", "t", "id1", "https://elsewhere/"),
                PageError::NoLink,
            ),
            (
                page("/eam/mobile", "t", "id2", &good),
                PageError::IdMismatch,
            ),
            (
                page("/eam/mobile", "t", "", &link("", CHALLENGE)),
                PageError::IdMismatch,
            ),
            (
                page("/eam/mobile", "t", "id1", &link("id1", "not*base64")),
                PageError::BadChallenge,
            ),
            (
                page("/eam/mobile", "t", "id1", &link("id1", "")),
                PageError::BadChallenge,
            ),
            (
                page("/eam/mobile", "t", "id1", &link("id1", &"A".repeat(4000))),
                PageError::BadChallenge,
            ),
            (
                format!(
                    "<a href=\"vouch-pki://sign?challenge_id=id1{}",
                    "x".repeat(50)
                ),
                PageError::NoForm,
            ),
        ];
        for (html, want) in cases {
            assert_eq!(Waiting::read(&html, "/eam/mobile"), Err(want), "{html}");
        }
        let unterminated = format!(
            "<form action=\"/eam/mobile\"><input name=\"txn\" value=\"t\">\
             <input name=\"challenge\" value=\"id1\"></form><a {LINK}challenge_id=id1"
        );
        let read = Waiting::read(&unterminated, "/eam/mobile");
        assert_eq!(read, Err(PageError::NoLink));
    }

    #[test]
    fn the_phones_verdict_is_approval_or_a_known_error_code() {
        let answer = |status: u16, body: &str| Page {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body: body.to_owned(),
        };
        assert_eq!(
            phone_verdict(&answer(200, r#"{"status":"approved"}"#)),
            Ok(())
        );
        let refused = answer(403, r#"{"error":"bad_signature","message":"m"}"#);
        assert_eq!(phone_verdict(&refused), Err(Some("bad_signature".into())));
        let odd = answer(400, r#"{"error":"<script>"}"#);
        assert_eq!(phone_verdict(&odd), Err(Some("other".into())));
        assert_eq!(phone_verdict(&answer(502, "<html>")), Err(None));
        assert_eq!(
            phone_verdict(&answer(200, r#"{"status":"maybe"}"#)),
            Err(None)
        );
        assert_eq!(phone_verdict(&answer(200, "[1,2]")), Err(None));
    }
}
