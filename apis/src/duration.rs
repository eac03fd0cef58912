//! Durations written as Go's `metav1.Duration` strings (`"30s"`, `"5m0s"`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative length of time; on the wire a Go duration string such as `"1m30s"`.
///
/// Parsing accepts everything Go's `time.ParseDuration` does (through kube's parser); printing matches
/// Go's `time.Duration.String`, so values round-trip the way Go Tilt writes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// A duration of `secs` whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed: kube::core::Duration =
            s.parse().map_err(|e| ParseDurationError(format!("invalid duration {s:?}: {e}")))?;
        if parsed.is_negative() {
            return Err(ParseDurationError(format!("invalid duration {s:?}: must not be negative")));
        }
        Ok(Self(parsed.into()))
    }
}

impl fmt::Display for Duration {
    /// Formats like Go: `0s`, `1.5s`, `2m0s`, `1h0m0s`, and `ms`/`µs`/`ns` below one second.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        // Below a second Go picks the largest unit that keeps the integer part non-zero.
        if nanos < 1_000_000_000 {
            let (unit, scale) = match nanos {
                n if n < 1_000 => return write!(f, "{n}ns"),
                n if n < 1_000_000 => ("µs", 1_000),
                _ => ("ms", 1_000_000),
            };
            return write!(f, "{}{unit}", fraction(nanos, scale));
        }
        let hours = nanos / 3_600_000_000_000;
        let minutes = nanos / 60_000_000_000 % 60;
        let seconds = fraction(nanos % 60_000_000_000, 1_000_000_000);
        if hours > 0 {
            write!(f, "{hours}h{minutes}m{seconds}s")
        } else if minutes > 0 {
            write!(f, "{minutes}m{seconds}s")
        } else {
            write!(f, "{seconds}s")
        }
    }
}

/// `value / scale` as a decimal with trailing zeros trimmed (`1500, 1000` -> `1.5`).
fn fraction(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Not `format: duration`: that means ISO 8601, and these are Go duration strings.
        schemars::json_schema!({ "type": "string" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (300_000_000_000, "5m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(Duration(std::time::Duration::from_nanos(nanos)).to_string(), want);
        }
    }

    #[test]
    fn parses_go_strings() {
        assert_eq!("30m".parse::<Duration>().unwrap(), Duration::from_secs(1800));
        assert_eq!("1h2m3s".parse::<Duration>().unwrap(), Duration::from_secs(3723));
        assert!("-1s".parse::<Duration>().is_err());
        assert!("10".parse::<Duration>().is_err());
    }
}
