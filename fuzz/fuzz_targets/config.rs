//! The configuration file, `config::Config::parse`, on arbitrary text, with relative paths
//! taken from a directory that does not exist.
//!
//! Checks that nothing panics, that a file reads the same way twice, that a refusal names the
//! file, and that an accepted configuration keeps the rules the rest of the program trusts:
//! at least one listener, an `https://` issuer without a trailing slash, every range the
//! example file states, and tenants listed once each under a lowercase GUID.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vouch::config::Config;
use vouch::jose::hint::is_guid;

const NAME: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/nonexistent/vouch-fuzz");
    let parsed = Config::parse(text, NAME, base);
    let again = Config::parse(text, NAME, base);
    assert_eq!(format!("{parsed:?}"), format!("{again:?}"));

    let config = match parsed {
        Ok(config) => config,
        Err(e) => {
            assert_eq!(e.source_name, NAME);
            assert!(!e.key.is_empty());
            return;
        }
    };
    assert!(!config.listen.is_empty());
    assert!(config.issuer.starts_with("https://") && !config.issuer.ends_with('/'));
    assert!((4096..=1024 * 1024).contains(&config.max_body_bytes));
    assert!((60..=3600).contains(&config.hint_max_age));
    assert!((0..=600).contains(&config.clock_skew));
    assert!((30..=290).contains(&config.transaction_ttl));
    assert!((1..=20).contains(&config.otp_max_failures));
    assert!((1..=256).contains(&config.signer_workers));
    assert!((1..=4096).contains(&config.signer_max_in_flight));
    for (i, tenant) in config.tenants.iter().enumerate() {
        assert!(is_guid(&tenant.id) && tenant.id == tenant.id.to_ascii_lowercase());
        assert!(config.tenants[..i].iter().all(|t| t.id != tenant.id));
        assert_eq!(config.tenant(&tenant.id), Some(tenant));
    }
});
