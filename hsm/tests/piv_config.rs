//! `PivConfig` as the appliance reads it from TOML: defaults, the slot's spelling, and
//! mistakes named in the error.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use vouch_hsm::piv::{PivConfig, Slot};

/// How the appliance selects a backend: a `kind`-tagged `[signer]` table.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Signer {
    Piv(PivConfig),
}

fn parse(text: &str) -> Result<PivConfig, String> {
    toml::from_str::<Signer>(text)
        .map(|Signer::Piv(config)| config)
        .map_err(|e| e.to_string())
}

#[test]
fn a_minimal_entry_takes_slot_9c_and_any_reader() {
    let config = parse("kind = \"piv\"\npin_file = \"/etc/vouch/piv-pin\"\n").unwrap();
    assert_eq!(config.slot, Slot::SIGNATURE);
    assert_eq!(config.reader, None);
    assert_eq!(config.pin_file, std::path::Path::new("/etc/vouch/piv-pin"));
}

#[test]
fn reader_and_slot_are_read_in_either_case() {
    let text =
        "kind = \"piv\"\nreader = \"Yubico YubiKey\"\nslot = \"9D\"\npin_file = \"piv-pin\"\n";
    let config = parse(text).unwrap();
    assert_eq!(config.reader.as_deref(), Some("Yubico YubiKey"));
    assert_eq!(config.slot, "9d".parse().unwrap());
}

#[test]
fn mistakes_are_named_in_the_error() {
    let no_pin = parse("kind = \"piv\"\n").unwrap_err();
    assert!(no_pin.contains("pin_file"), "{no_pin}");

    let bad_slot = parse("kind = \"piv\"\nslot = \"9b\"\npin_file = \"/p\"\n").unwrap_err();
    assert!(bad_slot.contains("use 9a, 9c"), "{bad_slot}");

    let pin_inline = parse("kind = \"piv\"\npin = \"123456\"\npin_file = \"/p\"\n").unwrap_err();
    assert!(pin_inline.contains("unknown field"), "{pin_inline}");
    assert!(!pin_inline.contains("123456"), "{pin_inline}");
}
