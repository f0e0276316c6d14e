//! What vouch knows about Entra itself: its clouds, the redirect URIs it sends, and the
//! signing keys of each onboarded tenant.

pub mod fetch;
pub mod keys;

use serde::{Deserialize, Serialize};

/// The Entra cloud a tenant lives in. Each has its own pinned host (protocol reference §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    #[default]
    Global,
    Usgov,
    China,
}

impl Cloud {
    pub const ALL: [Cloud; 3] = [Cloud::Global, Cloud::Usgov, Cloud::China];

    pub fn host(self) -> &'static str {
        match self {
            Cloud::Global => "login.microsoftonline.com",
            Cloud::Usgov => "login.microsoftonline.us",
            Cloud::China => "login.partner.microsoftonline.cn",
        }
    }

    /// The `redirect_uri` Entra sends for this cloud, to be matched exactly.
    pub fn redirect_uri(self) -> &'static str {
        match self {
            Cloud::Global => {
                "https://login.microsoftonline.com/common/federation/externalauthprovider"
            }
            Cloud::Usgov => {
                "https://login.microsoftonline.us/common/federation/externalauthprovider"
            }
            Cloud::China => {
                "https://login.partner.microsoftonline.cn/common/federation/externalauthprovider"
            }
        }
    }

    /// The cloud whose redirect URI is exactly `uri`, if any.
    pub fn from_redirect_uri(uri: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.redirect_uri() == uri)
    }

    pub fn name(self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::Usgov => "usgov",
            Cloud::China => "china",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_only_exactly() {
        let good = "https://login.microsoftonline.com/common/federation/externalauthprovider";
        assert_eq!(Cloud::from_redirect_uri(good), Some(Cloud::Global));
        for bad in [
            "http://login.microsoftonline.com/common/federation/externalauthprovider",
            "https://login.microsoftonline.com/common/federation/externalauthprovider/",
            "https://LOGIN.microsoftonline.com/common/federation/externalauthprovider",
            "https://login.microsoftonline.com.evil.example/common/federation/externalauthprovider",
            "https://login.microsoftonline.com/common/federation/externalauthprovider?x",
            "https://login.microsoftonline.com/common/federation/OAuth2ClaimsProvider",
            "",
        ] {
            assert_eq!(Cloud::from_redirect_uri(bad), None, "{bad}");
        }
    }
}
