//! The strict form decoder, `eam::form::parse`, on arbitrary bodies, with the field lists of
//! the authorize and OTP endpoints.
//!
//! Checks that it never panics, that it decodes a body the same way twice, that a refused
//! duplicate names a wanted field, and, for a body it accepts, that each wanted value is the
//! one the lenient WHATWG decoder of the `form_urlencoded` crate reads for that name, and
//! that the values come back unchanged when encoded and decoded again.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use vouch::eam::authorize::FIELDS;
use vouch::eam::form::{self, FormError};

const OTP_FIELDS: [&str; 3] = ["txn", "code", "action"];

fuzz_target!(|body: &[u8]| {
    check(body, FIELDS);
    check(body, OTP_FIELDS);
});

fn check<const N: usize>(body: &[u8], wanted: [&'static str; N]) {
    let parsed = form::parse(body, wanted);
    assert_eq!(parsed, form::parse(body, wanted));

    let values = match parsed {
        Ok(values) => values,
        Err(FormError::Duplicate { name }) => {
            assert!(wanted.contains(&name), "{name}");
            return;
        }
        Err(_) => return,
    };

    let lenient: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (name, value) in wanted.iter().zip(&values) {
        let mut found = lenient.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        assert_eq!(found.next().map(String::as_str), value.as_deref(), "{name}");
        assert_eq!(found.next(), None, "{name} accepted twice");
    }

    let pairs = wanted
        .iter()
        .zip(&values)
        .filter_map(|(name, value)| Some((*name, value.as_deref()?)));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    assert_eq!(form::parse(encoded.as_bytes(), wanted), Ok(values));
}
