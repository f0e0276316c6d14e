//! The HTML vouch shows users and posts back to Entra.
//!
//! Every page is sent with `Cache-Control: no-store` and a Content Security Policy that allows
//! only its own nonce-tagged script and style and no framing. Every value placed in a page is
//! HTML-escaped. The answer page's form may post only to the Entra host it names.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::jose::b64url_encode;
use crate::seal;

pub type Page = Response<Full<Bytes>>;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;\
padding:0 1rem;color:#1b1b1b}h1{font-size:1.4rem}label{display:block;margin:1rem 0 .3rem}\
input[type=text]{font-size:1.4rem;letter-spacing:.2rem;width:100%;padding:.4rem;\
box-sizing:border-box}\
button{font-size:1rem;padding:.5rem 1rem;margin:1rem .5rem 0 0}.error{color:#a40000}\
.hint{color:#555;font-size:.9rem}.methods{list-style:none;padding:0}\
.methods button{width:100%;text-align:left}";

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

pub(super) fn document(title: &str, nonce: &str, body: &str, script: Option<&str>) -> String {
    let script = script
        .map(|s| format!("<script nonce=\"{nonce}\">{s}</script>"))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>{}</title>\
<style nonce=\"{nonce}\">{STYLE}</style></head><body>{body}{script}</body></html>",
        escape(title)
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

/// A page that explains a problem and posts nothing anywhere.
pub fn problem(status: StatusCode, title: &str, message: &str) -> Page {
    let n = nonce();
    let body = format!(
        "<main><h1>{}</h1><p>{}</p></main>",
        escape(title),
        escape(message)
    );
    respond(status, document(title, &n, &body, None), csp(&n, "'none'"))
}

/// 503 with `Retry-After`: the appliance is past its capacity and turned a new sign-in away.
pub fn busy(retry_after_secs: u32) -> Page {
    let mut page = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "The sign-in service is busy. Try again in a moment.",
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

/// The form_post answer (OAuth 2.0 Form Post Response Mode) to a validated `redirect_uri`.
pub fn form_post(redirect_uri: &str, answer: Answer<'_>, state: Option<&str>) -> Page {
    let n = nonce();
    let mut fields = match answer {
        Answer::Token(token) => hidden("id_token", token),
        Answer::Error(error) => hidden("error", error),
    };
    if let Some(state) = state {
        fields.push_str(&hidden("state", state));
    }
    let body = format!(
        "<main><h1>Returning to sign-in</h1><form method=\"post\" action=\"{}\">{fields}\
<noscript><p>Select Continue to finish signing in.</p></noscript>\
<button type=\"submit\">Continue</button></form></main>",
        escape(redirect_uri)
    );
    let origin = origin_of(redirect_uri);
    let html = document(
        "Returning to sign-in",
        &n,
        &body,
        Some("document.forms[0].submit();"),
    );
    respond(StatusCode::OK, html, csp(&n, &origin))
}

pub(super) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
        escape(value)
    )
}

pub(crate) fn origin_of(url: &str) -> String {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let host = rest.split('/').next().unwrap_or_default();
    format!("https://{host}")
}

/// The TOTP code page. `message` explains a previous wrong attempt.
pub fn otp_form(action: &str, transaction: &str, digits: u8, message: Option<&str>) -> Page {
    let n = nonce();
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<main><h1>Enter your code</h1>\
<p>Open your authenticator app and enter the {digits}-digit code it shows for this account.</p>\
{message}<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"txn\" value=\"{txn}\">\
<label for=\"code\">Code</label>\
<input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" \
autocomplete=\"one-time-code\" \
pattern=\"[0-9]{{{digits}}}\" maxlength=\"{digits}\" required autofocus>\
<button type=\"submit\" name=\"action\" value=\"verify\">Verify</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel</button>\
</form></main>",
        txn = escape(transaction),
        action = escape(action),
    );
    respond(
        StatusCode::OK,
        document("Enter your code", &n, &body, None),
        csp(&n, "'self'"),
    )
}

/// The page that lets the user pick one of the `methods` the sign-in offers.
pub fn choose(action: &str, transaction: &str, methods: &[crate::factor::Method]) -> Page {
    let n = nonce();
    let buttons: String = methods
        .iter()
        .map(|m| {
            format!(
                "<li><button type=\"submit\" name=\"method\" value=\"{}\">{}</button></li>",
                m.name(),
                escape(m.label())
            )
        })
        .collect();
    let body = format!(
        "<main><h1>Choose how to sign in</h1>\
<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"txn\" value=\"{txn}\">\
<ul class=\"methods\">{buttons}</ul>\
<button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>\
</form></main>",
        txn = escape(transaction),
        action = escape(action),
    );
    respond(
        StatusCode::OK,
        document("Choose how to sign in", &n, &body, None),
        csp(&n, "'self'"),
    )
}

/// The harmless answer to a bare GET of the authorization endpoint.
pub fn authorize_probe() -> Page {
    let n = nonce();
    let body = "<main><h1>vouch</h1><p>This is an external authentication method endpoint for \
Microsoft Entra ID. Sign-ins reach it from Entra; there is nothing to do here.</p></main>";
    respond(
        StatusCode::OK,
        document("vouch", &n, body, None),
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
