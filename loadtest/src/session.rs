//! A session: everything a load needs, brought up in order and torn down in reverse.
//!
//! The stand is loaded or prepared, the tool's Entra starts with the stand's identity, the
//! appliance is started (or the one given with `--target` is reached), Entra's view of the
//! appliance's metadata is fetched, every hint the run will use is signed (and, for the
//! mobile-PKI factor, every user's phone certificate issued), and one sign-in must succeed
//! before any load is measured.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_sim::{Authority, RelyingParty};

use crate::StandError;
use crate::appliance::{Appliance, ApplianceError};
use crate::certs::{CertBook, CertError, Kind, UserCa};
use crate::cli::{Appliance as Source, Common};
use crate::client::{Agent, ClientError};
use crate::flow::{Factor, Flow, Paths};
use crate::hints::HintBook;
use crate::keys::KeyRing;
use crate::procstat::{ProcError, Process};
use crate::schedule::UserPool;
use crate::stand::{Stand, free_loopback_port};

/// How long the first sign-in may keep failing while the appliance fetches Entra's keys; an
/// appliance started before the tool's Entra retries every 30 s.
const FIRST_SIGNIN_PATIENCE: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Stand(#[from] StandError),
    #[error(transparent)]
    Appliance(#[from] ApplianceError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("the appliance at {origin}: {source}")]
    Client { origin: String, source: ClientError },
    #[error("the tool's Entra cannot listen on {addr}: {detail}")]
    Entra { addr: String, detail: String },
    #[error("issuing the users' phone certificates: {0}")]
    Phones(#[from] CertError),
    #[error("Entra would refuse the appliance's metadata: {0}")]
    Metadata(String),
    #[error("the stand in {dir} has {have} users; the run needs {need}: prepare a bigger one")]
    TooFewUsers {
        dir: String,
        have: usize,
        need: usize,
    },
    #[error(
        "no sign-in succeeded within {} s; the last failed with {kind}",
        FIRST_SIGNIN_PATIENCE.as_secs()
    )]
    FirstSignIn { kind: String },
}

pub struct Session {
    pub flow: Arc<Flow>,
    pub agent: Agent,
    pub pool: Arc<UserPool>,
    pub process: Option<Process>,
    pub origin: String,
    pub transaction_ttl: i64,
    child: std::sync::Mutex<Option<Appliance>>,
    refresher: tokio::task::JoinHandle<()>,
    _entra: Arc<Authority>,
    _scratch: Option<tempfile::TempDir>,
}

impl Session {
    pub async fn open(
        common: &Common,
        http1: bool,
        factor: Factor,
    ) -> Result<Session, SessionError> {
        let (stand, scratch) = stand_for(common)?;
        let entra = start_entra(&stand).await?;
        let (mut child, addr, pid) = match &common.appliance {
            Source::Spawn { vouch } => {
                let child = Appliance::spawn(vouch, &stand.config_path(), &stand.log_path())?;
                let pid = child.pid;
                (Some(child), stand.manifest.appliance, Some(pid))
            }
            Source::Target { addr, pid } => (None, *addr, *pid),
        };
        let origin = format!("https://{addr}");
        let client = |source| SessionError::Client {
            origin: origin.clone(),
            source,
        };
        let pem = std::fs::read(stand.appliance_cert())
            .map_err(|e| StandError::io(&stand.appliance_cert(), e))?;
        let agent = Agent::new(&origin, &pem, http1).map_err(client)?;
        if let Some(child) = child.as_mut() {
            child.wait_ready(&agent).await?;
        }
        let relying = discover(&origin, &pem).await?;
        let process = pid.map(Process::new).transpose()?;

        let keys = match factor {
            Factor::Fido => Some(Arc::new(key_ring(&stand, common.users)?)),
            Factor::Otp | Factor::MobilePki | Factor::SmartCard => None,
        };
        let users = match &keys {
            Some(keys) => keys.users.clone(),
            None => Arc::new(stand_users(&stand, common.users)?),
        };
        let hints = Arc::new(HintBook::new(entra.clone(), users.clone(), factor));
        sign_hints(&hints, users.len()).await;
        let (mut phones, mut cards) = (None, None);
        let mut paths = Paths::default();
        match factor {
            Factor::MobilePki => {
                let ca = user_ca(Kind::Phone, &stand.phone_ca_key())?;
                phones = Some(issue(CertBook::new(ca, users.clone()), "phone").await?);
            }
            Factor::SmartCard => {
                let (Some(listener), Some(url)) = (stand.manifest.cards, stand.card_url()) else {
                    let why = "the stand was prepared before the tool played smart cards; \
                               prepare a new one";
                    return Err(StandError::damaged(&stand.dir.join("stand.json"), why).into());
                };
                let ca = user_ca(Kind::Card, &stand.card_ca_key())?;
                let card_origin = format!("https://{listener}");
                let agent = Agent::new(&card_origin, &pem, http1).map_err(client)?;
                let book = CertBook::cards(ca, users.clone(), agent);
                cards = Some(issue(book, "smart-card").await?);
                paths.card_action = format!("{url}{}", paths.smart_card);
            }
            Factor::Otp | Factor::Fido => {}
        }
        let flow = Arc::new(Flow {
            users,
            hints: hints.clone(),
            relying,
            factor,
            phones,
            cards,
            keys,
            paths,
        });
        let transaction_ttl =
            vouch::config::Config::load(&stand.config_path()).map_or(240, |c| c.transaction_ttl);
        Ok(Session {
            pool: Arc::new(UserPool::new(flow.users.len())),
            flow,
            agent,
            process,
            origin,
            transaction_ttl,
            child: std::sync::Mutex::new(child),
            refresher: hints.refresh_in_background(),
            _entra: entra,
            _scratch: scratch,
        })
    }

    /// Signs in until one sign-in succeeds, so that the measured load starts on an
    /// appliance that has Entra's keys and warm connections.
    pub async fn first_signin(&self) -> Result<(), SessionError> {
        let deadline = Instant::now() + FIRST_SIGNIN_PATIENCE;
        let mut last = String::from("none tried");
        while Instant::now() < deadline {
            let browser = self.agent.browser();
            let Some(lease) = self.pool.lease(entra_sim::unix_now()) else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            let (code_time, outcome) = self.flow.sign_in(&browser, lease.user).await;
            self.pool.release(lease, code_time);
            match outcome {
                Ok(_) => return Ok(()),
                Err(failure) => last = failure.kind(),
            }
            if last.ends_with("temporarily_unavailable") {
                eprintln!("waiting for the appliance to fetch the tool's Entra keys…");
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Err(SessionError::FirstSignIn { kind: last })
    }

    /// Stops the background work and the appliance the tool started, and saves the security
    /// keys' counters.
    pub async fn close(&self) {
        self.refresher.abort();
        if let Some(keys) = &self.flow.keys
            && let Err(e) = keys.save_counters()
        {
            eprintln!("the security keys' counters were not saved: {e}");
        }
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(child) = child {
            child.stop().await;
        }
    }
}

/// The stand the session runs from: the one in `--dir` if it holds one, else a new one
/// there or in a scratch directory removed at the end.
fn stand_for(common: &Common) -> Result<(Stand, Option<tempfile::TempDir>), SessionError> {
    let target = matches!(common.appliance, Source::Target { .. });
    let (dir, scratch) = match &common.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let scratch = tempfile::Builder::new()
                .prefix("vouch-loadtest-")
                .tempdir()
                .map_err(|e| StandError::io(Path::new("temporary directory"), e))?;
            (scratch.path().to_owned(), Some(scratch))
        }
    };
    let stand = match Stand::load(&dir) {
        Ok(stand) => stand,
        Err(StandError::Missing { .. }) if !target => {
            eprintln!(
                "preparing a stand of {} users in {}…",
                common.users,
                dir.display()
            );
            let ports = [
                free_loopback_port()?,
                free_loopback_port()?,
                free_loopback_port()?,
            ];
            Stand::prepare(&dir, common.users, ports)?
        }
        Err(e) => return Err(e.into()),
    };
    Ok((stand, scratch))
}

fn stand_users(stand: &Stand, need: usize) -> Result<crate::users::Users, SessionError> {
    if stand.users.len() < need {
        return Err(SessionError::TooFewUsers {
            dir: stand.dir.display().to_string(),
            have: stand.users.len(),
            need,
        });
    }
    let mut users = stand.users.clone();
    users.list.truncate(need);
    Ok(users)
}

/// The first `need` key holders of the stand with their keys, for the pages of the stand's
/// issuer.
fn key_ring(stand: &Stand, need: usize) -> Result<KeyRing, SessionError> {
    let issuer = stand.issuer();
    let rp_id = issuer
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap_or_default();
    let tenant = &stand.manifest.tenant;
    match KeyRing::load(&stand.dir, tenant, need, rp_id, &issuer) {
        Err(StandError::Damaged { detail, .. }) if detail.starts_with("it holds") => {
            Err(SessionError::TooFewUsers {
                dir: stand.dir.display().to_string(),
                have: stand.users.len(),
                need,
            })
        }
        loaded => Ok(loaded?),
    }
}

async fn start_entra(stand: &Stand) -> Result<Arc<Authority>, SessionError> {
    let addr = stand.manifest.entra;
    let entra_err = |detail: String| SessionError::Entra {
        addr: addr.to_string(),
        detail,
    };
    let identity = stand.entra_identity()?;
    let entra = Authority::start_with(addr, identity)
        .await
        .map_err(|e| entra_err(e.to_string()))?;
    Ok(Arc::new(entra))
}

/// Entra's view of the appliance: its discovery document and JWKS, checked as Entra does.
async fn discover(origin: &str, pem: &[u8]) -> Result<RelyingParty, SessionError> {
    let browser =
        entra_sim::Browser::new(origin, pem).map_err(|e| SessionError::Metadata(e.to_string()))?;
    RelyingParty::discover(&browser, "/.well-known/openid-configuration")
        .await
        .map_err(SessionError::Metadata)
}

/// The stand's CA of `kind`, whose key is at `key`.
fn user_ca(kind: Kind, key: &Path) -> Result<UserCa, SessionError> {
    if !key.exists() {
        let why = "the stand was prepared before the tool played this factor; prepare a new one";
        return Err(StandError::damaged(key, why).into());
    }
    Ok(UserCa::load(kind, key)?)
}

/// Every user's phone or card in `book`, issued on every core.
async fn issue(book: CertBook, what: &str) -> Result<Arc<CertBook>, SessionError> {
    let book = Arc::new(book);
    let (making, started) = (book.clone(), Instant::now());
    eprintln!("issuing the users' {what} certificates…");
    let made = tokio::task::spawn_blocking(move || making.make_ahead()).await;
    made.map_err(|e| CertError::Issue(e.to_string()))??;
    tracing::info!(
        what,
        secs = started.elapsed().as_secs_f64(),
        "certificates issued"
    );
    Ok(book)
}

async fn sign_hints(hints: &Arc<HintBook>, count: usize) {
    let started = Instant::now();
    let mut shown = Instant::now();
    hints
        .sign_ahead(count, |done| {
            if shown.elapsed() >= Duration::from_secs(1) {
                eprintln!("signing hints: {done} of {count}");
                shown = Instant::now();
            }
        })
        .await;
    tracing::info!(
        count,
        secs = started.elapsed().as_secs_f64(),
        "hints signed"
    );
}
