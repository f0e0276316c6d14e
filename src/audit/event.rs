//! The events the audit trail records. Each carries who and what, never a secret.

use serde::{Deserialize, Serialize};

/// The end of one sign-in, as it was answered to Entra.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub tid: String,
    pub oid: String,
    /// The method the user proved or was offered, when one was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The `amr` the token carries, for a token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<String>,
    /// `token`, `access_denied` or `temporarily_unavailable`: what was posted to Entra.
    pub outcome: String,
    /// Why, in words an operator can search for.
    pub reason: String,
    /// The source address (IPv6 by its /64), `-` when unknown.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
}

/// A security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The appliance started with this trail.
    Start {
        version: String,
        signing_kid: String,
    },
    /// A torn last line left by a crash was cut off at start.
    Recovered {
        torn_bytes: u64,
    },
    SignIn(SignIn),
    /// A factor was enrolled or revoked, by the operator with `uid`.
    Enrolment {
        tid: String,
        oid: String,
        method: String,
        action: String,
        uid: u32,
    },
    /// A signing key was staged or promoted.
    Key {
        action: String,
        kid: String,
        uid: u32,
    },
    /// A configuration reload, applied or refused (and why).
    Reload {
        applied: bool,
        detail: String,
        /// The operator's uid; absent for SIGHUP.
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
    },
    /// A command on the admin socket that changes something or reads enrolments.
    Admin {
        uid: u32,
        command: String,
        ok: bool,
    },
}

impl Event {
    /// The event's name as written in its `event` member.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Recovered { .. } => "recovered",
            Event::SignIn(_) => "sign_in",
            Event::Enrolment { .. } => "enrolment",
            Event::Key { .. } => "key",
            Event::Reload { .. } => "reload",
            Event::Admin { .. } => "admin",
        }
    }
}
