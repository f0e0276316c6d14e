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
    /// A FIDO2 security key or platform authenticator, through WebAuthn.
    Fido,
}

impl Method {
    /// The `amr` value a token carries for this method, unless its credential's issuer
    /// grants another (certificates: the trust store's).
    pub fn amr(self) -> &'static str {
        match self {
            Method::Totp => "otp",
            Method::Fido => "fido",
        }
    }

    pub fn factor_type(self) -> FactorType {
        match self {
            Method::Totp | Method::Fido => FactorType::Possession,
        }
    }

    /// The method's name in forms, logs and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::Fido => "fido",
        }
    }

    /// The method a form names; `None` for a name vouch does not know.
    pub fn from_name(name: &str) -> Option<Method> {
        [Method::Totp, Method::Fido]
            .into_iter()
            .find(|m| m.name() == name)
    }
}
