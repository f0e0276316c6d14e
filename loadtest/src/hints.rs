//! Entra's side of a run: the hints it signs for each user, kept while they are fresh.
//!
//! Signing a hint costs an RSA-2048 signature, about as much as the appliance's own token
//! signature, so the tool signs each user's hint once, before the measured load, and reuses
//! it while its `iat` is younger than [`FRESH_SECS`]; the appliance accepts hints up to
//! `hint.max_age_secs` old (600 s by default). A background task re-signs hints that age.
//!
//! A hint carries the user's UPN as `preferred_username` only for the certificate factors
//! (mobile PKI, smart card): the stand's trust stores bind certificates by UPN, so a hint
//! without one is offered neither: an OTP run goes straight to the code page and a FIDO2 run
//! to the security-key page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use entra_sim::{APP_ID, Authority};

use crate::flow::Factor;
use crate::users::Users;

/// Age past which a hint is signed again.
pub const FRESH_SECS: i64 = 300;
/// How often the background task looks for ageing hints.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Hint {
    iat: i64,
    token: Arc<str>,
}

/// Every user's current hint.
pub struct HintBook {
    entra: Arc<Authority>,
    users: Arc<Users>,
    factor: Factor,
    hints: Vec<Mutex<Option<Hint>>>,
}

impl HintBook {
    pub fn new(entra: Arc<Authority>, users: Arc<Users>, factor: Factor) -> HintBook {
        let hints = (0..users.len()).map(|_| Mutex::new(None)).collect();
        HintBook {
            entra,
            users,
            factor,
            hints,
        }
    }

    /// User `index`'s hint, signed now if it has none or it has aged.
    pub fn get(&self, index: usize, now: i64) -> Arc<str> {
        let slot = &self.hints[index];
        if let Some(hint) = lock(slot).as_ref()
            && now - hint.iat < FRESH_SECS
        {
            return hint.token.clone();
        }
        let hint = self.sign(index);
        let token = hint.token.clone();
        *lock(slot) = Some(hint);
        token
    }

    fn sign(&self, index: usize) -> Hint {
        let user = self.users.get(index);
        let mut claims = self
            .entra
            .hint_claims(&self.users.tenant, &user.oid, &user.sub, APP_ID);
        set_username(&mut claims, self.factor, &user.upn);
        let iat = claims["iat"].as_i64().unwrap_or_else(entra_sim::unix_now);
        Hint {
            iat,
            token: self.entra.hint(&claims).into(),
        }
    }

    /// Signs the hints of users `0..count` on every core, reporting progress to `progress`.
    pub async fn sign_ahead(self: &Arc<Self>, count: usize, mut progress: impl FnMut(usize)) {
        let count = count.min(self.hints.len());
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = 256;
        let (mut next, mut done) = (0, 0);
        let mut running = tokio::task::JoinSet::new();
        while next < count || !running.is_empty() {
            while next < count && running.len() < threads {
                let book = self.clone();
                let range = next..(next + chunk).min(count);
                next = range.end;
                running.spawn_blocking(move || {
                    let (now, signed) = (entra_sim::unix_now(), range.len());
                    range.for_each(|i| drop(book.get(i, now)));
                    signed
                });
            }
            if let Some(signed) = running.join_next().await {
                done += signed.unwrap_or(0);
                progress(done);
            }
        }
    }

    /// Re-signs ageing hints in the background until the returned task is aborted.
    pub fn refresh_in_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let book = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            loop {
                tick.tick().await;
                let ageing = book.ageing(entra_sim::unix_now());
                let worker = book.clone();
                let now = entra_sim::unix_now() + REFRESH_EVERY.as_secs() as i64;
                let done = tokio::task::spawn_blocking(move || {
                    ageing.into_iter().for_each(|i| drop(worker.get(i, now)));
                });
                let _ = done.await;
            }
        })
    }

    /// Users whose hint will have aged by the next look.
    fn ageing(&self, now: i64) -> Vec<usize> {
        let horizon = now + 2 * REFRESH_EVERY.as_secs() as i64;
        let aged = |slot: &Mutex<Option<Hint>>| {
            lock(slot)
                .as_ref()
                .is_some_and(|h| horizon - h.iat >= FRESH_SECS)
        };
        (0..self.hints.len())
            .filter(|&i| aged(&self.hints[i]))
            .collect()
    }
}

/// The user's UPN as `preferred_username` for the certificate factors, none for the others.
fn set_username(claims: &mut serde_json::Value, factor: Factor, upn: &str) {
    let Some(claims) = claims.as_object_mut() else {
        return;
    };
    match factor {
        Factor::Otp | Factor::Fido => drop(claims.remove("preferred_username")),
        Factor::MobilePki | Factor::SmartCard => {
            drop(claims.insert("preferred_username".into(), upn.into()))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mobile_pki_hints_name_the_user_by_upn() {
        let claims = serde_json::json!({"sub": "s", "preferred_username": "x@contoso.com"});
        let mut otp = claims.clone();
        set_username(&mut otp, Factor::Otp, "user1@loadtest.example");
        assert!(otp.get("preferred_username").is_none());
        assert_eq!(otp["sub"], "s");
        let mut mobile = claims;
        set_username(&mut mobile, Factor::MobilePki, "user1@loadtest.example");
        assert_eq!(mobile["preferred_username"], "user1@loadtest.example");
    }
}
