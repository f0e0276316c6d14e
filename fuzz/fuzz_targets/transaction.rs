//! Sealed sign-in transactions, `eam::transaction::Transactions::open`, on arbitrary text.
//!
//! The sealing key is made fresh in this process and never leaves it, so no input can be a
//! transaction it sealed: checks that opening never panics and never succeeds, and that every
//! refusal is `Invalid`.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use vouch::eam::transaction::{TransactionError, Transactions};

static TRANSACTIONS: LazyLock<Transactions> = LazyLock::new(Transactions::default);

fuzz_target!(|data: &[u8]| {
    let Ok(sealed) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(TRANSACTIONS.open(sealed), Err(TransactionError::Invalid));
});
