//! The `claims` request parameter, `eam::claims::parse`, and the choice of `acr` and `amr`
//! made from it, `eam::claims::negotiate`, on arbitrary text.
//!
//! Checks that nothing panics, that a parameter reads the same twice, that what is read keeps
//! to the limits (at most 32 distinct values of at most 64 bytes per list, at most 8 KiB read
//! at all), and that every offer is one of the user's methods whose `amr` the request allows
//! under a requested `acr` that accepts the method's factor type.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use vouch::eam::claims::{self, Candidate, ClaimsError, MAX_CLAIMS_LEN, Requested};
use vouch::factor::Method;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let requested = claims::parse(Some(text));
    assert_eq!(requested, claims::parse(Some(text)));
    let requested = match requested {
        Ok(requested) => requested,
        Err(ClaimsError::TooLong { len, max }) => {
            assert!(len > max && max == MAX_CLAIMS_LEN);
            return;
        }
        Err(_) => return,
    };

    assert!(text.len() <= MAX_CLAIMS_LEN);
    check_list(&requested.acr);
    if let Some(amr) = &requested.amr {
        check_list(amr);
    }
    let hardware_card = Candidate {
        method: Method::SmartCard,
        amr: "hwk",
    };
    let every = [Method::Totp.into(), Method::Fido.into(), hardware_card];
    check_offers(&requested, &every);
    check_offers(&requested, &[]);
});

fn check_list(values: &[String]) {
    assert!(values.len() <= 32);
    for (i, value) in values.iter().enumerate() {
        assert!(value.len() <= 64);
        assert!(!values[..i].contains(value), "{value} read twice");
    }
}

fn check_offers(requested: &Requested, candidates: &[Candidate]) {
    let offers = claims::negotiate(requested, candidates);
    assert!(offers.len() <= candidates.len());
    for offer in &offers {
        let offered = |c: &Candidate| c.method == offer.method && c.amr == offer.amr;
        assert!(candidates.iter().any(offered));
        assert!(requested.acr.contains(&offer.acr));
        assert!(claims::acr_accepts(&offer.acr).contains(&offer.method.factor_type()));
        if let Some(amr) = &requested.amr {
            assert!(amr.iter().any(|a| *a == offer.amr));
        }
    }
}
