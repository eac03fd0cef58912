//! `apiserver-bench`: measures the tilt-rs API server next to a bare hyper hello-world floor and (when
//! installed) etcd, all in the same run on the same machine, and prints one table.
//!
//! Measured (issue 3): GET p50/p99 and throughput at 1 and 16 clients, create p50/p99, LIST of 10k × 1 KB
//! objects, RSS per object, and watch latency with 100 watchers. Every server runs in its own child process
//! (this binary re-executed as `serve` or `floor`, or `etcd`), so RSS is read from `/proc/PID/status`
//! without the client's memory, and each gets a fresh process per group of measurements.
//!
//! It is a report, not a test: it exits 0 whether targets pass or fail, and non-zero only when it could not
//! measure tilt-rs or the floor at all. `bash bench/run.sh` builds and runs it.

mod scenarios;
mod servers;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use tilt_bench::{client, proc, report};

use crate::client::{Endpoint, Load, quantile};
use crate::proc::{Etcd, SelfServer};
use crate::report::{Row, Target, Unit};
use crate::scenarios::{Plan, WatchResult};
use crate::targets::{Flavor, Sizes};

#[derive(Parser)]
#[command(name = "apiserver-bench", about = "Benchmarks the tilt-rs API server against a hyper floor and etcd.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tilt-rs API server, print {"url","token","ca_pem"}, serve until stdin closes (internal).
    Serve,
    /// Run the hyper hello-world floor, print {"url","ca_pem"}, serve until stdin closes (internal).
    Floor,
}

#[derive(Args)]
struct RunArgs {
    /// Seconds of measured GET load per system and client count (split into --slices windows).
    #[arg(long, default_value_t = 3.0)]
    window: f64,
    /// Seconds of unmeasured GET load before each system's first window.
    #[arg(long, default_value_t = 0.3)]
    warmup: f64,
    /// Windows the GET load of each system and client count is split into, the systems taking turns.
    #[arg(long, default_value_t = 12)]
    slices: u32,
    /// Rounds the systems take turns in for creates, LISTs and watch updates.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Concurrent clients of the second GET run.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured sequential creates.
    #[arg(long, default_value_t = 2000)]
    creates: u32,
    /// Objects stored for LIST and RSS.
    #[arg(long, default_value_t = 10_000)]
    objects: u32,
    /// Timed LISTs (the median is reported).
    #[arg(long, default_value_t = 9)]
    list_reps: usize,
    /// Concurrent watchers.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Updates during the watch benchmark.
    #[arg(long, default_value_t = 200)]
    updates: u32,
    /// Milliseconds between updates.
    #[arg(long, default_value_t = 5)]
    update_gap_ms: u64,
    /// A short smoke run (1 s windows, fewer objects and updates); its numbers are noisier.
    #[arg(long)]
    quick: bool,
    /// Skip etcd even when installed.
    #[arg(long)]
    no_etcd: bool,
    /// Give up (exit 2) after this many seconds.
    #[arg(long, default_value_t = 1200)]
    deadline: u64,
    /// The etcd executable (default: `etcd` on PATH).
    #[arg(long)]
    etcd: Option<PathBuf>,
}

impl RunArgs {
    fn plan(&self) -> Plan {
        let q = self.quick;
        Plan {
            window: Duration::from_secs_f64(if q { 1.0 } else { self.window }),
            warmup: Duration::from_secs_f64(if q { 0.2 } else { self.warmup }),
            slices: if q { 4 } else { self.slices.max(1) },
            rounds: if q { 2 } else { self.rounds.max(1) },
            clients: self.clients.max(1),
            creates: if q { 300 } else { self.creates.max(1) },
            create_warmup: 50,
            objects: if q { 2000 } else { self.objects.max(1) },
            list_reps: if q { 3 } else { self.list_reps.max(1) },
            watchers: self.watchers.max(1),
            updates: if q { 50 } else { self.updates.max(1) },
            update_gap: Duration::from_millis(self.update_gap_ms),
            watch_grace: Duration::from_secs(5),
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve) => servers::serve(),
        Some(Command::Floor) => servers::floor(),
        None => {
            watchdog(Duration::from_secs(cli.run.deadline));
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cli.run))
        }
    }
}

/// Ends the whole run (and so, through `PR_SET_PDEATHSIG` and their closed stdin, every child) if it has
/// not finished within `limit`: a stalled server must not hang the benchmark.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("apiserver-bench: not finished after {} s, giving up", limit.as_secs());
        std::process::exit(2);
    });
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("· {}", msg.as_ref());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one system produced (each part empty when it was not measured).
#[derive(Default)]
struct Results {
    /// GET load at 1 client and at `plan.clients`, merged over the windows.
    get: [Option<Load>; 2],
    create: Vec<Duration>,
    list: Vec<Duration>,
    list_bytes: Option<usize>,
    rss_per_object: Option<f64>,
    watch: Option<WatchResult>,
}

impl Results {
    fn add_get(&mut self, i: usize, load: Load) {
        match &mut self.get[i] {
            Some(all) => {
                all.latencies.extend(load.latencies);
                all.completed += load.completed;
                all.window += load.window;
            }
            slot => *slot = Some(load),
        }
    }
}

/// A running system under test; dropping it kills its process.
struct System {
    flavor: Flavor,
    ep: Endpoint,
    pid: u32,
    process: Process,
}

enum Process {
    /// A tilt-rs `serve` child, one per group.
    Tilt(SelfServer),
    /// etcd, one per group.
    Etcd(Etcd),
    /// The floor, shared by every group and stopped at the end.
    Floor,
}

impl System {
    async fn stop(self) {
        match self.process {
            Process::Tilt(s) => s.stop().await,
            Process::Etcd(e) => e.stop().await,
            Process::Floor => {}
        }
    }
}

/// Everything the run has measured or noted so far.
struct Run {
    plan: Plan,
    sizes: Sizes,
    results: [Results; 3],
    notes: Vec<String>,
    etcd_bin: Option<PathBuf>,
    etcd_version: Option<String>,
}

fn slot(f: Flavor) -> usize {
    match f {
        Flavor::Tilt => 0,
        Flavor::Floor => 1,
        Flavor::Etcd => 2,
    }
}

impl Run {
    fn res(&mut self, f: Flavor) -> &mut Results {
        &mut self.results[slot(f)]
    }

    /// Handles a failed measurement: fatal for tilt-rs and the floor; for etcd a note, and etcd leaves the
    /// group (returned `false`).
    fn failed(&mut self, sys: &System, what: &str, err: anyhow::Error) -> Result<bool> {
        if sys.flavor != Flavor::Etcd {
            return Err(err.context(format!("{}: {what}", sys.flavor.label())));
        }
        self.notes.push(format!("etcd: {what} failed, its cells are missing: {err:#}"));
        Ok(false)
    }

    /// Starts a fresh tilt-rs server and etcd (when installed) next to the shared floor.
    async fn group(&mut self, floor: &SelfServer) -> Result<Vec<System>> {
        let tilt = SelfServer::start("serve").await?;
        let mut systems = vec![
            System { flavor: Flavor::Tilt, ep: tilt.endpoint()?, pid: tilt.pid, process: Process::Tilt(tilt) },
            System { flavor: Flavor::Floor, ep: floor.endpoint()?, pid: floor.pid, process: Process::Floor },
        ];
        if let Some(bin) = self.etcd_bin.clone() {
            match Etcd::start(&bin).await {
                Ok(etcd) => {
                    if self.etcd_version.is_none() {
                        self.etcd_version = Some(etcd.version().await);
                    }
                    systems.push(System {
                        flavor: Flavor::Etcd,
                        ep: etcd.ep.clone(),
                        pid: etcd.pid,
                        process: Process::Etcd(etcd),
                    });
                }
                Err(e) => {
                    self.notes.push(format!("etcd ({}) did not start, its cells are missing: {e:#}", bin.display()));
                    self.etcd_bin = None;
                }
            }
        }
        Ok(systems)
    }

    /// Keeps the systems for which `ok` holds and stops the others.
    async fn keep(systems: Vec<System>, ok: &[bool]) -> Vec<System> {
        let mut kept = Vec::new();
        for (sys, &ok) in systems.into_iter().zip(ok) {
            if ok { kept.push(sys) } else { sys.stop().await }
        }
        kept
    }
}

async fn stop_all(systems: Vec<System>) {
    for sys in systems {
        sys.stop().await;
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let plan = args.plan();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    progress(format!("plan: {plan:?}"));
    let mut run = Run {
        plan: plan.clone(),
        sizes: Sizes::default(),
        results: Default::default(),
        notes: Vec::new(),
        etcd_bin: None,
        etcd_version: None,
    };
    if args.no_etcd {
        run.notes.push("etcd: skipped (--no-etcd).".into());
    } else {
        run.etcd_bin = args.etcd.clone().or_else(proc::find_etcd);
        if run.etcd_bin.is_none() {
            run.notes
                .push("etcd: not installed, skipped (bench/run.sh installs Debian's etcd-server when it can).".into());
        }
    }
    let floor = SelfServer::start("floor").await?;
    let result = measure(&mut run, &floor).await;
    floor.stop().await;
    result?;
    print_report(&run, cores);
    Ok(())
}

async fn measure(run: &mut Run, floor: &SelfServer) -> Result<()> {
    let plan = run.plan.clone();
    let rounds = plan.rounds.max(1);

    // Group 1: GET and create, the systems taking turns round by round.
    let mut systems = run.group(floor).await?;
    run.sizes = scenarios::calibrate(&systems[0].ep).await?;
    let sizes = run.sizes.clone();
    progress(format!("one Cmd is {} bytes of JSON (padding {}); GET…", sizes.object, sizes.pad));
    let mut ok = vec![true; systems.len()];
    for (sys, ok) in systems.iter().zip(&mut ok) {
        if let Err(e) = scenarios::prepare_get(sys.flavor, &sys.ep, &sizes).await {
            *ok = run.failed(sys, "GET setup", e)?;
        }
    }
    systems = Run::keep(systems, &ok).await;
    // GET: each system keeps its clients' connections; the systems take turns in `plan.slices` short windows.
    let slices = plan.slices.max(1);
    let slice = plan.window / slices;
    for (i, clients) in [1, plan.clients].into_iter().enumerate() {
        let mut sets = Vec::new();
        let mut ok = vec![true; systems.len()];
        for (sys, ok) in systems.iter().zip(&mut ok) {
            match client::Clients::connect(&sys.ep, clients).await {
                Ok(c) => sets.push(c),
                Err(e) => *ok = run.failed(sys, "GET", e)?,
            }
        }
        systems = Run::keep(systems, &ok).await;
        for n in 0..slices {
            let warmup = if n == 0 { plan.warmup } else { Duration::ZERO };
            let mut ok = vec![true; systems.len()];
            for ((sys, set), ok) in systems.iter().zip(&mut sets).zip(&mut ok) {
                match set.run(&sys.flavor.get(&sizes), warmup, slice).await {
                    Ok(load) => run.res(sys.flavor).add_get(i, load),
                    Err(e) => *ok = run.failed(sys, "GET", e)?,
                }
            }
            sets = sets.into_iter().zip(&ok).filter(|(_, ok)| **ok).map(|(s, _)| s).collect();
            systems = Run::keep(systems, &ok).await;
        }
    }
    progress("create…");
    let chunk = plan.creates.div_ceil(rounds);
    for r in 0..rounds {
        let range = (r * chunk).min(plan.creates)..((r + 1) * chunk).min(plan.creates);
        let warmup_base = targets::WARMUP_BASE + r * 10_000;
        let mut ok = vec![true; systems.len()];
        for (sys, ok) in systems.iter().zip(&mut ok) {
            match scenarios::create(sys.flavor, &sys.ep, &sizes, range.clone(), warmup_base, plan.create_warmup).await {
                Ok(l) => run.res(sys.flavor).create.extend(l),
                Err(e) => *ok = run.failed(sys, "create", e)?,
            }
        }
        systems = Run::keep(systems, &ok).await;
    }
    stop_all(systems).await;

    // Group 2: RSS while storing the objects, then LISTs taking turns.
    progress(format!("storing {} objects, RSS, LIST…", plan.objects));
    let mut systems = run.group(floor).await?;
    let mut conns = Vec::new();
    let mut ok = vec![true; systems.len()];
    for (sys, ok) in systems.iter().zip(&mut ok) {
        let filled = async {
            let rss = match sys.flavor {
                Flavor::Floor => None,
                f => Some(scenarios::fill(f, &sys.ep, sys.pid, &run.sizes, plan.objects).await?),
            };
            let mut conn = sys.ep.connect().await?;
            let bytes = scenarios::check_list(sys.flavor, &mut conn, &run.sizes, plan.objects).await?;
            anyhow::Ok((rss, conn, bytes))
        };
        match filled.await {
            Ok((rss, conn, bytes)) => {
                if sys.flavor == Flavor::Tilt {
                    run.sizes.list = bytes;
                }
                let res = run.res(sys.flavor);
                res.rss_per_object = rss;
                res.list_bytes = Some(bytes);
                conns.push(conn);
            }
            Err(e) => *ok = run.failed(sys, "storing objects for LIST", e)?,
        }
    }
    systems = Run::keep(systems, &ok).await;
    let sizes = run.sizes.clone();
    let mut alive = vec![true; systems.len()];
    for _ in 0..plan.list_reps {
        for ((sys, conn), alive) in systems.iter().zip(&mut conns).zip(&mut alive) {
            if !*alive {
                continue;
            }
            match conn.timed(&sys.flavor.list(&sizes)).await {
                Ok(t) => run.res(sys.flavor).list.push(t),
                Err(e) => *alive = run.failed(sys, "LIST", e)?,
            }
        }
    }
    drop(conns);
    stop_all(systems).await;

    // Group 3: watch. Every system's watchers stay open; the systems take turns sending their updates.
    progress(format!("watch with {} watchers…", plan.watchers));
    let systems = run.group(floor).await?;
    let mut sets = Vec::new();
    for sys in &systems {
        match scenarios::WatchSet::open(sys.flavor, &sys.ep, &sizes, &plan).await {
            Ok(set) => sets.push(Some(set)),
            Err(e) => {
                run.failed(sys, "watch", e)?;
                sets.push(None);
            }
        }
    }
    let chunk = plan.updates.div_ceil(rounds);
    for r in 0..rounds {
        let seqs = (r * chunk).min(plan.updates)..((r + 1) * chunk).min(plan.updates);
        for (sys, set) in systems.iter().zip(&mut sets) {
            let Some(ws) = set else { continue };
            if let Err(e) = ws.update(seqs.clone(), plan.update_gap).await {
                *set = None;
                run.failed(sys, "watch", e)?;
            }
        }
    }
    for (sys, set) in systems.iter().zip(sets) {
        let Some(ws) = set else { continue };
        match ws.finish(plan.watch_grace).await {
            Ok(w) => run.res(sys.flavor).watch = Some(w),
            Err(e) => {
                run.failed(sys, "watch", e)?;
            }
        }
    }
    stop_all(systems).await;
    for r in &mut run.results {
        r.create.sort_unstable();
        r.list.sort_unstable();
        for load in r.get.iter_mut().flatten() {
            load.latencies.sort_unstable();
        }
    }
    Ok(())
}

fn print_report(run: &Run, cores: usize) {
    let (plan, sizes) = (&run.plan, &run.sizes);
    let [tilt, fl, e] = &run.results;
    let q = |v: &Vec<Duration>, p: f64| (!v.is_empty()).then(|| ms(quantile(v, p)));
    let get = |r: &Results, i: usize, p: Option<f64>| {
        r.get[i].as_ref().map(|g| match p {
            Some(p) => ms(quantile(&g.latencies, p)),
            None => g.rate(),
        })
    };
    let rss = |r: &Results| r.rss_per_object;
    let watch = |r: &Results, p: f64| r.watch.as_ref().map(|w| ms(quantile(&w.latencies, p)));
    let watch_write = |r: &Results| r.watch.as_ref().map(|w| ms(quantile(&w.writes, 0.5)));
    let obj = sizes.object as f64;
    let k = |x: u32| if x.is_multiple_of(1000) { format!("{}k", x / 1000) } else { x.to_string() };

    let mut rows = Vec::new();
    for (i, c) in [1, plan.clients].into_iter().enumerate() {
        let clients = if c == 1 { "1 client".to_string() } else { format!("{c} clients") };
        let p = |p| (get(tilt, i, p), get(fl, i, p), get(e, i, p));
        let (t, f, x) = p(Some(0.5));
        rows.push(Row::new(format!("GET p50, {clients}"), Unit::Ms, t, f, x, Target::RatioAtMost(1.5)));
        let (t, f, x) = p(Some(0.99));
        rows.push(Row::new(format!("GET p99, {clients}"), Unit::Ms, t, f, x, Target::None));
        let (t, f, x) = p(None);
        let target = if c == 16 { Target::AtLeast(20_000.0) } else { Target::None };
        rows.push(Row::new(format!("GET throughput, {clients}"), Unit::PerSec, t, f, x, target));
    }
    let cr = |p| (q(&tilt.create, p), q(&fl.create, p), q(&e.create, p));
    let (t, f, x) = cr(0.5);
    rows.push(Row::new("create p50", Unit::Ms, t, f, x, Target::None));
    let (t, f, x) = cr(0.99);
    rows.push(Row::new("create p99", Unit::Ms, t, f, x, Target::Below(1.7)).source("Go Tilt"));
    let list = format!("LIST {} × 1 KB (median)", k(plan.objects));
    rows.push(Row::new(list, Unit::Ms, q(&tilt.list, 0.5), q(&fl.list, 0.5), q(&e.list, 0.5), Target::AtMost(100.0)));
    rows.push(Row::new("RSS per object", Unit::Bytes, rss(tilt), Some(obj), rss(e), Target::None).suffix(0, " (JSON)"));
    let overhead = "RSS overhead per object (RSS − JSON)";
    rows.push(Row::new(
        overhead,
        Unit::Bytes,
        rss(tilt).map(|r| r - obj),
        None,
        rss(e).map(|r| r - obj),
        Target::AtMost(3072.0),
    ));
    let w = plan.watchers;
    let (t, f, x) = (watch(tilt, 0.5), watch(fl, 0.5), watch(e, 0.5));
    rows.push(Row::new(format!("watch p50, {w} watchers"), Unit::Ms, t, f, x, Target::None));
    let (t, f, x) = (watch(tilt, 0.99), watch(fl, 0.99), watch(e, 0.99));
    rows.push(Row::new(format!("watch p99, {w} watchers"), Unit::Ms, t, f, x, Target::Below(5.0)));
    let (t, f, x) = (watch_write(tilt), watch_write(fl), watch_write(e));
    rows.push(Row::new("watch: update request p50 (writer)", Unit::Ms, t, f, x, Target::None));

    println!();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!(
        "tilt-rs API server benchmark — {cores} cores, load average {load} at the end; ratio = tilt-rs ÷ floor; KB = 1024 bytes"
    );
    println!();
    print!("{}", report::table(&rows));
    println!();
    let bytes = |r: &Results| r.list_bytes.map_or("—".into(), |b| b.to_string());
    let received =
        |r: &Results| r.watch.as_ref().map_or("—".into(), |w| format!("{}/{}", w.latencies.len(), w.expected));
    let notes = [
        format!(
            "Objects: Cmds of {} bytes of JSON as stored (padded through spec.env); LIST bodies: tilt-rs {} bytes{}.",
            sizes.object,
            bytes(tilt),
            e.list_bytes.map_or(String::new(), |b| format!(", etcd {b} bytes (values base64)"))
        ),
        format!(
            "The systems take turns: GET in {} windows, create, LIST and watch updates in {} rounds. GET: closed loop, one keep-alive HTTP/1.1 connection per client, {:.1} s measured per system and client count (after {:.0} ms warm-up); create: {} sequential POSTs on one connection ({} warm-up per round); LIST: median of {}.",
            plan.slices, plan.rounds, plan.window.as_secs_f64(), plan.warmup.as_secs_f64() * 1e3, plan.creates, plan.create_warmup, plan.list_reps
        ),
        format!(
            "GET at {} clients saturates the 2 cores shared by client and server: latency is mostly queueing (mean ≈ clients ÷ throughput), so its p50/p99 swing with load from outside the benchmark (see the load average above) far more than the 1-client latency does.",
            plan.clients
        ),
        "tilt-rs: HTTPS (TLS 1.3, rustls/ring) + bearer token, default Config (what `tilt up` runs), a fresh server process per group (GET+create, LIST+RSS, watch).".into(),
        "floor: bare hyper 1 + hyper-util auto server, same TLS setup and runtime, no token check/routing/storage; answers with as many bytes as tilt-rs did (GET/create/LIST); its RSS cell is the object's JSON size.".into(),
        match &run.etcd_version {
            Some(v) => format!(
                "etcd {v}: gRPC-gateway JSON over plain HTTP (no TLS, no token): GET = /v3/kv/range (linearizable), create = /v3/kv/put of a same-size value, LIST = prefix range; data dir on tmpfs (WAL fsync is cheap there); a fresh process per group."
            ),
            None => String::new(),
        },
        format!(
            "RSS per object: VmRSS of the server process after storing {} objects minus before, ÷ {}; includes the watch history and allocator slack.",
            plan.objects, plan.objects
        ),
        format!(
            "watch: {} streams (one connection each), {} updates {} ms apart; latency = event arrival at a watcher − just before the update request was sent. tilt-rs: merge-PATCH of an annotation, each event carries the whole object; floor: POST of an event-sized line that the server copies to every stream; etcd: put to the watched key. Events received: tilt-rs {}, floor {}, etcd {}.",
            plan.watchers, plan.updates, plan.update_gap.as_millis(), received(tilt), received(fl), received(e)
        ),
        "Go Tilt on this machine (design.md): GET p50 0.4–0.7 ms; create p99 1.7 ms; LIST 10k × 1 KB 419 ms; ~11.6 KB RSS per object; watch p99 21 ms with 100 watchers.".into(),
    ];
    for note in notes.iter().chain(&run.notes).filter(|n| !n.is_empty()) {
        println!("- {note}");
    }
}
