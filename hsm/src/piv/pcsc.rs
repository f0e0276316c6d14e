//! The PC/SC transport (pcsc-lite's `libpcsclite` through the `pcsc` crate): finds the
//! reader, connects in shared mode and maps PC/SC return codes to [`HsmError`].
//!
//! Return codes that mean the card or reader may come back (removed, reset, unpowered,
//! reader gone) become [`HsmError::Unavailable`]; a missing pcscd is [`HsmError::Pcsc`]
//! naming the service. Both are transient, so the signer keeps retrying on its own.

use std::ffi::CString;
use std::sync::{Mutex, PoisonError};

use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use super::card;
use super::key::Connector;
use super::transport::{ExclusiveWork, Transport};
use crate::HsmError;

/// The device name used before a reader is known.
const SERVICE: &str = "PC/SC";

/// Connects to the configured reader, or to the first reader holding a PIV card; once a
/// reader is found it stays the one this connector uses, so a reconnect never lands on a
/// different card.
pub struct PcscConnector {
    wanted: Option<String>,
    found: Mutex<Option<String>>,
}

impl PcscConnector {
    pub fn new(reader: Option<String>) -> PcscConnector {
        PcscConnector {
            wanted: reader,
            found: Mutex::new(None),
        }
    }
}

impl Connector for PcscConnector {
    fn connect(&self) -> Result<Box<dyn Transport>, HsmError> {
        let context = establish()?;
        let readers = reader_names(&context)?;
        let found = self
            .found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let wanted = found.as_deref().or(self.wanted.as_deref());

        let transport = match wanted {
            Some(wanted) => {
                let name = pick_reader(&readers, wanted)?;
                PcscTransport::connect(context, &name)?
            }
            None => first_piv_card(context, &readers)?,
        };
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found.get_or_insert_with(|| transport.reader.clone());
        Ok(Box::new(transport))
    }
}

/// A shared-mode connection to the card in one reader. Closing it leaves the card as it is:
/// resetting it, as a plain drop of the connection would, logs out every other session on
/// the card, this appliance's other signer threads included.
pub struct PcscTransport {
    /// Always present until the connection is dropped.
    card: Option<pcsc::Card>,
    reader: String,
    _context: Context,
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if let Some(card) = self.card.take()
            && let Err((_, e)) = card.disconnect(pcsc::Disposition::LeaveCard)
        {
            tracing::debug!(reader = %self.reader, error = %e, "card connection closed uncleanly");
        }
    }
}

impl PcscTransport {
    /// Connects to the card in `reader`.
    pub fn connect(context: Context, reader: &str) -> Result<PcscTransport, HsmError> {
        let name = CString::new(reader).map_err(|_| HsmError::NotFound {
            device: SERVICE.into(),
            what: format!("reader named {reader:?}"),
        })?;
        let card = context
            .connect(&name, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| pcsc_error(reader, e))?;
        Ok(PcscTransport {
            card: Some(card),
            reader: reader.to_owned(),
            _context: context,
        })
    }

    fn card(&self) -> Result<&pcsc::Card, HsmError> {
        self.card.as_ref().ok_or_else(|| closed(&self.reader))
    }
}

impl Transport for PcscTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
        transmit(self.card()?, &self.reader, apdu)
    }

    fn reader(&self) -> &str {
        &self.reader
    }

    fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError> {
        let transaction = self
            .card
            .as_mut()
            .ok_or_else(|| closed(&self.reader))?
            .transaction()
            .map_err(|e| pcsc_error(&self.reader, e))?;
        let mut held = HeldCard {
            card: &transaction,
            reader: &self.reader,
        };
        work(&mut held)
    }
}

fn closed(reader: &str) -> HsmError {
    HsmError::Unavailable {
        device: format!("reader {reader:?}"),
        detail: "the connection is closed".into(),
    }
}

/// The card while this connection holds a PC/SC transaction on it.
struct HeldCard<'a> {
    card: &'a pcsc::Card,
    reader: &'a str,
}

impl Transport for HeldCard<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
        transmit(self.card, self.reader, apdu)
    }

    fn reader(&self) -> &str {
        self.reader
    }

    fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError> {
        work(self)
    }
}

fn transmit(card: &pcsc::Card, reader: &str, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
    let mut buffer = [0; pcsc::MAX_BUFFER_SIZE];
    let answer = card
        .transmit(apdu, &mut buffer)
        .map_err(|e| pcsc_error(reader, e))?;
    Ok(answer.to_vec())
}

/// Opens a PC/SC context; a missing pcscd is named as such.
pub(crate) fn establish() -> Result<Context, HsmError> {
    Context::establish(Scope::User).map_err(|e| pcsc_error(SERVICE, e))
}

/// The names of the readers pcscd knows, empty when there are none.
pub(crate) fn reader_names(context: &Context) -> Result<Vec<String>, HsmError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(pcsc_error(SERVICE, e)),
    }
}

/// Whether each reader holds a card, as pcscd last saw it; asks the reader, not the card.
pub(crate) fn cards_present(context: &Context, readers: &[String]) -> Result<Vec<bool>, HsmError> {
    let mut states: Vec<ReaderState> = readers
        .iter()
        .filter_map(|name| CString::new(name.as_str()).ok())
        .map(|name| ReaderState::new(name, State::UNAWARE))
        .collect();
    context
        .get_status_change(Duration::ZERO, &mut states)
        .map_err(|e| pcsc_error(SERVICE, e))?;
    Ok(states
        .iter()
        .map(|s| s.event_state().contains(State::PRESENT))
        .collect())
}

/// The reader named `wanted`, or failing that the first whose name starts with it.
fn pick_reader(readers: &[String], wanted: &str) -> Result<String, HsmError> {
    readers
        .iter()
        .find(|r| *r == wanted)
        .or_else(|| readers.iter().find(|r| r.starts_with(wanted)))
        .cloned()
        .ok_or_else(|| HsmError::Unavailable {
            device: format!("reader {wanted:?}"),
            detail: format!(
                "pcscd lists no such reader (readers: {}); plug it in or fix the configured name",
                list(readers)
            ),
        })
}

fn first_piv_card(context: Context, readers: &[String]) -> Result<PcscTransport, HsmError> {
    for reader in readers {
        let Ok(mut transport) = PcscTransport::connect(context.clone(), reader) else {
            continue;
        };
        if card::select(&mut transport).is_ok() {
            return Ok(transport);
        }
    }
    Err(HsmError::Unavailable {
        device: SERVICE.into(),
        detail: format!(
            "no reader holds a card with a PIV application (readers: {}); insert the card",
            list(readers)
        ),
    })
}

fn list(readers: &[String]) -> String {
    if readers.is_empty() {
        "none".into()
    } else {
        readers.join(", ")
    }
}

/// Maps a PC/SC return code to the error an operator can act on.
pub(crate) fn pcsc_error(reader: &str, error: pcsc::Error) -> HsmError {
    use pcsc::Error as E;
    let code = error as u32;
    match error {
        E::NoService | E::ServiceStopped => HsmError::Pcsc {
            reader: reader.to_owned(),
            code,
            detail: "the PC/SC service pcscd is not running; start it (systemctl start \
                     pcscd.socket)"
                .into(),
        },
        E::RemovedCard
        | E::ResetCard
        | E::NoSmartcard
        | E::UnpoweredCard
        | E::UnresponsiveCard
        | E::ReaderUnavailable
        | E::UnknownReader
        | E::CommError
        | E::NotTransacted
        | E::NoReadersAvailable => HsmError::Unavailable {
            device: format!("reader {reader:?}"),
            detail: format!(
                "{error} (PC/SC code {code:#010x}); vouch reconnects when the card is back"
            ),
        },
        other => HsmError::Pcsc {
            reader: reader.to_owned(),
            code,
            detail: other.to_string(),
        },
    }
}
