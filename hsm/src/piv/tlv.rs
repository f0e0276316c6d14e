//! BER-TLV as PIV cards use it (SP 800-73-4 Part 2 §3.3, ISO 7816-4 §8.1): one- or
//! two-byte tags, lengths in the short form or as `81 xx` / `82 xx xx`.
//!
//! Every value is checked against the end of its buffer before it is sliced, so a card that
//! claims more bytes than it sent is reported, never read past.

/// One tag and its value, borrowed from the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u16,
    pub(crate) value: &'a [u8],
}

/// Splits the first TLV off `input`, returning it and what follows it.
pub(crate) fn parse(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let (tag, rest) = parse_tag(input)?;
    let (len, rest) = parse_len(rest)?;
    if rest.len() < len {
        return Err(format!(
            "tag {tag:02X} claims {len} bytes but only {} follow",
            rest.len()
        ));
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// The value of the single TLV that must fill `input` and carry `tag`.
pub(crate) fn expect(input: &[u8], tag: u16) -> Result<&[u8], String> {
    let (tlv, rest) = parse(input)?;
    if tlv.tag != tag {
        return Err(format!("expected tag {tag:02X}, found {:02X}", tlv.tag));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after tag {tag:02X}", rest.len()));
    }
    Ok(tlv.value)
}

/// Every TLV in `input`, in order.
pub(crate) fn parse_all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut all = Vec::new();
    while !input.is_empty() {
        let (tlv, rest) = parse(input)?;
        all.push(tlv);
        input = rest;
    }
    Ok(all)
}

/// Appends `tag`, the length of `value` and `value` to `out`.
pub(crate) fn write(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    match value.len() {
        len @ 0..=0x7F => out.push(len as u8),
        len @ 0x80..=0xFF => out.extend([0x81, len as u8]),
        len => {
            let len = u16::try_from(len).unwrap_or(u16::MAX);
            out.push(0x82);
            out.extend(len.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

fn parse_tag(input: &[u8]) -> Result<(u16, &[u8]), String> {
    match input {
        [] => Err("empty where a tag was expected".into()),
        // ISO 7816-4 §8.1.2.2: low five bits all set means a second tag byte follows.
        [first, second, rest @ ..] if first & 0x1F == 0x1F => {
            if second & 0x80 != 0 {
                return Err(format!(
                    "tag {first:02X}{second:02X} is longer than two bytes"
                ));
            }
            Ok((u16::from_be_bytes([*first, *second]), rest))
        }
        [first] if first & 0x1F == 0x1F => Err(format!("tag {first:02X} is cut short")),
        [first, rest @ ..] => Ok((u16::from(*first), rest)),
    }
}

fn parse_len(input: &[u8]) -> Result<(usize, &[u8]), String> {
    match input {
        [] => Err("input ends where a length was expected".into()),
        [len @ 0..=0x7F, rest @ ..] => Ok((usize::from(*len), rest)),
        [0x81, len, rest @ ..] => Ok((usize::from(*len), rest)),
        [0x82, hi, lo, rest @ ..] => Ok((usize::from(u16::from_be_bytes([*hi, *lo])), rest)),
        [first, ..] => Err(format!(
            "length form {first:02X} is not supported or cut short"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_are_read() {
        let mut buf = Vec::new();
        write(&mut buf, 0x53, &[7; 300]);
        write(&mut buf, 0x82, &[1; 130]);
        let all = parse_all(&buf).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].value.len(), 300);
        assert_eq!(all[1].tag, 0x82);
        assert_eq!(all[1].value.len(), 130);
    }

    #[test]
    fn two_byte_tags_are_read() {
        let (tlv, rest) = parse(&[0x5F, 0x2F, 0x01, 0xAA, 0x00]).unwrap();
        assert_eq!(tlv.tag, 0x5F2F);
        assert_eq!(tlv.value, &[0xAA]);
        assert_eq!(rest, &[0x00]);
    }

    #[test]
    fn a_length_past_the_end_is_refused() {
        assert!(
            parse(&[0x53, 0x82, 0xFF, 0xFF, 0x00])
                .unwrap_err()
                .contains("65535")
        );
        assert!(parse(&[0x53, 0x05, 1, 2]).is_err());
    }

    #[test]
    fn truncated_tags_and_lengths_are_refused() {
        for input in [
            &[][..],
            &[0x5F],
            &[0x53],
            &[0x53, 0x81],
            &[0x53, 0x84, 0, 0, 0, 1],
        ] {
            assert!(parse(input).is_err(), "{input:02X?}");
        }
    }

    #[test]
    fn a_wrong_tag_or_trailing_bytes_are_refused() {
        assert!(expect(&[0x70, 0x01, 0x00], 0x53).is_err());
        assert!(expect(&[0x53, 0x01, 0x00, 0xFF], 0x53).is_err());
        assert_eq!(expect(&[0x53, 0x01, 0x09], 0x53).unwrap(), &[0x09]);
    }
}
