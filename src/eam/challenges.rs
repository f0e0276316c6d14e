//! Challenges waiting for a phone to sign them, held in memory.
//!
//! Rules:
//! - A challenge is 32 random bytes under a random id, made for one transaction and the user
//!   its verified hint named; it expires with the transaction.
//! - It is answered once: the first response moves it out of waiting before any check runs,
//!   so a replay, or a second response racing the first, is refused.
//! - At most [`MAX_PENDING`] are held; past that, new ones are refused until expired ones are
//!   pruned. A transaction holds one challenge at a time: a new one replaces the old.
//! - Waiters are woken by a `watch` channel when the answer is decided, not by polling.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::i18n::Message;
use crate::jose::b64url_encode;
use crate::seal;

/// Challenges held at once.
pub const MAX_PENDING: usize = 10_000;

/// Where a challenge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Shown to the user; no phone has answered.
    Waiting,
    /// A phone answered and its response is being checked.
    Checking,
    /// The phone proved a certificate the trust store accepts.
    Proven,
    /// The phone's certificate or signature was refused: what the user reads, written out in
    /// each reader's language (the browser's, or English for the app), and the reason for the
    /// audit trail.
    Refused {
        message: Message,
        reason: &'static str,
    },
    /// The certificate could not be checked now (revocation data unavailable).
    Unavailable { reason: &'static str },
}

impl State {
    /// Whether the answer is decided.
    pub fn is_settled(&self) -> bool {
        !matches!(self, State::Waiting | State::Checking)
    }
}

/// Who a challenge is for: the transaction and the user and `amr` of its offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub txn_id: String,
    pub tid: String,
    pub oid: String,
    pub upn: Option<String>,
    pub amr: String,
    pub expires: i64,
}

struct Pending {
    subject: Subject,
    challenge: [u8; 32],
    state: watch::Sender<State>,
}

/// A challenge a phone may answer, claimed for checking.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub subject: Subject,
    pub challenge: [u8; 32],
}

/// A challenge as its transaction sees it.
#[derive(Debug)]
pub struct Watched {
    pub state: watch::Receiver<State>,
    pub challenge: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    #[error("no such challenge is waiting; it may have expired or been replaced")]
    Unknown,
    #[error("the challenge has expired; start the sign-in again")]
    Expired,
    #[error("the challenge has already been answered")]
    Answered,
    #[error("the challenge belongs to another sign-in")]
    OtherTransaction,
    #[error("too many sign-ins are waiting for a phone; try again shortly")]
    Full,
}

#[derive(Default)]
pub struct Challenges {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Challenges {
    /// A new challenge for `subject`: its id and bytes. Replaces the transaction's previous one.
    pub fn issue(&self, subject: Subject, now: i64) -> Result<(String, [u8; 32]), ChallengeError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.subject.expires > now && p.subject.txn_id != subject.txn_id);
        if pending.len() >= MAX_PENDING {
            return Err(ChallengeError::Full);
        }
        let id = b64url_encode(&seal::random_bytes::<16>());
        let challenge = seal::random_bytes::<32>();
        let (state, _) = watch::channel(State::Waiting);
        let entry = Pending {
            subject,
            challenge,
            state,
        };
        pending.insert(id.clone(), entry);
        Ok((id, challenge))
    }

    /// Claims a waiting challenge for checking a phone's response to it.
    pub fn claim(&self, id: &str, now: i64) -> Result<Claimed, ChallengeError> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.get(id).ok_or(ChallengeError::Unknown)?;
        if now >= entry.subject.expires {
            return Err(ChallengeError::Expired);
        }
        let claimed = entry.state.send_if_modified(|state| {
            let waiting = *state == State::Waiting;
            if waiting {
                *state = State::Checking;
            }
            waiting
        });
        if !claimed {
            return Err(ChallengeError::Answered);
        }
        Ok(Claimed {
            subject: entry.subject.clone(),
            challenge: entry.challenge,
        })
    }

    /// Records the answer to a claimed challenge and wakes its waiters.
    pub fn settle(&self, id: &str, state: State) {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = pending.get(id) {
            entry.state.send_replace(state);
        }
    }

    /// A receiver of the challenge's state and its bytes, for the transaction that owns it.
    pub fn watch(&self, id: &str, txn_id: &str) -> Result<Watched, ChallengeError> {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.get(id).ok_or(ChallengeError::Unknown)?;
        if entry.subject.txn_id != txn_id {
            return Err(ChallengeError::OtherTransaction);
        }
        Ok(Watched {
            state: entry.state.subscribe(),
            challenge: entry.challenge,
        })
    }

    /// Removes the challenge once its transaction used the answer.
    pub fn remove(&self, id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(id);
    }

    /// Drops challenges whose transactions have expired.
    pub fn prune(&self, now: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.subject.expires > now);
    }

    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(txn: &str, expires: i64) -> Subject {
        Subject {
            txn_id: txn.into(),
            tid: "t".into(),
            oid: "o".into(),
            upn: None,
            amr: "swk".into(),
            expires,
        }
    }

    #[test]
    fn a_challenge_is_claimed_once_and_its_waiters_see_the_answer() {
        let challenges = Challenges::default();
        let (id, bytes) = challenges.issue(subject("a", 100), 0).unwrap();
        let seen = challenges.watch(&id, "a").unwrap();
        let claimed = challenges.claim(&id, 1).unwrap();
        assert_eq!(claimed.challenge, bytes);
        assert_eq!(
            challenges.claim(&id, 1).unwrap_err(),
            ChallengeError::Answered
        );
        challenges.settle(&id, State::Proven);
        assert_eq!(*seen.state.borrow(), State::Proven);
        assert_eq!(seen.challenge, bytes);
    }

    #[test]
    fn expired_unknown_and_other_transactions_challenges_are_refused() {
        let challenges = Challenges::default();
        let (id, _) = challenges.issue(subject("a", 100), 0).unwrap();
        assert_eq!(
            challenges.claim(&id, 100).unwrap_err(),
            ChallengeError::Expired
        );
        assert_eq!(
            challenges.claim("nope", 1).unwrap_err(),
            ChallengeError::Unknown
        );
        let other = challenges.watch(&id, "b").unwrap_err();
        assert_eq!(other, ChallengeError::OtherTransaction);
        challenges.prune(100);
        assert!(challenges.is_empty());
    }

    #[test]
    fn a_new_challenge_replaces_the_transactions_previous_one() {
        let challenges = Challenges::default();
        let (first, _) = challenges.issue(subject("a", 100), 0).unwrap();
        let (second, _) = challenges.issue(subject("a", 100), 0).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            challenges.claim(&first, 1).unwrap_err(),
            ChallengeError::Unknown
        );
        assert_eq!(challenges.len(), 1);
    }

    #[test]
    fn past_the_cap_new_challenges_are_refused_until_old_ones_expire() {
        let challenges = Challenges::default();
        for i in 0..MAX_PENDING {
            challenges.issue(subject(&i.to_string(), 10), 0).unwrap();
        }
        let refused = challenges.issue(subject("late", 20), 5).unwrap_err();
        assert_eq!(refused, ChallengeError::Full);
        assert!(challenges.issue(subject("late", 20), 10).is_ok());
        assert_eq!(challenges.len(), 1);
    }
}
