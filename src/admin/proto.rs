//! The admin messages: one JSON object per line each way, version 1.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The protocol version this appliance speaks.
pub const VERSION: u64 = 1;
/// The longest request line, newline included.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A request, by its `cmd` member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Version, uptime, configuration, signer, admission and audit head.
    Status {},
    /// Sign-in counters, per-second rates and step latency percentiles.
    Counters {},
    /// The newest sign-ins, redacted.
    Recent {
        #[serde(default = "default_limit")]
        limit: usize,
    },
    /// Apply the configuration file again, as SIGHUP does.
    Reload {},
    /// Change the log filter (`info`, `debug`, `vouch=debug,hyper=warn`, ...).
    LogLevel { filter: String },
    /// The signing key, any staged key, and the signer pool.
    Keys {},
    /// Create the next signing key.
    StageKey {
        /// A device key by label (CKA_LABEL); with neither, a new software key.
        #[serde(default)]
        label: Option<String>,
        /// A device key by hex id (CKA_ID), or a PIV slot such as `9d`.
        #[serde(default)]
        id: Option<String>,
        /// A PEM certificate for the device key, when the devices hold none.
        #[serde(default)]
        certificate: Option<std::path::PathBuf>,
    },
    /// Make the staged key the signing key (applies at the next restart).
    PromoteKey {},
    /// Onboarded tenants and their Entra key caches.
    Tenants {},
    /// Each trust store with its CRL sources (age, next update, entries, state) and OCSP.
    TrustStores {},
    /// Enrolled users whose tenant ID, object ID or UPN contains `find`.
    Enrolments {
        #[serde(default)]
        find: String,
    },
    /// Give a user a new TOTP seed; the answer carries the otpauth:// URI once.
    EnrolTotp {
        tid: String,
        oid: String,
        #[serde(default = "default_digits")]
        digits: u8,
        #[serde(default)]
        algorithm: crate::factor::otp::Algorithm,
        #[serde(default)]
        replace: bool,
        /// The user's UPN, to find them by later.
        #[serde(default)]
        upn: Option<String>,
        /// The name the authenticator app shows beside the account.
        #[serde(default = "default_issuer")]
        issuer: String,
    },
    /// Remove a factor from a user.
    Revoke {
        tid: String,
        oid: String,
        #[serde(default = "default_method")]
        method: crate::factor::Method,
        /// For `fido`: the one credential to remove; without it, all of the user's keys.
        #[serde(default)]
        credential: Option<String>,
    },
    /// Issue a one-time link that lets a user enrol a security key; answers its URL once.
    FidoLink {
        tid: String,
        oid: String,
        #[serde(default)]
        upn: Option<String>,
        #[serde(default = "default_link_ttl")]
        ttl_secs: i64,
    },
    /// A user's security keys.
    FidoKeys { tid: String, oid: String },
}

fn default_link_ttl() -> i64 {
    15 * 60
}

fn default_limit() -> usize {
    50
}

fn default_issuer() -> String {
    "vouch".into()
}

fn default_digits() -> u8 {
    6
}

fn default_method() -> crate::factor::Method {
    crate::factor::Method::Totp
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::Status {} => "status",
            Request::Counters {} => "counters",
            Request::Recent { .. } => "recent",
            Request::Reload {} => "reload",
            Request::LogLevel { .. } => "log_level",
            Request::Keys {} => "keys",
            Request::StageKey { .. } => "stage_key",
            Request::PromoteKey {} => "promote_key",
            Request::Tenants {} => "tenants",
            Request::TrustStores {} => "trust_stores",
            Request::Enrolments { .. } => "enrolments",
            Request::EnrolTotp { .. } => "enrol_totp",
            Request::Revoke { .. } => "revoke",
            Request::FidoLink { .. } => "fido_link",
            Request::FidoKeys { .. } => "fido_keys",
        }
    }

    /// Whether the request changes something, and so goes on the audit trail.
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Request::Reload {}
                | Request::LogLevel { .. }
                | Request::StageKey { .. }
                | Request::PromoteKey {}
                | Request::EnrolTotp { .. }
                | Request::Revoke { .. }
                | Request::FidoLink { .. }
        )
    }
}

/// Why a request was not carried out; `code` is for programs, `message` for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub code: ProblemCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemCode {
    /// Not JSON, not an object, not UTF-8, or cut short.
    Malformed,
    /// Longer than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// A `v` this appliance does not speak, or none.
    Version,
    /// A `cmd` this appliance does not know, or members it does not take.
    UnknownCommand,
    /// The arguments are wrong (not a GUID, out of range).
    Invalid,
    /// The peer's user is not allowed.
    Forbidden,
    /// Too many admin connections at once.
    Busy,
    /// The message did not arrive within the deadline.
    Timeout,
    /// The command was understood but could not be done.
    Failed,
}

impl Problem {
    pub fn new(code: ProblemCode, message: impl Into<String>) -> Problem {
        Problem {
            code,
            message: message.into(),
        }
    }
}

/// One answer line.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub v: u64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Response {
        Response {
            v: VERSION,
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn problem(problem: Problem) -> Response {
        Response {
            v: VERSION,
            ok: false,
            data: None,
            error: Some(problem),
        }
    }

    /// The line to send, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"v":1,"ok":false,"error":{"code":"failed","message":"unencodable answer"}}"#
                .to_vec()
        });
        line.push(b'\n');
        line
    }
}

/// Reads one request line (without its newline).
pub fn parse(line: &[u8]) -> Result<Request, Problem> {
    use ProblemCode::*;
    let text = std::str::from_utf8(line)
        .map_err(|_| Problem::new(Malformed, "the message is not UTF-8 text"))?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Problem::new(
            Malformed,
            format!("the message is not JSON ({e}); send one JSON object per line"),
        )
    })?;
    let serde_json::Value::Object(mut members) = value else {
        return Err(Problem::new(
            Malformed,
            "the message must be a JSON object such as {\"v\":1,\"cmd\":\"status\"}",
        ));
    };
    match members.remove("v").and_then(|v| v.as_u64()) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(Problem::new(
                Version,
                format!("version {other} is not spoken here; this appliance speaks v {VERSION}"),
            ));
        }
        None => {
            return Err(Problem::new(
                Version,
                format!("the message has no \"v\"; add \"v\":{VERSION}"),
            ));
        }
    }
    let members: BTreeMap<String, serde_json::Value> = members.into_iter().collect();
    serde_json::from_value(serde_json::to_value(members).unwrap_or_default())
        .map_err(|e| Problem::new(UnknownCommand, format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read_by_its_command_with_defaults() {
        assert_eq!(parse(br#"{"v":1,"cmd":"status"}"#), Ok(Request::Status {}));
        assert_eq!(
            parse(br#"{"cmd":"recent","v":1}"#),
            Ok(Request::Recent { limit: 50 })
        );
    }

    #[test]
    fn hostile_messages_get_the_problem_that_names_them() {
        let code = |line: &[u8]| parse(line).map_err(|p| p.code);
        assert_eq!(code(b"\xff\xfe"), Err(ProblemCode::Malformed));
        assert_eq!(code(b"{\"v\":1,"), Err(ProblemCode::Malformed));
        assert_eq!(code(b"[1,2]"), Err(ProblemCode::Malformed));
        assert_eq!(code(b"{\"cmd\":\"status\"}"), Err(ProblemCode::Version));
        assert_eq!(
            code(b"{\"v\":2,\"cmd\":\"status\"}"),
            Err(ProblemCode::Version)
        );
        assert_eq!(
            code(b"{\"v\":\"1\",\"cmd\":\"status\"}"),
            Err(ProblemCode::Version)
        );
        assert_eq!(
            code(b"{\"v\":1,\"cmd\":\"format_disk\"}"),
            Err(ProblemCode::UnknownCommand)
        );
        assert_eq!(
            code(b"{\"v\":1,\"cmd\":\"status\",\"extra\":true}"),
            Err(ProblemCode::UnknownCommand)
        );
        assert_eq!(
            code(b"{\"v\":1,\"cmd\":\"revoke\",\"tid\":7}"),
            Err(ProblemCode::UnknownCommand)
        );
    }

    #[test]
    fn an_answer_is_one_line_with_its_version() {
        let line = Response::problem(Problem::new(ProblemCode::Busy, "later")).line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(v["v"], 1);
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "busy");
    }
}
