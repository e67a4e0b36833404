//! IMF-fixdate (RFC 9110 §5.6.7) formatting, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
//!
//! The codec has no clock: the caller passes the seconds since the Unix epoch and is expected to
//! cache the result for one second.

/// Length of an IMF-fixdate in bytes.
pub const DATE_LEN: usize = 29;

const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Formats `unix_secs` (seconds since 1970-01-01T00:00:00Z) as an IMF-fixdate.
///
/// ```
/// let d = httpkit_codec::date::fmt_http_date(784111777);
/// assert_eq!(&d, b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn fmt_http_date(unix_secs: u64) -> [u8; DATE_LEN] {
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let weekday = (days % 7) as usize;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 day counts we care about.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut year = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    if month <= 2 {
        year += 1;
    }
    let year = year.clamp(0, 9999) as u64;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAYS[weekday]);
    two(&mut out[5..7], day as u64);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out[12..14], year / 100);
    two(&mut out[14..16], year % 100);
    two(&mut out[17..19], h);
    two(&mut out[20..22], m);
    two(&mut out[23..25], s);
    out
}

fn two(dst: &mut [u8], v: u64) {
    dst[0] = b'0' + (v / 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(&fmt_http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&fmt_http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&fmt_http_date(1_795_651_199), b"Wed, 25 Nov 2026 23:59:59 GMT");
        assert_eq!(&fmt_http_date(4_102_444_800), b"Fri, 01 Jan 2100 00:00:00 GMT");
    }
}
