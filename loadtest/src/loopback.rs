//! The one network rule of the tool: it talks only to loopback addresses (127.0.0.0/8 and
//! ::1). It plays Entra and thousands of users, and that traffic must never leave the machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::cli::{UsageError, usage};

/// The address of a `--target` URL, which must be `https://` to a loopback IP and port.
pub fn loopback_target(url: &str) -> Result<SocketAddr, UsageError> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(usage(format!(
            "--target {url:?} must be https://127.0.0.1:PORT"
        )));
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '?', '#', '@']) {
        return Err(usage(format!(
            "--target {url:?} must name only https://HOST:PORT"
        )));
    }
    let addr = match authority.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))),
        None => authority.parse::<SocketAddr>().ok(),
    };
    let Some(addr) = addr.filter(|a| a.port() != 0) else {
        return Err(usage(format!(
            "--target {url:?} must be https://IP:PORT, e.g. https://127.0.0.1:8443"
        )));
    };
    if !is_loopback(addr.ip()) {
        return Err(usage(format!(
            "--target {url:?} is not a loopback address; the load tool only talks to \
             127.0.0.0/8 or [::1], so run it on the appliance's machine"
        )));
    }
    Ok(addr)
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_target_outside_loopback_is_refused_with_the_reason() {
        for url in [
            "https://10.0.0.1:8443",
            "https://192.168.1.5:443",
            "https://[2001:db8::1]:8443",
            "https://[::ffff:10.0.0.1]:8443",
            "https://0.0.0.0:8443",
        ] {
            let err = loopback_target(url).unwrap_err().0;
            assert!(err.contains("not a loopback address"), "{url}: {err}");
        }
    }

    #[test]
    fn loopback_targets_of_every_spelling_are_accepted() {
        let cases = [
            ("https://127.0.0.1:8443", "127.0.0.1:8443"),
            ("https://127.8.9.10:1/", "127.8.9.10:1"),
            ("https://[::1]:8443", "[::1]:8443"),
            ("https://localhost:9000", "127.0.0.1:9000"),
        ];
        for (url, addr) in cases {
            assert_eq!(loopback_target(url).unwrap().to_string(), addr);
        }
    }

    #[test]
    fn a_target_that_is_not_an_https_address_and_port_is_refused() {
        for url in [
            "http://127.0.0.1:8443",
            "https://127.0.0.1",
            "https://127.0.0.1:0",
            "https://evil.example:443",
            "https://127.0.0.1:8443/eam",
            "https://user@127.0.0.1:8443",
        ] {
            assert!(loopback_target(url).is_err(), "{url}");
        }
    }
}
