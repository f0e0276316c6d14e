//! The pages of the certificate sign-ins: the smart-card page, and the page that shows a
//! phone challenge and waits for the phone.
//!
//! They are method pages of the common design ([`super::pages::method_page_allowing`]), in the
//! user's language, every value escaped. The smart-card form posts to the client-certificate
//! listener and cancels on the main one, so both origins are the ones its policy allows; the
//! waiting page's script may only call back to this appliance (`connect-src 'self'`), and
//! without script its Continue button checks once.

use http::StatusCode;

use super::i18n::{Lang, Text, text};
use super::pages::{Allow, MethodPage, Page, alert, button, escape, hidden, method_page_allowing};

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
pub fn smart_card(
    lang: Lang,
    to: &SmartCardForm<'_>,
    transaction: &str,
    message: Option<&str>,
) -> Page {
    let verify = match message {
        None => text(lang, Text::SmartCardUse),
        Some(_) => text(lang, Text::TryAgain),
    };
    let body = format!(
        "{alert}<p id=\"card-intro\">{intro}</p>\
<form method=\"post\" action=\"{action}\">{fields}<div class=\"actions\">{verify}\
<button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\" \
formaction=\"{cancel}\">{cancel_label}</button></div></form>",
        alert = alert("card-error", message),
        intro = escape(text(lang, Text::SmartCardIntro)),
        action = escape(to.verify),
        fields = hidden("txn", transaction) + &hidden("method", "smart_card"),
        verify = button("action", "verify", verify, false),
        cancel = escape(to.cancel),
        cancel_label = escape(text(lang, Text::Cancel)),
    );
    let page = MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::SmartCardTitle),
        body: &body,
        script: None,
    };
    let origins = [to.verify_origin, to.cancel_origin];
    let allow = Allow {
        form_origins: &origins,
        connect_self: false,
    };
    method_page_allowing(page, allow)
}

/// What the waiting page shows and where it posts.
pub struct MobileWait<'a> {
    pub lang: Lang,
    /// `POST` target of Continue and Cancel.
    pub action: &'a str,
    /// The long-poll endpoint the script calls.
    pub wait: &'a str,
    pub transaction: &'a str,
    pub challenge_id: &'a str,
    /// The challenge's compare code, which the app shows too.
    pub compare_code: &'a str,
    /// The link the QR code carries.
    pub link: &'a str,
    pub message: Option<&'a str>,
}

/// The page that shows the challenge as a QR code and waits for the phone.
pub fn mobile_wait(page: &MobileWait<'_>) -> Page {
    let lang = page.lang;
    let body = format!(
        "{alert}<p>{intro}</p>\
<div class=\"qr\" role=\"img\" aria-label=\"{qr_label}\">{qr}</div>\
<p class=\"hint\">{code_label} <code>{code}</code></p>\
<p class=\"hint\"><a href=\"{link}\">{open}</a></p>\
<form id=\"wait\" method=\"post\" action=\"{action}\">{txn}{challenge}\
<div class=\"actions\">{next}{cancel}</div></form>",
        alert = alert("phone-error", page.message),
        intro = escape(text(lang, Text::MobileIntro)),
        qr_label = escape(text(lang, Text::MobileQrLabel)),
        qr = qr_svg(page.link),
        code_label = escape(text(lang, Text::MobileCode)),
        code = escape(page.compare_code),
        link = escape(page.link),
        open = escape(text(lang, Text::MobileOpenApp)),
        action = escape(page.action),
        txn = hidden("txn", page.transaction),
        challenge = hidden("challenge", page.challenge_id),
        next = button("action", "continue", text(lang, Text::Continue), false),
        cancel = button("action", "cancel", text(lang, Text::Cancel), true),
    );
    let script = wait_script(page.wait);
    let shown = MethodPage {
        lang,
        status: StatusCode::OK,
        title: text(lang, Text::MobileTitle),
        body: &body,
        script: Some(&script),
    };
    let allow = Allow {
        form_origins: &[],
        connect_self: true,
    };
    method_page_allowing(shown, allow)
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

/// The error-correction level of the waiting page's symbol: M recovers 15% of its
/// codewords, ample for a screen read by a camera (ISO/IEC 18004 §6.5.1).
const QR_EC_LEVEL: qrcode::EcLevel = qrcode::EcLevel::M;
/// The one data mask used. ISO/IEC 18004 §7.8.3 scores all eight only to pick the most
/// readable; a decoder reads any of them from the format information, and the scoring was
/// most of the cost of drawing the page.
const QR_MASK: qrcode::canvas::MaskPattern = qrcode::canvas::MaskPattern::Checkerboard;

/// The QR code of `text` as inline SVG, one path of dark modules with a quiet zone of four.
/// It is hidden from screen readers: the element around it names it in the reader's
/// language.
fn qr_svg(text: &str) -> String {
    let Some((width, modules)) = qr_modules(text) else {
        return String::new();
    };
    let size = width + 8;
    let path = dark_path(width, &modules);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"240\" \
height=\"240\" aria-hidden=\"true\" focusable=\"false\" \
shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
<path d=\"{path}\" fill=\"#000\"/></svg>"
    )
}

/// The symbol's width and its modules row by row, encoded with [`QR_MASK`].
fn qr_modules(text: &str) -> Option<(usize, Vec<qrcode::Color>)> {
    let bits = qrcode::bits::encode_auto(text.as_bytes(), QR_EC_LEVEL).ok()?;
    let version = bits.version();
    let data = bits.into_bytes();
    let (data, ec) = qrcode::ec::construct_codewords(&data, version, QR_EC_LEVEL).ok()?;

    let mut canvas = qrcode::canvas::Canvas::new(version, QR_EC_LEVEL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    canvas.apply_mask(QR_MASK);
    Some((version.width().try_into().ok()?, canvas.into_colors()))
}

/// The dark modules as SVG path data, one rectangle per horizontal run, offset by the quiet
/// zone.
fn dark_path(width: usize, modules: &[qrcode::Color]) -> String {
    use std::fmt::Write as _;

    let mut path = String::with_capacity(modules.len() * 4);
    for (y, row) in modules.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            let run = row[x..]
                .iter()
                .take_while(|c| **c == qrcode::Color::Dark)
                .count();
            if run > 0 {
                let _ = write!(path, "M{} {}h{run}v1h-{run}z", x + 4, y + 4);
            }
            x += run.max(1);
        }
    }
    path
}

#[cfg(test)]
mod qr_tests {
    use super::*;

    const LINK: &str = "vouch-pki://sign?api=https%3A%2F%2Fmfa.example.com%2Feam%2Fmobile\
%2Frespond&challenge_id=q1w2e3r4t5y6u7i8o9p0aa\
&challenge=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    /// The modules the SVG paints dark, read back from its viewBox and path.
    fn modules_of(svg: &str) -> (usize, Vec<bool>) {
        let size: usize = between(svg, "viewBox=\"0 0 ", " ").parse().expect("size");
        let width = size - 8;
        let mut dark = vec![false; width * width];
        for rect in between(svg, "<path d=\"M", "\"").split('M') {
            let (at, run) = rect.split_once('h').expect("run");
            let (x, y) = at.split_once(' ').expect("x y");
            let (x, y): (usize, usize) = (x.parse().expect("x"), y.parse().expect("y"));
            let run: usize = run.split_once('v').expect("v").0.parse().expect("run");
            for dx in 0..run {
                dark[(y - 4) * width + x - 4 + dx] = true;
            }
        }
        (width, dark)
    }

    fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
        let from = text.find(start).expect("start") + start.len();
        let len = text[from..].find(end).expect("end");
        &text[from..from + len]
    }

    #[test]
    fn the_waiting_pages_qr_code_decodes_to_the_link() {
        let (width, dark) = modules_of(&qr_svg(LINK));
        let grid = rqrr::SimpleGrid::from_func(width, |x, y| dark[y * width + x]);
        let (meta, text) = rqrr::Grid::new(grid).decode().expect("decodes");
        assert_eq!(text, LINK);
        assert_eq!(meta.mask, QR_MASK as u16);
        assert_eq!(meta.ecc_level, 0, "rqrr numbers M as 0 (its format bits)");
    }

    #[test]
    fn the_symbol_has_finder_patterns_in_three_corners_only() {
        let (width, dark) = modules_of(&qr_svg(LINK));
        let finder = |left: usize, top: usize| {
            (0..7).all(|y| {
                (0..7).all(|x| {
                    let ring = x == 0 || x == 6 || y == 0 || y == 6;
                    let core = (2..=4).contains(&x) && (2..=4).contains(&y);
                    dark[(top + y) * width + left + x] == (ring || core)
                })
            })
        };
        assert!(finder(0, 0) && finder(width - 7, 0) && finder(0, width - 7));
        assert!(!finder(width - 7, width - 7));
    }

    #[test]
    fn the_svg_is_hidden_from_screen_readers_and_keeps_its_quiet_zone() {
        let svg = qr_svg(LINK);
        assert!(svg.contains("aria-hidden=\"true\"") && !svg.contains("aria-label"));
        let size: usize = between(&svg, "viewBox=\"0 0 ", " ").parse().expect("size");
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(between(&svg, "<path d=\"", "\"").starts_with("M4 4h7v1h-7z"));
        assert_eq!((size - 8 - 17) % 4, 0, "a normal QR version's width");
    }

    #[test]
    fn text_too_long_for_any_symbol_draws_nothing() {
        assert_eq!(qr_svg(&"x".repeat(8_000)), "");
    }
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
        let page = smart_card(Lang::En, &to, "sealed\"<", Some("<b>refused</b>"));
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
            lang: Lang::En,
            action: "/eam/mobile",
            wait: "/eam/mobile/wait</script>",
            transaction: "t",
            challenge_id: "id\"",
            compare_code: "AB<CD",
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

    fn card_form() -> SmartCardForm<'static> {
        SmartCardForm {
            verify: "https://cards.example.com/eam/smartcard",
            verify_origin: "https://cards.example.com",
            cancel: "https://mfa.example.com/eam/method",
            cancel_origin: "https://mfa.example.com",
        }
    }

    #[test]
    fn the_smart_card_page_speaks_german_to_a_german_browser() {
        let body = html(smart_card(Lang::De, &card_form(), "t", None));
        assert!(body.contains("<html lang=\"de\">"), "{body}");
        assert!(
            body.contains("<h1>Mit Ihrer Smartcard anmelden</h1>"),
            "{body}"
        );
        assert!(
            body.contains(">Mein Zertifikat verwenden</button>"),
            "{body}"
        );
        assert!(body.contains(">Abbrechen</button>"), "{body}");
        assert!(
            !body.contains("Sign in with") && !body.contains(">Cancel<"),
            "{body}"
        );
        assert!(
            !body.contains("role=\"alert\""),
            "no error before a try: {body}"
        );

        let again = html(smart_card(
            Lang::De,
            &card_form(),
            "t",
            Some("Zertifikat gesperrt"),
        ));
        assert!(
            again.contains("role=\"alert\">Zertifikat gesperrt</p>"),
            "{again}"
        );
        assert!(again.contains(">Erneut versuchen</button>"), "{again}");
    }

    #[test]
    fn the_waiting_page_speaks_german_to_a_german_browser() {
        let page = mobile_wait(&MobileWait {
            lang: Lang::De,
            action: "/eam/mobile",
            wait: "/eam/mobile/wait",
            transaction: "t",
            challenge_id: "id",
            compare_code: "123 456",
            link: "vouch-pki://sign?challenge_id=id",
            message: Some("Die Signatur Ihres Telefons ist ungültig."),
        });
        let body = html(page);
        assert!(
            body.contains("<h1>Auf dem Telefon bestätigen</h1>"),
            "{body}"
        );
        assert!(
            body.contains("aria-label=\"QR-Code für die Telefon-App\""),
            "{body}"
        );
        assert!(body.contains("In der App angezeigter Code: <code>123 456</code>"));
        assert!(
            body.contains(">In der App auf diesem Gerät öffnen</a>"),
            "{body}"
        );
        assert!(body.contains(">Weiter</button>") && body.contains(">Abbrechen</button>"));
        assert!(body.contains("role=\"alert\">Die Signatur Ihres Telefons ist ungültig."));
        assert!(!body.contains("Approve on your phone"), "{body}");
    }
}
