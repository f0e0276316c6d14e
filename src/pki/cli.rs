//! The operator's certificate commands: `vouch cert verify`, `vouch cert inspect` and
//! `vouch crl status`.
//!
//! `cert verify` runs the same checks a sign-in does (CRLs are loaded and fetched first, OCSP
//! is asked per the store's policy) and prints the verdict with the reason to act on. Exit
//! status: 0 valid, 1 refused or undecided (revocation data unavailable), 64 bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rustls::pki_types::CertificateDer;

use super::binding::{self, ExpectedUser};
use super::certificate::{CertificateFacts, read_certificate_file};
use super::error::{CertificateError, Hex};
use super::store::{TrustStore, TrustStores};
use super::time::Timestamp;
use super::{Evidence, verify_chain};
use crate::config::Config;

/// sysexits.h EX_USAGE.
const EX_USAGE: u8 = 64;

/// The certificate commands, flattened into vouch's top-level commands.
#[derive(Subcommand)]
pub enum PkiCommand {
    /// Verify and inspect certificate chains.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Show the revocation sources of the trust stores.
    Crl {
        #[command(subcommand)]
        command: CrlCommand,
    },
}

#[derive(Subcommand)]
pub enum CertCommand {
    /// Verify a chain (leaf first, PEM or DER) against a trust store, as a sign-in would.
    Verify {
        #[command(flatten)]
        config: ConfigFile,
        /// The trust store to verify against.
        #[arg(long, value_name = "NAME")]
        trust_store: String,
        /// Verify at this instant (RFC 3339 UTC, e.g. 2026-12-04T09:00:00Z, or epoch seconds).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[command(flatten)]
        user: UserFlags,
        /// The chain file.
        chain: PathBuf,
    },
    /// Print what each certificate in a file says about itself.
    Inspect {
        /// The certificate file (PEM with one or more certificates, or DER).
        chain: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum CrlCommand {
    /// Load every CRL source now and print its age, next update, entries and state.
    Status {
        #[command(flatten)]
        config: ConfigFile,
        /// Judge staleness at this instant instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
}

#[derive(Args)]
pub struct ConfigFile {
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The user the certificate must be bound to; without these flags the binding is not checked.
#[derive(Args)]
pub struct UserFlags {
    /// The user's UPN, as Entra's hint gives it in preferred_username.
    #[arg(long, value_name = "UPN")]
    user: Option<String>,
    /// The user's tenant ID (with --oid, for enrolled bindings and the tenant check).
    #[arg(long, value_name = "TID", requires = "oid")]
    tid: Option<String>,
    /// The user's object ID.
    #[arg(long, value_name = "OID", requires = "tid")]
    oid: Option<String>,
}

/// A mistake in the command line or configuration, said with the fix.
struct Usage(String);

/// Runs a certificate command and gives the process's exit status.
pub fn run(command: PkiCommand) -> ExitCode {
    let outcome = match command {
        PkiCommand::Cert {
            command:
                CertCommand::Verify {
                    config,
                    trust_store,
                    at,
                    user,
                    chain,
                },
        } => verify(
            config.config.as_deref(),
            &trust_store,
            at.as_deref(),
            &user,
            &chain,
        ),
        PkiCommand::Cert {
            command: CertCommand::Inspect { chain },
        } => inspect(&chain),
        PkiCommand::Crl {
            command: CrlCommand::Status { config, at },
        } => crl_status(config.config.as_deref(), at.as_deref()),
    };
    match outcome {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("vouch: {message}");
            ExitCode::from(EX_USAGE)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, Usage> {
    match path {
        Some(path) => Config::load(path).map_err(|e| Usage(e.to_string())),
        None => Ok(Config::embedded()),
    }
}

fn instant(at: Option<&str>) -> Result<Timestamp, Usage> {
    match at {
        None => Ok(Timestamp::now()),
        Some(text) => Timestamp::parse(text).ok_or_else(|| {
            Usage(format!(
                "--at {text:?}: give RFC 3339 UTC like 2026-12-04T09:00:00Z, or epoch seconds"
            ))
        }),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Usage> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Usage(format!("cannot start the runtime: {e}")))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Usage> {
    read_certificate_file(path).map_err(|e| Usage(e.to_string()))
}

fn verify(
    config: Option<&Path>,
    name: &str,
    at: Option<&str>,
    user: &UserFlags,
    chain_path: &Path,
) -> Result<ExitCode, Usage> {
    let config = load_config(config)?;
    let at = instant(at)?;
    let Some(store_config) = config.trust_stores.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = config
            .trust_stores
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let known = if names.is_empty() {
            "none is configured".into()
        } else {
            names.join(", ")
        };
        return Err(Usage(format!(
            "no trust store {name:?} in {} ({known})",
            config.source_name
        )));
    };
    let chain = read_chain(chain_path)?;
    let store = TrustStore::load(store_config).map_err(|e| Usage(e.to_string()))?;
    let leaf = CertificateFacts::read(&chain[0]).ok();

    let verdict = runtime()?.block_on(async {
        store.refresh().await;
        let verified = verify_chain(&store, &chain, at).await?;
        check_user(&store, &chain, user)?;
        Ok::<_, CertificateError>(verified.revocation)
    });

    if let Some(leaf) = &leaf {
        println!("certificate  {} (serial {})", leaf.subject, leaf.serial);
        println!("issuer       {}", leaf.issuer);
    }
    println!("trust store  {name}, at {at}");
    match verdict {
        Ok(evidence) => {
            let binding = if user.user.is_some() || user.tid.is_some() {
                "bound to the user"
            } else {
                "binding not checked (give --user or --tid/--oid)"
            };
            println!("verdict      VALID: amr {}, {binding}", store.amr.as_str());
            println!("revocation   {}", evidence_text(&evidence));
            Ok(ExitCode::SUCCESS)
        }
        Err(CertificateError::Outage(outage)) => {
            println!("verdict      UNDECIDED: {outage}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            let reason = match &e {
                CertificateError::Refused(r) => r.to_string(),
                other => other.to_string(),
            };
            println!("verdict      REFUSED: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check_user(
    store: &TrustStore,
    chain: &[CertificateDer<'_>],
    user: &UserFlags,
) -> Result<(), CertificateError> {
    if user.user.is_none() && user.tid.is_none() {
        return Ok(());
    }
    let expected = ExpectedUser {
        tid: user.tid.as_deref().unwrap_or_default(),
        oid: user.oid.as_deref().unwrap_or_default(),
        upn: user.user.as_deref(),
    };
    if user.tid.is_some() && !store.serves(expected.tid) {
        let (store, tid) = (store.name.clone(), expected.tid.to_owned());
        return Err(super::Refusal::WrongTenant { store, tid }.into());
    }
    let facts = CertificateFacts::read(&chain[0])
        .map_err(|detail| super::Refusal::Malformed { index: 0, detail })?;
    binding::check(store, &facts, &expected)?;
    Ok(())
}

fn evidence_text(evidence: &Evidence) -> String {
    match evidence {
        Evidence::NotChecked => "not checked: the store has no CRL source and OCSP is off".into(),
        Evidence::Crl(sources) => format!("not revoked per CRL {}", sources.join(", ")),
        Evidence::Ocsp(responder) => format!("good per OCSP responder {responder}"),
    }
}

fn inspect(path: &Path) -> Result<ExitCode, Usage> {
    let chain = read_chain(path)?;
    for (i, cert) in chain.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("certificate {i}");
        match CertificateFacts::read(cert) {
            Ok(facts) => print_facts(&facts),
            Err(detail) => println!("  unreadable: {detail}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_facts(f: &CertificateFacts) {
    let list = |items: &[String]| {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items.join(", ")
        }
    };
    println!("  subject      {}", f.subject);
    println!("  issuer       {}", f.issuer);
    println!("  serial       {}", f.serial);
    println!("  valid        {} to {}", f.not_before, f.not_after);
    println!("  key          {}", f.key_type);
    println!("  CA           {}", if f.is_ca { "yes" } else { "no" });
    println!("  UPN          {}", list(&f.upns));
    println!("  email        {}", list(&f.emails));
    println!("  DNS          {}", list(&f.dns_names));
    let ekus = f
        .ekus
        .as_ref()
        .map_or_else(|| "(none: any purpose)".to_owned(), |e| list(e));
    println!("  EKU          {ekus}");
    println!("  CRL DP       {}", list(&f.crl_distribution_points));
    println!("  OCSP         {}", list(&f.ocsp_responders));
    println!("  SHA-256      {}", Hex(&f.sha256));
}

fn crl_status(config: Option<&Path>, at: Option<&str>) -> Result<ExitCode, Usage> {
    let config = load_config(config)?;
    let at = instant(at)?;
    if config.trust_stores.is_empty() {
        println!("no trust store is configured in {}", config.source_name);
        return Ok(ExitCode::SUCCESS);
    }
    let stores = TrustStores::load(&config.trust_stores).map_err(|e| Usage(e.to_string()))?;
    runtime()?.block_on(stores.refresh());
    let mut all_fresh = true;
    for store in stores.iter() {
        println!(
            "trust store {} (OCSP {:?}, CRL grace {} s)",
            store.name, store.ocsp_policy, store.crl_grace_secs
        );
        let crls = store.crls();
        if crls.sources.is_empty() {
            println!("  no CRL source");
        }
        for source in &crls.sources {
            all_fresh &= print_source(source, store.crl_grace_secs, at);
        }
        let (answers, failures) = store.ocsp.counts();
        if store.ocsp_policy != super::OcspPolicy::Off {
            println!(
                "  OCSP responders named by certificates; answers cached here: {answers}, \
                 failing: {failures}"
            );
        }
    }
    Ok(if all_fresh {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints one source; whether it is loaded and fresh.
fn print_source(source: &super::crl::SourceStatus, grace: i64, at: Timestamp) -> bool {
    println!("  {}", source.source);
    let fresh = match &source.crl {
        Some(crl) => {
            let stale = crl.is_stale(at, grace);
            let next = crl
                .next_update
                .map_or_else(|| "(none)".to_owned(), |n| n.to_string());
            println!("    issuer       {}", crl.issuer_text);
            println!(
                "    this update  {} ({} ago)",
                crl.this_update,
                age(at.0 - crl.this_update.0)
            );
            println!("    next update  {next}");
            println!("    entries      {}", crl.entries());
            if let Some(number) = &crl.number {
                println!("    CRL number   {number}");
            }
            println!(
                "    state        {}",
                if stale {
                    "STALE: certificates it covers are undecided"
                } else {
                    "fresh"
                }
            );
            !stale
        }
        None => {
            println!("    state        NOT LOADED: certificates it covers are undecided");
            false
        }
    };
    if let Some(error) = &source.last_error {
        println!("    last error   {error}");
    }
    fresh
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 0 => format!("{} s in the future", -s),
        s if s < 3600 => format!("{s} s"),
        s if s < 86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}
