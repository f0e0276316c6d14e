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
        Request::StageKey {} => stage_key(&app, uid).await,
        Request::PromoteKey {} => promote_key(&app, uid).await,
        Request::Tenants {} => Ok(tenants(&app)),
        Request::Enrolments { find } => Ok(enrolments(&app, &find)),
        Request::EnrolTotp {
            tid,
            oid,
            digits,
            algorithm,
            replace,
        } => {
            let (tid, oid) = user(&tid, &oid)?;
            if !(6..=8).contains(&digits) {
                return Err(invalid("digits must be 6, 7 or 8"));
            }
            let params = TotpParams { algorithm, digits };
            let seed = app
                .store
                .enroll_totp(&tid, &oid, params, replace, app.clock.now())
                .map_err(failed)?;
            enrolment(&app, &tid, &oid, "enrol", uid).await?;
            let uri = crate::factor::otp::otpauth_uri("vouch", &oid, &seed, params);
            Ok(json!({ "tid": tid, "oid": oid, "otpauth_uri": uri }))
        }
        Request::Revoke { tid, oid, method } => {
            let (tid, oid) = user(&tid, &oid)?;
            if !app.store.revoke(&tid, &oid, method).map_err(failed)? {
                return Err(Problem::new(
                    ProblemCode::Failed,
                    format!("{oid} in {tid} has no {} enrolled", method.name()),
                ));
            }
            enrolment(&app, &tid, &oid, "revoke", uid).await?;
            Ok(json!({ "tid": tid, "oid": oid, "revoked": method.name() }))
        }
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
        "audit": {
            "dir": app.oversight.audit.dir().display().to_string(),
            "head_seq": head.seq,
            "head_hash": head.hash,
        },
    })
}

fn signer(app: &App) -> Value {
    let healthy = !app.signer.is_saturated();
    json!({
        "kind": "software",
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
    let staged = crate::provision::staged_signer(&app.config.state_dir).map_err(failed)?;
    use crate::signer::TokenSigner as _;
    Ok(json!({
        "signing_kid": app.signer.published().kid,
        "staged_kid": staged.as_ref().map(|s| s.published().kid.clone()),
        "signer": signer(app),
    }))
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

async fn stage_key(app: &App, uid: u32) -> Result<Value, Problem> {
    use crate::signer::TokenSigner as _;
    let next = crate::provision::stage_signing_key(&app.config.state_dir).map_err(failed)?;
    let kid = next.published().kid.clone();
    key_event(app, "stage", &kid, uid).await?;
    Ok(json!({
        "staged_kid": kid,
        "next_step": "restart vouch to publish it; promote it after at least 48 hours (72 is safer)",
    }))
}

async fn promote_key(app: &App, uid: u32) -> Result<Value, Problem> {
    use crate::signer::TokenSigner as _;
    let dir = &app.config.state_dir;
    crate::provision::promote_signing_key(dir, app.clock.now()).map_err(failed)?;
    let kid = crate::provision::software_signer(dir)
        .map_err(failed)?
        .published()
        .kid
        .clone();
    key_event(app, "promote", &kid, uid).await?;
    Ok(json!({ "signing_kid": kid, "next_step": "restart vouch to sign with it" }))
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
    let find = find.to_ascii_lowercase();
    let users: Vec<Value> = app
        .store
        .list()
        .into_iter()
        .filter(|e| e.oid.contains(&find) || e.tenant.contains(&find))
        .take(500)
        .map(|e| {
            let methods: Vec<&str> = e.methods.iter().map(|m| m.name()).collect();
            json!({ "tid": e.tenant, "oid": e.oid, "methods": methods })
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
