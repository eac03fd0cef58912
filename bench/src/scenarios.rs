//! The measurements, each run the same way against every [`Flavor`]: sequential creates, filling a store
//! with ~1 KB objects for RSS and LIST, and watch fan-out latency ([`WatchSet`]) (GET load is [`crate::client::Clients`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::ops::Range;

use crate::client::Req;
use crate::client::{Conn, Endpoint, fan_out};
use crate::proc::rss_bytes;
use crate::targets::{CMDS, Flavor, GET_TARGET, PROBE, Sizes, WATCHED};

/// How much of everything to do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Measured GET load per system and client count, split into `slices` windows.
    pub window: Duration,
    /// Unmeasured GET load before each system's first window.
    pub warmup: Duration,
    /// GET windows per system and client count: the systems take turns window by window, so that load from
    /// elsewhere on the machine hits them alike.
    pub slices: u32,
    /// Rounds the systems take turns in for creates, LISTs and watch updates.
    pub rounds: u32,
    /// Concurrent clients of the second GET run.
    pub clients: usize,
    /// Measured sequential creates.
    pub creates: u32,
    /// Unmeasured creates before each slice of them.
    pub create_warmup: u32,
    /// Objects stored for LIST and RSS.
    pub objects: u32,
    /// Timed LISTs (after one untimed).
    pub list_reps: usize,
    /// Concurrent watchers.
    pub watchers: usize,
    /// Updates each watcher should see.
    pub updates: u32,
    /// Pause between updates.
    pub update_gap: Duration,
    /// How long to wait for the last events after the last update.
    pub watch_grace: Duration,
}

/// Target JSON size of one stored object.
pub const OBJECT_BYTES: usize = 1024;

/// On a fresh tilt-rs server: finds the padding that makes a stored Cmd ~[`OBJECT_BYTES`] of JSON (from an
/// unpadded probe's size) and returns the sizes.
pub async fn calibrate(ep: &Endpoint) -> Result<Sizes> {
    let mut conn = ep.connect().await?;
    let probe = conn.send(&Flavor::Tilt.create(PROBE, &Sizes::default())).await.context("creating the probe Cmd")?;
    let pad = OBJECT_BYTES.saturating_sub(probe.len());
    let sizes = Sizes { pad, ..Sizes::default() };
    let stored = conn.send(&Flavor::Tilt.create(GET_TARGET, &sizes)).await?;
    Ok(Sizes { object: stored.len(), ..sizes })
}

/// Creates what GETs read (tilt-rs does so in [`calibrate`]; the floor has nothing to create).
pub async fn prepare_get(flavor: Flavor, ep: &Endpoint, s: &Sizes) -> Result<()> {
    if flavor == Flavor::Etcd {
        let mut conn = ep.connect().await?;
        conn.send(&flavor.create(GET_TARGET, s)).await?;
        // Rewritten under the key GETs read.
        let body = conn.send(&flavor.get(s)).await?;
        ensure!(body.len() > s.object, "etcd returned {} bytes for a {}-byte value", body.len(), s.object);
    }
    Ok(())
}

/// Sequential creates of objects `range` on one new connection, after `warmup` unmeasured creates (numbered
/// from `warmup_base`); the measured latencies, in order.
pub async fn create(
    flavor: Flavor,
    ep: &Endpoint,
    s: &Sizes,
    range: Range<u32>,
    warmup_base: u32,
    warmup: u32,
) -> Result<Vec<Duration>> {
    let mut conn = ep.connect().await?;
    for i in 0..warmup {
        conn.send(&flavor.create(warmup_base + i, s)).await?;
    }
    let reqs: Vec<_> = range.map(|i| flavor.create(i, s)).collect();
    let mut latencies = Vec::with_capacity(reqs.len());
    for r in &reqs {
        latencies.push(conn.timed(r).await?);
    }
    Ok(latencies)
}

/// On a fresh server: stores `objects` objects over 4 connections and returns the resident memory that added
/// per object (VmRSS after − before, after one LIST of the empty store has warmed the server up).
pub async fn fill(flavor: Flavor, ep: &Endpoint, pid: u32, s: &Sizes, objects: u32) -> Result<f64> {
    ep.connect().await?.send(&flavor.list(s)).await?;
    let before = rss_bytes(pid)?;
    fan_out(ep, 4, (0..objects).map(|i| flavor.create(i, s)).collect()).await?;
    let after = rss_bytes(pid)?;
    Ok((after as f64 - before as f64) / f64::from(objects))
}

/// One untimed LIST that checks the store holds `expected` objects (not for the floor); the body's size.
pub async fn check_list(flavor: Flavor, conn: &mut Conn, s: &Sizes, expected: u32) -> Result<usize> {
    let body = conn.send(&flavor.list(s)).await?;
    if flavor != Flavor::Floor {
        let v: Value = serde_json::from_slice(&body)?;
        let n = match flavor {
            Flavor::Tilt => v["items"].as_array().map_or(0, Vec::len) as u64,
            _ => v["count"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0),
        };
        ensure!(n == u64::from(expected), "{} listed {n} objects, expected {expected}", flavor.label());
    }
    Ok(body.len())
}

/// What the watch benchmark measured.
pub struct WatchResult {
    /// Sorted delays from just before an update was sent to its event arriving at a watcher, over every
    /// (watcher, update) pair that arrived.
    pub latencies: Vec<Duration>,
    /// watchers × updates.
    pub expected: usize,
    /// Sorted latencies of the updates themselves (the writer's requests).
    pub writes: Vec<Duration>,
}

/// Which update arrived when, at one watcher.
type Arrivals = Vec<(u32, Instant)>;

/// One system's watchers and writer, open across the rounds of the watch benchmark.
pub struct WatchSet {
    flavor: Flavor,
    sizes: Sizes,
    writer: Conn,
    base: Instant,
    /// Nanoseconds after `base` at which each update was sent, plus one (0: not sent).
    sent: Arc<Vec<AtomicU64>>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Result<Arrivals>>>,
    writes: Vec<Duration>,
    expected: usize,
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl WatchSet {
    /// On a fresh server: opens `plan.watchers` watch streams (one connection each) and waits until every
    /// one is established.
    pub async fn open(flavor: Flavor, ep: &Endpoint, s: &Sizes, plan: &Plan) -> Result<WatchSet> {
        let mut writer = ep.connect().await?;
        let mut rv = String::new();
        if flavor == Flavor::Tilt {
            writer.send(&Flavor::Tilt.create(WATCHED, s)).await?;
            let listed: Value = serde_json::from_slice(&writer.send(&Req::get(CMDS)).await?)?;
            rv = listed["metadata"]["resourceVersion"].as_str().context("LIST without resourceVersion")?.to_string();
        }
        let updates = plan.updates as usize;
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..updates).map(|_| AtomicU64::new(0)).collect());
        let stop = CancellationToken::new();
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(plan.watchers);
        let mut tasks = Vec::with_capacity(plan.watchers);
        for _ in 0..plan.watchers {
            let (ep, req, stop, ready) = (ep.clone(), flavor.watch(&rv), stop.clone(), ready_tx.clone());
            tasks.push(tokio::spawn(watcher(flavor, ep, req, stop, ready, updates)));
        }
        drop(ready_tx);
        let mut set = WatchSet {
            flavor,
            sizes: s.clone(),
            writer,
            base: Instant::now(),
            sent,
            stop,
            tasks,
            writes: Vec::with_capacity(updates),
            expected: updates * plan.watchers,
        };
        let all_ready = async {
            for _ in 0..plan.watchers {
                ready_rx.recv().await.context("a watcher failed before it was ready")?;
            }
            anyhow::Ok(())
        };
        if !matches!(tokio::time::timeout(Duration::from_secs(30), all_ready).await, Ok(Ok(()))) {
            set.stop.cancel();
            for t in std::mem::take(&mut set.tasks) {
                if t.is_finished() {
                    t.await??;
                } else {
                    t.abort();
                }
            }
            bail!("the {} watchers were not all ready within 30 s", plan.watchers);
        }
        Ok(set)
    }

    /// Sends updates `seqs`, `gap` apart, each stamped just before it is sent.
    pub async fn update(&mut self, seqs: Range<u32>, gap: Duration) -> Result<()> {
        let mut tick = tokio::time::interval(gap);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for seq in seqs {
            tick.tick().await;
            let req = self.flavor.update(seq, &self.sizes);
            let t0 = Instant::now();
            let slot = self.sent.get(seq as usize).context("update number out of range")?;
            slot.store((t0 - self.base).as_nanos() as u64 + 1, Ordering::SeqCst);
            self.writer.send(&req).await?;
            self.writes.push(t0.elapsed());
        }
        Ok(())
    }

    /// Waits up to `grace` for the last events, then turns arrivals into latencies.
    pub async fn finish(mut self, grace: Duration) -> Result<WatchResult> {
        let timer = {
            let stop = self.stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                stop.cancel();
            })
        };
        let mut latencies = Vec::with_capacity(self.expected);
        for t in std::mem::take(&mut self.tasks) {
            for (seq, at) in t.await?? {
                let Some(slot) = self.sent.get(seq as usize) else { continue };
                let ns = slot.load(Ordering::SeqCst);
                if ns > 0 {
                    latencies.push(at.saturating_duration_since(self.base + Duration::from_nanos(ns - 1)));
                }
            }
        }
        timer.abort();
        latencies.sort_unstable();
        let mut writes = std::mem::take(&mut self.writes);
        writes.sort_unstable();
        Ok(WatchResult { latencies, expected: self.expected, writes })
    }
}

/// One watcher: opens its stream, reports ready (after the response headers, or etcd's confirmation line),
/// then stamps every update's arrival until it has seen `updates` of them or `stop` fires.
async fn watcher(
    flavor: Flavor,
    ep: Endpoint,
    req: Req,
    stop: CancellationToken,
    ready: mpsc::Sender<()>,
    updates: usize,
) -> Result<Arrivals> {
    let mut conn = ep.connect().await?;
    let mut body = conn.stream(&req).await?;
    let mut ready = Some(ready);
    if !flavor.watch_confirms() {
        ready.take().map(|r| r.try_send(()));
    }
    let mut arrivals: Arrivals = Vec::with_capacity(updates);
    let (mut buf, mut seqs) = (Vec::<u8>::with_capacity(4096), Vec::new());
    while arrivals.len() < updates {
        let frame = tokio::select! {
            _ = stop.cancelled() => break,
            f = body.frame() => f,
        };
        let Some(frame) = frame else { break };
        let now = Instant::now();
        let Ok(data) = frame?.into_data() else { continue };
        buf.extend_from_slice(&data);
        let Some(last) = buf.iter().rposition(|&b| b == b'\n') else { continue };
        for line in buf[..last].split(|&b| b == b'\n') {
            seqs.clear();
            flavor.seqs(line, &mut seqs);
            arrivals.extend(seqs.iter().map(|&q| (q, now)));
            if let Some(r) = ready.take() {
                let _ = r.try_send(());
            }
        }
        buf.drain(..=last);
    }
    Ok(arrivals)
}
