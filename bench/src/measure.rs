//! Measuring: rates and latency percentiles of concurrent loops, repeated
//! runs summarised as min / median / max, and rows that compare ours with a
//! baseline taken in the same run.

use std::future::Future;
use std::time::{Duration, Instant};

/// One measured run: operations per second and latency percentiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    /// Operations per second.
    pub rate: f64,
    /// 99th percentile latency of one operation.
    pub p99: Duration,
}

/// The `q` quantile (0..=1) of `samples` (sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i]
}

/// Runs `op` from `callers` concurrent tasks for `length`; `op(caller, n)`
/// is the caller's n-th operation.
pub async fn drive<F, Fut>(callers: usize, length: Duration, op: F) -> Run
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let deadline = started + length;
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if let Err(e) = op(c, n).await {
                        eprintln!("bench: an operation failed: {e:#}");
                        break;
                    }
                    latencies.push(t.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    Run {
        rate: all.len() as f64 / elapsed,
        p99: quantile(&mut all, 0.99),
    }
}

/// Runs `op` once on each of `items` with `callers` concurrent callers, as
/// fast as it goes (for work that uses up what it is given, such as
/// one-time codes).
pub async fn drive_each<T, F, Fut>(callers: usize, items: Vec<T>, op: F) -> Run
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let queue = std::sync::Arc::new(std::sync::Mutex::new(items));
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (op, queue) = (op.clone(), queue.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let Some(item) = next else { break };
                    let t = Instant::now();
                    if let Err(e) = op(item).await {
                        eprintln!("bench: an operation failed: {e:#}");
                        break;
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    Run {
        rate: all.len() as f64 / elapsed,
        p99: quantile(&mut all, 0.99),
    }
}

/// Runs a blocking `op` on `threads` OS threads for `length`; `op` returns
/// how many operations it did in one call.
pub fn drive_blocking<F>(threads: usize, length: Duration, op: F) -> Run
where
    F: Fn(usize) -> u64 + Clone + Send + 'static,
{
    let started = Instant::now();
    let deadline = started + length;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let op = op.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut done = 0;
                while Instant::now() < deadline {
                    let s = Instant::now();
                    let n = op(t);
                    let took = s.elapsed();
                    for _ in 0..n {
                        latencies.push(took / n.max(1) as u32);
                    }
                    done += n;
                }
                (done, latencies)
            })
        })
        .collect();
    let mut total = 0;
    let mut all = Vec::new();
    for h in handles {
        if let Ok((n, l)) = h.join() {
            total += n;
            all.extend(l);
        }
    }
    Run {
        rate: total as f64 / started.elapsed().as_secs_f64(),
        p99: quantile(&mut all, 0.99),
    }
}

/// What a row must show.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// Our rate at least this fraction of the baseline's.
    RateAtLeast(f64),
    /// Our rate at least this fraction, and our p99 at most this multiple of
    /// the baseline's p99.
    RateAndP99(f64, f64),
    /// Our p99 at most this multiple of the baseline's p99.
    P99AtMost(f64),
    /// Our p99 under this many microseconds.
    P99UnderMicros(f64),
    /// No target: the figures are reported for comparison.
    Reported,
}

/// One line of the table: ours and the baseline over several runs.
#[derive(Clone, Debug)]
pub struct Row {
    /// Our path.
    pub ours: String,
    /// Its baseline.
    pub baseline: String,
    /// The unit of the rates (events/s, calls/s …).
    pub unit: &'static str,
    /// Our runs.
    pub ours_runs: Vec<Run>,
    /// The baseline's runs.
    pub base_runs: Vec<Run>,
    /// The target.
    pub target: Target,
    /// A remark (sizes, what "quick" left out).
    pub note: String,
}

fn median_by(runs: &[Run], f: impl Fn(&Run) -> f64) -> (f64, f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn rate_words(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn micros(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.1} ms", x / 1000.0)
    } else {
        format!("{x:.1} µs")
    }
}

impl Row {
    /// Median rate ratio and median p99 ratio (ours / baseline).
    pub fn ratios(&self) -> (f64, f64) {
        let (_, ours, _) = median_by(&self.ours_runs, |r| r.rate);
        let (_, base, _) = median_by(&self.base_runs, |r| r.rate);
        let (_, op99, _) = median_by(&self.ours_runs, |r| r.p99.as_secs_f64());
        let (_, bp99, _) = median_by(&self.base_runs, |r| r.p99.as_secs_f64());
        (
            if base > 0.0 { ours / base } else { 0.0 },
            if bp99 > 0.0 { op99 / bp99 } else { 0.0 },
        )
    }

    /// Whether the target is met.
    pub fn met(&self) -> bool {
        let (rate, p99) = self.ratios();
        let (_, ours_p99, _) = median_by(&self.ours_runs, |r| r.p99.as_secs_f64() * 1e6);
        match self.target {
            Target::RateAtLeast(x) => rate >= x,
            Target::RateAndP99(x, y) => rate >= x && p99 <= y,
            Target::P99AtMost(y) => p99 <= y,
            Target::P99UnderMicros(us) => ours_p99 < us,
            Target::Reported => true,
        }
    }

    /// The row as a Markdown table line.
    pub fn markdown(&self) -> String {
        let (omin, omed, omax) = median_by(&self.ours_runs, |r| r.rate);
        let (bmin, bmed, bmax) = median_by(&self.base_runs, |r| r.rate);
        let (_, op99, _) = median_by(&self.ours_runs, |r| r.p99.as_secs_f64() * 1e6);
        let (_, bp99, _) = median_by(&self.base_runs, |r| r.p99.as_secs_f64() * 1e6);
        let (rate, p99) = self.ratios();
        let target = match self.target {
            Target::RateAtLeast(x) => format!("≥ {x}×"),
            Target::RateAndP99(x, y) => format!("≥ {x}×, p99 ≤ {y}×"),
            Target::P99AtMost(y) => format!("p99 ≤ {y}×"),
            Target::P99UnderMicros(us) => format!("p99 < {us} µs"),
            Target::Reported => "–".to_owned(),
        };
        format!(
            "| {} | {} | {} ({}–{}) {}, p99 {} | {} ({}–{}) {}, p99 {} | {:.2}× (p99 {:.2}×) | {} | {} | {} |",
            self.ours,
            self.baseline,
            rate_words(omed),
            rate_words(omin),
            rate_words(omax),
            self.unit,
            micros(op99),
            rate_words(bmed),
            rate_words(bmin),
            rate_words(bmax),
            self.unit,
            micros(bp99),
            rate,
            p99,
            target,
            match (self.target, self.met()) {
                (Target::Reported, _) => "reported",
                (_, true) => "met",
                (_, false) => "**missed**",
            },
            self.note,
        )
    }
}
