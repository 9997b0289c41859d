//! A record's `ApproximateCreationDateTime`: seconds since the epoch (as
//! Lambda sends it), milliseconds (as Kinesis Data Streams for DynamoDB
//! sends it) or ISO 8601 text (as moto writes it), to milliseconds.

use serde_json::Value;

use super::json_kind;
use super::number::Decimal;

/// A number of seconds this large is a time in milliseconds: as seconds it
/// would be after the year 5138, as milliseconds it is after 1973.
const MILLIS_FROM: u64 = 100_000_000_000;

/// Seconds, or milliseconds when the number is too large to be seconds, to
/// milliseconds.
fn epoch_ms(text: &str) -> Option<u64> {
    let ms = Decimal::parse(text)?.millis()?;
    Some(match ms / 1000 >= MILLIS_FROM {
        true => ms / 1000,
        false => ms,
    })
}

/// `ApproximateCreationDateTime` in milliseconds since the epoch, truncated;
/// the error says what is wrong with the value.
pub(super) fn creation_time_ms(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            epoch_ms(&text).ok_or_else(|| {
                format!("{text} is not a non-negative number of seconds (or milliseconds) since the Unix epoch")
            })
        }
        Value::String(text) => epoch_ms(text).or_else(|| iso8601_ms(text)).ok_or_else(|| {
            format!("{text:?} is neither seconds since the Unix epoch nor an ISO 8601 UTC time")
        }),
        other => Err(format!(
            "it is {}, expected seconds since the Unix epoch",
            json_kind(other)
        )),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (no offset means UTC, as moto
/// writes it) to milliseconds since the epoch.
fn iso8601_ms(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &frac[..len.min(3)]);
        millis = padded.parse::<i64>().ok()?;
        rest = &frac[len..];
    }
    let offset_minutes = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest[1..];
            if r.len() != 5 || r.as_bytes()[2] != b':' {
                return None;
            }
            let h: i64 = r[..2].parse().ok()?;
            let m: i64 = r[3..].parse().ok()?;
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    u64::try_from(seconds * 1000 + millis).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_8601_times_as_moto_writes_them() {
        assert_eq!(iso8601_ms("2026-01-15T08:00:00"), Some(1_768_464_000_000));
        assert_eq!(iso8601_ms("2026-01-15T08:00:00Z"), Some(1_768_464_000_000));
        assert_eq!(
            iso8601_ms("2026-01-15T08:00:00.123456"),
            Some(1_768_464_000_123)
        );
        assert_eq!(
            iso8601_ms("2026-01-15T08:00:00.1Z"),
            Some(1_768_464_000_100)
        );
        assert_eq!(
            iso8601_ms("2026-01-15T09:30:00+01:30"),
            Some(1_768_464_000_000)
        );
        assert_eq!(iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(iso8601_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        assert_eq!(iso8601_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(iso8601_ms("2026-01-15"), None);
        assert_eq!(iso8601_ms("2026-01-15T08:00:00.Z"), None);
        assert_eq!(iso8601_ms("2026-01-15T08:00:00+0100"), None);
    }

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        let ms = |v: serde_json::Value| creation_time_ms(&v).unwrap();
        // Lambda's DynamoDB Streams records: seconds, maybe fractional.
        assert_eq!(ms(serde_json::json!(1_768_464_000)), 1_768_464_000_000);
        let fractional: Value = serde_json::from_str("1768464000.25").unwrap();
        assert_eq!(ms(fractional), 1_768_464_000_250);
        // Kinesis Data Streams for DynamoDB (and AWS's examples): milliseconds.
        assert_eq!(
            ms(serde_json::json!(1_685_986_340_120_u64)),
            1_685_986_340_120
        );
        assert_eq!(ms(serde_json::json!("1685986340120")), 1_685_986_340_120);
    }
}
