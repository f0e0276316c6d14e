//! The `[[trust_store]]` sections of the configuration, checked into [`TrustStoreConfig`].
//!
//! ```toml
//! [[trust_store]]
//! name = "corp-cards"
//! tenants = ["00000000-0000-0000-0000-000000000001"]   # or: shared = true
//! roots = ["ca/root.pem"]
//! intermediates = ["ca/issuing.pem"]
//! ekus = ["client_auth"]            # names or dotted OIDs; client auth when omitted
//! binding = "upn"                   # upn | email | enrolled
//! amr = "sc"                        # sc | hwk | swk
//! crl_files = ["ca/issuing.crl"]
//! crl_urls = ["http://pki.example/issuing.crl"]
//! crl_refresh_secs = 3600
//! crl_grace_secs = 0
//! ocsp = "off"                      # off | prefer | require
//! methods = ["smart_card"]          # smart_card | mobile_pki; smart_card when omitted
//!
//! [[trust_store.enrolled]]          # only for binding = "enrolled"
//! tid = "00000000-0000-0000-0000-000000000001"
//! oid = "00000000-0000-0000-0000-0000000000aa"
//! sha256 = "hex of the certificate's DER"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::factor::Method;
use crate::jose::hint::is_guid;

/// `[[trust_store]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustStore {
    name: String,
    #[serde(default)]
    tenants: Vec<String>,
    #[serde(default)]
    shared: bool,
    #[serde(default)]
    roots: Vec<PathBuf>,
    #[serde(default)]
    intermediates: Vec<PathBuf>,
    #[serde(default)]
    ekus: Option<Vec<String>>,
    binding: BindingRule,
    amr: Amr,
    #[serde(default)]
    crl_files: Vec<PathBuf>,
    #[serde(default)]
    crl_urls: Vec<String>,
    #[serde(default)]
    crl_refresh_secs: Option<u64>,
    #[serde(default)]
    crl_grace_secs: Option<i64>,
    #[serde(default)]
    ocsp: OcspPolicy,
    #[serde(default)]
    ocsp_timeout_ms: Option<u64>,
    #[serde(default)]
    enrolled: Vec<RawEnrolled>,
    #[serde(default)]
    methods: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnrolled {
    tid: String,
    oid: String,
    sha256: String,
}

/// How a certificate names the Entra user it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingRule {
    /// The Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3) in the subject alternative name
    /// equals the hint's UPN.
    Upn,
    /// An RFC 822 name in the subject alternative name equals the hint's UPN.
    Email,
    /// The certificate's SHA-256 fingerprint was enrolled for the hint's (`tid`, `oid`).
    Enrolled,
}

/// The authentication method reference a certificate of this store proves (RFC 8176 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// Smart card.
    Sc,
    /// Hardware-protected key.
    Hwk,
    /// Software-protected key.
    Swk,
}

impl Amr {
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Sc => "sc",
            Amr::Hwk => "hwk",
            Amr::Swk => "swk",
        }
    }
}

/// Whether OCSP is asked, for certificates whose CA names a responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OcspPolicy {
    /// CRLs only.
    #[default]
    Off,
    /// OCSP when the responder answers, else the CRL.
    Prefer,
    /// An OCSP answer is needed; without one the certificate cannot be decided.
    Require,
}

/// Which tenants a store serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantScope {
    Shared,
    Tenants(Vec<String>),
}

/// One enrolled certificate: its fingerprint and the user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledCertificate {
    pub tid: String,
    pub oid: String,
    pub sha256: [u8; 32],
}

/// A checked `[[trust_store]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStoreConfig {
    pub name: String,
    pub scope: TenantScope,
    pub roots: Vec<PathBuf>,
    pub intermediates: Vec<PathBuf>,
    /// DER contents of each allowed key purpose OID.
    pub ekus: Vec<Vec<u8>>,
    pub binding: BindingRule,
    pub amr: Amr,
    pub crl_files: Vec<PathBuf>,
    pub crl_urls: Vec<String>,
    pub crl_refresh_secs: u64,
    pub crl_grace_secs: i64,
    pub ocsp: OcspPolicy,
    pub ocsp_timeout_ms: u64,
    pub enrolled: Vec<EnrolledCertificate>,
    /// The sign-in flows that accept this store's certificates.
    pub methods: Vec<Method>,
}

/// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2 (RFC 5280 §4.2.1.12).
pub const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
pub const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// Microsoft smart-card logon, 1.3.6.1.4.1.311.20.2.2.
pub const EKU_SMARTCARD_LOGON: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x02];

impl TrustStoreConfig {
    /// Checks one section; `index` and the returned key name the place for the operator.
    pub fn check(raw: RawTrustStore, base: &Path) -> Result<TrustStoreConfig, (String, String)> {
        let err = |key: &str, problem: String| (key.to_owned(), problem);
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let name_ok = !raw.name.is_empty()
            && raw.name.len() <= 64
            && raw
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            let why = "must be 1 to 64 letters, digits, '-', '_' or '.'";
            return Err(err("name", why.into()));
        }
        let scope = match (raw.shared, raw.tenants.is_empty()) {
            (true, true) => TenantScope::Shared,
            (false, false) => TenantScope::Tenants(check_tenants(raw.tenants)?),
            (true, false) => {
                let why = "a shared store serves every tenant; remove `tenants` or `shared`";
                return Err(err("tenants", why.into()));
            }
            (false, true) => {
                let why = "list the tenant IDs it serves, or set shared = true";
                return Err(err("tenants", why.into()));
            }
        };
        if raw.roots.is_empty() {
            return Err(err("roots", "give at least one root CA PEM file".into()));
        }
        let ekus = match raw.ekus {
            None => vec![EKU_CLIENT_AUTH.to_vec()],
            Some(list) if list.is_empty() => {
                return Err(err("ekus", "list at least one key purpose".into()));
            }
            Some(list) => list
                .iter()
                .map(|e| eku_oid(e).ok_or_else(|| err("ekus", bad_eku(e))))
                .collect::<Result<_, _>>()?,
        };
        for url in &raw.crl_urls {
            check_http_url(url).map_err(|p| err("crl_urls", p))?;
        }
        let crl_refresh_secs = raw.crl_refresh_secs.unwrap_or(3600);
        if !(10..=7 * 86_400).contains(&crl_refresh_secs) {
            return Err(err("crl_refresh_secs", "must be 10 to 604800".into()));
        }
        let crl_grace_secs = raw.crl_grace_secs.unwrap_or(0);
        if !(0..=7 * 86_400).contains(&crl_grace_secs) {
            return Err(err("crl_grace_secs", "must be 0 to 604800".into()));
        }
        let ocsp_timeout_ms = raw.ocsp_timeout_ms.unwrap_or(2000);
        if !(50..=30_000).contains(&ocsp_timeout_ms) {
            return Err(err("ocsp_timeout_ms", "must be 50 to 30000".into()));
        }
        let enrolled = check_enrolled(raw.enrolled, raw.binding)?;
        let methods = check_methods(raw.methods).map_err(|p| err("methods", p))?;

        Ok(TrustStoreConfig {
            name: raw.name,
            scope,
            roots: raw.roots.into_iter().map(resolve).collect(),
            intermediates: raw.intermediates.into_iter().map(resolve).collect(),
            ekus,
            binding: raw.binding,
            amr: raw.amr,
            crl_files: raw.crl_files.into_iter().map(resolve).collect(),
            crl_urls: raw.crl_urls,
            crl_refresh_secs,
            crl_grace_secs,
            ocsp: raw.ocsp,
            ocsp_timeout_ms,
            enrolled,
            methods,
        })
    }

    /// Checks every section, and that names are unique.
    pub fn check_all(
        raw: Vec<RawTrustStore>,
        base: &Path,
    ) -> Result<Vec<TrustStoreConfig>, (String, String)> {
        let mut stores: Vec<TrustStoreConfig> = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let store = TrustStoreConfig::check(r, base)
                .map_err(|(k, p)| (format!("trust_store[{i}].{k}"), p))?;
            if stores.iter().any(|s| s.name == store.name) {
                let problem = format!("{} is used by two trust stores", store.name);
                return Err((format!("trust_store[{i}].name"), problem));
            }
            stores.push(store);
        }
        Ok(stores)
    }
}

/// The flows a store serves: smart card unless it says otherwise.
fn check_methods(raw: Option<Vec<String>>) -> Result<Vec<Method>, String> {
    let Some(names) = raw else {
        return Ok(vec![Method::SmartCard]);
    };
    if names.is_empty() {
        return Err("list at least one of \"smart_card\" and \"mobile_pki\"".into());
    }
    let mut methods = Vec::with_capacity(names.len());
    for name in &names {
        let method = Method::from_name(name).filter(|m| m.uses_certificate());
        let Some(method) = method else {
            return Err(format!(
                "{name:?} is not a certificate sign-in; use \"smart_card\" or \"mobile_pki\""
            ));
        };
        if methods.contains(&method) {
            return Err(format!("{name:?} is listed twice"));
        }
        methods.push(method);
    }
    Ok(methods)
}

fn check_tenants(tenants: Vec<String>) -> Result<Vec<String>, (String, String)> {
    for t in &tenants {
        if !is_guid(t) {
            let why = format!("{t:?} is not a tenant ID (a GUID)");
            return Err(("tenants".into(), why));
        }
    }
    Ok(tenants
        .into_iter()
        .map(|t| t.to_ascii_lowercase())
        .collect())
}

fn check_enrolled(
    raw: Vec<RawEnrolled>,
    binding: BindingRule,
) -> Result<Vec<EnrolledCertificate>, (String, String)> {
    if binding != BindingRule::Enrolled && !raw.is_empty() {
        let why = "enrolled certificates are only read with binding = \"enrolled\"";
        return Err(("enrolled".into(), why.into()));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("enrolled[{i}].{k}");
        if !is_guid(&e.tid) {
            return Err((key("tid"), "must be the user's tenant ID (a GUID)".into()));
        }
        if !is_guid(&e.oid) {
            return Err((key("oid"), "must be the user's object ID (a GUID)".into()));
        }
        let sha256 = parse_fingerprint(&e.sha256).ok_or_else(|| {
            let why = "must be the 64 hex digits of the certificate's SHA-256 fingerprint";
            (key("sha256"), why.to_owned())
        })?;
        out.push(EnrolledCertificate {
            tid: e.tid.to_ascii_lowercase(),
            oid: e.oid.to_ascii_lowercase(),
            sha256,
        });
    }
    Ok(out)
}

/// 64 hex digits, with or without `:` separators.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn bad_eku(e: &str) -> String {
    format!("{e:?} is not client_auth, server_auth, smartcard_logon or a dotted OID")
}

/// The DER contents of a key purpose, from its name or dotted form.
pub fn eku_oid(text: &str) -> Option<Vec<u8>> {
    match text {
        "client_auth" => return Some(EKU_CLIENT_AUTH.to_vec()),
        "server_auth" => return Some(EKU_SERVER_AUTH.to_vec()),
        "smartcard_logon" => return Some(EKU_SMARTCARD_LOGON.to_vec()),
        _ => {}
    }
    let arcs: Vec<u64> = text
        .split('.')
        .map(|a| a.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return None;
    }
    let mut out = Vec::new();
    encode_arc(&mut out, arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        encode_arc(&mut out, arc);
    }
    Some(out)
}

fn encode_arc(out: &mut Vec<u8>, mut arc: u64) {
    let mut bytes = vec![(arc & 0x7f) as u8];
    arc >>= 7;
    while arc > 0 {
        bytes.push((arc & 0x7f) as u8 | 0x80);
        arc >>= 7;
    }
    out.extend(bytes.iter().rev());
}

/// The dotted form of DER OID contents, for messages.
pub fn oid_text(der: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value = 0u64;
    for &b in der {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    let dotted: Vec<String> = arcs.iter().map(u64::to_string).collect();
    match der {
        EKU_CLIENT_AUTH => "client_auth".into(),
        EKU_SERVER_AUTH => "server_auth".into(),
        EKU_SMARTCARD_LOGON => "smartcard_logon".into(),
        _ => dotted.join("."),
    }
}

/// CRLs and OCSP travel over plain HTTP (RFC 5280 §4.2.1.13, RFC 6960 App. A); they are signed.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("{url:?} must be an http:// URL with a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TrustStoreConfig, (String, String)> {
        let raw: RawTrustStore =
            toml::from_str(text).map_err(|e| ("toml".into(), e.to_string()))?;
        TrustStoreConfig::check(raw, Path::new("/etc/vouch"))
    }

    const MINIMAL: &str = "name = \"cards\"\nshared = true\nroots = [\"root.pem\"]\n\
                           binding = \"upn\"\namr = \"sc\"\n";

    #[test]
    fn a_minimal_store_defaults_to_client_auth_and_no_ocsp() {
        let store = parse(MINIMAL).unwrap();
        assert_eq!(store.ekus, vec![EKU_CLIENT_AUTH.to_vec()]);
        assert_eq!(store.ocsp, OcspPolicy::Off);
        assert_eq!(store.roots, vec![PathBuf::from("/etc/vouch/root.pem")]);
        assert_eq!(store.scope, TenantScope::Shared);
        assert_eq!(store.methods, vec![Method::SmartCard]);
    }

    #[test]
    fn a_store_names_the_certificate_flows_it_serves() {
        let both = format!("{MINIMAL}methods = [\"mobile_pki\", \"smart_card\"]\n");
        let store = parse(&both).unwrap();
        assert_eq!(store.methods, vec![Method::MobilePki, Method::SmartCard]);
    }

    #[test]
    fn empty_unknown_repeated_or_non_certificate_flows_are_refused() {
        let lists = [
            "[]",
            "[\"totp\"]",
            "[\"smartcard\"]",
            "[\"smart_card\", \"smart_card\"]",
            "[\"\"]",
        ];
        for list in lists {
            let (key, problem) = parse(&format!("{MINIMAL}methods = {list}\n")).unwrap_err();
            assert_eq!(key, "methods", "{list}: {problem}");
            assert!(
                problem.contains("smart_card") || problem.contains("twice"),
                "{problem}"
            );
        }
        assert!(parse(&format!("{MINIMAL}methods = \"smart_card\"\n")).is_err());
    }

    #[test]
    fn dotted_ekus_encode_as_der_and_print_back() {
        assert_eq!(eku_oid("1.3.6.1.5.5.7.3.2").unwrap(), EKU_CLIENT_AUTH);
        assert_eq!(
            oid_text(&eku_oid("1.3.6.1.4.1.311.99999").unwrap()),
            "1.3.6.1.4.1.311.99999"
        );
        assert_eq!(eku_oid("3.1"), None);
        assert_eq!(eku_oid("client"), None);
    }

    #[test]
    fn store_sections_with_mistakes_name_the_key_to_fix() {
        let cases = [
            (
                MINIMAL.replace("shared = true", "shared = false"),
                "tenants",
            ),
            (MINIMAL.replace("\"cards\"", "\"a b\""), "name"),
            (MINIMAL.replace("[\"root.pem\"]", "[]"), "roots"),
            (format!("{MINIMAL}ekus = [\"any\"]\n"), "ekus"),
            (
                format!("{MINIMAL}crl_urls = [\"ftp://x/y.crl\"]\n"),
                "crl_urls",
            ),
            (
                format!("{MINIMAL}crl_refresh_secs = 1\n"),
                "crl_refresh_secs",
            ),
            (format!("{MINIMAL}tenants = [\"not-a-guid\"]\n"), "tenants"),
        ];
        for (text, key) in cases {
            let (k, problem) = parse(&text).unwrap_err();
            assert_eq!(k, key, "{text}: {problem}");
            assert!(!problem.is_empty());
        }
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(parse(&format!("{MINIMAL}colour = 1\n")).is_err());
        assert!(parse(&MINIMAL.replace("\"sc\"", "\"card\"")).is_err());
        assert!(parse(&MINIMAL.replace("\"upn\"", "\"browser\"")).is_err());
    }

    #[test]
    fn enrolled_certificates_need_the_enrolled_binding_and_a_fingerprint() {
        let entry = "[[enrolled]]\ntid = \"00000000-0000-0000-0000-000000000001\"\n\
                     oid = \"00000000-0000-0000-0000-000000000002\"\n";
        let good = format!(
            "{}{entry}sha256 = \"{}\"\n",
            MINIMAL.replace("upn", "enrolled"),
            "ab".repeat(32)
        );
        assert_eq!(parse(&good).unwrap().enrolled.len(), 1);
        let short = format!(
            "{}{entry}sha256 = \"abcd\"\n",
            MINIMAL.replace("upn", "enrolled")
        );
        assert_eq!(parse(&short).unwrap_err().0, "enrolled[0].sha256");
        let wrong_rule = format!("{MINIMAL}{entry}sha256 = \"{}\"\n", "ab".repeat(32));
        assert_eq!(parse(&wrong_rule).unwrap_err().0, "enrolled");
    }
}
