//! Admission of sign-in work, so that past its capacity the appliance turns work away early
//! and cheaply instead of slowing every sign-in down until Entra's window closes.
//!
//! New sign-ins are the first to go: they are refused once three quarters of the in-flight
//! allowance is taken or the signer's queue is half full, because the work a new sign-in
//! needs is all still ahead of it. Sign-ins already in a transaction may use the whole
//! allowance and the whole queue, so that the users who have typed a code get their answer;
//! they are refused only when the queue is full, before their code is spent.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How far a sign-in has come, which decides how busy the appliance may be to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Entra's request, before any transaction exists.
    New,
    /// A factor step of an open transaction.
    InTransaction,
}

#[derive(Debug)]
pub struct Admission {
    max: usize,
    in_flight: AtomicUsize,
}

/// A place among the sign-ins being worked on, given back when dropped.
#[derive(Debug)]
pub struct Ticket<'a>(&'a AtomicUsize);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(max_in_flight: usize) -> Admission {
        Admission {
            max: max_in_flight.max(4),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// A ticket when the work may go ahead now; `None` when it should be turned away.
    /// `signer_fill` is how full the signer's queue is, from 0 to 1.
    pub fn admit(&self, stage: Stage, signer_fill: f64) -> Option<Ticket<'_>> {
        let (limit, signer_room) = match stage {
            Stage::New => (self.max - self.max / 4, signer_fill < 0.5),
            Stage::InTransaction => (self.max, signer_fill < 1.0),
        };
        if !signer_room {
            return None;
        }
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let ticket = Ticket(&self.in_flight);
        (taken < limit).then_some(ticket)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sign_ins_are_refused_first_and_sign_ins_in_a_transaction_last() {
        let admission = Admission::new(8);
        let held: Vec<_> = (0..6)
            .map(|_| admission.admit(Stage::New, 0.0).expect("room"))
            .collect();
        assert!(admission.admit(Stage::New, 0.0).is_none());
        let late = [
            admission.admit(Stage::InTransaction, 0.0),
            admission.admit(Stage::InTransaction, 0.0),
        ];
        assert!(late.iter().all(Option::is_some));
        assert!(admission.admit(Stage::InTransaction, 0.0).is_none());
        assert_eq!(admission.in_flight(), 8);

        drop(held);
        drop(late);
        assert_eq!(admission.in_flight(), 0);
    }

    #[test]
    fn a_half_full_signer_turns_new_sign_ins_away_and_a_full_one_every_sign_in() {
        let admission = Admission::new(8);
        assert!(admission.admit(Stage::New, 0.5).is_none());
        assert!(admission.admit(Stage::InTransaction, 0.5).is_some());
        assert!(admission.admit(Stage::InTransaction, 1.0).is_none());
        assert_eq!(admission.in_flight(), 0);
    }
}
