//! An emulated PIV card for vouch's tests: the `piv-authenticator` applet on trussed's
//! virtual platform, in memory, reachable in-process or inserted into pcscd through
//! vsmartcard's vpcd reader.
//!
//! It is a test tool. Its random number generator has a fixed seed, so every card makes the
//! same keys: never hold a real secret in it.
//!
//! ```no_run
//! let card = vouch_piv_sim::SimCard::start();
//! let provisioned = card.provision("246810").unwrap();
//! card.insert(vouch_piv_sim::VPCD_PORT).unwrap(); // now "Virtual PCD 00 00" holds it
//! # drop(provisioned);
//! ```

mod adapter;
mod dispatch;
mod provision;
mod vpcd;

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use piv_authenticator::{Authenticator, Options};
use trussed::virt::StoreConfig;

pub use provision::{
    DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN, Provisioned, SimError, certificate_object,
};

/// The first of vpcd's two ports (Debian's `/etc/reader.conf.d/vpcd`); the reader it feeds
/// is `Virtual PCD 00 00`. The second port, one higher, feeds `Virtual PCD 00 01`.
pub const VPCD_PORT: u16 = 35963;

/// What the link and the handle ask of the card thread.
pub(crate) enum Request {
    Apdu(Vec<u8>, Sender<Vec<u8>>),
    Reset,
}

/// A running emulated card. Dropping it removes it from the reader and stops it.
pub struct SimCard {
    requests: Option<Sender<Request>>,
    card: Option<JoinHandle<()>>,
    link: Mutex<Option<vpcd::Link>>,
}

impl SimCard {
    /// Starts a blank card: default PIN `123456`, default management key, no keys.
    pub fn start() -> SimCard {
        let (requests, inbox) = mpsc::channel();
        let card = thread::Builder::new()
            .name("piv-sim-card".into())
            .spawn(move || run_card(inbox))
            .ok();
        SimCard {
            requests: Some(requests),
            card,
            link: Mutex::new(None),
        }
    }

    /// Sends one APDU straight to the card, as a reader would, and returns its answer
    /// (data and status word). A stopped card answers `6F00`.
    pub fn transmit(&self, apdu: &[u8]) -> Vec<u8> {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|r| r.send(Request::Apdu(apdu.to_vec(), reply)).is_ok());
        match sent.then(|| answer.recv().ok()).flatten() {
            Some(answer) => answer,
            None => vec![0x6F, 0x00],
        }
    }

    /// Inserts the card into the vpcd reader listening on loopback `port`.
    pub fn insert(&self, port: u16) -> io::Result<()> {
        let requests = self
            .requests
            .clone()
            .ok_or_else(|| io::Error::other("the card has stopped"))?;
        let link = vpcd::Link::attach(port, requests)?;
        let mut slot = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = slot.replace(link) {
            old.detach();
        }
        Ok(())
    }

    /// Takes the card out of its reader; it keeps its keys and PIN and can be inserted
    /// again.
    pub fn remove(&self) {
        let link = self
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(link) = link {
            link.detach();
        }
        self.reset();
    }

    /// Resets the card as a power cycle would: the PIN must be verified again.
    pub fn reset(&self) {
        let _ = self.requests.as_ref().map(|r| r.send(Request::Reset));
    }
}

impl Drop for SimCard {
    fn drop(&mut self) {
        self.remove();
        self.requests = None;
        if let Some(card) = self.card.take() {
            let _ = card.join();
        }
    }
}

/// The card thread: runs the trussed service and the applet until every handle is gone.
fn run_card(inbox: Receiver<Request>) {
    trussed::virt::with_platform(StoreConfig::ram(), |platform| {
        platform.run_client_with_backends(
            "piv",
            dispatch::CardDispatch::new(),
            dispatch::BACKENDS,
            |client| {
                let applet = Authenticator::new(client, Options::default());
                let mut card = adapter::Adapter::new(applet);
                while let Ok(request) = inbox.recv() {
                    match request {
                        Request::Apdu(apdu, reply) => {
                            let _ = reply.send(card.execute(&apdu));
                        }
                        Request::Reset => card.reset(),
                    }
                }
            },
        )
    });
}
