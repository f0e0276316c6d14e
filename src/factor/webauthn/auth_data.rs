//! Authenticator data (§6.1): what the authenticator itself asserts, and the bytes its
//! signature covers together with the hash of the client data.

use ciborium::Value;

use super::WebAuthnError;

/// Credential IDs are at most 1023 bytes (§5.8.3).
const MAX_CREDENTIAL_ID: usize = 1023;

/// The flags byte (§6.1, table "flags").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub const USER_PRESENT: u8 = 0x01;
    pub const USER_VERIFIED: u8 = 0x04;
    pub const BACKUP_ELIGIBLE: u8 = 0x08;
    pub const BACKED_UP: u8 = 0x10;
    pub const ATTESTED: u8 = 0x40;
    pub const EXTENSIONS: u8 = 0x80;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn user_present(self) -> bool {
        self.has(Self::USER_PRESENT)
    }

    pub fn user_verified(self) -> bool {
        self.has(Self::USER_VERIFIED)
    }

    pub fn backup_eligible(self) -> bool {
        self.has(Self::BACKUP_ELIGIBLE)
    }

    pub fn backed_up(self) -> bool {
        self.has(Self::BACKED_UP)
    }
}

/// The credential an authenticator made, as registration's authenticator data carries it
/// (§6.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential<'a> {
    pub aaguid: [u8; 16],
    pub credential_id: &'a [u8],
    /// The COSE_Key exactly as the authenticator encoded it.
    pub public_key_cose: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData<'a> {
    pub rp_id_hash: &'a [u8],
    pub flags: Flags,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential<'a>>,
}

fn malformed(what: &'static str) -> WebAuthnError {
    WebAuthnError::AuthData(what)
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], WebAuthnError> {
    if rest.len() < n {
        return Err(malformed(what));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

/// Reads one CBOR item off the front of `rest` and returns its encoding.
fn take_cbor<'a>(rest: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], WebAuthnError> {
    let start = *rest;
    let mut reader = *rest;
    let value: Value = ciborium::from_reader(&mut reader).map_err(|_| malformed(what))?;
    if !value.is_map() {
        return Err(malformed(what));
    }
    let used = start.len() - reader.len();
    *rest = reader;
    Ok(&start[..used])
}

impl<'a> AuthenticatorData<'a> {
    /// Parses authenticator data, refusing trailing bytes and flag combinations the spec
    /// rules out.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WebAuthnError> {
        let mut rest = bytes;
        let rp_id_hash = take(&mut rest, 32, "shorter than 37 bytes")?;
        let flags = Flags(take(&mut rest, 1, "shorter than 37 bytes")?[0]);
        let count = take(&mut rest, 4, "shorter than 37 bytes")?;
        let sign_count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);

        // §6.1.3: a credential that cannot be backed up cannot be backed up.
        if flags.backed_up() && !flags.backup_eligible() {
            return Err(malformed("BS is set without BE"));
        }
        let attested = if flags.has(Flags::ATTESTED) {
            Some(attested_credential(&mut rest)?)
        } else {
            None
        };
        if flags.has(Flags::EXTENSIONS) {
            take_cbor(&mut rest, "extensions are not a CBOR map")?;
        }
        if !rest.is_empty() {
            return Err(malformed("trailing bytes after the last field"));
        }
        Ok(AuthenticatorData {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }
}

fn attested_credential<'a>(rest: &mut &'a [u8]) -> Result<AttestedCredential<'a>, WebAuthnError> {
    let truncated = "attested credential data is truncated";
    let mut aaguid = [0; 16];
    aaguid.copy_from_slice(take(rest, 16, truncated)?);
    let len = take(rest, 2, truncated)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if len == 0 || len > MAX_CREDENTIAL_ID {
        return Err(malformed("credential ID length is out of range"));
    }
    let credential_id = take(rest, len, truncated)?;
    let public_key_cose = take_cbor(rest, "credential public key is not a CBOR map")?;
    Ok(AttestedCredential {
        aaguid,
        credential_id,
        public_key_cose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8, count: u32) -> Vec<u8> {
        let mut data = vec![7; 32];
        data.push(flags);
        data.extend_from_slice(&count.to_be_bytes());
        data
    }

    #[test]
    fn a_plain_assertion_header_parses() {
        let data = header(0x05, 9);
        let parsed = AuthenticatorData::parse(&data).expect("parses");
        assert!(parsed.flags.user_present() && parsed.flags.user_verified());
        assert_eq!(parsed.sign_count, 9);
        assert_eq!(parsed.attested, None);
    }

    #[test]
    fn attested_data_and_extensions_are_split_at_their_cbor_boundaries() {
        let mut data = header(0x41 | 0x80, 0);
        data.extend_from_slice(&[0xAA; 16]);
        data.extend_from_slice(&[0, 2, 0xC1, 0xC2]);
        data.extend_from_slice(&[0xA1, 0x01, 0x02]); // {1: 2}
        data.extend_from_slice(&[0xA1, 0x61, b'x', 0xF5]); // {"x": true}
        let parsed = AuthenticatorData::parse(&data).expect("parses");
        let attested = parsed.attested.expect("attested");
        assert_eq!(attested.aaguid, [0xAA; 16]);
        assert_eq!(attested.credential_id, &[0xC1, 0xC2]);
        assert_eq!(attested.public_key_cose, &[0xA1, 0x01, 0x02]);
    }

    #[test]
    fn malformed_authenticator_data_is_refused_without_panic() {
        let mut long_id = header(0x41, 0);
        long_id.extend_from_slice(&[0; 16]);
        long_id.extend_from_slice(&[0x04, 0x00]);
        long_id.extend_from_slice(&[1; 1024]);
        long_id.extend_from_slice(&[0xA0]);
        let mut not_a_map = header(0x41, 0);
        not_a_map.extend_from_slice(&[0; 16]);
        not_a_map.extend_from_slice(&[0, 1, 9, 0x01]);
        let mut deep = header(0x81, 0);
        deep.extend(std::iter::repeat_n(0x81, 10_000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "short"),
            (header(0x01, 0)[..36].to_vec(), "short"),
            (header(0x11, 0), "BS"),
            ([header(0x01, 0), vec![0]].concat(), "trailing"),
            (header(0x41, 0), "truncated"),
            (long_id, "length"),
            (not_a_map, "map"),
            (header(0x81, 0), "map"),
            (deep, "map"),
        ];
        for (data, why) in cases {
            let err = AuthenticatorData::parse(&data).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
