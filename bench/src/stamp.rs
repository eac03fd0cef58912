//! `bench-stamp FILE`: appends the current CLOCK_REALTIME time in nanoseconds and a newline to FILE, in one
//! `O_APPEND` write. It is the command every file watcher in `filewatch-bench` runs on a change, so that the
//! time a command started is recorded by the command itself. The clock is read before anything else.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: bench-stamp FILE");
        std::process::exit(2);
    };
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{now}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("bench-stamp: {}: {e}", path.to_string_lossy());
        std::process::exit(1);
    }
}
