//! The words on the user pages, in English and German, and the choice between them.
//!
//! The language comes from the browser's `Accept-Language` (RFC 9110 §12.5.4): the
//! supported language with the highest quality wins, ties go to the one listed first, and
//! anything unreadable or unsupported falls back to English. Every text is looked up by a
//! [`Text`] key in a match per language, so a key missing from a language does not compile;
//! texts with values name them as `{name}`, filled in by [`fill`].

use http::{Request, header};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    De,
}

/// The longest `Accept-Language` value read, and the most entries considered.
const MAX_HEADER: usize = 1024;
const MAX_ENTRIES: usize = 32;

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language of a request's `Accept-Language` header.
    pub fn of<B>(req: &Request<B>) -> Lang {
        let header = req.headers().get(header::ACCEPT_LANGUAGE);
        Lang::negotiate(header.and_then(|v| v.to_str().ok()))
    }

    /// The best supported language of an `Accept-Language` value; English by default.
    pub fn negotiate(header: Option<&str>) -> Lang {
        let Some(header) = header.filter(|h| h.len() <= MAX_HEADER) else {
            return Lang::En;
        };
        let mut best: Option<(Lang, u16)> = None;
        for entry in header.split(',').take(MAX_ENTRIES) {
            let Some((lang, quality)) = Lang::entry(entry) else {
                continue;
            };
            if quality > 0 && best.is_none_or(|(_, q)| quality > q) {
                best = Some((lang, quality));
            }
        }
        best.map_or(Lang::En, |(lang, _)| lang)
    }

    /// One `tag;q=value` entry: a supported language and its quality in thousandths.
    fn entry(entry: &str) -> Option<(Lang, u16)> {
        let mut parts = entry.split(';');
        let tag = parts.next()?.trim();
        let primary = tag.split('-').next()?.to_ascii_lowercase();
        let lang = Lang::ALL.into_iter().find(|l| l.tag() == primary)?;
        let mut quality = 1000;
        for param in parts {
            let (name, value) = param.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("q") {
                quality = parse_quality(value.trim())?;
            }
        }
        Some((lang, quality))
    }
}

/// A quality value (RFC 9110 §12.4.2): 0 to 1 with at most three decimals.
fn parse_quality(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Replaces each `{name}` in `text` with its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_owned(), |out, (name, value)| {
        out.replace(&format!("{{{name}}}"), value)
    })
}

/// Every text on the user pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Cancel,
    Continue,
    TryAgain,
    ChooseTitle,
    MethodTotp,
    MethodFido,
    OtpTitle,
    OtpIntro,
    OtpLabel,
    OtpVerify,
    OtpFormat,
    OtpReplayed,
    OtpWrong,
    FidoTitle,
    FidoIntro,
    FidoStart,
    FidoWaiting,
    FidoNoScript,
    FidoCancelledTitle,
    FidoCancelled,
    FidoUnsupported,
    EnrolTitle,
    EnrolIntro,
    EnrolStart,
    KeyName,
    EnrolDoneTitle,
    EnrolDone,
    EnrolCancelled,
    EnrolRefused,
    LinkInvalidTitle,
    LinkInvalid,
    ProblemTitle,
    Expired,
    LockedOut,
    Returning,
    ReturningNoScript,
}

impl Text {
    pub const ALL: [Text; 36] = [
        Text::Cancel,
        Text::Continue,
        Text::TryAgain,
        Text::ChooseTitle,
        Text::MethodTotp,
        Text::MethodFido,
        Text::OtpTitle,
        Text::OtpIntro,
        Text::OtpLabel,
        Text::OtpVerify,
        Text::OtpFormat,
        Text::OtpReplayed,
        Text::OtpWrong,
        Text::FidoTitle,
        Text::FidoIntro,
        Text::FidoStart,
        Text::FidoWaiting,
        Text::FidoNoScript,
        Text::FidoCancelledTitle,
        Text::FidoCancelled,
        Text::FidoUnsupported,
        Text::EnrolTitle,
        Text::EnrolIntro,
        Text::EnrolStart,
        Text::KeyName,
        Text::EnrolDoneTitle,
        Text::EnrolDone,
        Text::EnrolCancelled,
        Text::EnrolRefused,
        Text::LinkInvalidTitle,
        Text::LinkInvalid,
        Text::ProblemTitle,
        Text::Expired,
        Text::LockedOut,
        Text::Returning,
        Text::ReturningNoScript,
    ];
}

/// The text of `key` in `lang`.
pub fn text(lang: Lang, key: Text) -> &'static str {
    match lang {
        Lang::En => english(key),
        Lang::De => german(key),
    }
}

fn english(key: Text) -> &'static str {
    match key {
        Text::Cancel => "Cancel",
        Text::Continue => "Continue",
        Text::TryAgain => "Try again",
        Text::ChooseTitle => "Choose how to sign in",
        Text::MethodTotp => "Code from an authenticator app",
        Text::MethodFido => "Security key or passkey",
        Text::OtpTitle => "Enter your code",
        Text::OtpIntro => {
            "Open your authenticator app and enter the {digits}-digit code it shows for this \
             account."
        }
        Text::OtpLabel => "Code",
        Text::OtpVerify => "Verify",
        Text::OtpFormat => "Enter the {digits}-digit code from your authenticator app.",
        Text::OtpReplayed => {
            "That code has already been used. Wait for the next code and enter it."
        }
        Text::OtpWrong => "That code is not right. Attempts left: {remaining}.",
        Text::FidoTitle => "Use your security key",
        Text::FidoIntro => {
            "When your browser asks, insert or touch your security key, or confirm with your \
             device's passkey."
        }
        Text::FidoStart => "Use security key",
        Text::FidoWaiting => "Waiting for your security key…",
        Text::FidoNoScript => "This step needs JavaScript to talk to your security key.",
        Text::FidoCancelledTitle => "Security key not used",
        Text::FidoCancelled => {
            "The request to your security key was cancelled or timed out. Try again, or cancel \
             the sign-in."
        }
        Text::FidoUnsupported => {
            "This browser cannot use security keys. Open the sign-in in another browser, or \
             cancel it."
        }
        Text::EnrolTitle => "Add a security key",
        Text::EnrolIntro => {
            "Register a security key or passkey for signing in as {user}. This link works once \
             and expires soon."
        }
        Text::EnrolStart => "Add security key",
        Text::KeyName => "Name for this key (optional)",
        Text::EnrolDoneTitle => "Security key added",
        Text::EnrolDone => "Your security key is ready for signing in. You can close this page.",
        Text::EnrolCancelled => {
            "The security key was not registered: the request was cancelled or timed out. Try \
             again when your key is ready."
        }
        Text::EnrolRefused => {
            "This security key cannot be used here: {reason} Ask your administrator which \
             keys are allowed."
        }
        Text::LinkInvalidTitle => "Link not valid",
        Text::LinkInvalid => {
            "This enrolment link has expired, has already been used, or is not valid. Ask your \
             administrator for a new one."
        }
        Text::ProblemTitle => "Sign-in cannot continue",
        Text::Expired => {
            "This sign-in took too long and has expired. Start again from the sign-in page."
        }
        Text::LockedOut => {
            "There were too many wrong attempts, so signing in is paused for a few minutes. \
             Start again later."
        }
        Text::Returning => "Returning to sign-in",
        Text::ReturningNoScript => "Select Continue to finish signing in.",
    }
}

fn german(key: Text) -> &'static str {
    match key {
        Text::Cancel => "Abbrechen",
        Text::Continue => "Weiter",
        Text::TryAgain => "Erneut versuchen",
        Text::ChooseTitle => "Anmeldemethode wählen",
        Text::MethodTotp => "Code aus einer Authenticator-App",
        Text::MethodFido => "Sicherheitsschlüssel oder Passkey",
        Text::OtpTitle => "Code eingeben",
        Text::OtpIntro => {
            "Öffnen Sie Ihre Authenticator-App und geben Sie den {digits}-stelligen Code ein, \
             den sie für dieses Konto anzeigt."
        }
        Text::OtpLabel => "Code",
        Text::OtpVerify => "Bestätigen",
        Text::OtpFormat => "Geben Sie den {digits}-stelligen Code aus Ihrer Authenticator-App ein.",
        Text::OtpReplayed => {
            "Dieser Code wurde bereits verwendet. Warten Sie auf den nächsten Code und geben \
             Sie ihn ein."
        }
        Text::OtpWrong => "Der Code ist nicht richtig. Verbleibende Versuche: {remaining}.",
        Text::FidoTitle => "Sicherheitsschlüssel verwenden",
        Text::FidoIntro => {
            "Wenn Ihr Browser danach fragt, stecken oder berühren Sie Ihren \
             Sicherheitsschlüssel oder bestätigen Sie mit dem Passkey Ihres Geräts."
        }
        Text::FidoStart => "Sicherheitsschlüssel verwenden",
        Text::FidoWaiting => "Warten auf Ihren Sicherheitsschlüssel…",
        Text::FidoNoScript => {
            "Für diesen Schritt wird JavaScript benötigt, um mit Ihrem Sicherheitsschlüssel \
             zu sprechen."
        }
        Text::FidoCancelledTitle => "Sicherheitsschlüssel nicht verwendet",
        Text::FidoCancelled => {
            "Die Anfrage an Ihren Sicherheitsschlüssel wurde abgebrochen oder ist abgelaufen. \
             Versuchen Sie es erneut oder brechen Sie die Anmeldung ab."
        }
        Text::FidoUnsupported => {
            "Dieser Browser kann keine Sicherheitsschlüssel verwenden. Öffnen Sie die Anmeldung \
             in einem anderen Browser oder brechen Sie sie ab."
        }
        Text::EnrolTitle => "Sicherheitsschlüssel hinzufügen",
        Text::EnrolIntro => {
            "Registrieren Sie einen Sicherheitsschlüssel oder Passkey für die Anmeldung als \
             {user}. Dieser Link gilt einmal und nur kurze Zeit."
        }
        Text::EnrolStart => "Sicherheitsschlüssel hinzufügen",
        Text::KeyName => "Name für diesen Schlüssel (optional)",
        Text::EnrolDoneTitle => "Sicherheitsschlüssel hinzugefügt",
        Text::EnrolDone => {
            "Ihr Sicherheitsschlüssel ist für die Anmeldung bereit. Sie können diese Seite \
             schließen."
        }
        Text::EnrolCancelled => {
            "Der Sicherheitsschlüssel wurde nicht registriert: Die Anfrage wurde abgebrochen \
             oder ist abgelaufen. Versuchen Sie es erneut, wenn Ihr Schlüssel bereit ist."
        }
        Text::EnrolRefused => {
            "Dieser Sicherheitsschlüssel kann hier nicht verwendet werden: {reason} Fragen Sie \
             Ihre Administration, welche Schlüssel erlaubt sind."
        }
        Text::LinkInvalidTitle => "Link ungültig",
        Text::LinkInvalid => {
            "Dieser Registrierungslink ist abgelaufen, wurde bereits verwendet oder ist \
             ungültig. Bitten Sie Ihre Administration um einen neuen."
        }
        Text::ProblemTitle => "Anmeldung kann nicht fortgesetzt werden",
        Text::Expired => {
            "Diese Anmeldung hat zu lange gedauert und ist abgelaufen. Beginnen Sie erneut auf \
             der Anmeldeseite."
        }
        Text::LockedOut => {
            "Es gab zu viele falsche Versuche, daher ist die Anmeldung für einige Minuten \
             gesperrt. Versuchen Sie es später erneut."
        }
        Text::Returning => "Zurück zur Anmeldung",
        Text::ReturningNoScript => "Wählen Sie Weiter, um die Anmeldung abzuschließen.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn every_text_exists_in_every_language_with_the_same_placeholders() {
        for key in Text::ALL {
            let english = text(Lang::En, key);
            for lang in Lang::ALL {
                let translated = text(lang, key);
                assert!(
                    !translated.trim().is_empty(),
                    "{key:?} is empty in {lang:?}"
                );
                assert_eq!(
                    placeholders(translated),
                    placeholders(english),
                    "{key:?} in {lang:?}"
                );
            }
        }
    }

    #[test]
    fn the_list_of_texts_names_each_one_once() {
        for (i, key) in Text::ALL.iter().enumerate() {
            assert!(!Text::ALL[i + 1..].contains(key), "{key:?} listed twice");
        }
    }

    #[test]
    fn the_supported_language_with_the_highest_quality_wins() {
        for (header, expected) in [
            ("de-DE,de;q=0.9,en;q=0.8", Lang::De),
            ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7", Lang::En),
            ("en;q=0.5, de;q=0.6", Lang::De),
            ("de;q=0.5, en;q=0.5", Lang::De),
            ("DE-at", Lang::De),
            ("en-GB;q=1.0, de;q=1", Lang::En),
            ("*;q=0.5, de;q=0.4", Lang::De),
        ] {
            assert_eq!(Lang::negotiate(Some(header)), expected, "{header}");
        }
    }

    #[test]
    fn unreadable_refused_or_unsupported_languages_fall_back_to_english() {
        let long = format!("de;q=0.1,{}", "x,".repeat(MAX_HEADER));
        for header in [
            "",
            "fr, it",
            "de;q=0",
            "de;q=2",
            "de;q=0.1234",
            "de;q=-1",
            "de;q=abc",
            "de;q",
            ";;;,,,",
            "ü;q=0.5",
            long.as_str(),
        ] {
            assert_eq!(Lang::negotiate(Some(header)), Lang::En, "{header:?}");
        }
        assert_eq!(Lang::negotiate(None), Lang::En);
    }

    #[test]
    fn values_fill_their_placeholders() {
        let filled = fill(text(Lang::De, Text::OtpFormat), &[("digits", "6")]);
        assert!(filled.contains("6-stelligen"), "{filled}");
        assert!(!filled.contains('{'));
    }
}
