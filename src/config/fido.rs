//! The `[fido]` section and each tenant's `[tenant.fido]` table: where WebAuthn ceremonies
//! are scoped and what each tenant demands of the authenticators.
//!
//! The RP ID and origins default to the issuer's host, which is what the pages are served
//! from. An RP ID must be the origins' host or a domain they sit under (WebAuthn Level 3
//! §5.1.2); anything else would make every ceremony fail in the browser, so it is refused
//! here with the reason.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::factor::webauthn::attestation_trust::AttestationRoots;
use crate::factor::webauthn::{RelyingParty, UserVerification};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFido {
    rp_id: Option<String>,
    origins: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenantFido {
    user_verification: Option<UserVerification>,
    allowed_aaguids: Option<Vec<String>>,
    attestation_roots: Option<Vec<PathBuf>>,
}

/// What one tenant demands of security keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TenantFido {
    pub user_verification: UserVerification,
    /// When set, only these authenticator models may enrol, and only with an attestation
    /// certificate that vouches for the model.
    pub allowed_aaguids: Option<Vec<[u8; 16]>>,
    /// When set, a key enrols only with an attestation that chains to one of these vendor
    /// roots. An allow-list needs them: only such a chain makes the model it names true.
    pub attestation_roots: Option<AttestationRoots>,
}

/// The relying party from `[fido]`, defaulting to the issuer's host.
pub(super) fn relying_party(
    raw: RawFido,
    issuer: &str,
) -> Result<RelyingParty, (&'static str, String)> {
    let issuer_origin = crate::app::issuer_origin(issuer).to_owned();
    let issuer_host = host_of(&issuer_origin).to_owned();
    let id = raw.rp_id.unwrap_or_else(|| issuer_host.clone());
    check_rp_id(&id).map_err(|p| ("rp_id", p))?;

    let origins = raw.origins.unwrap_or_else(|| vec![issuer_origin]);
    if origins.is_empty() {
        return Err(("origins", "give at least one https:// origin".into()));
    }
    for origin in &origins {
        check_origin(origin, &id).map_err(|p| ("origins", p))?;
    }
    Ok(RelyingParty { id, origins })
}

/// A tenant's `[tenant.fido]`; `resolve` makes a configured path absolute.
pub(super) fn tenant_fido(
    raw: RawTenantFido,
    resolve: impl Fn(PathBuf) -> PathBuf,
) -> Result<TenantFido, (&'static str, String)> {
    let allowed_aaguids = match raw.allowed_aaguids {
        None => None,
        Some(list) if list.is_empty() => {
            let why = "list at least one AAGUID, or leave the key out to allow any model";
            return Err(("fido.allowed_aaguids", why.into()));
        }
        Some(list) => Some(
            list.iter()
                .map(|a| parse_aaguid(a).map_err(|p| ("fido.allowed_aaguids", p)))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let attestation_roots = match raw.attestation_roots {
        None => None,
        Some(paths) => Some(
            attestation_roots(paths.into_iter().map(resolve))
                .map_err(|p| ("fido.attestation_roots", p))?,
        ),
    };
    if allowed_aaguids.is_some() && attestation_roots.is_none() {
        let why = "an allow-list of models needs attestation_roots: the vendor root \
                   certificates whose attestations may vouch for a model";
        return Err(("fido.allowed_aaguids", why.into()));
    }
    Ok(TenantFido {
        user_verification: raw.user_verification.unwrap_or_default(),
        allowed_aaguids,
        attestation_roots,
    })
}

/// Every certificate of the PEM files at `paths`, as attestation roots.
fn attestation_roots(paths: impl Iterator<Item = PathBuf>) -> Result<AttestationRoots, String> {
    let mut pem = Vec::new();
    for path in paths {
        let bytes = read_pem(&path)?;
        pem.extend_from_slice(&bytes);
        pem.push(b'\n');
    }
    AttestationRoots::from_pem(&pem)
}

fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// An AAGUID as 8-4-4-4-12 hex digits (or 32 hex digits without dashes).
pub fn parse_aaguid(text: &str) -> Result<[u8; 16], String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let bad = || {
        let shown: String = text.chars().take(60).collect();
        format!("{shown:?} is not an AAGUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8")
    };
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn host_of(origin: &str) -> &str {
    let rest = origin.strip_prefix("https://").unwrap_or(origin);
    match rest.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => rest,
    }
}

fn check_rp_id(id: &str) -> Result<(), String> {
    let labels_ok = id.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    if id.len() > 253 || !labels_ok {
        return Err(format!(
            "{:?} is not a lowercase host name such as mfa.contoso.com (no scheme or port)",
            id.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

fn check_origin(origin: &str, rp_id: &str) -> Result<(), String> {
    let shown: String = origin.chars().take(80).collect();
    let Some(rest) = origin.strip_prefix("https://") else {
        return Err(format!("{shown:?} must start with https://"));
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{shown:?} must be https://host[:port] with no path"
        ));
    }
    let host = host_of(origin);
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(format!(
            "{shown:?} is not on the RP ID {rp_id:?} or a host under it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(rp_id: Option<&str>, origins: Option<&[&str]>) -> Result<RelyingParty, String> {
        let raw = RawFido {
            rp_id: rp_id.map(str::to_owned),
            origins: origins.map(|o| o.iter().map(|s| s.to_string()).collect()),
        };
        relying_party(raw, "https://mfa.contoso.com/eam").map_err(|(k, p)| format!("{k}: {p}"))
    }

    #[test]
    fn the_relying_party_defaults_to_the_issuer_host() {
        let rp = rp(None, None).expect("default");
        assert_eq!(rp.id, "mfa.contoso.com");
        assert_eq!(rp.origins, vec!["https://mfa.contoso.com".to_owned()]);
    }

    #[test]
    fn a_parent_domain_rp_id_and_origins_under_it_are_accepted() {
        let origins = [
            "https://mfa.contoso.com",
            "https://localhost.contoso.com:8443",
        ];
        let rp = rp(Some("contoso.com"), Some(&origins)).expect("parent");
        assert_eq!(rp.origins.len(), 2);
    }

    #[test]
    fn rp_ids_and_origins_a_browser_would_refuse_are_named() {
        for (id, origins, key) in [
            (Some("MFA.contoso.com"), None, "rp_id"),
            (Some("https://mfa.contoso.com"), None, "rp_id"),
            (Some("mfa.contoso.com:8443"), None, "rp_id"),
            (Some(""), None, "rp_id"),
            (Some("a..b"), None, "rp_id"),
            (Some("contoso.com"), Some(&[][..]), "origins"),
            (
                Some("contoso.com"),
                Some(&["http://mfa.contoso.com"][..]),
                "origins",
            ),
            (
                Some("contoso.com"),
                Some(&["https://mfa.contoso.com/x"][..]),
                "origins",
            ),
            (
                Some("contoso.com"),
                Some(&["https://evilcontoso.com"][..]),
                "origins",
            ),
            (
                Some("contoso.com"),
                Some(&["https://a@contoso.com"][..]),
                "origins",
            ),
        ] {
            let err = rp(id, origins).expect_err("refused");
            assert!(err.starts_with(key), "{id:?} {origins:?}: {err}");
        }
    }

    #[test]
    fn aaguids_parse_with_or_without_dashes_and_junk_is_refused() {
        let dashed = parse_aaguid("cb69481e-8ff7-4039-93ec-0a2729a154a8").expect("dashed");
        let plain = parse_aaguid("CB69481E8FF7403993EC0A2729A154A8").expect("plain");
        assert_eq!(dashed, plain);
        assert_eq!(dashed[0], 0xcb);
        for bad in [
            "",
            "cb69481e",
            "zz69481e-8ff7-4039-93ec-0a2729a154a8",
            "é".repeat(32).as_str(),
        ] {
            let err = parse_aaguid(bad).expect_err(bad);
            assert!(err.contains("not an AAGUID"), "{err}");
        }
    }

    #[test]
    fn an_empty_allow_list_is_refused_and_the_policy_defaults_to_required() {
        let empty = RawTenantFido {
            allowed_aaguids: Some(vec![]),
            ..RawTenantFido::default()
        };
        assert!(tenant_fido(empty, |p| p).is_err());
        let default = tenant_fido(RawTenantFido::default(), |p| p).expect("default");
        assert_eq!(default.user_verification, UserVerification::Required);
        assert_eq!(default.allowed_aaguids, None);
        assert_eq!(default.attestation_roots, None);
    }

    #[test]
    fn an_allow_list_needs_attestation_roots_that_read_as_certificates() {
        let aaguids = Some(vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".to_owned()]);
        let without = RawTenantFido {
            allowed_aaguids: aaguids.clone(),
            ..RawTenantFido::default()
        };
        let (key, why) = tenant_fido(without, |p| p).expect_err("no roots");
        assert_eq!(key, "fido.allowed_aaguids");
        assert!(why.contains("attestation_roots"), "{why}");

        let dir = tempfile::tempdir().expect("dir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        for path in [junk, dir.path().join("missing.pem")] {
            let raw = RawTenantFido {
                allowed_aaguids: aaguids.clone(),
                attestation_roots: Some(vec![path.clone()]),
                ..RawTenantFido::default()
            };
            let (key, _) = tenant_fido(raw, |p| p).expect_err("unreadable roots");
            assert_eq!(key, "fido.attestation_roots", "{}", path.display());
        }

        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).expect("root");
        let pem = dir.path().join("roots.pem");
        std::fs::write(&pem, root.pem()).expect("write");
        let raw = RawTenantFido {
            allowed_aaguids: aaguids,
            attestation_roots: Some(vec!["roots.pem".into()]),
            ..RawTenantFido::default()
        };
        let fido = tenant_fido(raw, |p| dir.path().join(p)).expect("roots read");
        assert_eq!(fido.attestation_roots.map(|r| r.len()), Some(1));
    }
}
