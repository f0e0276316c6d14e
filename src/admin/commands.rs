//! What each admin command does and answers.
//!
//! Answers are JSON objects whose members may grow: clients must ignore members they do not
//! know. Parts that later backends add (HSM sessions, trust stores and CRLs) appear as new
//! members of `status` and `keys` and as new commands, under the same version.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Context;
use super::proto::{Problem, ProblemCode, Request};
use crate::app::App;
use crate::audit::Event;
use crate::factor::Method;
use crate::factor::otp::TotpParams;
use crate::jose::hint::is_guid;

/// Carries out `request` for the operator `uid`.
pub async fn run(ctx: &Context, request: Request, uid: u32) -> Result<Value, Problem> {
    let app = ctx.app();
    match request {
        Request::Status {} => Ok(status(ctx, &app)),
        Request::Counters {} => Ok(counters(&app)),
        Request::Recent { limit } => Ok(json!({ "recent": app.oversight.feed.recent(limit) })),
        Request::Reload {} => reload(ctx, uid).await,
        Request::LogLevel { filter } => ctx
            .set_log_filter(&filter)
            .map(|()| json!({ "filter": filter })),
        Request::Keys {} => keys(&app),
        Request::StageKey {
            label,
            id,
            certificate,
        } => {
            let args = crate::signer::admin::StageArgs {
                label,
                id,
                certificate,
            };
            stage_key(&app, args, uid).await
        }
        Request::PromoteKey {} => promote_key(&app, uid).await,
        Request::Tenants {} => Ok(tenants(&app)),
        Request::TrustStores {} => Ok(trust_stores(&app)),
        Request::Enrolments { find } => Ok(enrolments(&app, &find)),
        Request::EnrolTotp {
            tid,
            oid,
            digits,
            algorithm,
            replace,
            upn,
            issuer,
        } => {
            if issuer.is_empty() || issuer.len() > 64 || issuer.chars().any(char::is_control) {
                return Err(invalid("issuer must be 1 to 64 printable characters"));
            }
            let (tid, oid) = user(&tid, &oid)?;
            if !(6..=8).contains(&digits) {
                return Err(invalid("digits must be 6, 7 or 8"));
            }
            if let Some(upn) = &upn {
                crate::store::check_upn(upn).map_err(invalid)?;
            }
            let params = TotpParams { algorithm, digits };
            let new = crate::store::NewTotp {
                tenant: &tid,
                oid: &oid,
                params,
                upn: upn.as_deref(),
            };
            let seed = app
                .store
                .enroll_totp_many(&[new], replace, app.clock.now())
                .map_err(failed)?
                .pop()
                .unwrap_or_default();
            enrolment(&app, &tid, &oid, "enrol", uid).await?;
            let account = upn.as_deref().unwrap_or(&oid);
            let uri = crate::factor::otp::otpauth_uri(&issuer, account, &seed, params);
            Ok(json!({ "tid": tid, "oid": oid, "upn": upn, "otpauth_uri": uri }))
        }
        Request::Revoke {
            tid,
            oid,
            method,
            credential,
        } => {
            let (tid, oid) = user(&tid, &oid)?;
            let revoked = match (method, credential) {
                (Method::Fido, Some(id)) => app.store.revoke_fido(&tid, &oid, &id).map(|()| true),
                (_, Some(_)) => return Err(invalid("credential is only for method fido")),
                (method, None) => app.store.revoke(&tid, &oid, method),
            };
            if !revoked.map_err(failed)? {
                return Err(Problem::new(
                    ProblemCode::Failed,
                    format!("{oid} in {tid} has no {} enrolled", method.name()),
                ));
            }
            let event = Event::Enrolment {
                tid: tid.clone(),
                oid: oid.clone(),
                method: method.name().into(),
                action: "revoke".into(),
                uid,
            };
            record(&app, event).await?;
            Ok(json!({ "tid": tid, "oid": oid, "revoked": method.name() }))
        }
        Request::FidoLink {
            tid,
            oid,
            upn,
            ttl_secs,
        } => {
            let (answer, event) =
                super::fido::link(&app, &tid, &oid, upn, ttl_secs, uid).map_err(invalid)?;
            record(&app, event).await?;
            Ok(answer)
        }
        Request::FidoKeys { tid, oid } => super::fido::keys(&app, &tid, &oid).map_err(invalid),
    }
}

fn invalid(message: impl Into<String>) -> Problem {
    Problem::new(ProblemCode::Invalid, message)
}

fn failed(e: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemCode::Failed, e.to_string())
}

fn user(tid: &str, oid: &str) -> Result<(String, String), Problem> {
    if !is_guid(tid) {
        return Err(invalid(format!(
            "tid {tid:?} is not a directory ID (a GUID)"
        )));
    }
    if !is_guid(oid) {
        return Err(invalid(format!("oid {oid:?} is not an object ID (a GUID)")));
    }
    Ok((tid.to_ascii_lowercase(), oid.to_ascii_lowercase()))
}

async fn enrolment(app: &App, tid: &str, oid: &str, action: &str, uid: u32) -> Result<(), Problem> {
    let event = Event::Enrolment {
        tid: tid.to_owned(),
        oid: oid.to_owned(),
        method: "totp".into(),
        action: action.into(),
        uid,
    };
    record(app, event).await
}

async fn record(app: &App, event: Event) -> Result<(), Problem> {
    app.oversight.audit.record(event).await.map_err(|e| {
        failed(format!(
            "done, but the audit record could not be written: {e}"
        ))
    })
}

fn status(ctx: &Context, app: &App) -> Value {
    let config = &app.config;
    let head = app.oversight.audit.head();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": app.oversight.uptime().as_secs(),
        "config": config.source_name,
        "issuer": config.issuer,
        "listen": config.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "state_dir": config.state_dir.display().to_string(),
        "tenants": config.tenants.len(),
        "log_filter": ctx.log_filter(),
        "signer": signer(app),
        "signins_in_flight": app.admission.in_flight(),
        "max_signins_in_flight": config.limits.max_signins_in_flight,
        "transactions_completed": app.transactions.used_count(),
        "revocation": revocation_summary(app),
        "audit": {
            "dir": app.oversight.audit.dir().display().to_string(),
            "head_seq": head.seq,
            "head_hash": head.hash,
        },
    })
}

fn signer(app: &App) -> Value {
    let healthy = app.signer.is_available() && !app.signer.is_saturated();
    let backends: Vec<Value> = app
        .signer
        .backends()
        .into_iter()
        .map(|b| json!({ "name": b.name, "up": b.up, "stopped": b.stopped }))
        .collect();
    json!({
        "backends": backends,
        "kid": app.signer.published().kid,
        "workers": app.config.signer_workers,
        "capacity": app.config.signer_max_in_flight,
        "in_flight": app.signer.in_flight(),
        "healthy": healthy,
    })
}

fn counters(app: &App) -> Value {
    let mut value = serde_json::to_value(app.oversight.feed.counters()).unwrap_or_default();
    if let Value::Object(members) = &mut value {
        members.insert("signer_in_flight".into(), app.signer.in_flight().into());
        members.insert("signins_in_flight".into(), app.admission.in_flight().into());
    }
    value
}

fn keys(app: &App) -> Result<Value, Problem> {
    use crate::signer::keyring::{KeyState, unix_time};
    let now = app.clock.now();
    let ring = app.signer.ring();
    let staged = ring.keys.iter().find(|k| k.state(now) == KeyState::Next);
    let entries: Vec<Value> = ring
        .keys
        .iter()
        .filter(|k| k.state(now).is_published())
        .map(|k| {
            let next = k.next_transition(now);
            json!({
                "kid": k.kid,
                "state": k.state(now).name(),
                "location": k.key.to_string(),
                "next_state": next.map(|(state, _)| state.name()),
                "next_at": next.map(|(_, at)| unix_time(at)),
            })
        })
        .collect();
    Ok(json!({
        "signing_kid": app.signer.published().kid,
        "staged_kid": staged.map(|k| k.kid.clone()),
        "ring": entries,
        "signer": signer(app),
    }))
}

/// Runs a key-ring change on a blocking thread (it opens the signing devices), then has the
/// running signer read the ring again so that the change shows at once.
async fn change_ring<T: Send + 'static>(
    app: &App,
    change: impl FnOnce(&crate::config::Config, i64) -> Result<T, crate::signer::admin::AdminError>
    + Send
    + 'static,
) -> Result<T, Problem> {
    let config = app.config.clone();
    let signer = app.signer.clone();
    let now = app.clock.now();
    tokio::task::spawn_blocking(move || {
        let done = change(&config, now).map_err(|e| match e {
            crate::signer::admin::AdminError::Usage(m) => invalid(m),
            other => failed(other),
        })?;
        if let Err(e) = signer.refresh(&config.state_dir) {
            tracing::warn!(error = %e, "the key ring changed but could not be read again");
        }
        Ok(done)
    })
    .await
    .map_err(|e| failed(format!("the key-ring task failed: {e}")))?
}

async fn key_event(app: &App, action: &str, kid: &str, uid: u32) -> Result<(), Problem> {
    let event = Event::Key {
        action: action.into(),
        kid: kid.into(),
        uid,
    };
    app.oversight.audit.record(event).await.map_err(|e| {
        failed(format!(
            "done, but the audit record could not be written: {e}"
        ))
    })
}

async fn stage_key(
    app: &App,
    args: crate::signer::admin::StageArgs,
    uid: u32,
) -> Result<Value, Problem> {
    use crate::signer::admin::stage_entry;
    use crate::signer::keyring::unix_time;
    let entry = change_ring(app, move |config, now| stage_entry(config, &args, now)).await?;
    key_event(app, "stage", &entry.kid, uid).await?;
    Ok(json!({
        "staged_kid": entry.kid,
        "signs_from": unix_time(entry.signs_from),
        "next_step": format!(
            "It is published now and signs from {}",
            unix_time(entry.signs_from)
        ),
    }))
}

async fn promote_key(app: &App, uid: u32) -> Result<Value, Problem> {
    use crate::signer::admin::{early_promotion, promote_entry};
    let (entry, warning) = change_ring(app, |config, now| {
        let entry = promote_entry(config, now)?;
        let warning = early_promotion(config, &entry, now);
        Ok((entry, warning))
    })
    .await?;
    key_event(app, "promote", &entry.kid, uid).await?;
    Ok(json!({
        "signing_kid": entry.kid,
        "warning": warning,
        "next_step": "It signs now; the previous key stays published while it retires",
    }))
}

fn trust_stores(app: &App) -> Value {
    use crate::pki::Timestamp;
    use crate::pki::config::TenantScope;
    let now = Timestamp(app.clock.now());
    let stores: Vec<Value> = app
        .trust_stores
        .iter()
        .map(|store| {
            let crls = store.crls();
            let sources: Vec<Value> = crls
                .sources
                .iter()
                .map(|source| {
                    let crl = source.crl.as_ref();
                    json!({
                        "source": source.source,
                        "state": source.state(now, store.crl_grace_secs).name(),
                        "issuer": crl.map(|c| c.issuer_text.clone()),
                        "age_secs": crl.map(|c| now.0 - c.this_update.0),
                        "next_update": crl.and_then(|c| c.next_update).map(|t| t.to_string()),
                        "entries": crl.map(|c| c.entries()),
                        "last_error": source.last_error,
                    })
                })
                .collect();
            let (ocsp_answers, ocsp_failing) = store.ocsp.counts();
            json!({
                "name": store.name,
                "tenants": match &store.scope {
                    TenantScope::Shared => json!("shared"),
                    TenantScope::Tenants(ids) => json!(ids),
                },
                "amr": store.amr.as_str(),
                "roots": store.anchors.len(),
                "ocsp": format!("{:?}", store.ocsp_policy).to_lowercase(),
                "ocsp_answers_cached": ocsp_answers,
                "ocsp_failing": ocsp_failing,
                "chain_cache": store.cache.len(),
                "crls": sources,
            })
        })
        .collect();
    json!({ "trust_stores": stores })
}

/// How many CRL sources there are and how many cannot decide now, for `status`.
fn revocation_summary(app: &App) -> Value {
    use crate::pki::Timestamp;
    use crate::pki::crl::SourceState;
    let now = Timestamp(app.clock.now());
    let (mut sources, mut stale, mut not_loaded) = (0, 0, 0);
    for store in app.trust_stores.iter() {
        for source in &store.crls().sources {
            sources += 1;
            match source.state(now, store.crl_grace_secs) {
                SourceState::Fresh => {}
                SourceState::Stale => stale += 1,
                SourceState::NotLoaded => not_loaded += 1,
            }
        }
    }
    json!({
        "trust_stores": app.trust_stores.iter().count(),
        "crl_sources": sources,
        "crl_stale": stale,
        "crl_not_loaded": not_loaded,
    })
}

fn tenants(app: &App) -> Value {
    let caches = app.keys.status();
    let tenants: Vec<Value> = app
        .config
        .tenants
        .iter()
        .map(|t| {
            let cache = caches.iter().find(|c| c.tenant == t.id);
            json!({
                "id": t.id,
                "name": t.name,
                "cloud": t.cloud.name(),
                "test_authority": t.test_authority.as_ref().map(|a| a.url.clone()),
                "entra_keys": cache.map(|c| json!({
                    "keys": c.keys,
                    "age_secs": c.age.map(|a| a.as_secs()),
                    "fetches": c.fetches,
                    "last_error": c.last_error,
                })),
            })
        })
        .collect();
    json!({ "tenants": tenants })
}

fn enrolments(app: &App, find: &str) -> Value {
    let find = find.to_lowercase();
    let users: Vec<Value> = app
        .store
        .list()
        .into_iter()
        .filter(|e| {
            let upn = e.upn.as_deref().unwrap_or_default().to_lowercase();
            e.oid.contains(&find) || e.tenant.contains(&find) || upn.contains(&find)
        })
        .take(500)
        .map(|e| {
            let methods: Vec<&str> = e.methods.iter().map(|m| m.name()).collect();
            json!({ "tid": e.tenant, "oid": e.oid, "upn": e.upn, "methods": methods })
        })
        .collect();
    json!({ "enrolments": users })
}

async fn reload(ctx: &Context, uid: u32) -> Result<Value, Problem> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let unavailable = || failed("the appliance is not taking reloads (it may be stopping)");
    ctx.reloads.send(reply).await.map_err(|_| unavailable())?;
    let outcome = answer.await.map_err(|_| unavailable())?;
    let (applied, detail) = match &outcome {
        Ok(done) => (true, done.clone()),
        Err(why) => (false, why.clone()),
    };
    let event = Event::Reload {
        applied,
        detail: detail.clone(),
        uid: Some(uid),
    };
    Arc::clone(&ctx.app().oversight.audit).note(event);
    match outcome {
        Ok(done) => Ok(json!({ "applied": true, "detail": done })),
        Err(why) => Err(failed(format!(
            "reload refused; the running configuration stays: {why}"
        ))),
    }
}
