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
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// A time-based one-time password (RFC 6238).
    Totp,
    /// A client certificate presented in a TLS handshake, from a smart card or the browser.
    SmartCard,
    /// A challenge signed on a phone whose certificate a trust store accepts.
    MobilePki,
    /// A FIDO2 security key or platform authenticator, through WebAuthn.
    Fido,
}

impl Method {
    /// The `amr` value a token carries for this method, unless its credential's issuer
    /// grants another (certificates: the trust store's).
    pub fn amr(self) -> &'static str {
        match self {
            Method::Totp => "otp",
            Method::SmartCard => "sc",
            Method::MobilePki => "swk",
            Method::Fido => "fido",
        }
    }

    pub fn factor_type(self) -> FactorType {
        match self {
            Method::Totp | Method::SmartCard | Method::MobilePki | Method::Fido => {
                FactorType::Possession
            }
        }
    }

    /// The method's name in forms, logs and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::SmartCard => "smart_card",
            Method::MobilePki => "mobile_pki",
            Method::Fido => "fido",
        }
    }

    /// The method a form names; `None` for a name vouch does not know.
    pub fn from_name(name: &str) -> Option<Method> {
        const ALL: [Method; 4] = [
            Method::Totp,
            Method::SmartCard,
            Method::MobilePki,
            Method::Fido,
        ];
        ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether a trust store's certificate proves the method.
    pub fn uses_certificate(self) -> bool {
        matches!(self, Method::SmartCard | Method::MobilePki)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_read_back_and_certificate_methods_are_possession() {
        for method in [
            Method::Totp,
            Method::SmartCard,
            Method::MobilePki,
            Method::Fido,
        ] {
            assert_eq!(Method::from_name(method.name()), Some(method));
            assert_eq!(method.factor_type(), FactorType::Possession);
        }
        assert_eq!(Method::from_name("smartcard"), None);
        assert_eq!(Method::from_name(""), None);
        let json = serde_json::to_string(&Method::MobilePki).unwrap();
        assert_eq!(json, "\"mobile_pki\"");
        assert!(Method::SmartCard.uses_certificate() && !Method::Totp.uses_certificate());
    }
}
