//! How APDUs reach a card, and the one place that turns a logical command into the short
//! APDUs a card takes: command chaining for data over 255 bytes (ISO 7816-4 §5.1.1) and
//! GET RESPONSE after `61xx` for answers over 256 bytes (ISO 7816-4 §5.3.4, SP 800-73-4
//! Part 2 §3.1).
//!
//! A [`Transport`] only moves bytes. PC/SC is one transport; tests plug in the emulated
//! applet or a hostile fake through the same trait.

use crate::HsmError;

/// The most a card may answer to one command, all pages together. The largest PIV object
/// a signing card holds is a certificate, a few kilobytes.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Data bytes in one chained command APDU (short Lc).
const CHUNK: usize = 255;

/// ISO 7816-4 §5.1.1: CLA bit 5 marks a command that is not the last of a chain.
const CLA_CHAINING: u8 = 0x10;

/// Work done while a transport holds the card alone; see [`Transport::exclusive`].
pub type ExclusiveWork<'a> = dyn FnMut(&mut dyn Transport) -> Result<Vec<u8>, HsmError> + 'a;

/// A channel to one card that sends an APDU and returns the card's answer as received:
/// response data followed by the two status bytes.
pub trait Transport: Send {
    /// Sends one short APDU and waits for the answer.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError>;

    /// The reader's name, for errors and logs.
    fn reader(&self) -> &str;

    /// Runs `work` with the card held for this connection alone, so that no other
    /// connection's command lands between a VERIFY and the command it unlocks (PC/SC
    /// `SCardBeginTransaction`). A transport that has the card to itself just runs it.
    fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError>;
}

/// A command as the PIV layer means it, before it is cut into APDUs.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// The command's name in errors, e.g. `"GENERAL AUTHENTICATE"`.
    pub name: &'static str,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// Whether the card is expected to answer with data (Le = 256 is sent).
    pub expects_data: bool,
}

/// The card's full answer: every page of data, and the last status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: u16,
}

impl Response {
    pub fn is_ok(&self) -> bool {
        self.sw == 0x9000
    }
}

/// Sends `command`, chaining its data and collecting every page of the answer.
pub fn exchange(
    transport: &mut (impl Transport + ?Sized),
    command: &Command<'_>,
) -> Result<Response, HsmError> {
    let mut chunks = command.data.chunks(CHUNK).peekable();
    let mut answer = if chunks.peek().is_none() {
        send(transport, command, 0x00, &[], command.expects_data)?
    } else {
        loop {
            let chunk = chunks.next().unwrap_or_default();
            let last = chunks.peek().is_none();
            let cla = if last { 0x00 } else { CLA_CHAINING };
            let answer = send(transport, command, cla, chunk, last && command.expects_data)?;
            if last || answer.sw != 0x9000 {
                break answer;
            }
        }
    };

    let mut pages = 0;
    while answer.sw >> 8 == 0x61 {
        pages += 1;
        if pages > MAX_RESPONSE / 16 {
            return Err(malformed(
                transport,
                command,
                "the card keeps announcing more data",
            ));
        }
        let get_response = Command {
            name: command.name,
            ins: 0xC0,
            p1: 0,
            p2: 0,
            data: &[],
            expects_data: false,
        };
        let apdu = [0x00, 0xC0, 0x00, 0x00, (answer.sw & 0xFF) as u8];
        let raw = transport.transmit(&apdu)?;
        let page = split(transport, &get_response, raw)?;
        answer.data.extend_from_slice(&page.data);
        answer.sw = page.sw;
        if answer.data.len() > MAX_RESPONSE {
            return Err(malformed(
                transport,
                command,
                &format!("the answer is longer than {MAX_RESPONSE} bytes"),
            ));
        }
    }
    Ok(answer)
}

/// An error for an answer that does not make sense, naming the reader and command.
pub(crate) fn malformed(
    transport: &(impl Transport + ?Sized),
    command: &Command<'_>,
    detail: &str,
) -> HsmError {
    HsmError::Malformed {
        reader: transport.reader().to_owned(),
        command: command.name,
        detail: detail.to_owned(),
    }
}

fn send(
    transport: &mut (impl Transport + ?Sized),
    command: &Command<'_>,
    cla: u8,
    data: &[u8],
    with_le: bool,
) -> Result<Response, HsmError> {
    let mut apdu = Vec::with_capacity(6 + data.len());
    apdu.extend([cla, command.ins, command.p1, command.p2]);
    if !data.is_empty() {
        apdu.push(data.len() as u8);
        apdu.extend_from_slice(data);
    }
    if with_le {
        apdu.push(0x00);
    }
    let raw = transport.transmit(&apdu)?;
    split(transport, command, raw)
}

fn split(
    transport: &(impl Transport + ?Sized),
    command: &Command<'_>,
    mut raw: Vec<u8>,
) -> Result<Response, HsmError> {
    if raw.len() < 2 {
        return Err(malformed(
            transport,
            command,
            &format!("{} bytes, shorter than a status word", raw.len()),
        ));
    }
    if raw.len() > MAX_RESPONSE {
        return Err(malformed(
            transport,
            command,
            &format!("the answer is longer than {MAX_RESPONSE} bytes"),
        ));
    }
    let sw = u16::from_be_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
    raw.truncate(raw.len() - 2);
    Ok(Response { data: raw, sw })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a script and records what was sent.
    struct Scripted {
        answers: Vec<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    impl Transport for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, HsmError> {
            self.sent.push(apdu.to_vec());
            Ok(if self.answers.is_empty() {
                vec![0x6F, 0x00]
            } else {
                self.answers.remove(0)
            })
        }

        fn reader(&self) -> &str {
            "scripted"
        }

        fn exclusive(&mut self, work: &mut ExclusiveWork<'_>) -> Result<Vec<u8>, HsmError> {
            work(self)
        }
    }

    fn command(data: &[u8]) -> Command<'_> {
        Command {
            name: "TEST",
            ins: 0x87,
            p1: 0x07,
            p2: 0x9C,
            data,
            expects_data: true,
        }
    }

    #[test]
    fn long_data_is_chained_in_255_byte_chunks() {
        let mut t = Scripted {
            answers: vec![vec![0x90, 0x00], vec![0x90, 0x00]],
            sent: vec![],
        };
        let data = [0xAB; 300];
        let answer = exchange(&mut t, &command(&data)).unwrap();
        assert!(answer.is_ok());
        assert_eq!(t.sent.len(), 2);
        assert_eq!(&t.sent[0][..5], &[0x10, 0x87, 0x07, 0x9C, 0xFF]);
        assert_eq!(t.sent[0].len(), 5 + 255, "no Le on a chained part");
        assert_eq!(&t.sent[1][..5], &[0x00, 0x87, 0x07, 0x9C, 45]);
        assert_eq!(t.sent[1].last(), Some(&0x00), "Le on the last part");
    }

    #[test]
    fn pages_announced_by_61xx_are_fetched_and_joined() {
        let mut t = Scripted {
            answers: vec![
                vec![1, 2, 0x61, 0x02],
                vec![3, 4, 0x61, 0x00],
                vec![5, 0x90, 0x00],
            ],
            sent: vec![],
        };
        let answer = exchange(&mut t, &command(&[])).unwrap();
        assert_eq!(answer.data, vec![1, 2, 3, 4, 5]);
        assert_eq!(t.sent[1], vec![0x00, 0xC0, 0x00, 0x00, 0x02]);
        assert_eq!(t.sent[2], vec![0x00, 0xC0, 0x00, 0x00, 0x00]);
    }

    #[test]
    fn a_refused_chain_part_stops_the_chain() {
        let mut t = Scripted {
            answers: vec![vec![0x6A, 0x80]],
            sent: vec![],
        };
        let answer = exchange(&mut t, &command(&[0; 600])).unwrap();
        assert_eq!(answer.sw, 0x6A80);
        assert_eq!(t.sent.len(), 1);
    }

    #[test]
    fn an_answer_without_a_status_word_is_malformed() {
        for short in [vec![], vec![0x90]] {
            let mut t = Scripted {
                answers: vec![short],
                sent: vec![],
            };
            let err = exchange(&mut t, &command(&[])).unwrap_err();
            assert!(matches!(err, HsmError::Malformed { .. }), "{err}");
        }
    }

    #[test]
    fn endless_more_data_is_cut_off() {
        let mut t = Scripted {
            answers: (0..5000)
                .map(|_| [vec![0xEE; 256], vec![0x61, 0x00]].concat())
                .collect(),
            sent: vec![],
        };
        let err = exchange(&mut t, &command(&[])).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
