//! What `vouch hsm status` shows about PIV: every reader, whether it holds a card, whether
//! the card has a PIV application, the configured slot's certificate and the PIN tries
//! left. Reading the tries left uses VERIFY without data, which spends none.

use std::fmt;

use super::Slot;
use super::card::{self, PinState};
use super::cert::{self, CertificateSummary};
use super::transport::Transport;
use crate::HsmError;

/// The state of every reader, for the configured slot.
#[derive(Debug)]
pub struct PivStatus {
    pub slot: Slot,
    /// The reader the configuration names, if it names one.
    pub configured: Option<String>,
    pub readers: Vec<ReaderStatus>,
}

/// One reader and the card in it.
#[derive(Debug)]
pub struct ReaderStatus {
    pub name: String,
    /// Whether this is the reader the configuration names.
    pub configured: bool,
    /// `None` when the reader is empty.
    pub card: Option<Result<CardStatus, HsmError>>,
}

/// A card with a PIV application, as seen in the configured slot.
#[derive(Debug)]
pub struct CardStatus {
    pub certificate: Result<CertificateSummary, HsmError>,
    pub pin: Result<PinState, HsmError>,
}

/// Looks at the PIV application on the card behind `transport`, spending no PIN try.
pub fn probe(transport: &mut dyn Transport, slot: Slot) -> Result<CardStatus, HsmError> {
    card::select(transport)?;
    let name = format!("PIV slot {slot} in {:?}", transport.reader());
    let certificate = card::read_certificate(transport, slot)
        .and_then(|der| cert::parse(&name, &der))
        .map(|c| c.summary);
    let pin = card::pin_state(transport);
    Ok(CardStatus { certificate, pin })
}

/// Every PC/SC reader and what it holds. Fails only when pcscd cannot be reached.
#[cfg(feature = "pcsc")]
pub fn status(config: &super::PivConfig) -> Result<PivStatus, HsmError> {
    use super::pcsc::{PcscTransport, cards_present, establish, reader_names};

    let context = establish()?;
    let names = reader_names(&context)?;
    let present = cards_present(&context, &names)?;
    let mut readers = Vec::with_capacity(names.len());
    for (name, present) in names.into_iter().zip(present) {
        let configured = config
            .reader
            .as_deref()
            .is_some_and(|wanted| name.starts_with(wanted));
        let card = match present.then(|| PcscTransport::connect(context.clone(), &name)) {
            None | Some(Err(HsmError::Unavailable { .. })) => None,
            Some(Ok(mut transport)) => Some(probe(&mut transport, config.slot)),
            Some(Err(other)) => Some(Err(other)),
        };
        readers.push(ReaderStatus {
            name,
            configured,
            card,
        });
    }
    Ok(PivStatus {
        slot: config.slot,
        configured: config.reader.clone(),
        readers,
    })
}

impl fmt::Display for PivStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.readers.is_empty() {
            writeln!(f, "no PC/SC readers; plug in the card reader or token")?;
        }
        if let Some(name) = &self.configured
            && !self.readers.iter().any(|r| r.configured)
        {
            writeln!(f, "configured reader {name:?}: not connected")?;
        }
        for reader in &self.readers {
            let mark = if reader.configured {
                " (configured)"
            } else {
                ""
            };
            writeln!(f, "reader {:?}{mark}", reader.name)?;
            match &reader.card {
                None => writeln!(f, "  card: none")?,
                Some(Err(e)) => writeln!(f, "  card: {e}")?,
                Some(Ok(card)) => {
                    writeln!(f, "  PIV application: found")?;
                    match &card.certificate {
                        Ok(c) => writeln!(
                            f,
                            "  slot {}: {} key, certificate {}, expires {}",
                            self.slot, c.key, c.subject, c.not_after
                        )?,
                        Err(e) => writeln!(f, "  slot {}: {e}", self.slot)?,
                    }
                    match &card.pin {
                        Ok(PinState::Retries(n)) => writeln!(f, "  PIN: {n} tries left")?,
                        Ok(PinState::Verified) => writeln!(f, "  PIN: verified")?,
                        Ok(PinState::Blocked) => {
                            writeln!(f, "  PIN: blocked; unblock it with the PUK")?
                        }
                        Err(e) => writeln!(f, "  PIN: {e}")?,
                    }
                }
            }
        }
        Ok(())
    }
}
