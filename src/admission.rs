//! Admission of sign-in work, so that past its capacity the appliance turns work away early
//! and cheaply instead of slowing every sign-in down until Entra's window closes.
//!
//! New sign-ins are the first to go: they are refused once three quarters of the in-flight
//! allowance is taken, because the work a new sign-in needs is all still ahead of it.
//! Sign-ins already in a transaction may use the whole allowance, so that the users who have
//! typed a code get their answer. Either is refused while the signer has no free slot: a
//! token could not be signed, and a factor step refused then has not spent the user's code.

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
    pub fn admit(&self, stage: Stage, signer_saturated: bool) -> Option<Ticket<'_>> {
        if signer_saturated {
            return None;
        }
        let limit = match stage {
            Stage::New => self.max - self.max / 4,
            Stage::InTransaction => self.max,
        };
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
            .map(|_| admission.admit(Stage::New, false).expect("room"))
            .collect();
        assert!(admission.admit(Stage::New, false).is_none());
        let late = [
            admission.admit(Stage::InTransaction, false),
            admission.admit(Stage::InTransaction, false),
        ];
        assert!(late.iter().all(Option::is_some));
        assert!(admission.admit(Stage::InTransaction, false).is_none());
        assert_eq!(admission.in_flight(), 8);

        drop(held);
        drop(late);
        assert_eq!(admission.in_flight(), 0);
    }

    #[test]
    fn a_saturated_signer_turns_every_sign_in_away() {
        let admission = Admission::new(8);
        assert!(admission.admit(Stage::New, true).is_none());
        assert!(admission.admit(Stage::InTransaction, true).is_none());
        assert_eq!(admission.in_flight(), 0);
    }
}
