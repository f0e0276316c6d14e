//! The words on the user pages, in English and German, and the choice between them.
//!
//! The language comes from the browser's `Accept-Language` (RFC 9110 §12.5.4): the
//! supported language with the highest quality wins, ties go to the one listed first, and
//! anything unreadable or unsupported falls back to English. Every text is looked up by a
//! [`Text`] key in a match per language, so a key missing from a language does not compile;
//! texts with values name them as `{name}`, filled in by [`fill`].

use http::{Request, header};

mod catalogue;

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

/// A text decided before its reader's language is known (a phone's answer is judged before
/// the browser asks): its key and the values of its placeholders, written out per reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: Text,
    pub values: Vec<(&'static str, String)>,
}

impl Message {
    pub fn new(key: Text) -> Message {
        Message {
            key,
            values: Vec::new(),
        }
    }

    /// The message with `value` for the placeholder `{name}`.
    pub fn with(mut self, name: &'static str, value: String) -> Message {
        self.values.push((name, value));
        self
    }

    /// The message in `lang`, placeholders filled; plain text, for the caller to escape.
    pub fn in_lang(&self, lang: Lang) -> String {
        let values: Vec<(&str, &str)> = self.values.iter().map(|(n, v)| (*n, v.as_str())).collect();
        fill(text(lang, self.key), &values)
    }
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
    MethodSmartCard,
    MethodMobilePki,
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
    SmartCardTitle,
    SmartCardIntro,
    SmartCardUse,
    SmartCardNone,
    MobileTitle,
    MobileIntro,
    MobileQrLabel,
    MobileCode,
    MobileOpenApp,
    MobileReplaced,
    MobileNotYet,
    MobileBadSignature,
    CertUnavailable,
    CertEmpty,
    CertExpired,
    CertNotYetValid,
    CertRevoked,
    CertUntrusted,
    CertWrongUse,
    CertNotYours,
    CertRefused,
    ProblemTitle,
    Expired,
    Finished,
    LockedOut,
    Returning,
    ReturningNoScript,
    NotFoundTitle,
    NotFound,
    NotAllowedTitle,
    NotAllowed,
    BusyTitle,
    Busy,
    NotUnderstoodTitle,
    NotForm,
    Unreadable,
    TooLargeTitle,
    TooLarge,
    TooSlowTitle,
    TooSlow,
    FormUnreadable,
    NotOurs,
    NotOffered,
    FormIncomplete,
    OtherSignIn,
    RequestRefusedTitle,
    RequestRefused,
}

impl Text {
    pub const ALL: [Text; 80] = [
        Text::Cancel,
        Text::Continue,
        Text::TryAgain,
        Text::ChooseTitle,
        Text::MethodTotp,
        Text::MethodFido,
        Text::MethodSmartCard,
        Text::MethodMobilePki,
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
        Text::SmartCardTitle,
        Text::SmartCardIntro,
        Text::SmartCardUse,
        Text::SmartCardNone,
        Text::MobileTitle,
        Text::MobileIntro,
        Text::MobileQrLabel,
        Text::MobileCode,
        Text::MobileOpenApp,
        Text::MobileReplaced,
        Text::MobileNotYet,
        Text::MobileBadSignature,
        Text::CertUnavailable,
        Text::CertEmpty,
        Text::CertExpired,
        Text::CertNotYetValid,
        Text::CertRevoked,
        Text::CertUntrusted,
        Text::CertWrongUse,
        Text::CertNotYours,
        Text::CertRefused,
        Text::ProblemTitle,
        Text::Expired,
        Text::Finished,
        Text::LockedOut,
        Text::Returning,
        Text::ReturningNoScript,
        Text::NotFoundTitle,
        Text::NotFound,
        Text::NotAllowedTitle,
        Text::NotAllowed,
        Text::BusyTitle,
        Text::Busy,
        Text::NotUnderstoodTitle,
        Text::NotForm,
        Text::Unreadable,
        Text::TooLargeTitle,
        Text::TooLarge,
        Text::TooSlowTitle,
        Text::TooSlow,
        Text::FormUnreadable,
        Text::NotOurs,
        Text::NotOffered,
        Text::FormIncomplete,
        Text::OtherSignIn,
        Text::RequestRefusedTitle,
        Text::RequestRefused,
    ];
}

/// The text of `key` in `lang`.
pub fn text(lang: Lang, key: Text) -> &'static str {
    match lang {
        Lang::En => catalogue::english(key),
        Lang::De => catalogue::german(key),
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

    #[test]
    fn a_message_is_written_in_the_language_of_its_reader() {
        let expired = Message::new(Text::CertExpired).with("date", "2026-01-31".into());
        let english = expired.in_lang(Lang::En);
        let german = expired.in_lang(Lang::De);
        assert!(english.contains("expired on 2026-01-31"), "{english}");
        assert!(german.contains("am 2026-01-31 abgelaufen"), "{german}");
    }
}
