//! Entra's key documents, `entra::keys::KeySet::from_jwks`, on arbitrary bytes.
//!
//! Checks that nothing panics, that a document reads the same way twice, that an accepted set
//! holds 1 to 64 keys, and that no `kid` listed more than once in the document is kept.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vouch::entra::keys::KeySet;

fuzz_target!(|data: &[u8]| {
    let set = KeySet::from_jwks(data);
    let again = KeySet::from_jwks(data);
    let set = match (set, again) {
        (Ok(set), Ok(again)) => {
            assert_eq!(set.len(), again.len());
            set
        }
        (Err(e), Err(again)) => {
            assert_eq!(e, again);
            return;
        }
        (first, second) => panic!("read two ways: {first:?} then {second:?}"),
    };
    assert!((1..=64).contains(&set.len()));

    let doc: Value = serde_json::from_slice(data).expect("an accepted set is JSON");
    let mut listed: HashMap<&str, usize> = HashMap::new();
    for kid in doc["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str())
    {
        *listed.entry(kid).or_default() += 1;
    }
    for (kid, count) in listed {
        if count > 1 {
            assert!(
                set.get(kid).is_none(),
                "{kid} is listed {count} times yet kept"
            );
        }
    }
});
