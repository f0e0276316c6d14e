//! The pages of the certificate sign-ins: the smart-card page, and the page that shows a
//! phone challenge and waits for the phone.
//!
//! They follow the rules of [`super::pages`]: every value escaped, a nonce-tagged policy, no
//! third-party assets. The smart-card form posts to the client-certificate listener, so its
//! origin is the one other the policy allows; the waiting page's script may only call back to
//! this appliance (`connect-src 'self'`), and without script its Continue button checks once.

use http::StatusCode;

use super::i18n::Lang;
use super::pages::{Page, csp, document, escape, hidden, nonce, respond};

/// Where the smart-card page posts: `verify` on the client-certificate listener, and `cancel`
/// (the method route on the main listener, so that cancelling asks for no certificate).
pub struct SmartCardForm<'a> {
    pub verify: &'a str,
    pub verify_origin: &'a str,
    pub cancel: &'a str,
    pub cancel_origin: &'a str,
}

/// The smart-card page: what will happen, and a form that posts the transaction to the
/// client-certificate listener. `message` says why a previous attempt did not succeed.
pub fn smart_card(to: &SmartCardForm<'_>, transaction: &str, message: Option<&str>) -> Page {
    let n = nonce();
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let verify = if message.is_empty() {
        "Use my certificate"
    } else {
        "Try again"
    };
    let body = format!(
        "<main><h1>Sign in with your smart card</h1>{message}\
<p>Insert your smart card, or have the certificate for your account ready in this browser. \
When you continue, the browser asks which certificate to use and may ask for the card's \
PIN.</p>\
<form method=\"post\" action=\"{action}\">{txn}\
<button type=\"submit\" name=\"action\" value=\"verify\">{verify}</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\" formaction=\"{cancel}\">Cancel</button>\
</form></main>",
        action = escape(to.verify),
        cancel = escape(to.cancel),
        txn = hidden("txn", transaction) + &hidden("method", "smart_card"),
    );
    let allowed = format!(
        "'self' {} {}",
        escape(to.verify_origin),
        escape(to.cancel_origin)
    );
    respond(
        StatusCode::OK,
        document(Lang::En, "Sign in with your smart card", &n, &body, None),
        csp(&n, &allowed),
    )
}

/// What the waiting page shows and where it posts.
pub struct MobileWait<'a> {
    /// `POST` target of Continue and Cancel.
    pub action: &'a str,
    /// The long-poll endpoint the script calls.
    pub wait: &'a str,
    pub transaction: &'a str,
    pub challenge_id: &'a str,
    /// The challenge as the app will show it, for the user to compare.
    pub challenge_text: &'a str,
    /// The link the QR code carries.
    pub link: &'a str,
    pub message: Option<&'a str>,
}

/// The page that shows the challenge as a QR code and waits for the phone.
pub fn mobile_wait(page: &MobileWait<'_>) -> Page {
    let n = nonce();
    let message = page
        .message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<main><h1>Approve on your phone</h1>{message}\
<p>Scan this code with your organisation's certificate app and approve the sign-in.</p>\
<div>{qr}</div>\
<p class=\"hint\">Code shown in the app: <code>{code}</code></p>\
<p class=\"hint\"><a href=\"{link}\">Open in the app on this device</a></p>\
<form id=\"wait\" method=\"post\" action=\"{action}\">{txn}{challenge}\
<button type=\"submit\" name=\"action\" value=\"continue\">Continue</button>\
<button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>\
</form></main>",
        qr = qr_svg(page.link),
        code = escape(page.challenge_text),
        link = escape(page.link),
        action = escape(page.action),
        txn = hidden("txn", page.transaction),
        challenge = hidden("challenge", page.challenge_id),
    );
    let script = wait_script(page.wait);
    let policy = format!("{}; connect-src 'self'", csp(&n, "'self'"));
    respond(
        StatusCode::OK,
        document(Lang::En, "Approve on your phone", &n, &body, Some(&script)),
        policy,
    )
}

/// Long-polls `wait` with the form's fields and submits the form once the phone answered.
fn wait_script(wait: &str) -> String {
    let url = serde_json::to_string(wait)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c");
    format!(
        "(function(){{var f=document.getElementById('wait');\
var b=new URLSearchParams(new FormData(f)).toString();\
function poll(){{fetch({url},{{method:'POST',body:b,\
headers:{{'Content-Type':'application/x-www-form-urlencoded'}}}})\
.then(function(r){{return r.json();}})\
.then(function(j){{if(j.status==='waiting'){{poll();}}else{{f.submit();}}}})\
.catch(function(){{setTimeout(poll,5000);}});}}poll();}})();"
    )
}

/// The QR code of `text` as inline SVG, one path of dark modules with a quiet zone of four.
fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let width = code.width();
    let size = width + 8;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + 4, i / width + 4);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"240\" \
height=\"240\" role=\"img\" aria-label=\"QR code for the phone app\" \
shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
<path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    fn html(page: Page) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt.block_on(async { page.into_body().collect().await.expect("body") });
        String::from_utf8(bytes.to_bytes().to_vec()).expect("utf-8")
    }

    fn policy(page: &Page) -> String {
        let csp = &page.headers()[http::header::CONTENT_SECURITY_POLICY];
        csp.to_str().expect("ascii").to_owned()
    }

    #[test]
    fn the_smart_card_form_may_post_only_to_the_two_listeners_and_cancels_on_the_main_one() {
        let origin = "https://cards.example.com:8444";
        let to = SmartCardForm {
            verify: &format!("{origin}/eam/smartcard"),
            verify_origin: origin,
            cancel: "https://mfa.example.com/eam/method",
            cancel_origin: "https://mfa.example.com",
        };
        let page = smart_card(&to, "sealed\"<", Some("<b>refused</b>"));
        let csp = policy(&page);
        let allowed = format!("form-action 'self' {origin} https://mfa.example.com;");
        assert!(csp.contains(&allowed), "{csp}");
        let body = html(page);
        assert!(body.contains("action=\"https://cards.example.com:8444/eam/smartcard\""));
        assert!(body.contains("formaction=\"https://mfa.example.com/eam/method\""));
        assert!(body.contains("value=\"sealed&quot;&lt;\""));
        assert!(body.contains("&lt;b&gt;refused") && !body.contains("<b>refused"));
        assert!(body.contains("Try again"));
    }

    #[test]
    fn the_waiting_page_may_call_back_only_to_the_appliance_and_escapes_its_values() {
        let page = mobile_wait(&MobileWait {
            action: "/eam/mobile",
            wait: "/eam/mobile/wait</script>",
            transaction: "t",
            challenge_id: "id\"",
            challenge_text: "AB<CD",
            link: "vouch://sign?api=x&id=y",
            message: None,
        });
        let csp = policy(&page);
        assert!(csp.contains("connect-src 'self'") && csp.contains("script-src 'nonce-"));
        let body = html(page);
        assert!(body.contains("<svg") && body.contains("<path d=\"M"));
        assert!(body.contains("AB&lt;CD") && body.contains("value=\"id&quot;\""));
        assert!(body.contains("href=\"vouch://sign?api=x&amp;id=y\""));
        assert!(
            !body.contains("wait</script>"),
            "the URL cannot close the script"
        );
    }
}
