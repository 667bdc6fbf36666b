//! Reading a certificate's expiry (`notAfter`) from its DER encoding.
//!
//! Only this one field is needed (for the expiry metric), so a few lines of DER walking are
//! used instead of a full X.509 parser and its dependency tree. Anything unexpected yields
//! `None`: the metric then stays unset rather than wrong.

use time::{Date, Month, PrimitiveDateTime, Time};

/// One DER element: tag, content, and the rest of the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` as Unix seconds.
pub(crate) fn not_after_unix(cert_der: &[u8]) -> Option<i64> {
    let (SEQUENCE, cert, _) = element(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, present in v3 certificates.
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, value, _) = element(after_not_before)?;
    parse_time(tag, std::str::from_utf8(value).ok()?)
}

fn parse_time(tag: u8, s: &str) -> Option<i64> {
    let digits = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if digits.len() == 12 => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME if digits.len() == 14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let num = |i: usize| rest.get(i..i + 2)?.parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(num(0)?).ok()?, num(2)?).ok()?;
    let time = Time::from_hms(num(4)?, num(6)?, num(8)?).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::certs::generate;

    #[test]
    fn reads_the_expiry_of_generated_certificates() {
        let c = generate(&["localhost".into()], 10, 3).unwrap();
        let der = rustls_pemfile::certs(&mut c.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(not_after_unix(&der), Some(c.not_after.unix_timestamp()));
    }

    #[test]
    fn garbage_yields_none() {
        for bad in [
            &b""[..],
            b"\x30",
            b"\x30\x05abc",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x02\x01\x00",
        ] {
            assert_eq!(not_after_unix(bad), None);
        }
        assert_eq!(parse_time(UTC_TIME, "491231235959Z"), Some(2524607999));
        assert_eq!(
            parse_time(GENERALIZED_TIME, "20491231235959Z"),
            Some(2524607999)
        );
        assert_eq!(parse_time(UTC_TIME, "4912312359Z"), None);
    }
}
