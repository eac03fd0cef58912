//! The report: one row per metric, `metric | tilt-rs | peer… | ratio | target | verdict`, where ratio is
//! tilt-rs ÷ the first peer column and the verdict judges tilt-rs against the target.
//!
//! The API server benchmark's peers are the hyper floor and etcd ([`table`]); the file watch benchmark's are
//! watchexec, entr and an inotifywait loop; the Tiltfile benchmark's is a shell loop ([`Layout`]).

use std::fmt::Write;

/// What a row's numbers measure.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// A duration in milliseconds.
    Ms,
    /// A rate per second.
    PerSec,
    /// A size in bytes (printed in KB of 1024 bytes).
    Bytes,
    /// A size in bytes (printed in MB of 1024² bytes).
    MegaBytes,
    /// A plain count.
    Count,
    /// A percentage (e.g. of one CPU core).
    Percent,
}

/// What tilt-rs is held to on a row.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Informational.
    None,
    /// tilt-rs ÷ the first peer at most this.
    RatioAtMost(f64),
    /// At most this value.
    AtMost(f64),
    /// Strictly below this value.
    Below(f64),
    /// At least this value.
    AtLeast(f64),
    /// Exactly this value.
    Equal(f64),
}

/// One metric.
pub struct Row {
    /// What it is.
    pub metric: String,
    /// Its unit.
    pub unit: Unit,
    /// tilt-rs's value.
    pub tilt: Option<f64>,
    /// The peers' values, in the layout's column order (missing trailing ones print as `—`).
    pub peers: Vec<Option<f64>>,
    /// Text appended to a peer's value, by column (e.g. what the floor is when it is not the hyper server).
    pub suffixes: Vec<(usize, &'static str)>,
    /// The target.
    pub target: Target,
    /// Where the target comes from, appended to it (e.g. "Go Tilt").
    pub target_source: &'static str,
}

impl Row {
    /// An API server benchmark row: tilt-rs, the floor and etcd, without suffix or target source.
    pub fn new(
        metric: impl Into<String>,
        unit: Unit,
        tilt: Option<f64>,
        floor: Option<f64>,
        etcd: Option<f64>,
        target: Target,
    ) -> Row {
        Row::with_peers(metric, unit, tilt, vec![floor, etcd], target)
    }

    /// A row with any number of peer values, in the layout's column order.
    pub fn with_peers(
        metric: impl Into<String>,
        unit: Unit,
        tilt: Option<f64>,
        peers: Vec<Option<f64>>,
        target: Target,
    ) -> Row {
        Row { metric: metric.into(), unit, tilt, peers, suffixes: Vec::new(), target, target_source: "" }
    }

    /// This row with `suffix` appended to peer column `column`'s value.
    pub fn suffix(mut self, column: usize, suffix: &'static str) -> Row {
        self.suffixes.push((column, suffix));
        self
    }

    /// This row with the target's source (e.g. "Go Tilt").
    pub fn source(mut self, source: &'static str) -> Row {
        self.target_source = source;
        self
    }

    fn peer(&self, column: usize) -> Option<f64> {
        self.peers.get(column).copied().flatten()
    }

    fn ratio(&self) -> Option<f64> {
        match (self.tilt, self.peer(0)) {
            (Some(t), Some(f)) if f > 0.0 => Some(t / f),
            _ => None,
        }
    }

    fn verdict(&self) -> Option<bool> {
        let t = self.tilt?;
        Some(match self.target {
            Target::None => return None,
            Target::RatioAtMost(r) => self.ratio()? <= r,
            Target::AtMost(v) => t <= v,
            Target::Below(v) => t < v,
            Target::AtLeast(v) => t >= v,
            Target::Equal(v) => t == v,
        })
    }

    fn target_text(&self, ratio_name: &str) -> String {
        let v = |x: f64| format_value(self.unit, x);
        let text = match self.target {
            Target::None => return "—".into(),
            Target::RatioAtMost(r) => format!("≤ {r}× {ratio_name}"),
            Target::AtMost(x) => format!("≤ {}", v(x)),
            Target::Below(x) => format!("< {}", v(x)),
            Target::AtLeast(x) => format!("≥ {}", v(x)),
            Target::Equal(x) => format!("= {}", v(x)),
        };
        if self.target_source.is_empty() { text } else { format!("{text} ({})", self.target_source) }
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.412 ms`, `23,456/s`, `1.02 KB`, `12.3 MB`, `1,001`, `0.12 %`.
pub fn format_value(unit: Unit, x: f64) -> String {
    match unit {
        Unit::Ms if x < 10.0 => format!("{x:.3} ms"),
        Unit::Ms => format!("{x:.1} ms"),
        Unit::PerSec => format!("{}/s", thousands(x.round().max(0.0) as u64)),
        Unit::Bytes => format!("{:.2} KB", x / 1024.0),
        Unit::MegaBytes => format!("{:.1} MB", x / (1024.0 * 1024.0)),
        Unit::Count => thousands(x.round().max(0.0) as u64),
        Unit::Percent => format!("{x:.2} %"),
    }
}

/// The peer columns of a table.
pub struct Layout<'a> {
    /// Headings of the peer columns, in order; the first is what the ratio divides by.
    pub peers: &'a [&'a str],
    /// How ratio targets name the first peer (`≤ 0.6× watchexec`).
    pub ratio_name: &'a str,
}

impl Layout<'_> {
    /// The table, aligned, as Markdown-compatible lines.
    pub fn render(&self, rows: &[Row]) -> String {
        let n = self.peers.len();
        let mut header = vec!["metric".to_string(), "tilt-rs".to_string()];
        header.extend(self.peers.iter().map(|p| p.to_string()));
        header.extend(["ratio", "target", "PASS/FAIL"].map(str::to_string));
        let cell = |unit, v: Option<f64>| v.map_or("—".to_string(), |x| format_value(unit, x));
        let mut lines: Vec<Vec<String>> = vec![header];
        for r in rows {
            let mut line = vec![r.metric.clone(), cell(r.unit, r.tilt)];
            for column in 0..n {
                let suffix = r.suffixes.iter().find(|(c, _)| *c == column).map_or("", |(_, s)| s);
                line.push(r.peer(column).map_or("—".to_string(), |x| format!("{}{suffix}", format_value(r.unit, x))));
            }
            line.push(r.ratio().map_or("—".to_string(), |x| format!("{x:.2}×")));
            line.push(r.target_text(self.ratio_name));
            line.push(match r.verdict() {
                Some(true) => "PASS".into(),
                Some(false) => "FAIL".into(),
                None => "—".into(),
            });
            lines.push(line);
        }
        let columns = n + 5;
        let width = |i: usize| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let mut out = String::new();
        for (k, l) in lines.iter().enumerate() {
            let cells: Vec<String> = l
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    let pad = w - c.chars().count();
                    // Text left, numbers right.
                    if i == 0 || i >= n + 3 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if k == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
            }
        }
        out
    }
}

/// The API server benchmark's table: `tilt-rs | floor (hyper) | etcd`, ratio against the floor.
pub fn table(rows: &[Row]) -> String {
    Layout { peers: &["floor (hyper)", "etcd"], ratio_name: "floor" }.render(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_judges() {
        assert_eq!(format_value(Unit::PerSec, 23456.4), "23,456/s");
        assert_eq!(format_value(Unit::Ms, 0.4123), "0.412 ms");
        assert_eq!(format_value(Unit::Bytes, 3072.0), "3.00 KB");
        let r = Row::new("GET p50", Unit::Ms, Some(0.3), Some(0.25), None, Target::RatioAtMost(1.5));
        assert_eq!(r.verdict(), Some(true));
        let r = Row::new("watch p99", Unit::Ms, Some(5.0), None, None, Target::Below(5.0));
        assert_eq!(r.verdict(), Some(false));
        let t = table(&[r]);
        assert!(t.contains("FAIL") && t.contains("< 5.000 ms"));
    }

    #[test]
    fn any_number_of_peers() {
        assert_eq!(format_value(Unit::Count, 1001.0), "1,001");
        assert_eq!(format_value(Unit::MegaBytes, 3.0 * 1024.0 * 1024.0), "3.0 MB");
        let r =
            Row::with_peers("p50", Unit::Ms, Some(20.0), vec![Some(50.0), None, Some(2.0)], Target::RatioAtMost(0.6));
        assert_eq!(r.verdict(), Some(true));
        let t = Layout { peers: &["watchexec", "entr", "inotifywait"], ratio_name: "watchexec" }.render(&[r]);
        assert!(t.contains("0.40×") && t.contains("≤ 0.6× watchexec") && t.contains("PASS"), "{t}");
        assert_eq!(t.lines().next().unwrap().matches('|').count(), 9);
        let r = Row::with_peers("watches", Unit::Count, Some(1001.0), vec![], Target::Equal(1001.0));
        assert_eq!(r.verdict(), Some(true));
    }
}
