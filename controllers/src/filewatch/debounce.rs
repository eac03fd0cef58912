//! Coalescing bursts of file changes into one batch.
//!
//! A [`PendingBatch`] collects changed paths and says when they are due: once no change has arrived for
//! the quiet period (the debounce), or once the oldest change has waited `max_delay`, so that a file
//! rewritten without pause cannot hold back the others forever. It never reads a clock: every call takes
//! `now`, which keeps it deterministic under test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The paths changed since the last flush, with when the first and the latest change arrived.
#[derive(Debug)]
pub(crate) struct PendingBatch {
    quiet: Duration,
    max_delay: Duration,
    paths: BTreeSet<PathBuf>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl PendingBatch {
    /// An empty batch flushed after `quiet` without changes, or `max_delay` after its first change.
    pub(crate) fn new(quiet: Duration, max_delay: Duration) -> PendingBatch {
        PendingBatch { quiet, max_delay: max_delay.max(quiet), paths: BTreeSet::new(), first: None, last: None }
    }

    /// Records that `path` changed at `now`.
    pub(crate) fn add(&mut self, path: PathBuf, now: Instant) {
        self.paths.insert(path);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the batch is due; `None` while it is empty.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        Some((self.last? + self.quiet).min(self.first? + self.max_delay))
    }

    /// The batch's paths, sorted and deduplicated, if it is due at `now`; the batch is then empty again.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(std::mem::take(&mut self.paths).into_iter().collect())
    }

    /// Whether no change is pending.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn batch() -> (PendingBatch, Instant) {
        (PendingBatch::new(20 * MS, 100 * MS), Instant::now())
    }

    #[test]
    fn empty_batch_is_never_due() {
        let (mut b, t0) = batch();
        assert_eq!(b.deadline(), None);
        assert_eq!(b.take_due(t0 + 1000 * MS), None);
    }

    #[test]
    fn flushes_after_the_quiet_period_sorted_and_deduplicated() {
        let (mut b, t0) = batch();
        b.add("/w/b".into(), t0);
        b.add("/w/a".into(), t0 + MS);
        b.add("/w/b".into(), t0 + 2 * MS);
        assert_eq!(b.deadline(), Some(t0 + 22 * MS));
        assert_eq!(b.take_due(t0 + 21 * MS), None, "not quiet long enough yet");
        assert_eq!(b.take_due(t0 + 22 * MS), Some(vec!["/w/a".into(), "/w/b".into()]));
        assert!(b.is_empty());
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn each_change_extends_the_quiet_period() {
        let (mut b, t0) = batch();
        for i in 0..5 {
            b.add(format!("/w/{i}").into(), t0 + i * 10 * MS);
        }
        assert_eq!(b.deadline(), Some(t0 + 60 * MS));
        assert_eq!(b.take_due(t0 + 59 * MS), None);
        assert_eq!(b.take_due(t0 + 60 * MS).map(|v| v.len()), Some(5));
    }

    #[test]
    fn a_constant_stream_is_flushed_after_max_delay() {
        let (mut b, t0) = batch();
        let mut flushed = Vec::new();
        for i in 0..30 {
            let now = t0 + i * 10 * MS;
            b.add(format!("/w/{i}").into(), now);
            if let Some(paths) = b.take_due(now) {
                flushed.push((i, paths.len()));
            }
        }
        // Changes every 10 ms never leave 20 ms of quiet; the 100 ms cap flushes them in batches.
        assert_eq!(flushed, vec![(10, 11), (21, 11)]);
    }

    #[test]
    fn zero_debounce_flushes_immediately() {
        let mut b = PendingBatch::new(Duration::ZERO, Duration::ZERO);
        let t0 = Instant::now();
        b.add("/w/a".into(), t0);
        assert_eq!(b.take_due(t0), Some(vec!["/w/a".into()]));
    }
}
