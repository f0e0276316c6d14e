//! What operators run against the signing keys: `vouch keys` (the key ring and its
//! rotation) and `vouch hsm` (the devices, their keys and a test signature).
//!
//! These commands open the same backends the appliance opens, so a wrong PIN, a missing
//! module or a key that is not on every token shows here before it stops a start. Only
//! `vouch keys stage` and `vouch keys promote` write the key ring; a running appliance reads
//! it again within a minute ([`watch_ring`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use vouch_hsm::certificate::CertificateInfo;

use super::backend::{KeySetError, KeyStore, key_ref};
use super::keyring::{KeyLocation, KeyRing, RingEntry, unix_time};
use super::{open_stores, published_from_certificate, ring_for};
use crate::app::App;
use crate::config::Config;
use crate::provision;

/// How often a running appliance reads the key ring again.
const RING_POLL: Duration = Duration::from_secs(60);

/// Why an admin command failed: the operator's input, or the keys and devices.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Bad usage (exit 64).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Keys(#[from] KeySetError),
    #[error("{0}")]
    Failed(String),
}

/// `vouch hsm` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum HsmCommand {
    /// Show each backend (module, token, slot, PIN state) and each published key with its
    /// certificate.
    Status {
        /// TOML configuration file; embedded defaults when omitted.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
    /// Sign with the active key on every backend and verify against its certificate.
    TestSign {
        /// TOML configuration file; embedded defaults when omitted.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

/// Which key `vouch keys stage` adds: a new software key, or a device key by label or id.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct StageArgs {
    /// The device key's label (CKA_LABEL); the key must be on every configured device.
    #[arg(long, conflicts_with = "id")]
    pub label: Option<String>,
    /// The device key's id in hex (CKA_ID), e.g. 02.
    #[arg(long)]
    pub id: Option<String>,
    /// A PEM certificate for the device key, when the devices hold none.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<std::path::PathBuf>,
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, AdminError> {
    match path {
        Some(p) => Config::load(p).map_err(|e| AdminError::Usage(e.to_string())),
        None => Ok(Config::embedded()),
    }
}

/// The key ring now, one line per key: state, kid, where it is, and its next transition.
pub fn list(config: &Config, now: i64) -> Result<String, AdminError> {
    let stores = open_stores(config)?;
    let ring = ring_for(config, &stores, now)?;
    Ok(describe(&ring, now))
}

fn describe(ring: &KeyRing, now: i64) -> String {
    let mut out = String::new();
    let mut keys: Vec<&RingEntry> = ring.keys.iter().collect();
    keys.sort_by_key(|k| (k.state(now), k.published_at));
    for k in keys {
        let next = match k.next_transition(now) {
            Some((state, at)) => format!("{} at {}", state.name(), unix_time(at)),
            None => "stays until a new key is staged".into(),
        };
        out.push_str(&format!(
            "{:<9}{}  {}  ({next})\n",
            k.state(now).name(),
            k.kid,
            k.key
        ));
    }
    out
}

/// Stages the next key: published now, signing after the overlap.
pub fn stage(config: &Config, args: &StageArgs, now: i64) -> Result<String, AdminError> {
    let entry = stage_entry(config, args, now)?;
    Ok(staged_text(config, &entry))
}

/// What `vouch keys stage` prints about the key it staged.
pub fn staged_text(config: &Config, entry: &RingEntry) -> String {
    format!(
        "staged   {}  {}\npublished now; it signs from {} (after {} h, while Entra's cached \
         JWKS catches up). A running vouch picks it up within a minute.\n",
        entry.kid,
        entry.key,
        unix_time(entry.signs_from),
        config.signing.overlap_secs / 3600
    )
}

/// Stages the next key and stores the ring; returns the staged key's entry.
pub fn stage_entry(config: &Config, args: &StageArgs, now: i64) -> Result<RingEntry, AdminError> {
    let stores = open_stores(config)?;
    let mut ring = ring_for(config, &stores, now)?;
    ring.can_stage(now)
        .map_err(|e| AdminError::Usage(e.to_string()))?;
    let software = config
        .signing
        .backends
        .iter()
        .any(|b| b.device == super::backend::Device::Software);
    let location = match (&args.label, &args.id) {
        (None, None) if software => {
            let signing = config.state_dir.join("signing");
            let name = (0..)
                .map(|n| match n {
                    0 => format!("key-{now}"),
                    n => format!("key-{now}-{n}"),
                })
                .find(|name| !signing.join(name).exists())
                .unwrap_or_else(|| unreachable!("an unbounded range"));
            provision::new_software_key(&config.state_dir, &name).map_err(KeySetError::from)?;
            KeyLocation::Software { dir: name }
        }
        (None, None) => {
            return Err(AdminError::Usage(
                "the signer is a device: name the new key with --label or --id (make it on \
                 every device first)"
                    .into(),
            ));
        }
        _ if software => {
            return Err(AdminError::Usage(
                "--label and --id name device keys, but the signer is software; configure a \
                 [[signer.backend]] first"
                    .into(),
            ));
        }
        (label, id) => {
            key_ref(label.clone(), id.clone()).map_err(|(_, p)| AdminError::Usage(p))?;
            KeyLocation::Device {
                label: label.clone(),
                id: id.clone(),
                certificate: args.certificate.clone(),
            }
        }
    };
    let kid = same_key_everywhere(&stores, &location)?;
    let overlap = config.signing.overlap_secs;
    let entry = ring
        .stage(kid, location, now, overlap)
        .map_err(|e| AdminError::Usage(e.to_string()))?
        .clone();
    ring.store(&config.state_dir).map_err(KeySetError::from)?;
    Ok(entry)
}

/// The kid of the key at `location`, which every store must hold alike.
fn same_key_everywhere(
    stores: &[Arc<dyn KeyStore>],
    location: &KeyLocation,
) -> Result<String, AdminError> {
    let mut kid: Option<String> = None;
    for store in stores {
        let key = store.key(location)?;
        let found = published_from_certificate(key.certificate_der())
            .map_err(KeySetError::from)?
            .kid;
        if let Some(first) = &kid
            && *first != found
        {
            return Err(AdminError::Failed(format!(
                "{location} is key {found} on {} but key {first} on the first backend; every \
                 backend must hold the same key",
                store.name()
            )));
        }
        kid = Some(found);
    }
    kid.ok_or_else(|| AdminError::Failed("no signer backend is configured".into()))
}

/// Makes the staged key sign now.
pub fn promote(config: &Config, now: i64) -> Result<String, AdminError> {
    let entry = promote_entry(config, now)?;
    Ok(promoted_text(config, &entry, now))
}

/// What `vouch keys promote` prints about the key that signs now.
pub fn promoted_text(config: &Config, entry: &RingEntry, now: i64) -> String {
    let mut out = format!("signing  {}  {}\n", entry.kid, entry.key);
    if let Some(warning) = early_promotion(config, entry, now) {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out.push_str("A running vouch signs with it within a minute.\n");
    out
}

/// Makes the staged key sign now and stores the ring; returns the promoted key's entry.
pub fn promote_entry(config: &Config, now: i64) -> Result<RingEntry, AdminError> {
    let stores = open_stores(config)?;
    let mut ring = ring_for(config, &stores, now)?;
    let entry = ring
        .promote(now, config.signing.overlap_secs)
        .map_err(|e| AdminError::Usage(e.to_string()))?
        .clone();
    ring.store(&config.state_dir).map_err(KeySetError::from)?;
    Ok(entry)
}

/// The warning for a key promoted before Entra's cached JWKS surely holds it.
pub fn early_promotion(config: &Config, entry: &RingEntry, now: i64) -> Option<String> {
    let published_for = now - entry.published_at;
    (published_for < config.signing.overlap_secs).then(|| {
        format!(
            "it was published only {} h ago; Entra may still hold a JWKS without it and \
             refuse its tokens until it refreshes",
            published_for / 3600
        )
    })
}

/// `vouch hsm status` and `vouch hsm test-sign`: the report, and whether all was well.
pub fn hsm(command: &HsmCommand, now: i64) -> Result<(String, bool), AdminError> {
    match command {
        HsmCommand::Status { config } => {
            let config = load_config(config.as_deref())?;
            status(&config, now)
        }
        HsmCommand::TestSign { config } => {
            let config = load_config(config.as_deref())?;
            test_sign(&config, now)
        }
    }
}

fn status(config: &Config, now: i64) -> Result<(String, bool), AdminError> {
    let stores = open_stores(config)?;
    let ring = ring_for(config, &stores, now)?;
    let mut out = String::new();
    let mut ok = true;
    for (i, (store, backend)) in stores.iter().zip(&config.signing.backends).enumerate() {
        out.push_str(&format!(
            "backend {i}  {} ({} workers)\n",
            store.name(),
            backend.workers
        ));
        for (label, value) in store.status() {
            out.push_str(&format!("  {label:<10} {value}\n"));
        }
        for entry in ring.published(now) {
            out.push_str(&format!(
                "  key        {} {}\n",
                entry.state(now).name(),
                entry.key
            ));
            match certificate_of(store.as_ref(), entry) {
                Ok(info) => {
                    let expiry = if info.not_after < now {
                        ok = false;
                        "  EXPIRED"
                    } else {
                        ""
                    };
                    out.push_str(&format!("    subject  {}\n", info.subject));
                    out.push_str(&format!(
                        "    expires  {}{expiry}\n",
                        unix_time(info.not_after)
                    ));
                    out.push_str(&format!("    kid      {}\n", entry.kid));
                }
                Err(e) => {
                    ok = false;
                    out.push_str(&format!("    unusable: {e}\n"));
                }
            }
        }
    }
    Ok((out, ok))
}

fn certificate_of(store: &dyn KeyStore, entry: &RingEntry) -> Result<CertificateInfo, AdminError> {
    let der = store.certificate_der(&entry.key)?;
    CertificateInfo::from_der(&der).map_err(AdminError::Failed)
}

fn test_sign(config: &Config, now: i64) -> Result<(String, bool), AdminError> {
    let stores = open_stores(config)?;
    let ring = ring_for(config, &stores, now)?;
    let active = ring
        .active(now)
        .ok_or(AdminError::Keys(KeySetError::NoActiveKey))?;
    let mut out = String::new();
    let mut ok = true;
    let input = format!("vouch.test-sign.{now}");
    for store in &stores {
        match sign_and_verify(store.as_ref(), &active.key, input.as_bytes()) {
            Ok((info, took)) => out.push_str(&format!(
                "ok       {}: test signature by {} verified against {:?} in {} ms\n",
                store.name(),
                active.kid,
                info.subject,
                took.as_millis()
            )),
            Err(e) => {
                ok = false;
                out.push_str(&format!("FAILED   {}: {e}\n", store.name()));
            }
        }
    }
    Ok((out, ok))
}

fn sign_and_verify(
    store: &dyn KeyStore,
    location: &KeyLocation,
    input: &[u8],
) -> Result<(CertificateInfo, Duration), AdminError> {
    let key = store.key(location)?;
    let info = CertificateInfo::from_der(key.certificate_der()).map_err(AdminError::Failed)?;
    let started = Instant::now();
    let mut session = key.session().map_err(KeySetError::from)?;
    let signature = session.sign_rs256(input).map_err(KeySetError::from)?;
    let took = started.elapsed();
    let public = RsaPublicKeyComponents {
        n: &info.modulus,
        e: &info.exponent,
    };
    public
        .verify(&RSA_PKCS1_2048_8192_SHA256, input, &signature)
        .map_err(|_| {
            AdminError::Failed(format!(
                "the signature does not verify against the certificate {:?}",
                info.subject
            ))
        })?;
    Ok((info, took))
}

/// Reads the key ring again every minute so that a key staged or promoted with `vouch
/// keys` is published or signs without a restart; logs each change of the signing key.
pub async fn watch_ring(app: Arc<App>) {
    let mut tick = tokio::time::interval(RING_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signing = app.signer.published().kid;
    loop {
        tick.tick().await;
        let pool = app.signer.clone();
        let dir = app.config.state_dir.clone();
        match tokio::task::spawn_blocking(move || pool.refresh(&dir)).await {
            Ok(Ok(true)) => tracing::info!("key ring changed; published keys updated"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "key ring not reloaded; the last one stays"),
            Err(e) => tracing::warn!(error = %e, "key ring reload did not finish"),
        }
        let now = app.signer.published().kid;
        if now != signing {
            tracing::info!(from = %signing, to = %now, "the signing key changed by schedule");
            signing = now;
        }
    }
}
