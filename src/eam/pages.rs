//! The HTML vouch shows users and posts back to Entra.
//!
//! Every page is sent with `Cache-Control: no-store` and a Content Security Policy that allows
//! only its own nonce-tagged script and style and no framing. Every value placed in a page is
//! HTML-escaped. The answer page's form may post only to the Entra host it names.
//!
//! Every user page has one design (`STYLE`) and is written in the user's language
//! ([`super::i18n`]). A method's step builds its page with [`method_page`] from a title, body
//! HTML and an optional script, using [`alert`] for errors (announced by screen readers),
//! [`button`] and [`hidden`] for its form; [`method_page_allowing`] when its form posts to
//! another of the appliance's listeners or its script calls back ([`Allow`]).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use super::i18n::{Lang, Text, text};
use crate::jose::b64url_encode;
use crate::seal;

pub type Page = Response<Full<Bytes>>;

/// One design for every page: readable at phone width, large touch targets, a visible
/// keyboard focus ring, and colours with at least 4.5:1 contrast.
const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;font-size:1.0625rem;\
line-height:1.5;color:#1b1b1b;background:#f4f5f7;margin:0;padding:1rem}\
main{max-width:30rem;margin:2rem auto;background:#fff;border:1px solid #d0d4da;\
border-radius:.5rem;padding:1.5rem}\
h1{font-size:1.4rem;margin:0 0 1rem}p{margin:0 0 1rem}\
label{display:block;font-weight:600;margin:1rem 0 .3rem}\
input[type=text]{font-size:1.4rem;letter-spacing:.2rem;width:100%;padding:.5rem;\
border:2px solid #5a6270;border-radius:.3rem}\
.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin-top:1.25rem}\
button{font:inherit;min-height:2.75rem;padding:.5rem 1.25rem;border-radius:.3rem;\
border:2px solid #0b5cad;background:#0b5cad;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#0b5cad}\
button:disabled{background:#5a6270;border-color:#5a6270;cursor:default}\
button:focus-visible,input:focus-visible{outline:3px solid #e8a317;outline-offset:2px}\
.error{color:#a40000;border-left:4px solid #a40000;padding-left:.75rem}\
.status{color:#3d4450}.hint{color:#4a505a;font-size:.95rem}\
.methods{list-style:none;padding:0;margin:0}.methods li{margin:0 0 .75rem}\
.methods button{width:100%;text-align:left}\
a{color:#0b5cad}code{word-break:break-all}\
.qr{margin:0 0 1rem}.qr svg{display:block;max-width:100%;height:auto}\
@media (max-width:30rem){body{padding:0}main{margin:0;border:0;border-radius:0;\
min-height:100vh}.actions button{flex:1 1 100%}}";

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut plain = 0;
    for (i, b) in text.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        out.push_str(entity);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out
}

pub(super) fn nonce() -> String {
    b64url_encode(&seal::random_bytes::<16>())
}

pub(super) fn document(
    lang: Lang,
    title: &str,
    nonce: &str,
    body: &str,
    script: Option<&str>,
) -> String {
    let script = script
        .map(|s| format!("<script nonce=\"{nonce}\">{s}</script>"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title>\
<style nonce=\"{nonce}\">{STYLE}</style></head><body>{body}{script}</body></html>",
        escape(title),
        lang = lang.tag(),
    )
}

pub(super) fn respond(status: StatusCode, html: String, csp: String) -> Page {
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    response
}

pub(super) fn csp(nonce: &str, form_action: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A problem page in the user's language: a title and one message, nothing to act on.
pub fn problem_in(lang: Lang, status: StatusCode, title: &str, message: &str) -> Page {
    let n = nonce();
    let body = format!(
        "<main><h1>{}</h1><p role=\"alert\">{}</p></main>",
        escape(title),
        escape(message)
    );
    respond(
        status,
        document(lang, title, &n, &body, None),
        csp(&n, "'none'"),
    )
}

/// 503 with `Retry-After`: the appliance is past its capacity and turned a new sign-in away.
pub fn busy(lang: Lang, retry_after_secs: u32) -> Page {
    let mut page = problem_in(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        text(lang, Text::BusyTitle),
        text(lang, Text::Busy),
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    page
}

/// What the auto-submitting answer page carries back to Entra.
pub enum Answer<'a> {
    Token(&'a str),
    Error(&'a str),
}

/// The form_post answer (OAuth 2.0 Form Post Response Mode) to a validated `redirect_uri`,
/// sent on at once.
pub fn form_post(redirect_uri: &str, answer: Answer<'_>, state: Option<&str>) -> Page {
    answer_page(Lang::En, redirect_uri, answer, state, None)
}

/// The answer page held with `notice` for the user to read, in their language, before they
/// go on to Entra: for endings they can act on (an expired sign-in, a lockout).
pub fn form_post_notice(
    lang: Lang,
    redirect_uri: &str,
    answer: Answer<'_>,
    state: Option<&str>,
    notice: Text,
) -> Page {
    answer_page(lang, redirect_uri, answer, state, Some(notice))
}

fn answer_page(
    lang: Lang,
    redirect_uri: &str,
    answer: Answer<'_>,
    state: Option<&str>,
    notice: Option<Text>,
) -> Page {
    let n = nonce();
    let mut fields = match answer {
        Answer::Token(token) => hidden("id_token", token),
        Answer::Error(error) => hidden("error", error),
    };
    if let Some(state) = state {
        fields.push_str(&hidden("state", state));
    }
    let (title, message, script) = match notice {
        Some(notice) => {
            let message = format!("<p role=\"alert\">{}</p>", text(lang, notice));
            (text(lang, Text::ProblemTitle), message, None)
        }
        None => {
            let message = format!(
                "<noscript><p>{}</p></noscript>",
                text(lang, Text::ReturningNoScript)
            );
            (
                text(lang, Text::Returning),
                message,
                Some("document.forms[0].submit();"),
            )
        }
    };
    let body = format!(
        "<main><h1>{title}</h1>{message}<form method=\"post\" action=\"{}\">{fields}\
<div class=\"actions\"><button type=\"submit\">{}</button></div></form></main>",
        escape(redirect_uri),
        text(lang, Text::Continue),
    );
    let origin = crate::app::issuer_origin(redirect_uri);
    let html = document(lang, title, &n, &body, script);
    respond(StatusCode::OK, html, csp(&n, origin))
}

/// A hidden form field with an escaped value.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

/// A step of a method, in the common design: a heading, the body, and an optional script
/// that runs under the page's nonce. Forms on the page may post only to this appliance.
pub struct MethodPage<'a> {
    pub lang: Lang,
    pub status: StatusCode,
    /// Plain text; escaped here.
    pub title: &'a str,
    /// HTML whose values the caller has escaped, placed after the heading.
    pub body: &'a str,
    pub script: Option<&'a str>,
}

/// Renders a [`MethodPage`].
pub fn method_page(page: MethodPage<'_>) -> Page {
    method_page_allowing(page, Allow::default())
}

/// What a method page's policy allows beyond posting its forms to this appliance.
#[derive(Debug, Default, Clone, Copy)]
pub struct Allow<'a> {
    /// Further origins (`https://host[:port]`) its forms may post to. One that could end the
    /// directive (a space, `;`, a quote) is left out, so such a form cannot post at all.
    pub form_origins: &'a [&'a str],
    /// Whether its script may fetch from this appliance (`connect-src 'self'`).
    pub connect_self: bool,
}

impl Allow<'_> {
    fn policy(&self, nonce: &str) -> String {
        let origins = self.form_origins.iter().filter(|o| is_policy_origin(o));
        let form_action = origins.fold("'self'".to_owned(), |all, o| format!("{all} {o}"));
        let mut policy = csp(nonce, &form_action);
        if self.connect_self {
            policy.push_str("; connect-src 'self'");
        }
        policy
    }
}

/// Whether `origin` may stand in a policy as written: a scheme, host and port only.
fn is_policy_origin(origin: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-.:/[]_".contains(&b);
    !origin.is_empty() && origin.bytes().all(allowed)
}

/// Renders a [`MethodPage`] whose forms or script reach further, as [`Allow`] says.
pub fn method_page_allowing(page: MethodPage<'_>, allow: Allow<'_>) -> Page {
    let n = nonce();
    let body = format!("<main><h1>{}</h1>{}</main>", escape(page.title), page.body);
    let html = document(page.lang, page.title, &n, &body, page.script);
    respond(page.status, html, allow.policy(&n))
}

/// A paragraph with `id` announced to screen readers as an error, or nothing.
pub fn alert(id: &str, message: Option<&str>) -> String {
    message
        .map(|m| {
            format!(
                "<p class=\"error\" id=\"{id}\" role=\"alert\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default()
}

/// A submit button; `secondary` for the less likely choice (cancel).
pub fn button(name: &str, value: &str, label: &str, secondary: bool) -> String {
    let class = if secondary {
        " class=\"secondary\" formnovalidate"
    } else {
        ""
    };
    format!(
        "<button type=\"submit\" name=\"{name}\" value=\"{value}\"{class}>{}</button>",
        escape(label)
    )
}

/// The harmless answer to a bare GET of the authorization endpoint.
pub fn authorize_probe() -> Page {
    let n = nonce();
    let body = "<main><h1>vouch</h1><p>This is an external authentication method endpoint for \
Microsoft Entra ID. Sign-ins reach it from Entra; there is nothing to do here.</p></main>";
    respond(
        StatusCode::OK,
        document(Lang::En, "vouch", &n, body, None),
        csp(&n, "'none'"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn body(page: Page) -> String {
        let bytes = futures_body(page);
        String::from_utf8(bytes).expect("utf-8")
    }

    fn futures_body(page: Page) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            page.into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
                .to_vec()
        })
    }

    #[test]
    fn escapes_everything_that_could_leave_an_attribute() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn answer_page_posts_escaped_fields_to_the_entra_host_only() {
        let uri = "https://login.microsoftonline.com/common/federation/externalauthprovider";
        let page = form_post(
            uri,
            Answer::Error("access_denied"),
            Some("\"><script>x</script>"),
        );
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(
            csp.contains("form-action https://login.microsoftonline.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
        let html = body(page);
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(!html.contains("<script>x"));
        assert!(html.contains("name=\"error\" value=\"access_denied\""));
    }

    #[test]
    fn state_field_is_absent_when_the_request_had_none() {
        let uri = "https://login.microsoftonline.us/common/federation/externalauthprovider";
        let html = body(form_post(uri, Answer::Token("a.b.c"), None));
        assert!(!html.contains("name=\"state\""));
        assert!(html.contains("name=\"id_token\" value=\"a.b.c\""));
    }

    #[test]
    fn a_method_page_is_in_its_language_posts_only_here_and_escapes_its_title() {
        let page = method_page(MethodPage {
            lang: Lang::De,
            status: StatusCode::OK,
            title: "<Titel>",
            body: "<p>Inhalt</p>",
            script: Some("run();"),
        });
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("form-action 'self'"), "{csp}");
        let html = body(page);
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(
            html.contains("<h1>&lt;Titel&gt;</h1><p>Inhalt</p>"),
            "{html}"
        );
        assert!(html.contains("\">run();</script>"), "{html}");
    }

    #[test]
    fn a_method_page_policy_names_the_origins_and_fetches_it_is_allowed_only() {
        let page = |allow| {
            let page = MethodPage {
                lang: Lang::En,
                status: StatusCode::OK,
                title: "t",
                body: "",
                script: None,
            };
            let page = method_page_allowing(page, allow);
            let csp = &page.headers()[header::CONTENT_SECURITY_POLICY];
            csp.to_str().expect("ascii").to_owned()
        };
        let plain = page(Allow::default());
        assert!(plain.contains("form-action 'self';"), "{plain}");
        assert!(!plain.contains("connect-src"), "{plain}");

        let origins = [
            "https://cards.example.com:8444",
            "https://x.example.com; script-src *",
            "https://y.example.com 'unsafe-inline'",
            "",
        ];
        let wider = page(Allow {
            form_origins: &origins,
            connect_self: true,
        });
        let form = "form-action 'self' https://cards.example.com:8444;";
        assert!(wider.contains(form), "{wider}");
        assert!(wider.ends_with("; connect-src 'self'"), "{wider}");
        assert!(!wider.contains("x.example.com") && !wider.contains("unsafe"));
    }

    #[test]
    fn a_held_answer_page_says_why_and_waits_for_the_user() {
        let uri = "https://login.microsoftonline.com/common/federation/externalauthprovider";
        let page = form_post_notice(
            Lang::En,
            uri,
            Answer::Error("access_denied"),
            None,
            Text::LockedOut,
        );
        let html = body(page);
        assert!(
            html.contains("role=\"alert\">There were too many wrong attempts"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("name=\"error\" value=\"access_denied\""));
    }

    #[test]
    fn the_script_carries_the_nonce_the_policy_names() {
        let uri = "https://login.microsoftonline.com/common/federation/externalauthprovider";
        let page = form_post(uri, Answer::Token("t"), None);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .to_owned();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|s| s.split('\'').next())
            .expect("nonce");
        assert!(body(page).contains(&format!("<script nonce=\"{nonce}\">")));
    }
}
