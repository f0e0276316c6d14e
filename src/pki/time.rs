//! Instants in certificates, CRLs and OCSP responses: seconds since the Unix epoch, shown as
//! RFC 3339 UTC so that an operator can compare them with other tools.

use std::fmt;

use rustls::pki_types::UnixTime;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        Timestamp(secs)
    }

    /// The same instant for webpki, which does not go before the epoch.
    pub fn to_unix(self) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(self.0.max(0) as u64))
    }

    pub fn from_unix(t: UnixTime) -> Timestamp {
        Timestamp(t.as_secs() as i64)
    }

    pub fn plus(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }

    /// Reads `2026-12-04T09:00:00Z` (RFC 3339 in UTC, whole seconds) or plain epoch seconds.
    pub fn parse(text: &str) -> Option<Timestamp> {
        if let Ok(secs) = text.parse::<i64>() {
            return Some(Timestamp(secs));
        }
        let b = text.as_bytes();
        let shape_ok = b.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':'
            && matches!(b[19], b'Z' | b'z');
        if !shape_ok {
            return None;
        }
        let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u16>().ok();
        let month = time::Month::try_from(num(5..7)? as u8).ok()?;
        let date = time::Date::from_calendar_date(i32::from(num(0..4)?), month, num(8..10)? as u8);
        let clock =
            time::Time::from_hms(num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8);
        let instant = time::PrimitiveDateTime::new(date.ok()?, clock.ok()?).assume_utc();
        Some(Timestamp(instant.unix_timestamp()))
    }
}

/// Reads a DER GeneralizedTime, `YYYYMMDDHHMMSSZ` (X.690 §11.7, RFC 5280 §4.1.2.5.2).
pub fn generalized_time(contents: &[u8]) -> Option<Timestamp> {
    if contents.len() != 15
        || contents[14] != b'Z'
        || !contents[..14].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let text = std::str::from_utf8(contents).ok()?;
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[8..10],
        &text[10..12],
        &text[12..14]
    );
    Timestamp::parse(&rfc3339)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = time::format_description::well_known::Rfc3339;
        match time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&format).ok())
        {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_and_print_as_rfc3339() {
        let t = Timestamp::parse("2026-12-04T09:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-04T09:00:00Z");
        assert_eq!(
            Timestamp::parse("0").unwrap().to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(Timestamp::parse("yesterday"), None);
        assert_eq!(generalized_time(b"20261204090000Z"), Some(t));
        assert_eq!(generalized_time(b"20261204090000"), None);
        assert_eq!(generalized_time(b"2026120409000aZ"), None);
        assert_eq!(generalized_time(b"20261304090000Z"), None);
    }
}
