//! `hud-bench`: what the full-screen terminal view costs and how fast it answers keys (issue 16), measured
//! from outside as a person at a terminal sees it: `tilt up --legacy` runs in a real terminal (tmux) on a
//! Tiltfile of `--resources` resources and one server printing `--lines` log lines; keys go in with
//! `send-keys`, and the time until the screen (`capture-pane`) shows the result is the latency. The peer is
//! the same `tilt up` in `--stream` mode in the same kind of terminal, measured in the same run: the
//! difference is what the view costs.
//!
//! A report: it exits 0 whether targets pass or not, non-zero only when it could not measure at all.
//! `bash bench/run.sh hud` builds and runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use tilt_bench::proc::{cpu_seconds, rss_bytes};
use tilt_bench::{machine, median, progress};

#[derive(Parser)]
#[command(name = "hud-bench", about = "The full-screen terminal view's cost and key latency, from outside.")]
struct Cli {
    /// Resources in the Tiltfile (besides the chatty server).
    #[arg(long, default_value_t = 1000)]
    resources: usize,
    /// Log lines the chatty server prints.
    #[arg(long, default_value_t = 100_000)]
    lines: usize,
    /// Seconds of idle CPU measurement.
    #[arg(long, default_value_t = 10)]
    idle: u64,
    /// Key presses timed per kind of key.
    #[arg(long, default_value_t = 20)]
    keys: usize,
    /// The tilt binary (default: next to this one).
    #[arg(long)]
    tilt: Option<PathBuf>,
    /// A short smoke run.
    #[arg(long)]
    quick: bool,
}

/// One `tilt up` in a tmux terminal of its own.
struct Session {
    socket: String,
    pid: u32,
    home: tempfile::TempDir,
}

impl Session {
    fn tmux(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The screen, with its attributes (`-e`), so a moved selection (reverse video) shows as a change.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "b"]).unwrap_or_default()
    }

    fn start(bin: &Path, tiltfile: &str, mode: &str) -> Result<Session> {
        let home = tempfile::tempdir()?;
        std::fs::write(home.path().join("Tiltfile"), tiltfile)?;
        let socket = format!("hud-bench-{}-{mode}", std::process::id());
        let cmd = format!(
            "cd {h} && env HOME={h} KUBECONFIG={h}/kubeconfig TERM=xterm-256color {bin} up --port 0 {mode}; sleep 600",
            h = home.path().display(),
            bin = bin.display()
        );
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "b", "-x", "140", "-y", "50", &cmd])
            .status()?
            .success();
        if !ok {
            bail!("tmux new-session failed (is tmux installed?)");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            let out = Command::new("pgrep").args(["-x", "tilt"]).output()?;
            let found = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|p| p.trim().parse::<u32>().ok())
                .find(|p| std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|c| c == home.path()));
            if let Some(p) = found {
                break p;
            }
            if Instant::now() > deadline {
                let screen = Command::new("tmux").args(["-L", &socket, "capture-pane", "-p", "-t", "b"]).output()?;
                bail!("tilt did not start in tmux:\n{}", String::from_utf8_lossy(&screen.stdout).trim());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Ok(Session { socket, pid, home })
    }

    /// `tilt get …` against this instance (an external client).
    fn tilt_get(&self, bin: &Path, args: &[&str]) -> String {
        Command::new(bin)
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    /// Waits until every resource is ready and the chatty server printed its last line.
    fn settle(&self, bin: &Path, resources: usize) -> Result<Duration> {
        let start = Instant::now();
        let path = r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
        loop {
            let ready =
                self.tilt_get(bin, &["get", "uiresources", "-o", path]).lines().filter(|l| *l == "True").count();
            let done = self.tilt_get(bin, &["logs", "chatty", "--tail", "1"]).contains("DONE");
            if ready > resources && done {
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(600) {
                bail!("not settled after 10 min: {ready} ready");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// CPU use (% of one core) over `secs` seconds.
    fn idle_cpu(&self, secs: u64) -> Result<f64> {
        let before = cpu_seconds(self.pid)?;
        std::thread::sleep(Duration::from_secs(secs));
        Ok((cpu_seconds(self.pid)? - before) / secs as f64 * 100.0)
    }

    /// Sends `key` and returns how long until the screen satisfies `shown`.
    fn key_latency(&self, key: &str, shown: impl Fn(&str) -> bool) -> Result<Duration> {
        let before = self.screen();
        let start = Instant::now();
        self.tmux(&["send-keys", "-t", "b", key])?;
        loop {
            let s = self.screen();
            if shown(&s) && s != before {
                return Ok(start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("the screen did not change within 10 s after {key}");
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SIGTERM so tilt stops its processes; then the terminal goes.
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{}", self.pid)).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).stderr(Stdio::null()).status();
    }
}

fn tiltfile(resources: usize, lines: usize) -> String {
    let mut t = format!(
        "for i in range({resources}):\n    local_resource('r' + str(10000 + i)[1:], cmd='true', labels=['group%d' % (i // 100)])\n"
    );
    t.push_str(&format!(
        "local_resource('chatty', serve_cmd='python3 -u -c \"import sys\\nfor i in range({lines}): print(\\'line %d of the chatty server\\' % i)\\nprint(\\'DONE\\', flush=True)\\nimport time\\ntime.sleep(3600)\"')\n"
    ));
    t
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let (resources, lines, keys) = if cli.quick { (100, 10_000, 5) } else { (cli.resources, cli.lines, cli.keys) };
    let bin = cli.tilt.clone().unwrap_or_else(tilt_bench::tilt::default_binary);
    let Ok(bin) = std::fs::canonicalize(&bin) else { bail!("no tilt binary at {}", bin.display()) };
    let tf = tiltfile(resources, lines);
    println!("hud-bench: {resources} resources + a server printing {lines} lines; {}", machine());

    // The peer first: the same tilt, streaming.
    progress("stream mode: starting and settling");
    let stream = Session::start(&bin, &tf, "--stream")?;
    let stream_settle = stream.settle(&bin, resources)?;
    let stream_cpu = stream.idle_cpu(cli.idle)?;
    let stream_rss = rss_bytes(stream.pid)? as f64;
    drop(stream);

    progress("full-screen view: starting and settling");
    let view = Session::start(&bin, &tf, "--legacy")?;
    let view_settle = view.settle(&bin, resources)?;
    let view_cpu = view.idle_cpu(cli.idle)?;
    let view_rss = rss_bytes(view.pid)? as f64;

    progress("keys: End/Home over the resource list");
    let last = format!("r{:04}", resources - 1);
    let mut jumps = Vec::new();
    for _ in 0..keys {
        jumps.push(ms(view.key_latency("End", |s| s.contains(&last))?));
        jumps.push(ms(view.key_latency("Home", |s| s.contains("(Tiltfile)"))?));
    }
    progress("keys: j/k through the list");
    let mut steps = Vec::new();
    for i in 0..keys {
        let key = if i % 2 == 0 { "j" } else { "k" };
        steps.push(ms(view.key_latency(key, |_| true)?));
    }
    progress("keys: scrolling the chatty server's log");
    view.tmux(&["send-keys", "-t", "b", "/", "c", "h", "a", "t", "t", "y", "Enter", "3"])?;
    std::thread::sleep(Duration::from_millis(500));
    let mut scrolls = Vec::new();
    for _ in 0..keys {
        scrolls.push(ms(view.key_latency("[", |_| true)?));
    }
    let mut deep = Vec::new();
    for _ in 0..keys.min(10) {
        // Far back: 100 presses of `[` at once, then one more timed.
        let many: Vec<&str> = std::iter::repeat_n("[", 100).collect();
        let mut args = vec!["send-keys", "-t", "b"];
        args.extend(many);
        view.tmux(&args)?;
        std::thread::sleep(Duration::from_millis(300));
        deep.push(ms(view.key_latency("[", |_| true)?));
    }
    let view_rss_after = rss_bytes(view.pid)? as f64;
    drop(view);

    let row = |metric: &str, tilt: f64, peer: Option<f64>, unit: &str, target: &str, pass: Option<bool>| {
        let peer_text = peer.map(|p| format!("{p:.1}")).unwrap_or_else(|| "—".into());
        let ratio = peer.filter(|p| *p > 0.0).map(|p| format!("{:.2}", tilt / p)).unwrap_or_else(|| "—".into());
        let verdict = match pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "",
        };
        println!(
            "{metric:<46} {:>10} {unit:<4} {peer_text:>10} {ratio:>7}  {target:<14} {verdict}",
            format!("{tilt:.1}")
        );
    };
    println!();
    println!("{:<46} {:>10} {:<4} {:>10} {:>7}  {:<14}", "metric", "--legacy", "", "--stream", "ratio", "target");
    row("ready + logs printed (s)", view_settle.as_secs_f64(), Some(stream_settle.as_secs_f64()), "s", "", None);
    row("idle CPU, % of one core", view_cpu, Some(stream_cpu), "%", "view adds < 1", Some(view_cpu - stream_cpu < 1.0));
    row("VmRSS", view_rss / 1048576.0, Some(stream_rss / 1048576.0), "MB", "", None);
    row("VmRSS after scrolling", view_rss_after / 1048576.0, Some(stream_rss / 1048576.0), "MB", "log cap bound", None);
    let (mut j, mut s, mut l, mut d) = (jumps.clone(), steps.clone(), scrolls.clone(), deep.clone());
    for (name, v) in [
        ("End/Home jump", &mut j),
        ("j/k step", &mut s),
        ("log scroll `[`", &mut l),
        ("log scroll, 100s of lines back", &mut d),
    ] {
        let p50 = median(&mut v.clone()).unwrap_or(0.0);
        let p99 = percentile(v, 0.99);
        row(&format!("{name}: key → screen p50"), p50, None, "ms", "< 50", Some(p50 < 50.0));
        row(&format!("{name}: key → screen p99"), p99, None, "ms", "< 100", Some(p99 < 100.0));
    }
    println!("(key latency includes tmux's own capture-pane round trip, ~1–3 ms)");
    Ok(())
}
