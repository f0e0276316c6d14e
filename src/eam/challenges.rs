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
//! - Expired challenges are found through a queue ordered by expiry, so issuing one costs
//!   the expired ones it drops, not a scan of every challenge held.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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
    pending: Mutex<Book>,
}

/// The challenges held, indexed by id and by transaction, with their expiries in order.
#[derive(Default)]
struct Book {
    by_id: HashMap<String, Pending>,
    by_txn: HashMap<String, String>,
    /// `(expires, id)` of every challenge issued; ids since removed are skipped when popped.
    expiries: BinaryHeap<Reverse<(i64, String)>>,
}

impl Book {
    fn get(&self, id: &str) -> Option<&Pending> {
        self.by_id.get(id)
    }

    fn insert(&mut self, id: String, entry: Pending) {
        let expiry = Reverse((entry.subject.expires, id.clone()));
        self.by_txn.insert(entry.subject.txn_id.clone(), id.clone());
        self.by_id.insert(id, entry);
        self.expiries.push(expiry);
        if self.expiries.len() > 2 * MAX_PENDING {
            self.compact();
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(entry) = self.by_id.remove(id) else {
            return;
        };
        let txn = &entry.subject.txn_id;
        if self.by_txn.get(txn).is_some_and(|held| held == id) {
            self.by_txn.remove(txn);
        }
    }

    /// Drops the transaction's challenge, if it holds one.
    fn replace(&mut self, txn_id: &str) {
        if let Some(old) = self.by_txn.get(txn_id).cloned() {
            self.remove(&old);
        }
    }

    /// Drops every challenge that expired by `now`, oldest first.
    fn prune(&mut self, now: i64) {
        while let Some(Reverse((expires, _))) = self.expiries.peek() {
            if *expires > now {
                break;
            }
            if let Some(Reverse((_, id))) = self.expiries.pop() {
                self.remove(&id);
            }
        }
    }

    /// Rebuilds the queue from the challenges held, dropping ids removed since.
    fn compact(&mut self) {
        let live = self
            .by_id
            .iter()
            .map(|(id, p)| Reverse((p.subject.expires, id.clone())));
        self.expiries = live.collect();
    }
}

impl Challenges {
    /// A new challenge for `subject`: its id and bytes. Replaces the transaction's previous one.
    pub fn issue(&self, subject: Subject, now: i64) -> Result<(String, [u8; 32]), ChallengeError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.prune(now);
        pending.replace(&subject.txn_id);
        if pending.by_id.len() >= MAX_PENDING {
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
        pending.prune(now);
    }

    pub fn len(&self) -> usize {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.by_id.len()
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

    #[test]
    fn issuing_drops_the_challenges_that_expired_and_keeps_the_live_ones() {
        let challenges = Challenges::default();
        let (old, _) = challenges.issue(subject("a", 10), 0).unwrap();
        let (live, _) = challenges.issue(subject("b", 30), 0).unwrap();
        challenges.issue(subject("c", 40), 10).unwrap();
        assert_eq!(challenges.len(), 2);
        assert_eq!(
            challenges.watch(&old, "a").unwrap_err(),
            ChallengeError::Unknown
        );
        assert!(challenges.claim(&live, 10).is_ok());
    }

    #[test]
    fn a_removed_challenge_leaves_its_transaction_free_to_start_again() {
        let challenges = Challenges::default();
        let (first, _) = challenges.issue(subject("a", 10), 0).unwrap();
        challenges.remove(&first);
        let (second, _) = challenges.issue(subject("a", 20), 5).unwrap();
        challenges.prune(10);
        assert_eq!(challenges.len(), 1);
        assert!(challenges.claim(&second, 11).is_ok());
        challenges.prune(20);
        assert!(challenges.is_empty());
    }

    #[test]
    fn many_issued_and_removed_challenges_keep_the_cap_and_the_live_ones() {
        let challenges = Challenges::default();
        let (kept, _) = challenges.issue(subject("kept", 1_000), 0).unwrap();
        for i in 0..3 * MAX_PENDING {
            let (id, _) = challenges.issue(subject(&i.to_string(), 500), 0).unwrap();
            challenges.remove(&id);
        }
        assert_eq!(challenges.len(), 1);
        assert!(challenges.claim(&kept, 999).is_ok());
    }
}
