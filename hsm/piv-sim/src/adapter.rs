//! Between the wire and the applet: what a card's operating system does before an APDU
//! reaches the PIV application.
//!
//! - Command chaining (ISO 7816-4 §5.1.1): parts with CLA bit 5 set are collected, and the
//!   applet sees one command.
//! - Response paging (ISO 7816-4 §5.3.4): an answer longer than Le is cut, `61xx` says what
//!   remains, GET RESPONSE (`C0`) fetches it. An absent Le is taken as 256, the most a short
//!   APDU can ask for, as real cards do.
//! - A SELECT of a right-truncated PIV AID (some tools send only `A0 00 00 03 08`) is
//!   widened to the full AID, as a card's application matching would.

use heapless::Vec as HVec;
use iso7816::command::CommandView;
use piv_authenticator::{Authenticator, Client};

/// The largest command the applet gets after chaining, and the largest answer it may give.
const BUFFER: usize = 7609;

/// The full PIV AID (SP 800-73-4 Part 1 §2.2).
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

/// The PIV registered application provider identifier, the shortest prefix accepted.
const PIV_RID_LEN: usize = 5;

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_CONDITIONS: [u8; 2] = [0x69, 0x85];

/// The applet and what the card remembers between APDUs.
pub struct Adapter<T: Client> {
    applet: Authenticator<T>,
    chain: Option<iso7816::Command<BUFFER>>,
    pending: Vec<u8>,
}

impl<T: Client> Adapter<T> {
    pub fn new(applet: Authenticator<T>) -> Self {
        Adapter {
            applet,
            chain: None,
            pending: Vec::new(),
        }
    }

    /// A power cycle or reset: half-sent chains and unread answers are dropped, and the
    /// PIN is no longer verified (VERIFY with P1 = FF, SP 800-73-4 Part 2 §3.2.1, is the
    /// applet's way to forget it).
    pub fn reset(&mut self) {
        self.chain = None;
        self.pending.clear();
        let logout = [0x00, 0x20, 0xFF, 0x80];
        if let Ok(command) = CommandView::try_from(&logout[..]) {
            let mut reply = HVec::<u8, BUFFER>::new();
            let _ = self.applet.respond(command, &mut reply);
        }
    }

    /// Answers one APDU as received from the reader.
    pub fn execute(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Ok(command) = CommandView::try_from(apdu) else {
            return SW_WRONG_LENGTH.to_vec();
        };
        let le = match command.expected() {
            0 => 256,
            le => le,
        };

        if command.instruction() == iso7816::Instruction::GetResponse {
            if self.pending.is_empty() {
                return SW_CONDITIONS.to_vec();
            }
            return self.page(le);
        }
        self.pending.clear();

        if command.class().chain().not_the_last() {
            return self.collect(command);
        }
        let whole = match self.chain.take() {
            Some(mut chain) => {
                if chain.extend_from_command_view(command).is_err() {
                    return SW_WRONG_LENGTH.to_vec();
                }
                chain
            }
            None => match command.to_owned::<BUFFER>() {
                Ok(whole) => whole,
                Err(_) => return SW_WRONG_LENGTH.to_vec(),
            },
        };
        let whole = widen_piv_select(whole);

        let mut reply = HVec::<u8, BUFFER>::new();
        match self.applet.respond(whole.as_view(), &mut reply) {
            Ok(()) => {
                self.pending = reply.to_vec();
                self.page(le)
            }
            Err(status) => u16::from(status).to_be_bytes().to_vec(),
        }
    }

    fn collect(&mut self, part: CommandView<'_>) -> Vec<u8> {
        let added = match &mut self.chain {
            Some(chain) => chain.extend_from_command_view(part).is_ok(),
            None => match part.to_owned::<BUFFER>() {
                Ok(first) => {
                    self.chain = Some(first);
                    true
                }
                Err(_) => false,
            },
        };
        if added {
            SW_OK.to_vec()
        } else {
            self.chain = None;
            SW_WRONG_LENGTH.to_vec()
        }
    }

    /// The next `le` bytes of the pending answer, with `61xx` when more remain.
    fn page(&mut self, le: usize) -> Vec<u8> {
        let take = le.min(self.pending.len());
        let mut out: Vec<u8> = self.pending.drain(..take).collect();
        match self.pending.len() {
            0 => out.extend(SW_OK),
            left => out.extend([0x61, u8::try_from(left).unwrap_or(0)]),
        }
        out
    }
}

fn widen_piv_select(command: iso7816::Command<BUFFER>) -> iso7816::Command<BUFFER> {
    let view = command.as_view();
    let aid = view.data();
    let is_select = view.instruction() == iso7816::Instruction::Select && view.p1 == 0x04;
    if !is_select
        || aid.len() < PIV_RID_LEN
        || aid.len() >= PIV_AID.len()
        || !PIV_AID.starts_with(aid)
    {
        return command;
    }
    let mut apdu = vec![0x00, 0xA4, 0x04, view.p2, PIV_AID.len() as u8];
    apdu.extend_from_slice(&PIV_AID);
    apdu.push(0x00);
    iso7816::Command::try_from(&apdu).unwrap_or(command)
}
