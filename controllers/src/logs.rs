//! `LogStore`: the bounded, in-memory log of every resource, written by controllers (process output, build
//! output, pod logs) and read by `tilt logs` and the terminal view.
//!
//! Each resource has its own byte budget, so one chatty resource can never push out another's lines. Lines
//! carry a global sequence number, so followers resume without gaps or duplicates.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Default byte budget per resource.
pub const DEFAULT_BYTES_PER_RESOURCE: usize = 2 * 1024 * 1024;

/// Whether lines from `source` are a build's (an update's) output rather than the running service's.
pub fn is_build_source(source: &str) -> bool {
    source == "tiltfile"
        || source == "kubernetesapply"
        || source.starts_with("dockerimage/")
        || source.starts_with("cmdimage/")
        || (source.starts_with("cmd/") && source.ends_with(":update"))
}

/// The web UI's log span of lines of `resource` from `source`: one per pair, and a build's span starts with
/// `build:`, as the web UI expects (UIResource build history names these spans).
pub fn span_id(resource: &str, source: &str) -> String {
    let prefix = if is_build_source(source) { "build:" } else { "" };
    format!("{prefix}{resource}:{source}")
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the store, increasing across all resources.
    pub seq: u64,
    /// When the line was received.
    pub time: Timestamp,
    /// The resource (manifest) the line belongs to.
    pub resource: String,
    /// The object that produced it, e.g. `cmd/api:serve`.
    pub source: String,
    /// The text, without its trailing newline.
    pub text: String,
    /// How severe it is: `INFO` (most output), `WARN` or `ERROR` (tilt's own messages about failures).
    #[serde(default, skip_serializing_if = "LogLevel::is_info")]
    pub level: LogLevel,
}

/// Severity of a log line, spelled as Go Tilt's log segments spell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// Ordinary output.
    #[default]
    Info,
    /// Something the user should look at.
    Warn,
    /// A failure.
    Error,
}

impl LogLevel {
    fn is_info(&self) -> bool {
        *self == LogLevel::Info
    }

    /// `INFO`, `WARN` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

struct Resource {
    lines: VecDeque<LogLine>,
    bytes: usize,
}

struct Inner {
    resources: HashMap<String, Resource>,
    next_seq: u64,
}

/// Per-resource bounded logs with a live feed.
pub struct LogStore {
    budget: usize,
    inner: Mutex<Inner>,
    feed: broadcast::Sender<LogLine>,
}

impl Default for LogStore {
    fn default() -> Self {
        Self::new(DEFAULT_BYTES_PER_RESOURCE)
    }
}

impl LogStore {
    /// A store keeping at most `bytes_per_resource` bytes of text per resource.
    pub fn new(bytes_per_resource: usize) -> Self {
        let (feed, _) = broadcast::channel(4096);
        LogStore {
            budget: bytes_per_resource.max(1),
            inner: Mutex::new(Inner { resources: HashMap::new(), next_seq: 1 }),
            feed,
        }
    }

    /// Appends one line of ordinary output.
    pub fn append(&self, resource: &str, source: &str, text: &str) {
        self.append_level(resource, source, LogLevel::Info, text)
    }

    /// Appends one line of the given severity.
    pub fn append_level(&self, resource: &str, source: &str, level: LogLevel, text: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let line = LogLine {
            seq,
            time: Timestamp::now(),
            resource: resource.to_string(),
            source: source.to_string(),
            text: text.to_string(),
            level,
        };
        let r = inner
            .resources
            .entry(resource.to_string())
            .or_insert_with(|| Resource { lines: VecDeque::new(), bytes: 0 });
        r.bytes += line.text.len();
        r.lines.push_back(line.clone());
        while r.bytes > self.budget && r.lines.len() > 1 {
            if let Some(old) = r.lines.pop_front() {
                r.bytes -= old.text.len();
            }
        }
        // Sent under the lock, so followers receive lines in sequence order.
        let _ = self.feed.send(line);
    }

    /// Stored lines with `seq > after` of the given resources (all when empty), in order.
    pub fn lines(&self, resources: &[String], after: u64) -> Vec<LogLine> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LogLine> = inner
            .resources
            .iter()
            .filter(|(name, _)| resources.is_empty() || resources.contains(name))
            .flat_map(|(_, r)| r.lines.iter().filter(|l| l.seq > after).cloned())
            .collect();
        out.sort_by_key(|l| l.seq);
        out
    }

    /// Up to `n` of the newest lines of `resources` (all when empty) that `keep` accepts, after skipping the
    /// `skip` newest of them; oldest first. Reads only what it returns (and what it skips), newest first.
    pub fn tail(&self, resources: &[String], skip: usize, n: usize, keep: impl Fn(&LogLine) -> bool) -> Vec<LogLine> {
        use std::collections::BinaryHeap;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut iters: Vec<_> = inner
            .resources
            .iter()
            .filter(|(name, _)| resources.is_empty() || resources.contains(name))
            .map(|(_, r)| r.lines.iter().rev().peekable())
            .collect();
        let mut heads: BinaryHeap<(u64, usize)> =
            iters.iter_mut().enumerate().filter_map(|(i, it)| it.peek().map(|l| (l.seq, i))).collect();
        let (mut out, mut skipped) = (Vec::new(), 0);
        while out.len() < n {
            let Some((_, i)) = heads.pop() else { break };
            let Some(line) = iters[i].next() else { continue };
            if let Some(next) = iters[i].peek() {
                heads.push((next.seq, i));
            }
            if !keep(line) {
                continue;
            }
            if skipped < skip {
                skipped += 1;
                continue;
            }
            out.push(line.clone());
        }
        out.reverse();
        out
    }

    /// How many stored lines of `resources` (all when empty) `keep` accepts.
    pub fn count(&self, resources: &[String], keep: impl Fn(&LogLine) -> bool) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .resources
            .iter()
            .filter(|(name, _)| resources.is_empty() || resources.contains(name))
            .map(|(_, r)| r.lines.iter().filter(|l| keep(l)).count())
            .sum()
    }

    /// The sequence number of the last line appended (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).next_seq - 1
    }

    /// Live lines appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chatty_resource_cannot_push_out_another() {
        let store = LogStore::new(100);
        store.append("quiet", "cmd/q", "hello");
        for i in 0..1000 {
            store.append("chatty", "cmd/c", &format!("line {i:04} ........"));
        }
        let quiet = store.lines(&["quiet".into()], 0);
        assert_eq!(quiet.len(), 1);
        let chatty = store.lines(&["chatty".into()], 0);
        assert!(chatty.iter().map(|l| l.text.len()).sum::<usize>() <= 100);
        assert_eq!(chatty.last().unwrap().text, "line 0999 ........");
        let all = store.lines(&[], 0);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let after = store.lines(&[], all[all.len() - 2].seq);
        assert_eq!(after.len(), 1);
    }

    #[test]
    fn tails_merge_resources_newest_first_and_skip() {
        let store = LogStore::new(1 << 20);
        for i in 0..10 {
            store.append(if i % 2 == 0 { "a" } else { "b" }, "cmd/x", &format!("{i}"));
        }
        let texts = |lines: Vec<LogLine>| lines.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(texts(store.tail(&[], 0, 3, |_| true)), ["7", "8", "9"]);
        assert_eq!(texts(store.tail(&[], 2, 3, |_| true)), ["5", "6", "7"]);
        assert_eq!(texts(store.tail(&["a".into()], 1, 2, |_| true)), ["4", "6"]);
        assert_eq!(texts(store.tail(&[], 0, 100, |l| l.text != "9")).len(), 9);
        assert_eq!(store.count(&["b".into()], |_| true), 5);
    }
}
