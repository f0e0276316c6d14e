//! The second factors a user can prove, and how each maps onto Entra's `amr` values and
//! factor types (protocol reference §5.3 and §5.4).

pub mod limiter;
pub mod otp;
pub mod spent;
pub mod webauthn;

/// Entra's factor types; a requested `acr` names the types it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorType {
    Knowledge,
    Possession,
    Inherence,
}

/// A method vouch can run for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Method {
    /// A time-based one-time password (RFC 6238).
    Totp,
}

impl Method {
    /// The single `amr` value the token carries for this method.
    pub fn amr(self) -> &'static str {
        match self {
            Method::Totp => "otp",
        }
    }

    pub fn factor_type(self) -> FactorType {
        match self {
            Method::Totp => FactorType::Possession,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
        }
    }
}
