//! `vouch-piv-sim`: puts an emulated PIV card, provisioned for vouch, into vsmartcard's
//! vpcd reader, so the PIV backend and `vouch hsm status` can be tried without hardware.
//! The card stays in until the program is stopped.

use std::process::ExitCode;

use vouch_piv_sim::{DEFAULT_PIN, SimCard, VPCD_PORT};

const USAGE: &str = "usage: vouch-piv-sim [--port PORT] [--pin-file PATH]\n\
    Provisions an emulated PIV card (RSA-2048 key and certificate in slot 9c, the PIN read\n\
    from PATH, else 123456) and inserts it into the vpcd reader on 127.0.0.1:PORT\n\
    (35963, \"Virtual PCD 00 00\", unless given).";

fn main() -> ExitCode {
    let (port, pin) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(64);
        }
    };

    let card = SimCard::start();
    if let Err(e) = card.provision(&pin) {
        eprintln!("provisioning the emulated card failed: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = card.insert(port) {
        eprintln!(
            "cannot reach vpcd on 127.0.0.1:{port} ({e}); is pcscd running with vsmartcard-vpcd?"
        );
        return ExitCode::FAILURE;
    }
    println!("emulated PIV card inserted through vpcd port {port}; stop with Ctrl-C");
    loop {
        std::thread::park();
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<(u16, String), String> {
    let (mut port, mut pin) = (VPCD_PORT, DEFAULT_PIN.to_owned());
    while let Some(flag) = args.next() {
        if flag != "--port" && flag != "--pin-file" {
            return Err(format!("unknown argument {flag:?}"));
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--port" {
            port = value
                .parse()
                .map_err(|_| format!("--port {value:?} is not a port"))?;
        } else {
            let text = std::fs::read_to_string(&value)
                .map_err(|e| format!("cannot read the PIN file {value:?}: {e}"))?;
            pin = text.trim_end_matches(['\r', '\n']).to_owned();
        }
    }
    Ok((port, pin))
}
