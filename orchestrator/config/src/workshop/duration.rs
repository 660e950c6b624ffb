//! Durations as workshop files write them: `90m`, `1h30m`, `45s`, `2h` (whole numbers,
//! each followed by its unit, largest first).

use std::time::Duration;

/// Parses `text` into a duration of at least one second; the error says why not.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("it is empty".to_owned());
    }
    let (mut seconds, mut rest, mut last_scale) = (0u64, text, u64::MAX);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{rest}` does not start with a whole number"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| "a number is too large".to_owned())?;
        let unit_len = rest[digits..].find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        let scale = match unit {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            "" => return Err(format!("`{number}` has no unit (h, m or s)")),
            other => return Err(format!("`{other}` is not a unit (h, m or s)")),
        };
        if scale >= last_scale {
            return Err("units must go from larger to smaller, each once".to_owned());
        }
        last_scale = scale;
        seconds = number.checked_mul(scale).and_then(|s| s.checked_add(seconds)).ok_or("it is too long")?;
        rest = &rest[digits + unit_len..];
    }
    if seconds == 0 {
        return Err("it is zero".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

/// Writes `duration` as [`parse_duration`] reads it: `1h30m`, `45s`.
pub fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_with_units_largest_first() {
        let ok = [("90m", 5400), ("1h30m", 5400), ("45s", 45), ("2h", 7200), ("1h0m5s", 3605), (" 5m ", 300)];
        for (text, seconds) in ok {
            assert_eq!(parse_duration(text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        let bad = [
            ("", "it is empty"),
            ("90", "`90` has no unit (h, m or s)"),
            ("5d", "`d` is not a unit (h, m or s)"),
            ("30m1h", "units must go from larger to smaller, each once"),
            ("0m", "it is zero"),
            ("m", "`m` does not start with a whole number"),
            ("1.5h", "`.` is not a unit (h, m or s)"),
        ];
        for (text, why) in bad {
            assert_eq!(parse_duration(text), Err(why.to_owned()), "{text}");
        }
    }

    #[test]
    fn formats_what_it_reads() {
        for seconds in [1, 59, 60, 3600, 5400, 3605, 86400] {
            let text = format_duration(Duration::from_secs(seconds));
            assert_eq!(parse_duration(&text), Ok(Duration::from_secs(seconds)), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
