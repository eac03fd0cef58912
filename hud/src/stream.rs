//! Stream mode: one line per log line, `name ┊ text`, filtered by level, source and resource (the same
//! filters as `tilt logs`).

use std::io::Write;
use std::sync::Arc;

use tilt_controllers::logs::{LogLevel, LogLine, LogStore, is_build_source};
use tokio::sync::broadcast::error::RecvError;

/// `--log-level`: the least severe level shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LevelFilter {
    /// Everything.
    #[default]
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

/// `--log-source`: build output, runtime output, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceFilter {
    /// Both.
    #[default]
    All,
    /// What builds and updates print (image builds, update commands, applies, Tiltfile loads).
    Build,
    /// What running servers and pods print.
    Runtime,
}

/// Which lines to show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Least severe level shown.
    pub level: LevelFilter,
    /// Build or runtime output.
    pub source: SourceFilter,
    /// Only these resources (all when empty).
    pub resources: Vec<String>,
}

impl LogFilter {
    /// Whether `line` passes.
    pub fn keeps(&self, line: &LogLine) -> bool {
        let level_ok = match self.level {
            LevelFilter::Info => true,
            LevelFilter::Warn => line.level != LogLevel::Info,
            LevelFilter::Error => line.level == LogLevel::Error,
        };
        let source_ok = match self.source {
            SourceFilter::All => true,
            SourceFilter::Build => is_build_source(&line.source),
            SourceFilter::Runtime => !is_build_source(&line.source),
        };
        level_ok && source_ok && (self.resources.is_empty() || self.resources.contains(&line.resource))
    }
}

/// `name ┊ text`, the resource name right-aligned in `width` columns.
pub fn format_line(line: &LogLine, width: usize) -> String {
    format!("{:>width$} ┊ {}", line.resource, line.text)
}

/// Prints every line `filter` keeps as it arrives, until the store closes.
pub async fn print(logs: Arc<LogStore>, filter: LogFilter) {
    let mut feed = logs.subscribe();
    loop {
        let line = match feed.recv().await {
            Ok(line) => line,
            Err(RecvError::Lagged(n)) => {
                say(&format!("… {n} log lines skipped"));
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if filter.keeps(&line) {
            say(&format_line(&line, 12));
        }
    }
}

/// Prints a line; a closed stdout (`tilt up | head -1`) must not stop tilt.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(resource: &str, source: &str, level: LogLevel) -> LogLine {
        LogLine {
            seq: 1,
            time: jiff::Timestamp::UNIX_EPOCH,
            resource: resource.into(),
            source: source.into(),
            text: "t".into(),
            level,
        }
    }

    #[test]
    fn filters_by_level_source_and_resource() {
        let build = line("api", "cmd/api:update", LogLevel::Info);
        let serve_warn = line("api", "cmd/api:serve", LogLevel::Warn);
        let pod_error = line("web", "pod/default/web-1/web", LogLevel::Error);
        let f = |level, source, resources: &[&str]| LogFilter {
            level,
            source,
            resources: resources.iter().map(|s| s.to_string()).collect(),
        };
        let all = f(LevelFilter::Info, SourceFilter::All, &[]);
        assert!(all.keeps(&build) && all.keeps(&serve_warn) && all.keeps(&pod_error));
        let warn = f(LevelFilter::Warn, SourceFilter::All, &[]);
        assert!(!warn.keeps(&build) && warn.keeps(&serve_warn) && warn.keeps(&pod_error));
        let runtime = f(LevelFilter::Info, SourceFilter::Runtime, &[]);
        assert!(!runtime.keeps(&build) && runtime.keeps(&serve_warn));
        let build_only = f(LevelFilter::Info, SourceFilter::Build, &["api"]);
        assert!(build_only.keeps(&build) && !build_only.keeps(&serve_warn) && !build_only.keeps(&pod_error));
        assert_eq!(format_line(&build, 5), "  api ┊ t");
    }
}
