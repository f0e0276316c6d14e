//! One admin-socket request line, `admin::proto::parse`, on arbitrary bytes.
//!
//! Checks that nothing panics, that a line reads the same way twice, that a refusal carries
//! a code and a message for the operator, and that the answer to any line is one line of
//! JSON with the protocol version.

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use libfuzzer_sys::fuzz_target;
use vouch::admin::proto::{self, Response};

fuzz_target!(|data: &[u8]| {
    let parsed = proto::parse(data);
    assert_eq!(format!("{parsed:?}"), format!("{:?}", proto::parse(data)));
    let answer = match parsed {
        Ok(request) => {
            assert!(!request.name().is_empty());
            Response::ok(serde_json::json!({ "cmd": request.name() }))
        }
        Err(problem) => {
            assert!(!problem.message.is_empty());
            Response::problem(problem)
        }
    };
    let line = answer.line();
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    let value: serde_json::Value = serde_json::from_slice(&line).expect("JSON");
    assert_eq!(value["v"], proto::VERSION);
});
