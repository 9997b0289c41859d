//! DynamoDB number text: checked, written as an exact JSON number, and read
//! as seconds for the creation time.

/// The parts of a decimal number's text: sign, integer digits, fraction
/// digits, exponent (sign included, digits as written).
pub(super) struct Decimal<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    exp: Option<(bool, &'a str)>,
}

impl<'a> Decimal<'a> {
    /// Accepts `[+-]? digits* (. digits*)? ([eE] [+-]? digits+)?` with at
    /// least one mantissa digit.
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((int, frac)) => (int, frac),
            None => (mantissa, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !digits(frac) || int.len() + frac.len() == 0 {
            return None;
        }
        let exp = match exp {
            None => None,
            Some(e) => {
                let (exp_negative, e_digits) = match e.as_bytes().first()? {
                    b'-' => (true, &e[1..]),
                    b'+' => (false, &e[1..]),
                    _ => (false, e),
                };
                if e_digits.is_empty() || !digits(e_digits) {
                    return None;
                }
                Some((exp_negative, e_digits))
            }
        };
        Some(Decimal {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// Appends text that JSON accepts, with the same digits wherever JSON
    /// allows: `-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?`, which is also
    /// exactly how serde_json's `arbitrary_precision` number keeps it.
    pub(super) fn write_json(&self, out: &mut String) {
        if self.negative {
            out.push('-');
        }
        let int = self.int.trim_start_matches('0');
        out.push_str(if int.is_empty() { "0" } else { int });
        if !self.frac.is_empty() {
            out.push('.');
            out.push_str(self.frac);
        }
        if let Some((negative, digits)) = self.exp {
            out.push('e');
            out.push(if negative { '-' } else { '+' });
            out.push_str(digits);
        }
    }

    /// The value times 1000, truncated toward zero; `None` when negative or
    /// beyond `u64`.
    pub(super) fn millis(&self) -> Option<u64> {
        let exp: i64 = match self.exp {
            None => 0,
            Some((negative, digits)) => {
                let digits = digits.trim_start_matches('0');
                if digits.len() > 6 {
                    // |exponent| ≥ 10^6: zero or far beyond u64.
                    return if negative { Some(0) } else { None };
                }
                let e: i64 = if digits.is_empty() {
                    0
                } else {
                    digits.parse().ok()?
                };
                if negative {
                    -e
                } else {
                    e
                }
            }
        };
        let all: String = [self.int, self.frac].concat();
        let all = all.as_str();
        let all_zero = all.bytes().all(|b| b == b'0');
        if self.negative && !all_zero {
            return None;
        }
        // Position of the decimal point in `all` after multiplying by 1000.
        let point = self.int.len() as i64 + exp + 3;
        let whole: String = if point <= 0 {
            String::new()
        } else if point as usize >= all.len() {
            let zeros = point as usize - all.len();
            if zeros > 20 && !all_zero {
                return None;
            }
            format!("{all}{}", "0".repeat(zeros.min(20)))
        } else {
            all[..point as usize].to_owned()
        };
        let whole = whole.trim_start_matches('0');
        if whole.is_empty() {
            Some(0)
        } else {
            whole.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Number;

    use super::*;

    fn ms(text: &str) -> Option<u64> {
        Decimal::parse(text).and_then(|d| d.millis())
    }

    #[test]
    fn seconds_become_truncated_millis() {
        assert_eq!(ms("1480642020"), Some(1_480_642_020_000));
        assert_eq!(ms("1480642020.5"), Some(1_480_642_020_500));
        assert_eq!(ms("1480642020.123999"), Some(1_480_642_020_123));
        assert_eq!(ms("1673322558.0"), Some(1_673_322_558_000));
        assert_eq!(ms("1.4806420201e9"), Some(1_480_642_020_100));
        assert_eq!(ms("1.4806420201E+9"), Some(1_480_642_020_100));
        assert_eq!(ms("14806420201e-1"), Some(1_480_642_020_100));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("-0"), Some(0));
        assert_eq!(ms("0.0001"), Some(0));
        assert_eq!(ms("1e-9999999"), Some(0));
        assert_eq!(ms("-1"), None);
        assert_eq!(ms("1e30"), None);
        assert_eq!(ms("1e9999999"), None);
        assert_eq!(ms("99999999999999999999"), None);
    }

    #[test]
    fn number_text_is_what_serde_json_keeps() {
        for text in [
            "0",
            "-0",
            "007",
            "-00.5",
            ".5",
            "5.",
            "+5",
            "1E130",
            "1e-5",
            "1E+007",
            "-0.000",
            "12345678901234567890123456789012345678",
            "9.99e-130",
        ] {
            let mut out = String::new();
            Decimal::parse(text).unwrap().write_json(&mut out);
            let kept: Number = serde_json::from_str(&out).unwrap();
            assert_eq!(kept.as_str(), out, "{text}");
        }
    }
}
