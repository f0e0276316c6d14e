//! Strict `application/x-www-form-urlencoded` decoding (WHATWG URL §5.1) for the bodies
//! Entra's and vouch's own pages post.
//!
//! Unlike a lenient decoder it refuses what a well-formed browser post never contains: bad
//! percent-escapes, bytes that are not UTF-8, and a known parameter given twice (parameter
//! pollution). Unknown parameters are ignored, as the protocol asks.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    #[error("the form has a malformed percent-escape")]
    BadEscape,
    #[error("the form is not UTF-8")]
    NotUtf8,
    #[error("the form gives {name} more than once")]
    Duplicate { name: &'static str },
}

/// Decodes `body`, keeping the first value of each name in `wanted`.
pub fn parse<const N: usize>(
    body: &[u8],
    wanted: [&'static str; N],
) -> Result<[Option<String>; N], FormError> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode(name)?;
        let Some(slot) = wanted.iter().position(|w| *w == name) else {
            continue;
        };
        if out[slot].is_some() {
            return Err(FormError::Duplicate { name: wanted[slot] });
        }
        out[slot] = Some(decode(value)?);
    }
    Ok(out)
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|c| hex(*c));
                let lo = raw.get(i + 2).and_then(|c| hex(*c));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(FormError::BadEscape);
                };
                bytes.push(hi << 4 | lo);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let [a, b] = parse(b"a=x+y%2Fz&b=%E2%9C%93&c=ignored", ["a", "b"]).expect("valid");
        assert_eq!(a.as_deref(), Some("x y/z"));
        assert_eq!(b.as_deref(), Some("\u{2713}"));
    }

    #[test]
    fn missing_and_valueless_parameters() {
        let [a, b] = parse(b"a&x=1", ["a", "b"]).expect("valid");
        assert_eq!(a.as_deref(), Some(""));
        assert_eq!(b, None);
    }

    #[test]
    fn refuses_a_known_parameter_given_twice() {
        let err = parse(b"a=1&b=2&a=3", ["a", "b"]).unwrap_err();
        assert_eq!(err, FormError::Duplicate { name: "a" });
        assert!(parse(b"z=1&z=2&a=1", ["a"]).is_ok());
    }

    #[test]
    fn refuses_bad_escapes_and_invalid_utf8() {
        for bad in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%%41"] {
            assert_eq!(
                parse(bad, ["a"]).unwrap_err(),
                FormError::BadEscape,
                "{bad:?}"
            );
        }
        assert_eq!(parse(b"a=%ff%fe", ["a"]).unwrap_err(), FormError::NotUtf8);
        assert_eq!(parse(b"a=\xff", ["a"]).unwrap_err(), FormError::NotUtf8);
    }
}
