//! Resuming a container's log stream without duplicates: the kubelet prefixes each line with an RFC3339Nano
//! timestamp (`timestamps=true`), and a reconnect asks for lines since the last timestamp seen.
//!
//! `sinceTime` only has second precision and the kubelet returns lines *at or after* it, so a reconnect
//! replays lines already seen. [`Position`] remembers the newest timestamp seen and how many lines carried
//! it; a [`Resume`] skips replayed lines by that, then admits everything after the first new line.

use jiff::Timestamp;

/// How far one container's log has been read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Position {
    /// The newest line timestamp seen.
    last: Option<Timestamp>,
    /// How many lines seen carry exactly `last`.
    at_last: usize,
}

impl Position {
    /// The `sinceTime` to reconnect with: the last timestamp truncated to the second (the API's precision;
    /// rounding up would lose lines), or `floor` when that is later or nothing was seen yet.
    pub fn since(&self, floor: Option<Timestamp>) -> Option<Timestamp> {
        let seen = self.last.and_then(|t| Timestamp::from_second(t.as_second()).ok());
        match (seen, floor) {
            (Some(s), Some(f)) => Some(s.max(f)),
            (s, f) => s.or(f),
        }
    }

    /// Starts filtering one new connection's lines against what was seen before it.
    pub fn resume(&self) -> Resume {
        Resume { last: self.last, skip_at_last: self.at_last, seen_at_last: 0, caught_up: self.last.is_none() }
    }

    fn record(&mut self, t: Timestamp) {
        match self.last {
            Some(last) if t == last => self.at_last += 1,
            // A line older than the newest one (stdout and stderr interleaved) does not move the position.
            Some(last) if t < last => {}
            _ => {
                self.last = Some(t);
                self.at_last = 1;
            }
        }
    }
}

/// The filter of one connection's lines.
#[derive(Debug)]
pub struct Resume {
    last: Option<Timestamp>,
    skip_at_last: usize,
    seen_at_last: usize,
    /// Set at the first new line; a stream is in order, so all later lines are new too.
    caught_up: bool,
}

impl Resume {
    /// Whether the line stamped `t` is new; if so it is recorded in `position`.
    pub fn admit(&mut self, t: Timestamp, position: &mut Position) -> bool {
        if !self.caught_up {
            let last = self.last.expect("not caught up only after a line was seen");
            if t < last {
                return false;
            }
            if t == last && self.seen_at_last < self.skip_at_last {
                self.seen_at_last += 1;
                return false;
            }
            self.caught_up = true;
        }
        position.record(t);
        true
    }
}

/// Splits a kubelet log line `2024-05-01T10:00:00.123456789Z text` into its timestamp and text; `None` when
/// it does not start with one (then the whole line is text).
pub fn split_timestamp(line: &str) -> Option<(Timestamp, &str)> {
    let (stamp, text) = match line.split_once(' ') {
        Some((stamp, text)) => (stamp, text),
        None => (line, ""),
    };
    let t: Timestamp = stamp.parse().ok()?;
    Some((t, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Feeds `lines` (timestamp, text) through a new connection, returning the admitted texts.
    fn feed<'a>(position: &mut Position, lines: &[(&str, &'a str)]) -> Vec<&'a str> {
        let mut resume = position.resume();
        lines.iter().filter(|(t, _)| resume.admit(ts(t), position)).map(|(_, text)| *text).collect()
    }

    #[test]
    fn splits_kubelet_lines() {
        let (t, text) = split_timestamp("2024-05-01T10:00:00.123456789Z hello world").unwrap();
        assert_eq!(t, ts("2024-05-01T10:00:00.123456789Z"));
        assert_eq!(text, "hello world");
        assert_eq!(split_timestamp("2024-05-01T10:00:00Z").unwrap().1, "");
        assert_eq!(split_timestamp("2024-05-01T10:00:00+02:00 x").unwrap().0, ts("2024-05-01T08:00:00Z"));
        assert!(split_timestamp("hello world").is_none());
        assert!(split_timestamp("").is_none());
    }

    #[test]
    fn since_truncates_to_the_second_and_honours_the_floor() {
        let mut p = Position::default();
        assert_eq!(p.since(None), None);
        assert_eq!(p.since(Some(ts("2024-05-01T10:00:00Z"))), Some(ts("2024-05-01T10:00:00Z")));
        feed(&mut p, &[("2024-05-01T10:00:05.900Z", "a")]);
        assert_eq!(p.since(None), Some(ts("2024-05-01T10:00:05Z")));
        assert_eq!(p.since(Some(ts("2024-05-01T10:00:01Z"))), Some(ts("2024-05-01T10:00:05Z")));
        assert_eq!(p.since(Some(ts("2024-05-01T11:00:00Z"))), Some(ts("2024-05-01T11:00:00Z")));
    }

    #[test]
    fn a_reconnect_skips_what_was_seen_and_keeps_what_is_new() {
        let mut p = Position::default();
        let first = feed(&mut p, &[("2024-05-01T10:00:05.1Z", "a"), ("2024-05-01T10:00:05.2Z", "b")]);
        assert_eq!(first, ["a", "b"]);
        // The kubelet replays from 10:00:05 (second precision), then the new container instance's lines.
        let second = feed(
            &mut p,
            &[("2024-05-01T10:00:05.1Z", "a"), ("2024-05-01T10:00:05.2Z", "b"), ("2024-05-01T10:00:07Z", "c")],
        );
        assert_eq!(second, ["c"]);
        // Nothing new: nothing admitted.
        assert!(feed(&mut p, &[("2024-05-01T10:00:07Z", "c")]).is_empty());
    }

    #[test]
    fn equal_timestamps_are_counted() {
        let mut p = Position::default();
        let t = "2024-05-01T10:00:05Z";
        assert_eq!(feed(&mut p, &[(t, "a"), (t, "b")]), ["a", "b"]);
        // The stream broke after two lines stamped `t`; the third one stamped `t` is new.
        assert_eq!(feed(&mut p, &[(t, "a"), (t, "b"), (t, "c"), ("2024-05-01T10:00:06Z", "d")]), ["c", "d"]);
        assert_eq!(feed(&mut p, &[(t, "a"), (t, "b"), (t, "c"), ("2024-05-01T10:00:06Z", "d")]), Vec::<&str>::new());
    }

    #[test]
    fn lines_after_the_first_new_one_are_all_kept() {
        let mut p = Position::default();
        feed(&mut p, &[("2024-05-01T10:00:05Z", "a")]);
        // Slightly out of order after catching up (stdout/stderr interleaving): still new, and still kept.
        let got = feed(&mut p, &[("2024-05-01T10:00:06Z", "b"), ("2024-05-01T10:00:05.5Z", "c")]);
        assert_eq!(got, ["b", "c"]);
        assert_eq!(p.since(None), Some(ts("2024-05-01T10:00:06Z")));
    }
}
