//! The appliance's configuration: a TOML file read once at start, checked whole, and turned
//! into a [`Config`] the rest of the program trusts.
//!
//! With no file every setting has an embedded default, so `vouch serve` runs as it is. A bad
//! file stops the start with a message that names the file, the key and what would be valid;
//! the binary exits with status 64 (EX_USAGE).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::entra::Cloud;
use crate::jose::hint::is_guid;

mod fido;
pub use fido::{TenantFido, parse_aaguid};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_ISSUER: &str = "https://localhost:8443";

/// A configuration problem, told the way an operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {key}: {problem}")]
pub struct ConfigError {
    pub source_name: String,
    pub key: String,
    pub problem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    signer: RawSigner,
    #[serde(default)]
    hint: RawHint,
    #[serde(default)]
    transaction: RawTransaction,
    #[serde(default)]
    otp: RawOtp,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, rename = "tenant")]
    tenants: Vec<RawTenant>,
    #[serde(default, rename = "trust_store")]
    trust_stores: Vec<crate::pki::config::RawTrustStore>,
    #[serde(default)]
    audit: crate::audit::RawAudit,
    #[serde(default)]
    admin: crate::admin::config::RawAdmin,
    #[serde(default)]
    metrics: crate::oversight::metrics::RawMetrics,
    #[serde(default)]
    fido: fido::RawFido,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Vec<SocketAddr>>,
    issuer: Option<String>,
    state_dir: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    client_cert_listen: Option<SocketAddr>,
    client_cert_url: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    kind: Option<SignerKind>,
    workers: Option<usize>,
    max_in_flight: Option<usize>,
    backend: Option<Vec<crate::signer::backend::RawBackend>>,
    rotation_overlap_hours: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHint {
    max_age_secs: Option<i64>,
    clock_skew_secs: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransaction {
    ttl_secs: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOtp {
    max_failures: Option<u32>,
    lockout_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    handshake_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_header_bytes: Option<usize>,
    max_signins_in_flight: Option<usize>,
    max_failures_per_source: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    cloud: Cloud,
    app_id: String,
    client_id: String,
    #[serde(default)]
    accept_client_id_audience: bool,
    #[serde(default)]
    test_authority: Option<RawAuthority>,
    #[serde(default)]
    fido: fido::RawTenantFido,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    url: String,
    ca_file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SignerKind {
    /// An RSA-2048 key kept in the state directory.
    #[default]
    Software,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source_name: String,
    pub listen: Vec<SocketAddr>,
    pub issuer: String,
    pub state_dir: PathBuf,
    /// Certificate and key files; when absent, a self-signed pair in the state directory.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The listener that asks browsers for a client certificate (smart-card sign-in).
    pub client_cert: Option<ClientCertListener>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
    pub signer: SignerKind,
    /// Threads that sign at once; by default one per core.
    pub signer_workers: usize,
    pub signer_max_in_flight: usize,
    /// Where the signing keys are (`[[signer.backend]]`) and how rotations overlap.
    pub signing: crate::signer::backend::Signing,
    pub hint_max_age: i64,
    pub clock_skew: i64,
    pub transaction_ttl: i64,
    pub otp_max_failures: u32,
    pub otp_lockout_secs: u64,
    pub limits: Limits,
    pub tenants: Vec<Tenant>,
    /// `[[trust_store]]`: roots, rules and revocation sources for certificate factors.
    pub trust_stores: Vec<crate::pki::TrustStoreConfig>,
    /// The audit trail, admin socket and metrics listener.
    pub operations: crate::oversight::Operations,
    /// Where WebAuthn ceremonies are scoped: the RP ID and the origins pages run on.
    pub fido: crate::factor::webauthn::RelyingParty,
}

/// `[server] client_cert_listen` and `client_cert_url`: where the smart-card listener binds
/// and the `https://host[:port]` origin browsers reach it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertListener {
    pub listen: SocketAddr,
    pub origin: String,
}

/// What one client may hold and how long it may take, so that slow or greedy clients cannot
/// starve the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// To finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// To send a request's headers, counted from when the connection is ready for them.
    pub header_timeout: Duration,
    /// To send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at once; past this, new ones are closed on accept.
    pub max_connections: usize,
    /// Bytes of request headers.
    pub max_header_bytes: usize,
    /// Sign-in requests being worked on at once; past this, new sign-ins get 503.
    pub max_signins_in_flight: usize,
    /// Wrong codes from one source address, for any users, before it is refused for a while.
    pub max_failures_per_source: u32,
}

impl Limits {
    /// Whether the limits the connection loop applies are the same; those take a restart.
    pub fn same_connections(&self, other: &Limits) -> bool {
        let connection = |l: &Limits| {
            (
                l.handshake_timeout,
                l.header_timeout,
                l.idle_timeout,
                l.max_connections,
                l.max_header_bytes,
            )
        };
        connection(self) == connection(other)
    }

    fn from_raw(raw: RawLimits) -> Result<Limits, (&'static str, String)> {
        let secs = |key, value: Option<u64>, default, max| {
            ranged(key, value.unwrap_or(default), 1, max).map(Duration::from_secs)
        };
        Ok(Limits {
            handshake_timeout: secs("handshake_timeout_secs", raw.handshake_timeout_secs, 10, 60)?,
            header_timeout: secs("header_timeout_secs", raw.header_timeout_secs, 10, 60)?,
            body_timeout: secs("body_timeout_secs", raw.body_timeout_secs, 10, 60)?,
            idle_timeout: secs("idle_timeout_secs", raw.idle_timeout_secs, 60, 600)?,
            max_connections: ranged(
                "max_connections",
                raw.max_connections.unwrap_or(10_000),
                16,
                1_000_000,
            )?,
            max_header_bytes: ranged(
                "max_header_bytes",
                raw.max_header_bytes.unwrap_or(16 * 1024),
                8192,
                64 * 1024,
            )?,
            max_signins_in_flight: ranged(
                "max_signins_in_flight",
                raw.max_signins_in_flight.unwrap_or(1024),
                4,
                100_000,
            )?,
            max_failures_per_source: ranged(
                "max_failures_per_source",
                raw.max_failures_per_source.unwrap_or(50),
                5,
                10_000,
            )?,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_raw(RawLimits::default()).unwrap_or_else(|(k, p)| unreachable!("{k}: {p}"))
    }
}

fn ranged<T>(key: &'static str, value: T, min: T, max: T) -> Result<T, (&'static str, String)>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err((key, format!("must be {min} to {max}")));
    }
    Ok(value)
}

/// An Entra tenant onboarded to this appliance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub cloud: Cloud,
    pub app_id: String,
    pub client_id: String,
    pub accept_client_id_audience: bool,
    /// A lab or test stand-in for the cloud's Entra host.
    pub test_authority: Option<TestAuthority>,
    /// What the tenant demands of security keys.
    pub fido: TenantFido,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestAuthority {
    /// `https://host[:port]`, without a path.
    pub url: String,
    pub ca_file: PathBuf,
}

impl Tenant {
    /// The scheme and host that sign this tenant's hints: the cloud's, unless a test
    /// authority stands in for it.
    pub fn authority(&self) -> String {
        match &self.test_authority {
            Some(a) => a.url.clone(),
            None => format!("https://{}", self.cloud.host()),
        }
    }

    /// The `iss` every hint of this tenant must carry (protocol reference §4.4 step 6).
    pub fn hint_issuer(&self) -> String {
        format!("{}/{}/v2.0", self.authority(), self.id)
    }
}

impl Config {
    /// The configuration used when no file is given.
    pub fn embedded() -> Config {
        let raw: RawConfig = RawConfig {
            server: RawServer::default(),
            signer: RawSigner::default(),
            hint: RawHint::default(),
            transaction: RawTransaction::default(),
            otp: RawOtp::default(),
            limits: RawLimits::default(),
            tenants: Vec::new(),
            trust_stores: Vec::new(),
            audit: Default::default(),
            admin: Default::default(),
            metrics: Default::default(),
            fido: Default::default(),
        };
        let cwd = PathBuf::from(".");
        Config::from_raw(raw, "<embedded defaults>", &cwd).unwrap_or_else(|e| unreachable!("{e}"))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            key: "(file)".into(),
            problem: format!("cannot read: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Config::parse(&text, &name, &base)
    }

    /// Parses TOML text; relative paths in it are taken from `base`.
    pub fn parse(text: &str, source_name: &str, base: &Path) -> Result<Config, ConfigError> {
        let err = |key: String, problem: String| ConfigError {
            source_name: source_name.to_owned(),
            key,
            problem,
        };
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| err("(syntax)".into(), one_line(&e.to_string())))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            err(key, one_line(&e.into_inner().to_string()))
        })?;
        Config::from_raw(raw, source_name, base)
    }

    fn from_raw(raw: RawConfig, source_name: &str, base: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            source_name: source_name.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen = raw.server.listen.unwrap_or_else(|| vec![default_listen()]);
        if listen.is_empty() {
            return Err(err(
                "server.listen",
                "give at least one address, e.g. \"127.0.0.1:8443\"".into(),
            ));
        }
        let issuer = raw
            .server
            .issuer
            .unwrap_or_else(|| DEFAULT_ISSUER.to_owned());
        check_issuer(&issuer).map_err(|p| err("server.issuer", p))?;

        let state_dir = match raw.server.state_dir {
            Some(dir) => resolve(dir),
            None => default_state_dir(),
        };
        let tls = match (raw.server.tls_cert, raw.server.tls_key) {
            (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
            (None, None) => None,
            (Some(_), None) => return Err(err("server.tls_key", "set it with tls_cert".into())),
            (None, Some(_)) => return Err(err("server.tls_cert", "set it with tls_key".into())),
        };

        let client_cert = match (raw.server.client_cert_listen, raw.server.client_cert_url) {
            (Some(addr), Some(url)) => {
                let origin = check_origin(&url).map_err(|p| err("server.client_cert_url", p))?;
                if addr.port() != 0 && listen.contains(&addr) {
                    let why = "must differ from every address in server.listen";
                    return Err(err("server.client_cert_listen", why.into()));
                }
                Some(ClientCertListener {
                    listen: addr,
                    origin,
                })
            }
            (None, None) => None,
            (Some(_), None) => {
                let why = "set it with client_cert_listen: the origin browsers reach that at";
                return Err(err("server.client_cert_url", why.into()));
            }
            (None, Some(_)) => {
                let why = "set it with client_cert_url, e.g. \"0.0.0.0:8444\"";
                return Err(err("server.client_cert_listen", why.into()));
            }
        };

        let max_body_bytes = raw.server.max_body_bytes.unwrap_or(64 * 1024);
        if !(4096..=1024 * 1024).contains(&max_body_bytes) {
            return Err(err(
                "server.max_body_bytes",
                "must be 4096 to 1048576".into(),
            ));
        }
        let hint_max_age = raw.hint.max_age_secs.unwrap_or(600);
        let clock_skew = raw.hint.clock_skew_secs.unwrap_or(300);
        if !(60..=3600).contains(&hint_max_age) {
            return Err(err(
                "hint.max_age_secs",
                "must be 60 to 3600 seconds".into(),
            ));
        }
        if !(0..=600).contains(&clock_skew) {
            return Err(err(
                "hint.clock_skew_secs",
                "must be 0 to 600 seconds".into(),
            ));
        }
        let transaction_ttl = raw.transaction.ttl_secs.unwrap_or(240);
        if !(30..=290).contains(&transaction_ttl) {
            let why = "must be 30 to 290 seconds, inside Entra's 5-minute window";
            return Err(err("transaction.ttl_secs", why.into()));
        }
        let otp_max_failures = raw.otp.max_failures.unwrap_or(5);
        if !(1..=20).contains(&otp_max_failures) {
            return Err(err("otp.max_failures", "must be 1 to 20".into()));
        }
        let signer_max_in_flight = raw.signer.max_in_flight.unwrap_or(256);
        if !(1..=4096).contains(&signer_max_in_flight) {
            return Err(err("signer.max_in_flight", "must be 1 to 4096".into()));
        }

        let limits =
            Limits::from_raw(raw.limits).map_err(|(k, p)| err(&format!("limits.{k}"), p))?;

        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let signer_workers = raw.signer.workers.unwrap_or(cores);
        if !(1..=256).contains(&signer_workers) {
            return Err(err("signer.workers", "must be 1 to 256".into()));
        }
        let signing = crate::signer::backend::Signing::from_raw(
            raw.signer.backend,
            raw.signer.rotation_overlap_hours,
            signer_workers,
            &resolve,
        )
        .map_err(|(k, p)| err(&format!("signer.{k}"), p))?;

        let mut tenants: Vec<Tenant> = Vec::with_capacity(raw.tenants.len());
        for (i, t) in raw.tenants.into_iter().enumerate() {
            let tenant =
                check_tenant(t, &resolve).map_err(|(k, p)| err(&format!("tenant[{i}].{k}"), p))?;
            if tenants.iter().any(|seen| seen.id == tenant.id) {
                return Err(err(
                    &format!("tenant[{i}].id"),
                    format!("{} is listed twice", tenant.id),
                ));
            }
            tenants.push(tenant);
        }

        let trust_stores = crate::pki::TrustStoreConfig::check_all(raw.trust_stores, base)
            .map_err(|(k, p)| err(&k, p))?;
        let operations =
            crate::oversight::Operations::from_raw(raw.audit, raw.admin, raw.metrics, resolve)
                .map_err(|(k, p)| err(k, p))?;

        let fido = fido::relying_party(raw.fido, &issuer)
            .map_err(|(k, p)| err(&format!("fido.{k}"), p))?;

        Ok(Config {
            fido,
            source_name: source_name.to_owned(),
            listen,
            issuer,
            state_dir,
            tls,
            client_cert,
            max_body_bytes,
            shutdown_grace_secs: raw.server.shutdown_grace_secs.unwrap_or(10),
            signer: raw.signer.kind.unwrap_or_default(),
            signer_workers,
            signer_max_in_flight,
            signing,
            hint_max_age,
            clock_skew,
            transaction_ttl,
            otp_max_failures,
            otp_lockout_secs: raw.otp.lockout_secs.unwrap_or(300),
            limits,
            tenants,
            trust_stores,
            operations,
        })
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

/// systemd's `StateDirectory=` when run as a unit, else `vouch-state` in the working directory.
fn default_state_dir() -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY") {
        Some(dirs) => {
            let first = dirs
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_owned();
            PathBuf::from(first)
        }
        None => PathBuf::from("vouch-state"),
    }
}

fn check_tenant(
    t: RawTenant,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<Tenant, (&'static str, String)> {
    if !is_guid(&t.id) {
        return Err((
            "id",
            format!(
                "{:?} is not a tenant GUID like 14c2f153-90a7-4689-9db7-9543bf084dad",
                t.id
            ),
        ));
    }
    if t.app_id.trim().is_empty() {
        return Err((
            "app_id",
            "give the App ID of the EAM app registration".into(),
        ));
    }
    if t.client_id.trim().is_empty() {
        return Err((
            "client_id",
            "give the Client ID configured in the tenant's EAM".into(),
        ));
    }
    let test_authority = match t.test_authority {
        None => None,
        Some(a) => {
            check_authority_url(&a.url).map_err(|p| ("test_authority.url", p))?;
            let ca_file = resolve(a.ca_file);
            if !ca_file.is_file() {
                return Err((
                    "test_authority.ca_file",
                    format!("{} is not a readable file", ca_file.display()),
                ));
            }
            Some(TestAuthority {
                url: a.url.trim_end_matches('/').to_owned(),
                ca_file,
            })
        }
    };
    let id = t.id.to_ascii_lowercase();
    Ok(Tenant {
        name: t.name.unwrap_or_else(|| id.clone()),
        id,
        cloud: t.cloud,
        app_id: t.app_id,
        client_id: t.client_id,
        accept_client_id_audience: t.accept_client_id_audience,
        test_authority,
        fido: fido::tenant_fido(t.fido, resolve)?,
    })
}

/// Entra compares the issuer character for character with the discovery document and
/// tokens (protocol reference §6.1): HTTPS, no query or fragment, no trailing slash, and no
/// explicit default port.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let Some(rest) = issuer.strip_prefix("https://") else {
        return Err(format!("{issuer:?} must start with https://"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{issuer:?} has no host"));
    }
    if issuer.contains(['?', '#']) || issuer.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "{issuer:?} must not contain a query, fragment or spaces"
        ));
    }
    if issuer.ends_with('/') {
        return Err(format!(
            "{issuer:?} must not end with '/'; use {:?}",
            issuer.trim_end_matches('/')
        ));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.ends_with(":443") {
        return Err(format!("{issuer:?} must not name the default port 443"));
    }
    Ok(())
}

/// An `https://host[:port]` origin, with at most a trailing `/`; answered without it.
fn check_origin(url: &str) -> Result<String, String> {
    let bad = || format!("{url:?} must be an https://host[:port] origin, without a path");
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none();
    if uri.scheme_str() != Some("https") || uri.host().is_none() || !path_ok {
        return Err(bad());
    }
    if url.contains('@') || url.contains('#') {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn check_authority_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("{url:?} must start with https://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!("{url:?} must be https://host[:port] with no path"));
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = r#"
        [[tenant]]
        id = "14C2F153-90A7-4689-9DB7-9543BF084DAD"
        app_id = "600b719b-3766-4dc5-95a6-3c4a8dc31885"
        client_id = "6b3c0f7e-6a1e-4c2b-9f7a-2f4f8f4c9a10"
    "#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "vouch.toml", Path::new("/etc/vouch"))
    }

    #[test]
    fn embedded_defaults_listen_on_loopback_8443() {
        let c = Config::embedded();
        assert_eq!(c.listen, vec![default_listen()]);
        assert_eq!(c.issuer, DEFAULT_ISSUER);
        assert_eq!(
            c.discovery_url(),
            "https://localhost:8443/.well-known/openid-configuration"
        );
        assert!(c.tenants.is_empty());
    }

    #[test]
    fn tenant_ids_are_normalised_and_issuer_follows_the_cloud() {
        let c = parse(TENANT).expect("valid");
        let t = &c.tenants[0];
        assert_eq!(t.id, "14c2f153-90a7-4689-9db7-9543bf084dad");
        assert_eq!(
            t.hint_issuer(),
            "https://login.microsoftonline.com/14c2f153-90a7-4689-9db7-9543bf084dad/v2.0"
        );
        assert!(c.tenant("14c2f153-90a7-4689-9db7-9543bf084dad").is_some());
    }

    #[test]
    fn limits_default_when_absent_and_name_the_key_and_range_when_out_of_range() {
        let c = parse("").expect("valid");
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.limits.header_timeout, Duration::from_secs(10));

        let c = parse("[limits]\nidle_timeout_secs = 5\nmax_connections = 64").expect("valid");
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.max_connections, 64);

        for (text, key) in [
            (
                "[limits]\nheader_timeout_secs = 0",
                "limits.header_timeout_secs",
            ),
            (
                "[limits]\nmax_header_bytes = 1000000",
                "limits.max_header_bytes",
            ),
            ("[limits]\nmax_connections = 1", "limits.max_connections"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.problem.starts_with("must be "), "{e}");
        }
        let e = parse("[limits]\nmax_connections = -3").unwrap_err();
        assert_eq!(e.key, "limits.max_connections");
    }

    #[test]
    fn relative_paths_are_taken_from_the_config_directory() {
        let c = parse("[server]\nstate_dir = \"state\"").expect("valid");
        assert_eq!(c.state_dir, PathBuf::from("/etc/vouch/state"));
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = parse("[server]\nlisten_on = []").unwrap_err();
        assert_eq!(e.source_name, "vouch.toml");
        assert!(e.problem.contains("listen_on"), "{e}");
    }

    #[test]
    fn a_bad_cloud_lists_the_valid_ones() {
        let text = TENANT.replace("client_id", "cloud = \"moon\"\nclient_id");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.key, "tenant[0].cloud");
        assert!(
            e.problem.contains("global") && e.problem.contains("usgov"),
            "{e}"
        );
    }

    #[test]
    fn issuers_entra_would_reject_are_refused() {
        for bad in [
            "http://mfa.example.com",
            "https://mfa.example.com/",
            "https://mfa.example.com:443",
            "https://mfa.example.com?x=1",
            "https://",
        ] {
            let e = parse(&format!("[server]\nissuer = \"{bad}\"")).unwrap_err();
            assert_eq!(e.key, "server.issuer", "{bad}");
        }
        assert!(parse("[server]\nissuer = \"https://mfa.example.com:8443/t1\"").is_ok());
    }

    #[test]
    fn the_client_certificate_listener_needs_an_address_and_an_https_origin() {
        let both = "[server]\nclient_cert_listen = \"127.0.0.1:8444\"\n\
                    client_cert_url = \"https://cards.example.com:8444/\"";
        let listener = parse(both).expect("valid").client_cert.expect("listener");
        assert_eq!(listener.origin, "https://cards.example.com:8444");
        assert_eq!(parse("").expect("valid").client_cert, None);
        let cases = [
            (
                "client_cert_listen = \"127.0.0.1:8444\"",
                "server.client_cert_url",
            ),
            (
                "client_cert_url = \"https://c.example\"",
                "server.client_cert_listen",
            ),
            (
                "client_cert_listen = \"127.0.0.1:8443\"\nclient_cert_url = \"https://c.example\"",
                "server.client_cert_listen",
            ),
        ];
        for (extra, key) in cases {
            assert_eq!(
                parse(&format!("[server]\n{extra}")).unwrap_err().key,
                key,
                "{extra}"
            );
        }
        for url in [
            "http://c.example",
            "https://c.example/path",
            "https://c.example?x",
            "c",
        ] {
            let text = format!(
                "[server]\nclient_cert_listen = \"127.0.0.1:9\"\n\
                                client_cert_url = \"{url}\""
            );
            assert_eq!(
                parse(&text).unwrap_err().key,
                "server.client_cert_url",
                "{url}"
            );
        }
    }

    #[test]
    fn malformed_values_name_their_key() {
        let cases = [
            (
                "[server]\nlisten = [\"not an address\"]",
                "server.listen[0]",
            ),
            ("[server]\nlisten = []", "server.listen"),
            ("[server]\nmax_body_bytes = 10", "server.max_body_bytes"),
            ("[transaction]\nttl_secs = 600", "transaction.ttl_secs"),
            ("[server]\ntls_cert = \"c.pem\"", "server.tls_key"),
            (
                "[[tenant]]\nid = \"x\"\napp_id = \"a\"\nclient_id = \"c\"",
                "tenant[0].id",
            ),
        ];
        for (text, key) in cases {
            assert_eq!(parse(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        for text in ["[server", "= 1", "[server]\nlisten = [1,", "\u{0}"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_tenant_listed_twice_is_refused() {
        let e = parse(&format!("{TENANT}{TENANT}")).unwrap_err();
        assert_eq!(e.key, "tenant[1].id");
    }

    #[test]
    fn the_example_configuration_is_valid_and_shows_the_defaults() {
        let text = include_str!("../vouch.example.toml");
        let example = parse(text).expect("vouch.example.toml");
        let embedded = Config::embedded();
        assert_eq!(example.listen, embedded.listen);
        assert_eq!(example.issuer, embedded.issuer);
        assert_eq!(example.max_body_bytes, embedded.max_body_bytes);
        assert_eq!(example.hint_max_age, embedded.hint_max_age);
        assert_eq!(example.transaction_ttl, embedded.transaction_ttl);
        assert_eq!(example.otp_max_failures, embedded.otp_max_failures);
        assert_eq!(example.signer_max_in_flight, embedded.signer_max_in_flight);
        assert_eq!(example.fido, embedded.fido);
        assert_eq!(example.tenants.len(), 1);
        assert_eq!(example.tenants[0].fido, TenantFido::default());
    }
}
