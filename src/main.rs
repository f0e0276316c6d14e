//! The `vouch` command: run the appliance and administer its state.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use vouch::admin::change::{self, Route};
use vouch::app::App;
use vouch::config::Config;
use vouch::factor::Method;
use vouch::factor::otp::{Algorithm, TotpParams};
use vouch::jose::hint::is_guid;
use vouch::provision;
use vouch::server::Server;
use vouch::store::CredentialStore;

/// sysexits.h EX_USAGE: the command line or the configuration is wrong.
const EX_USAGE: u8 = 64;

#[derive(Parser)]
#[command(
    name = "vouch",
    version,
    about = "External Authentication Method provider for Microsoft Entra ID"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConfigArg {
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Listen on this address instead of the configured ones; may be repeated.
        #[arg(long, value_name = "ADDR")]
        listen: Vec<SocketAddr>,
    },
    /// Check a configuration file and print what it sets up.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Enrol, list and revoke users' factors in the credential store.
    Enroll {
        #[command(subcommand)]
        command: EnrollCommand,
    },
    /// List and rotate the token-signing keys (alone: list them with their states).
    Keys {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: Option<KeysCommand>,
    },
    /// Check the signing devices: backends, keys, certificates, PIN state, a test signature.
    Hsm {
        #[command(subcommand)]
        command: vouch::signer::admin::HsmCommand,
    },
    #[command(flatten)]
    Pki(vouch::pki::cli::PkiCommand),
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        command: vouch::audit::cli::AuditCommand,
    },
    /// Send one request to the running appliance's admin socket and print the answer.
    Admin(vouch::admin::client::AdminArgs),
    /// List and revoke users' security keys.
    Fido {
        #[command(subcommand)]
        command: vouch::admin::fido::FidoCommand,
    },
}

/// The user an enrolment command is about, by directory and object ID.
#[derive(Args)]
struct UserArg {
    /// The user's directory (tenant) ID.
    #[arg(long, value_name = "TID")]
    tenant: String,
    /// The user's object ID in that directory.
    #[arg(long, value_name = "OID")]
    oid: String,
}

#[derive(Subcommand)]
enum EnrollCommand {
    /// Give a user a new TOTP seed; prints an otpauth:// URI and a QR code for it.
    Totp {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        user: UserArg,
        #[arg(long, value_enum, default_value_t = HashArg::Sha1)]
        algorithm: HashArg,
        /// Code length, 6 to 8.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(6..=8))]
        digits: u8,
        /// Replace a seed the user already has.
        #[arg(long)]
        replace: bool,
        /// Name shown in the authenticator app beside the account.
        #[arg(long, default_value = "vouch")]
        label: String,
        /// The user's UPN: shown as the account in the authenticator app, and a way for
        /// operators to find the user later.
        #[arg(long, value_name = "UPN")]
        upn: Option<String>,
    },
    /// Remove a factor from a user.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        user: UserArg,
        #[arg(long, value_enum, default_value_t = MethodArg::Totp)]
        method: MethodArg,
    },
    /// List enrolled users and their factors.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print a one-time link with which the user enrols a security key.
    FidoLink(vouch::admin::fido::LinkArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every key with its state (next, active, retiring) and its next transition.
    Show {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stage the next key: published at once, signing after the rotation overlap (48 h).
    /// Software signers get a new key; device signers name a key made on every device.
    Stage {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        key: vouch::signer::admin::StageArgs,
    },
    /// Make the staged key sign now instead of at the end of its overlap.
    Promote {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum HashArg {
    Sha1,
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Totp,
    Fido,
}

fn main() -> ExitCode {
    // A mistake on the command line exits 64 (EX_USAGE), as a bad configuration does; help
    // and the version are not mistakes.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let log = init_logging();

    let result = match cli.command {
        Command::Serve { config, listen } => load(&config).and_then(|mut c| {
            if !listen.is_empty() {
                c.listen.clone_from(&listen);
            }
            serve(
                c,
                Reread {
                    path: config.config,
                    listen,
                },
                log,
            )
        }),
        Command::Check { config } => load(&config).map(|c| check(&c)),
        Command::Enroll { command } => enroll(command),
        Command::Keys { config, command } => keys(config, command),
        Command::Hsm { command } => hsm(&command),
        Command::Pki(command) => return vouch::pki::cli::run(command),
        Command::Audit { command } => match vouch::audit::cli::run(command) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(message) => Err(Failure::Usage(message)),
        },
        Command::Admin(args) => match vouch::admin::client::run(args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(message) => Err(Failure::Usage(message)),
        },
        Command::Fido { command } => vouch::admin::fido::run(command).map_err(Failure::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("vouch: {message}");
            ExitCode::from(EX_USAGE)
        }
        Err(Failure::Other(message)) => {
            eprintln!("vouch: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr with the filter in `VOUCH_LOG` (default `info`), changeable at run time
/// through the admin socket.
fn init_logging() -> (vouch::admin::LogControl, String) {
    use tracing_subscriber::prelude::*;
    let initial = std::env::var("VOUCH_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&initial)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let control: vouch::admin::LogControl = Arc::new(move |directives: &str| {
        let filter =
            tracing_subscriber::EnvFilter::try_new(directives).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    (control, initial)
}

enum Failure {
    Usage(String),
    Other(String),
}

impl From<vouch::admin::fido::CliError> for Failure {
    fn from(e: vouch::admin::fido::CliError) -> Failure {
        match e {
            vouch::admin::fido::CliError::Usage(m) => Failure::Usage(m),
            vouch::admin::fido::CliError::Other(m) => Failure::Other(m),
        }
    }
}

fn other(e: impl std::fmt::Display) -> Failure {
    Failure::Other(e.to_string())
}

fn load(arg: &ConfigArg) -> Result<Config, Failure> {
    match &arg.config {
        Some(path) => Config::load(path).map_err(|e| Failure::Usage(e.to_string())),
        None => Ok(Config::embedded()),
    }
}

fn check(config: &Config) {
    println!("configuration {} is valid", config.source_name);
    println!("issuer         {}", config.issuer);
    println!("discovery      {}", config.discovery_url());
    for addr in &config.listen {
        println!("listen         {addr}");
    }
    if let Some(cards) = &config.client_cert {
        println!("smart cards    {} at {}", cards.listen, cards.origin);
    }
    println!("state dir      {}", config.state_dir.display());
    let fido = &config.fido;
    println!(
        "security keys  RP ID {}, origins {}",
        fido.id,
        fido.origins.join(" ")
    );
    for t in &config.tenants {
        let lab = if t.test_authority.is_some() {
            "  (test authority)"
        } else {
            ""
        };
        println!("tenant         {} {} {}{lab}", t.id, t.cloud.name(), t.name);
    }
    for b in &config.signing.backends {
        use vouch::signer::backend::Device;
        let device = match &b.device {
            Device::Software => "software key in the state dir".to_owned(),
            Device::Pkcs11 { config, .. } => {
                format!(
                    "pkcs11 token {:?} ({})",
                    config.token,
                    config.module.display()
                )
            }
            Device::Piv { config } => match &config.reader {
                Some(reader) => format!("PIV slot {} in {reader:?}", config.slot),
                None => format!("PIV slot {} in the first reader with a card", config.slot),
            },
        };
        println!("signer         {device}, {} workers", b.workers);
    }
    for store in &config.trust_stores {
        let scope = match &store.scope {
            vouch::pki::config::TenantScope::Shared => "every tenant".to_owned(),
            vouch::pki::config::TenantScope::Tenants(t) => format!("{} tenant(s)", t.len()),
        };
        let methods: Vec<&str> = store.methods.iter().map(|m| m.name()).collect();
        println!(
            "trust store    {} for {scope}: {} root(s), {} CRL source(s), {}",
            store.name,
            store.roots.len(),
            store.crl_files.len() + store.crl_urls.len(),
            methods.join(" and ")
        );
    }
    let ops = &config.operations;
    println!(
        "audit          {}",
        ops.audit.dir_in(&config.state_dir).display()
    );
    println!(
        "admin socket   {}",
        ops.admin.socket_path(&config.state_dir).display()
    );
    if let Some(addr) = ops.metrics.listen {
        println!("metrics        http://{addr}/metrics");
    }
}

/// Where a reload (SIGHUP) reads the configuration again, and the command-line listeners
/// that stand in for its own.
struct Reread {
    path: Option<PathBuf>,
    listen: Vec<SocketAddr>,
}

fn serve(
    config: Config,
    reread: Reread,
    log: (vouch::admin::LogControl, String),
) -> Result<(), Failure> {
    let inherited = vouch::systemd::inherited_listeners().map_err(other)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(other)?;
    let served = runtime.block_on(async move {
        for t in &config.tenants {
            if let Some(lab) = &t.test_authority {
                tracing::warn!(
                    tenant = %t.id,
                    authority = %lab.url,
                    ca_file = %lab.ca_file.display(),
                    "tenant trusts a test authority instead of Microsoft: for tests and labs only"
                );
            }
        }
        if config.tenants.is_empty() {
            tracing::warn!(
                config = %config.source_name,
                "no tenants are configured; every sign-in will be refused"
            );
        }
        let tls = provision::tls_config(&config.state_dir, config.tls.as_ref()).map_err(other)?;
        let app = Arc::new(App::new(config).map_err(other)?);
        let config = &app.config;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            config = %config.source_name,
            state_dir = %config.state_dir.display(),
            tenants = config.tenants.len(),
            signing_kid = %app.signer.published().kid,
            "vouch starting"
        );
        let server = if inherited.is_empty() {
            Server::start(app.clone(), tls, &config.listen).await
        } else {
            tracing::info!(
                sockets = inherited.len(),
                "serving on sockets passed by systemd"
            );
            inherited
                .into_iter()
                .map(tokio::net::TcpListener::from_std)
                .collect::<std::io::Result<Vec<_>>>()
                .and_then(|listeners| Server::serve(app.clone(), tls, listeners))
        }
        .map_err(other)?;
        let (reloads, mut reload_requests) = tokio::sync::mpsc::channel(4);
        let operated = vouch::oversight::operate(&app, reloads, log)
            .await
            .map_err(other)?;
        tracing::info!(issuer = %config.issuer, discovery = %config.discovery_url(), "serving");
        vouch::systemd::ready(&format!("serving {}", config.issuer));
        tokio::spawn(vouch::systemd::run_watchdog(app.clone()));
        tokio::spawn(vouch::signer::admin::watch_ring(app.clone()));

        let mut refresher = spawn_refresher(&app);
        let pruner = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                pruner.transactions.prune(pruner.clock.now());
                pruner.challenges.prune(pruner.clock.now());
            }
        });

        let mut signals = Signals::watch().map_err(other)?;
        loop {
            let asked: Option<vouch::admin::ReloadRequest> = tokio::select! {
                signal = signals.next() => match signal {
                    Signal::Stop => break,
                    Signal::Reload => None,
                },
                Some(asked) = reload_requests.recv() => Some(asked),
            };
            let outcome = reload(&server, &reread).await;
            if let Ok(next) = &outcome {
                refresher.abort();
                refresher = spawn_refresher(next);
                operated.app_changed(next.clone());
            }
            operated.reloaded(asked, outcome.map(|next| next.config.source_name.clone()));
        }
        operated.stop();
        tracing::info!(
            grace_secs = app.config.shutdown_grace_secs,
            "shutting down: no new connections, finishing open requests"
        );
        vouch::systemd::stopping();
        server.shutdown().await;
        Ok(())
    });
    // Tasks still running after the grace period (a signature, a key fetch) are abandoned.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    tracing::info!("stopped");
    served
}

fn spawn_refresher(app: &App) -> tokio::task::JoinHandle<()> {
    let keys = app.keys.clone();
    tokio::spawn(async move {
        keys.refresh_all().await;
        keys.run_refresher().await;
    })
}

/// Applies the configuration file again, with fresh TLS files; the running configuration
/// stays when the new one cannot be applied. Open connections are kept either way.
async fn reload(server: &Server, reread: &Reread) -> Result<Arc<App>, String> {
    vouch::systemd::reloading();
    let prepared = async {
        let Some(path) = &reread.path else {
            return Err("vouch runs on embedded defaults: there is no file to read again".into());
        };
        let mut config = Config::load(path).map_err(|e| e.to_string())?;
        if !reread.listen.is_empty() {
            config.listen.clone_from(&reread.listen);
        }
        let next = server
            .app()
            .reconfigure(config)
            .map_err(|e| e.to_string())?;
        let tls = provision::tls_config(&next.config.state_dir, next.config.tls.as_ref())
            .map_err(|e| e.to_string())?;
        next.keys.refresh_all().await;
        Ok::<_, String>((Arc::new(next), tls))
    };
    let outcome = match prepared.await {
        Ok((next, tls)) => {
            server.reload(next.clone(), tls);
            tracing::info!(
                config = %next.config.source_name,
                tenants = next.config.tenants.len(),
                "configuration and TLS certificate reloaded"
            );
            Ok(next)
        }
        Err(e) => {
            tracing::error!(error = %e, "reload refused; the running configuration stays");
            Err(e)
        }
    };
    vouch::systemd::ready("serving");
    outcome
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Stop,
    Reload,
}

/// SIGTERM and SIGINT stop the appliance; SIGHUP reloads its configuration.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn watch() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        let (name, signal) = tokio::select! {
            _ = self.term.recv() => ("SIGTERM", Signal::Stop),
            _ = self.int.recv() => ("SIGINT", Signal::Stop),
            _ = self.hup.recv() => ("SIGHUP", Signal::Reload),
        };
        tracing::info!(signal = name, "signal received");
        signal
    }
}

/// The user's IDs, checked and lowercased; warns when the tenant is not onboarded.
fn user_ids(config: &Config, user: &UserArg) -> Result<(String, String), Failure> {
    let UserArg { tenant, oid } = user;
    if !is_guid(tenant) {
        return Err(Failure::Usage(format!(
            "--tenant {tenant:?} is not a directory ID (a GUID such as \
             72f988bf-86f1-41af-91ab-2d7cd011db47)"
        )));
    }
    if !is_guid(oid) {
        return Err(Failure::Usage(format!(
            "--oid {oid:?} is not an object ID (a GUID)"
        )));
    }
    let tenant = tenant.to_ascii_lowercase();
    if config.tenant(&tenant).is_none() {
        eprintln!(
            "vouch: warning: tenant {tenant} is not in {}; the user cannot sign in until it is",
            config.source_name
        );
    }
    Ok((tenant, oid.to_ascii_lowercase()))
}

/// Whether a change is made here or by the running appliance (see `vouch::admin::change`).
fn change_route(config: &Config) -> Result<Route, Failure> {
    provision::ensure_dir(&config.state_dir).map_err(other)?;
    change::route(config).map_err(Failure::Other)
}

fn enrolment_record(
    log: &vouch::audit::AuditLog,
    (tid, oid): (&str, &str),
    method: Method,
    action: &str,
    uid: u32,
) -> Result<(), Failure> {
    let event = vouch::audit::Event::Enrolment {
        tid: tid.into(),
        oid: oid.into(),
        method: method.name().into(),
        action: action.into(),
        uid,
    };
    change::record(log, event).map_err(Failure::Other)
}

fn open_store(config: &Config) -> Result<CredentialStore, Failure> {
    provision::ensure_dir(&config.state_dir).map_err(other)?;
    CredentialStore::open(&config.state_dir).map_err(other)
}

fn enroll(command: EnrollCommand) -> Result<(), Failure> {
    match command {
        EnrollCommand::Totp {
            config,
            user,
            algorithm,
            digits,
            replace,
            label,
            upn,
        } => {
            let config = load(&config)?;
            let (tenant, oid) = user_ids(&config, &user)?;
            if let Some(upn) = &upn {
                vouch::store::check_upn(upn).map_err(Failure::Usage)?;
            }
            let algorithm = match algorithm {
                HashArg::Sha1 => Algorithm::Sha1,
                HashArg::Sha256 => Algorithm::Sha256,
                HashArg::Sha512 => Algorithm::Sha512,
            };
            let params = TotpParams { algorithm, digits };
            let uri = match change_route(&config)? {
                Route::Here { log, uid } => {
                    let store = open_store(&config)?;
                    let now = vouch::app::Clock::default().now();
                    let new = vouch::store::NewTotp {
                        tenant: &tenant,
                        oid: &oid,
                        params,
                        upn: upn.as_deref(),
                    };
                    let seed = store
                        .enroll_totp_many(&[new], replace, now)
                        .map_err(other)?
                        .pop()
                        .unwrap_or_default();
                    enrolment_record(&log, (&tenant, &oid), Method::Totp, "enrol", uid)?;
                    let account = upn.as_deref().unwrap_or(&oid);
                    vouch::factor::otp::otpauth_uri(&label, account, &seed, params)
                }
                Route::Appliance { socket } => {
                    let request = serde_json::json!({
                        "v": 1, "cmd": "enrol_totp", "tid": tenant, "oid": oid,
                        "digits": digits, "algorithm": algorithm.name(), "replace": replace,
                        "upn": upn, "issuer": label,
                    });
                    let data = change::ask(&socket, &request).map_err(Failure::Other)?;
                    data["otpauth_uri"].as_str().unwrap_or_default().to_owned()
                }
            };
            println!("TOTP enrolled for {oid} in {tenant}.");
            println!("Scan this code with the user's authenticator app, or enter the URI:");
            println!();
            println!("{}", vouch::factor::otp::terminal_qr(&uri).map_err(other)?);
            println!("{uri}");
            Ok(())
        }
        EnrollCommand::Revoke {
            config,
            user,
            method,
        } => {
            let config = load(&config)?;
            let (tenant, oid) = user_ids(&config, &user)?;
            let method = match method {
                MethodArg::Totp => Method::Totp,
                MethodArg::Fido => Method::Fido,
            };
            match change_route(&config)? {
                Route::Here { log, uid } => {
                    let store = open_store(&config)?;
                    if !store.revoke(&tenant, &oid, method).map_err(other)? {
                        return Err(Failure::Other(format!(
                            "{oid} in {tenant} has no {} enrolled",
                            method.name()
                        )));
                    }
                    enrolment_record(&log, (&tenant, &oid), method, "revoke", uid)?;
                }
                Route::Appliance { socket } => {
                    let request = serde_json::json!({
                        "v": 1, "cmd": "revoke", "tid": tenant, "oid": oid,
                        "method": method.name(),
                    });
                    change::ask(&socket, &request).map_err(Failure::Other)?;
                }
            }
            println!("{} revoked for {oid} in {tenant}", method.name());
            Ok(())
        }
        EnrollCommand::FidoLink(args) => {
            vouch::admin::fido::issue_link(args).map_err(Failure::from)
        }
        EnrollCommand::List { config } => {
            let config = load(&config)?;
            let store = open_store(&config)?;
            let list = store.list();
            if list.is_empty() {
                println!("no users are enrolled");
            }
            for e in list {
                let methods: Vec<&str> = e.methods.iter().map(|m| m.name()).collect();
                let upn = e.upn.as_deref().unwrap_or("-");
                println!("{} {} {upn} {}", e.tenant, e.oid, methods.join(","));
            }
            Ok(())
        }
    }
}

fn keys(parent: ConfigArg, command: Option<KeysCommand>) -> Result<(), Failure> {
    use vouch::signer::admin;
    let now = vouch::app::Clock::default().now();
    let config = |arg: &ConfigArg| match (&arg.config, &parent.config) {
        (None, Some(_)) => load(&parent),
        _ => load(arg),
    };
    let report = match command {
        None => admin::list(&load(&parent)?, now),
        Some(KeysCommand::Show { config: c }) => admin::list(&config(&c)?, now),
        Some(KeysCommand::Stage { config: c, key }) => {
            let config = config(&c)?;
            match change_route(&config)? {
                Route::Here { log, uid } => {
                    let entry = admin::stage_entry(&config, &key, now).map_err(admin_failure)?;
                    key_record(&log, "stage", &entry.kid, uid)?;
                    Ok(admin::staged_text(&config, &entry))
                }
                Route::Appliance { socket } => {
                    let request = serde_json::json!({
                        "v": 1, "cmd": "stage_key", "label": key.label, "id": key.id,
                        "certificate": key.certificate,
                    });
                    let data = change::ask(&socket, &request).map_err(Failure::Other)?;
                    Ok(format!(
                        "staged   {}\n{}\n",
                        data["staged_kid"].as_str().unwrap_or_default(),
                        data["next_step"].as_str().unwrap_or_default()
                    ))
                }
            }
        }
        Some(KeysCommand::Promote { config: c }) => {
            let config = config(&c)?;
            match change_route(&config)? {
                Route::Here { log, uid } => {
                    let entry = admin::promote_entry(&config, now).map_err(admin_failure)?;
                    key_record(&log, "promote", &entry.kid, uid)?;
                    Ok(admin::promoted_text(&config, &entry, now))
                }
                Route::Appliance { socket } => {
                    let request = serde_json::json!({"v": 1, "cmd": "promote_key"});
                    let data = change::ask(&socket, &request).map_err(Failure::Other)?;
                    let mut text = format!(
                        "signing  {}\n",
                        data["signing_kid"].as_str().unwrap_or_default()
                    );
                    if let Some(warning) = data["warning"].as_str() {
                        text.push_str(&format!("warning: {warning}\n"));
                    }
                    text.push_str(data["next_step"].as_str().unwrap_or_default());
                    text.push('\n');
                    Ok(text)
                }
            }
        }
    };
    print!("{}", report.map_err(admin_failure)?);
    Ok(())
}

fn key_record(
    log: &vouch::audit::AuditLog,
    action: &str,
    kid: &str,
    uid: u32,
) -> Result<(), Failure> {
    let event = vouch::audit::Event::Key {
        action: action.into(),
        kid: kid.into(),
        uid,
    };
    change::record(log, event).map_err(Failure::Other)
}

fn hsm(command: &vouch::signer::admin::HsmCommand) -> Result<(), Failure> {
    let now = vouch::app::Clock::default().now();
    let (report, ok) = vouch::signer::admin::hsm(command, now).map_err(admin_failure)?;
    print!("{report}");
    if ok {
        Ok(())
    } else {
        Err(Failure::Other(
            "a signing key or device is not usable; see above".into(),
        ))
    }
}

fn admin_failure(e: vouch::signer::admin::AdminError) -> Failure {
    match e {
        vouch::signer::admin::AdminError::Usage(m) => Failure::Usage(m),
        other => Failure::Other(other.to_string()),
    }
}
