//! The card's side of vsmartcard's vpcd link: the card connects to pcscd's vpcd driver over
//! TCP and is inserted for as long as the connection is open.
//!
//! Every message in either direction is a 2-byte big-endian length and that many bytes. A
//! one-byte message from vpcd is a control code (power off, power on, reset, ATR request);
//! anything longer is an APDU, answered with the card's response.
//!
//! `TCP_QUICKACK` is set again before every read. Without it pcscd's small writes meet the
//! card's delayed ACKs and each APDU waits about 40 ms; the flag is not sticky, so one
//! setting is not enough.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};

use socket2::SockRef;

use crate::Request;

/// Control codes vpcd sends as one-byte messages.
const POWER_OFF: u8 = 0;
const POWER_ON: u8 = 1;
const RESET: u8 = 2;
const GET_ATR: u8 = 4;

/// A T=1 answer-to-reset with no historical bytes (ISO 7816-3 §8.2).
const ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// An open link to vpcd: the card is in the reader.
pub(crate) struct Link {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl Link {
    /// Connects to vpcd on loopback `port` and serves it from a thread.
    pub(crate) fn attach(port: u16, card: Sender<Request>) -> io::Result<Link> {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        stream.set_nodelay(true)?;
        let reader = stream.try_clone()?;
        let thread = thread::Builder::new()
            .name(format!("piv-sim-vpcd-{port}"))
            .spawn(move || {
                // The link ends when vpcd or `Link::detach` closes the socket.
                let _ = serve(reader, &card);
            })?;
        Ok(Link {
            stream,
            thread: Some(thread),
        })
    }

    /// Closes the link: pcscd sees the card removed.
    pub(crate) fn detach(mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, card: &Sender<Request>) -> io::Result<()> {
    loop {
        SockRef::from(&stream).set_tcp_quickack(true)?;
        let message = read_message(&mut stream)?;
        let answer = match message.as_slice() {
            [GET_ATR] => ATR.to_vec(),
            [POWER_OFF | POWER_ON | RESET] => {
                let _ = card.send(Request::Reset);
                continue;
            }
            [_] => continue,
            apdu => {
                let (reply, answer) = mpsc::channel();
                card.send(Request::Apdu(apdu.to_vec(), reply))
                    .map_err(|_| io::Error::other("the card has stopped"))?;
                answer
                    .recv()
                    .map_err(|_| io::Error::other("the card has stopped"))?
            }
        };
        write_message(&mut stream, &answer)?;
    }
}

fn read_message(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

fn write_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| io::Error::other("answer too long"))?;
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend(len.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame)
}
