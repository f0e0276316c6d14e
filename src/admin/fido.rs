//! Security keys from the operator's side: `vouch enroll fido-link`, `vouch fido list` and
//! `vouch fido revoke`, and the admin commands `fido_link` and `fido_keys` behind them.
//!
//! Changes take the route [`super::change`] describes: through the running appliance's
//! admin socket, else made here and recorded on the audit trail. Listing reads the
//! credential store directly; it holds no secrets about keys.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::change::{self, Route};
use crate::app::App;
use crate::audit::Event;
use crate::config::Config;
use crate::eam::links::{self, EnrolLinks, Link};
use crate::jose::hint::is_guid;
use crate::store::{CredentialStore, FidoCredential};

/// The user a command is about.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// The user's directory (tenant) ID.
    #[arg(long, value_name = "TID")]
    tenant: String,
    /// The user's object ID in that directory.
    #[arg(long, value_name = "OID")]
    oid: String,
}

/// `vouch enroll fido-link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(flatten)]
    user: UserArgs,
    /// The user's UPN, shown on the enrolment page and kept to find the user by.
    #[arg(long, value_name = "UPN")]
    upn: Option<String>,
    /// How long the link works: 1m to 72h, e.g. 15m, 2h, 900s.
    #[arg(long, default_value = "15m", value_name = "TIME")]
    ttl: String,
}

#[derive(Debug, Subcommand)]
pub enum FidoCommand {
    /// List a user's security keys.
    List {
        #[command(flatten)]
        user: UserArgs,
    },
    /// Remove one of a user's security keys (--id), or all of them (--all).
    Revoke {
        #[command(flatten)]
        user: UserArgs,
        /// The credential ID `vouch fido list` shows.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

/// Why a command failed: the command line (exit 64) or the work.
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Other(String),
}

fn load(user: &UserArgs) -> Result<(Config, String, String), CliError> {
    let config = match &user.config {
        Some(path) => Config::load(path).map_err(|e| CliError::Usage(e.to_string()))?,
        None => Config::embedded(),
    };
    let (tid, oid) = checked_user(&user.tenant, &user.oid).map_err(CliError::Usage)?;
    if config.tenant(&tid).is_none() {
        eprintln!(
            "vouch: warning: tenant {tid} is not in {}",
            config.source_name
        );
    }
    Ok((config, tid, oid))
}

/// The IDs, checked to be GUIDs and lowercased.
pub fn checked_user(tid: &str, oid: &str) -> Result<(String, String), String> {
    if !is_guid(tid) {
        return Err(format!("tenant {tid:?} is not a directory ID (a GUID)"));
    }
    if !is_guid(oid) {
        return Err(format!("oid {oid:?} is not an object ID (a GUID)"));
    }
    Ok((tid.to_ascii_lowercase(), oid.to_ascii_lowercase()))
}

fn route(config: &Config) -> Result<Route, CliError> {
    crate::provision::ensure_dir(&config.state_dir).map_err(|e| CliError::Other(e.to_string()))?;
    change::route(config).map_err(CliError::Other)
}

fn enrolment(tid: &str, oid: &str, action: &str, uid: u32) -> Event {
    Event::Enrolment {
        tid: tid.into(),
        oid: oid.into(),
        method: "fido".into(),
        action: action.into(),
        uid,
    }
}

/// The address a link's token opens.
pub fn link_url(config: &Config, token: &str) -> String {
    format!("{}/eam/enrol?t={token}", config.issuer)
}

/// `vouch enroll fido-link`: prints the link.
pub fn issue_link(args: LinkArgs) -> Result<(), CliError> {
    let (config, tid, oid) = load(&args.user)?;
    let ttl = links::parse_ttl(&args.ttl).map_err(CliError::Usage)?;
    if let Some(upn) = &args.upn {
        crate::store::check_upn(upn).map_err(CliError::Usage)?;
    }
    let url = match route(&config)? {
        Route::Here { log, uid } => {
            let now = crate::app::Clock::default().now();
            let link = Link {
                tid: tid.clone(),
                oid: oid.clone(),
                upn: args.upn,
                expires: now + ttl,
                uid,
            };
            let token = EnrolLinks::new(&config.state_dir)
                .issue(link, now)
                .map_err(|e| CliError::Other(e.to_string()))?;
            change::record(&log, enrolment(&tid, &oid, "link", uid)).map_err(CliError::Other)?;
            link_url(&config, &token)
        }
        Route::Appliance { socket } => {
            let request = json!({
                "v": 1, "cmd": "fido_link", "tid": tid, "oid": oid, "upn": args.upn,
                "ttl_secs": ttl,
            });
            let data = change::ask(&socket, &request).map_err(CliError::Other)?;
            data["url"].as_str().unwrap_or_default().to_owned()
        }
    };
    println!(
        "Enrolment link for {oid} in {tid}, valid once for {}:",
        args.ttl.trim()
    );
    println!("{url}");
    Ok(())
}

/// `vouch fido list` and `vouch fido revoke`.
pub fn run(command: FidoCommand) -> Result<(), CliError> {
    match command {
        FidoCommand::List { user } => {
            let (config, tid, oid) = load(&user)?;
            let store = open_store(&config)?;
            let keys = store.fido(&tid, &oid);
            if keys.is_empty() {
                println!("{oid} in {tid} has no security keys");
            }
            let counters = crate::store::counters::read(&config.state_dir)
                .map_err(|e| CliError::Other(format!("security-key counters: {e}")))?;
            for key in keys {
                let count = counters.get(&key.id).copied().unwrap_or(key.sign_count);
                println!("{}", describe(&key, count));
            }
            Ok(())
        }
        FidoCommand::Revoke { user, id, all } => {
            let (config, tid, oid) = load(&user)?;
            revoke(&config, &tid, &oid, if all { None } else { id.as_deref() })
        }
    }
}

fn open_store(config: &Config) -> Result<CredentialStore, CliError> {
    crate::provision::ensure_dir(&config.state_dir).map_err(|e| CliError::Other(e.to_string()))?;
    CredentialStore::open(&config.state_dir).map_err(|e| CliError::Other(e.to_string()))
}

/// One line per key: ID, name, model, enrolment time and its latest counter, `count`.
fn describe(key: &FidoCredential, count: u32) -> String {
    let created = crate::signer::keyring::unix_time(key.created);
    format!(
        "{} {:?} aaguid={} enrolled={created} counter={}",
        key.id, key.name, key.aaguid, count
    )
}

fn revoke(config: &Config, tid: &str, oid: &str, id: Option<&str>) -> Result<(), CliError> {
    match route(config)? {
        Route::Here { log, uid } => {
            let store = open_store(config)?;
            let done = match id {
                Some(id) => store.revoke_fido(tid, oid, id).map(|()| true),
                None => store.revoke(tid, oid, crate::factor::Method::Fido),
            };
            match done.map_err(|e| CliError::Other(e.to_string()))? {
                true => change::record(&log, enrolment(tid, oid, "revoke", uid))
                    .map_err(CliError::Other)?,
                false => {
                    return Err(CliError::Other(format!(
                        "{oid} in {tid} has no security keys"
                    )));
                }
            }
        }
        Route::Appliance { socket } => {
            let request = json!({
                "v": 1, "cmd": "revoke", "tid": tid, "oid": oid, "method": "fido",
                "credential": id,
            });
            change::ask(&socket, &request).map_err(CliError::Other)?;
        }
    }
    println!(
        "security key{} revoked for {oid} in {tid}",
        if id.is_some() { "" } else { "s" }
    );
    Ok(())
}

/// The admin command `fido_link`: issues a link as the operator `uid`.
pub fn link(
    app: &App,
    tid: &str,
    oid: &str,
    upn: Option<String>,
    ttl_secs: i64,
    uid: u32,
) -> Result<(Value, Event), String> {
    let (tid, oid) = checked_user(tid, oid)?;
    if !(links::MIN_TTL_SECS..=links::MAX_TTL_SECS).contains(&ttl_secs) {
        return Err("ttl_secs must be 60 to 259200".into());
    }
    if let Some(upn) = &upn {
        crate::store::check_upn(upn)?;
    }
    let now = app.clock.now();
    let expires = now + ttl_secs;
    let link = Link {
        tid: tid.clone(),
        oid: oid.clone(),
        upn,
        expires,
        uid,
    };
    let token = app.links.issue(link, now).map_err(|e| e.to_string())?;
    let answer = json!({
        "tid": tid, "oid": oid, "url": link_url(&app.config, &token), "expires": expires,
    });
    Ok((answer, enrolment(&tid, &oid, "link", uid)))
}

/// The admin command `fido_keys`: a user's keys, without their public keys.
pub fn keys(app: &App, tid: &str, oid: &str) -> Result<Value, String> {
    let (tid, oid) = checked_user(tid, oid)?;
    let keys: Vec<Value> = app
        .store
        .fido(&tid, &oid)
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "name": k.name, "aaguid": k.aaguid, "created": k.created,
                "sign_count": app.fido_counters.current(&k.id, k.sign_count),
                "backup_eligible": k.backup_eligible,
            })
        })
        .collect();
    Ok(json!({ "tid": tid, "oid": oid, "keys": keys }))
}
