//! The load benchmark's `--store audit`: what the durable audit trail costs the SSO round trip,
//! the refresh and the card login (issue 18). Two gateways (in-process store) run side by side:
//! one with the demo's trail (a file, hash-chained, signed checkpoints, each login and token
//! answered only once its record is `fdatasync`'d: `audit::durable`), one with
//! `audit.file = "-"` (records written to standard output, here `/dev/null`: no sync, no
//! checkpoint). The load goes to one at a time, in `--rounds` rounds (5 by default) of one phase
//! per operation and gateway, the order turned round each round (on, off; then off, on): a drift
//! of the machine's speed during the run (another process, the host's neighbours) falls on both
//! sides alike instead of on whichever side ran last. The summary gives, per operation and side,
//! the median throughput of the rounds, the p50 and p99 of every latency of the rounds pooled,
//! the gateway's median CPU per operation and the trail's `fdatasync` calls per operation.
//!
//! Each round also runs each operation at a fixed rate well under both sides' maximum (`--paced`,
//! SSO round trips, refreshes, card logins per second: 1500,1000,300 by default): at the maximum
//! the 32 closed loops queue, so a latency there is mostly the inverse of the throughput; at a
//! fixed rate the p99 is what the trail adds to an answer's time, which the issue's "p99 + under
//! 1 ms" is about.
//!
//! `--tmpfs-side` adds a side whose trail is on `/dev/shm` (a filesystem in memory: its
//! `fdatasync` returns at once): the trail's own work without the device's sync, which tells the
//! gateway's cost from the disk's. Before the load, the bench measures what one append and
//! `fdatasync` of a record costs on the trail's disk (CPU and latency), printed at the end.
//!
//! Every side runs with `audit.server_timing`: each answer that waited for its trace says how long
//! (`Server-Timing: audit;dur=`), and the summary sets the p99 of the answers' times against the p99
//! of the same answers less their holds (`hold_cost`): what the holds cost the p99, on the same
//! answers, which the difference of two sides' p99s is too noisy to show.
use std::sync::Arc;

use super::{
    Backend, Dice, Gateway, Op, Run, Sso, arg, card_op, card_setup, cpu_secs, drive_op, load_average, quantile, start,
};

/// One side of the comparison: its gateway, its operations, what its phases measured.
struct Side {
    label: String,
    gw: Gateway,
    sso: Arc<Sso>,
    ops: Vec<Op>,
    /// Per operation: each round's throughput, CPU µs and syncs per operation, every latency;
    /// then every latency at the fixed rate.
    rates: Vec<Vec<f64>>,
    cpu: Vec<Vec<f64>>,
    syncs: Vec<Vec<f64>>,
    latencies: Vec<Run>,
    paced: Vec<Run>,
    /// Per operation at the fixed rate: how long its answers were held for their traces
    /// (`vigie_audit_wait_seconds`, the phases' bucket counts added up).
    held: Vec<Buckets>,
    /// Per operation at the fixed rate: the trail's syncs (`vigie_audit_sync_seconds`), likewise.
    synced: Vec<Buckets>,
    /// Per operation at the fixed rate: the holds' way back, from the writer's answer to the
    /// answer's task running again (`vigie_audit_wakeup_seconds`), likewise.
    woke: Vec<Buckets>,
}

impl Side {
    /// One phase of operation `k` on this side (after a second's warm-up), `rate` per second or
    /// as fast as it goes; printed, then added to the side's figures.
    async fn phase(&mut self, round: usize, k: usize, secs: u64, concurrency: usize, rate: Option<f64>) {
        // Warms the connections to this gateway up again after the other's phase.
        drive_op(concurrency, 1, None, &self.ops[k]).await;
        let (pid, load) = (self.gw.pid, load_average());
        let before = self.metrics().await;
        let cpu_before = cpu_secs(pid);
        let run = drive_op(concurrency, secs, rate, &self.ops[k]).await;
        let ops = run.ops.max(1) as f64;
        let cpu_us = (cpu_secs(pid) - cpu_before) * 1e6 / ops;
        let after = self.metrics().await;
        let synced = |text: &str| metric(text, "vigie_audit_syncs_total").unwrap_or(0.0);
        let syncs = (synced(&after) - synced(&before)) / ops;
        let at = rate.map_or("max".to_owned(), |r| format!("at {r:.0}/s"));
        println!(
            "round {} [{}] {} {at}: {:.0}/s p50 {:.2} ms p99 {:.2} ms, {cpu_us:.0} µs CPU/op, {syncs:.3} syncs/op, {} errors (load {load})",
            round + 1,
            self.label,
            OPS[k],
            run.rate(),
            run.pct(0.50),
            run.pct(0.99),
            run.errors,
        );
        let pooled = if rate.is_some() {
            let held = |text: &str| Buckets::of(text, "vigie_audit_wait_seconds");
            self.held[k].add(&held(&after).minus(&held(&before)));
            let synced = |text: &str| Buckets::of(text, "vigie_audit_sync_seconds");
            self.synced[k].add(&synced(&after).minus(&synced(&before)));
            let woke = |text: &str| Buckets::of(text, "vigie_audit_wakeup_seconds");
            self.woke[k].add(&woke(&after).minus(&woke(&before)));
            &mut self.paced[k]
        } else {
            self.rates[k].push(run.rate());
            self.cpu[k].push(cpu_us);
            self.syncs[k].push(syncs);
            &mut self.latencies[k]
        };
        pooled.ops += run.ops;
        pooled.errors += run.errors;
        pooled.secs += run.secs;
        pooled.latencies.extend(run.latencies);
        pooled.held.extend(run.held);
    }

    /// The gateway's `/metrics`, empty when it does not answer.
    async fn metrics(&self) -> String {
        match self.sso.http.get(format!("{}/metrics", self.gw.base)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// How long the run's syncs took (`vigie_audit_sync_seconds`): how many, and how many past
    /// 5, 25 and 100 ms. An answer that must be durable waits for one sync, so a slow one is in
    /// the p99 of every answer waiting for it.
    async fn sync_times(&self) -> Option<String> {
        let syncs = Buckets::of(&self.metrics().await, "vigie_audit_sync_seconds");
        (syncs.count() > 0.0).then(|| {
            format!(
                "{:.0} syncs, {:.0} took over 5 ms, {:.0} over 25 ms, {:.0} over 100 ms ({})",
                syncs.count(),
                syncs.over(5.0),
                syncs.over(25.0),
                syncs.over(100.0),
                syncs.spread()
            )
        })
    }
}

/// A Prometheus histogram's cumulative bucket counts, by upper bound in seconds (`+Inf` last).
#[derive(Default)]
struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    /// The histogram `name` in a Prometheus text exposition (none: empty).
    fn of(text: &str, name: &str) -> Self {
        let prefix = format!("{name}_bucket{{le=\"");
        Self(
            text.lines()
                .filter_map(|l| {
                    let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
                    let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
                    Some((le, count.trim().parse().ok()?))
                })
                .collect(),
        )
    }

    /// The counts of `self` less those of an earlier reading.
    fn minus(&self, earlier: &Self) -> Self {
        let before = |le: f64| earlier.0.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
        Self(self.0.iter().map(|&(le, n)| (le, n - before(le))).collect())
    }

    fn add(&mut self, other: &Self) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
        } else {
            for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
                mine.1 += theirs.1;
            }
        }
    }

    fn count(&self) -> f64 {
        self.0.last().map_or(0.0, |b| b.1)
    }

    /// The least bucket bound that `q` of the samples are within, in ms (a quantile's upper bound).
    fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.count();
        self.0.iter().find(|b| b.1 >= q * n).map_or(f64::NAN, |b| b.0 * 1e3)
    }

    /// Each bucket's own count, by upper bound: `≤0.1 ms 812, ≤0.25 ms 300, …` (empty ones left out).
    fn spread(&self) -> String {
        let mut below = 0.0;
        let mut parts = Vec::new();
        for &(le, n) in &self.0 {
            if n > below {
                let bound = if le.is_finite() { format!("≤{} ms", le * 1e3) } else { "more".to_owned() };
                parts.push(format!("{bound} {:.0}", n - below));
            }
            below = n;
        }
        parts.join(", ")
    }

    /// How many samples took over `ms` (a bucket's bound).
    fn over(&self, ms: f64) -> f64 {
        self.0.iter().find(|b| (b.0 * 1e3 - ms).abs() < 1e-9).map_or(f64::NAN, |b| self.count() - b.1)
    }
}

/// The value of the sample `name` (with its labels, if any) in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

const OPS: [&str; 3] = ["SSO round trip", "refresh (rotation)", "card login (TLS + CRL 10k + session)"];

pub async fn bench_audit(secs: u64, concurrency: usize, rounds: usize) {
    let paced: Vec<f64> =
        arg("--paced", "1500,1000,300").split(',').map(|r| r.trim().parse().expect("--paced N,N,N")).collect();
    assert_eq!(paced.len(), OPS.len(), "--paced: one rate per operation (SSO, refresh, card)");
    // `--commit-intervals 0,500,1000`: one trail-on side per `audit.commit_interval_us` (the
    // default's alone when not given).
    let intervals = arg("--commit-intervals", "");
    let mut configs: Vec<(String, Vec<(String, String)>)> = intervals
        .split(',')
        .filter(|i| !i.is_empty())
        .map(|i| {
            let us: u64 = i.trim().parse().expect("--commit-intervals N,N");
            (
                format!("trail on, commit interval {us} µs"),
                vec![("VIGIE_AUDIT__COMMIT_INTERVAL_US".to_owned(), us.to_string())],
            )
        })
        .collect();
    if configs.is_empty() {
        configs.push(("trail on (file + fdatasync)".to_owned(), Vec::new()));
    }
    // `--tmpfs-side`: the default trail on a filesystem in memory, whose `fdatasync` returns at
    // once: everything the trail does (records, chain, acknowledgements, the answers' waits, the
    // commit floor) but the device's sync, to tell the gateway's own cost from the disk's.
    let tmpfs = std::env::args()
        .any(|a| a == "--tmpfs-side")
        .then(|| std::path::PathBuf::from(format!("/dev/shm/vigie-bench-{}-trail.jsonl", std::process::id())));
    if let Some(trail) = &tmpfs {
        configs.push((
            "trail on tmpfs (no device sync)".to_owned(),
            vec![("VIGIE_AUDIT__FILE".to_owned(), trail.display().to_string())],
        ));
    }
    configs.push(("trail off (stdout)".to_owned(), vec![("VIGIE_AUDIT__FILE".to_owned(), "-".to_owned())]));
    let disk = disk_sync_cost(&std::env::temp_dir());
    // `--phases max` or `--phases paced`: only the maximum's phases (throughput, more rounds in
    // the same time) or only the fixed rate's (the p99 at a hospital's rate, say `--paced 50,50,20`).
    let phases = arg("--phases", "both");
    assert!(["both", "max", "paced"].contains(&phases.as_str()), "--phases both|max|paced");
    let cards = card_setup();
    let mut sides = Vec::new();
    for (label, extra) in configs {
        let mut env = cards.env.clone();
        env.extend(extra);
        // Each answer says what it waited for its trace (`Server-Timing`): `hold_cost`.
        env.push(("VIGIE_AUDIT__SERVER_TIMING".to_owned(), "true".to_owned()));
        let gw = start(Backend::Embedded, 1, &env);
        let sso = Sso::of(&gw).await;
        let ops = vec![sso.op(), sso.refresh_op(concurrency).await, card_op(&gw, &cards).await];
        let empty = || (0..OPS.len()).map(|_| Vec::new()).collect::<Vec<_>>();
        let runs = || {
            (0..OPS.len())
                .map(|_| Run { ops: 0, errors: 0, secs: 0.0, latencies: Vec::new(), held: Vec::new() })
                .collect()
        };
        let (rates, cpu, syncs, latencies, paced) = (empty(), empty(), empty(), runs(), runs());
        let buckets = || (0..OPS.len()).map(|_| Buckets::default()).collect();
        let (held, synced, woke) = (buckets(), buckets(), buckets());
        sides.push(Side { label, gw, sso, ops, rates, cpu, syncs, latencies, paced, held, synced, woke });
    }
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (k, &at) in paced.iter().enumerate() {
            let rates = match phases.as_str() {
                "max" => vec![None],
                "paced" => vec![Some(at)],
                _ => vec![None, Some(at)],
            };
            for rate in rates {
                for &s in &order {
                    sides[s].phase(round, k, secs, concurrency, rate).await;
                }
            }
        }
    }
    println!("\nSummary over {rounds} rounds of {secs} s per operation and side, {concurrency} loops:");
    let (off, ons) = sides.split_last().expect("two sides at least");
    for (k, name) in OPS.iter().enumerate() {
        for side in ons.iter().chain([off]) {
            let l = &side.latencies[k];
            let mut line = format!("  {name:<38} [{}]", side.label);
            if !side.rates[k].is_empty() {
                line += &format!(
                    " max: median {:.0}/s (rounds {}), p50 {:.2} ms, p99 {:.2} ms, median {:.0} µs CPU/op, {:.3} syncs/op;",
                    median(&side.rates[k]),
                    side.rates[k].iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" "),
                    l.pct(0.50),
                    l.pct(0.99),
                    median(&side.cpu[k]),
                    median(&side.syncs[k]),
                );
            }
            if side.paced[k].ops > 0 {
                let (low, high) = p99_interval(&side.paced[k]);
                line += &format!(
                    " at {:.0}/s: p50 {:.2} ms, p99 {:.2} ms (95 % interval {low:.2} to {high:.2} ms; {} answers);",
                    paced[k],
                    side.paced[k].pct(0.50),
                    side.paced[k].pct(0.99),
                    side.paced[k].ops
                );
                let held = &side.held[k];
                if held.count() > 0.0 {
                    line += &format!(
                        " {:.0} answers held for their traces (vigie_audit_wait_seconds): p50 ≤ {} ms, p99 ≤ {} ms, {:.0} over 1 ms ({});",
                        held.count(),
                        held.quantile_ms(0.50),
                        held.quantile_ms(0.99),
                        held.over(1.0),
                        held.spread(),
                    );
                }
                let synced = &side.synced[k];
                if synced.count() > 0.0 {
                    line += &format!(
                        " {:.0} syncs, p99 ≤ {} ms ({});",
                        synced.count(),
                        synced.quantile_ms(0.99),
                        synced.spread()
                    );
                }
                let woke = &side.woke[k];
                if woke.count() > 0.0 {
                    line += &format!(
                        " the way back from the writer, p99 ≤ {} ms, {:.0} over 1 ms ({});",
                        woke.quantile_ms(0.99),
                        woke.over(1.0),
                        woke.spread()
                    );
                }
            }
            println!("{line} {} errors", l.errors + side.paced[k].errors);
        }
        for on in ons {
            let mut line = format!("  {name:<38} [{}] the trail's cost:", on.label);
            if !on.rates[k].is_empty() {
                let paired: Vec<f64> = on.rates[k].iter().zip(&off.rates[k]).map(|(a, b)| a / b - 1.0).collect();
                line += &format!(
                    " throughput {:+.1} % (median of the rounds' ratios {:+.1} %, from {:+.1} to {:+.1} %), CPU/op {:+.0} µs, p99 at the maximum {:+.2} ms;",
                    (median(&on.rates[k]) / median(&off.rates[k]) - 1.0) * 100.0,
                    median(&paired) * 100.0,
                    paired.iter().copied().fold(f64::INFINITY, f64::min) * 100.0,
                    paired.iter().copied().fold(f64::NEG_INFINITY, f64::max) * 100.0,
                    median(&on.cpu[k]) - median(&off.cpu[k]),
                    on.latencies[k].pct(0.99) - off.latencies[k].pct(0.99),
                );
            }
            if on.paced[k].ops > 0 {
                line += &format!(
                    " at {:.0}/s p50 {:+.2} ms, p99 {:+.2} ms",
                    paced[k],
                    on.paced[k].pct(0.50) - off.paced[k].pct(0.50),
                    on.paced[k].pct(0.99) - off.paced[k].pct(0.99)
                );
                if let Some(c) = hold_cost(&on.paced[k]) {
                    line += &format!(
                        "; on the same answers, their holds cost the p99 {:+.2} ms (95 % interval {:+.2} to {:+.2} ms; p99 {:.2} ms with them, {:.2} ms without; holds per operation p50 {:.2} ms, p99 {:.2} ms)",
                        c.cost, c.low, c.high, c.with, c.without, c.held_p50, c.held_p99
                    );
                }
            }
            println!("{line}");
        }
    }
    for side in &sides {
        side.gw.print_rss(&side.label, &[]);
    }
    for side in ons {
        if let Some(times) = side.sync_times().await {
            println!("[{}] the trail's syncs over the run (vigie_audit_sync_seconds): {times}", side.label);
        }
    }
    println!("{disk}");
    if let Some(trail) = tmpfs {
        for f in [trail.clone(), trail.with_extension("jsonl.checkpoints")] {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// What one `fdatasync` of a trail's record costs on the disk the trail-on side writes to (the
/// temp dir's), measured in this thread before the load: its CPU (`/proc/thread-self/schedstat`,
/// nanoseconds on a CPU) and its latency, 2,000 appends of a record-sized line each synced.
fn disk_sync_cost(dir: &std::path::Path) -> String {
    use std::io::Write;
    const N: usize = 2000;
    let path = dir.join(format!("vigie-bench-{}-sync", std::process::id()));
    let on_cpu = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    let Ok(mut file) = std::fs::OpenOptions::new().create(true).truncate(true).write(true).open(&path) else {
        return format!("the disk's sync: {} could not be written", dir.display());
    };
    let line = format!("{}\n", "x".repeat(700));
    let mut latencies = Vec::with_capacity(N);
    let (cpu0, began) = (on_cpu(), std::time::Instant::now());
    for _ in 0..N {
        let t = std::time::Instant::now();
        if file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).is_err() {
            break;
        }
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (cpu_us, wall) = ((on_cpu() - cpu0) / 1e3 / N as f64, began.elapsed());
    // The same at a hospital's pace, one every 10 ms: between two, the machine idles, and a
    // device (on a VM, the host behind it) answers slower from idle.
    let mut spaced = Vec::with_capacity(N / 4);
    for _ in 0..N / 4 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let t = std::time::Instant::now();
        if file.write_all(line.as_bytes()).and_then(|()| file.sync_data()).is_err() {
            break;
        }
        spaced.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = std::fs::remove_file(&path);
    format!(
        "the trail's disk ({}), before the load: one 700-byte append + fdatasync costs {cpu_us:.0} µs of CPU, {:.0} µs of time (p50 {:.2} ms, p99 {:.2} ms) back to back; one every 10 ms: p50 {:.2} ms, p99 {:.2} ms",
        dir.display(),
        wall.as_secs_f64() * 1e6 / N as f64,
        quantile(&mut latencies, 0.50),
        quantile(&mut latencies, 0.99),
        quantile(&mut spaced, 0.50),
        quantile(&mut spaced, 0.99),
    )
}

/// A 95 % confidence interval of a run's p99, from the order statistics of its latencies (the
/// ranks n·0.99 ± 1.96·√(n·0.99·0.01)): how far apart two sides' p99 must be to differ at all.
fn p99_interval(run: &Run) -> (f64, f64) {
    let mut l: Vec<f64> = run.latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    l.sort_by(f64::total_cmp);
    let n = l.len() as f64;
    let spread = 1.96 * (n * 0.99 * 0.01).sqrt();
    let at = |rank: f64| l.get((rank.max(0.0) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(f64::NAN);
    (at((n * 0.99 - spread).floor()), at((n * 0.99 + spread).ceil()))
}

/// What the trail's holds cost a run's p99, on its own answers ([`hold_cost`]).
struct HoldCost {
    cost: f64,
    low: f64,
    high: f64,
    with: f64,
    without: f64,
    held_p50: f64,
    held_p99: f64,
}

/// The p99 of the run's answers against the p99 of the same answers less what each operation's
/// answers said they waited for their traces (`Server-Timing: audit;dur=`, the gateway's
/// `audit.server_timing`): what the holds cost the p99, everything else equal. Two sides' p99s
/// differ by their own noise (each one's 95 % interval is milliseconds wide at a few thousand
/// answers); this difference does not, the same answers being on both sides of it. Its 95 %
/// interval is a bootstrap's (the answers resampled 1,000 times, percentiles 2.5 and 97.5). It
/// leaves out what the trail costs inside the handler (serializing its records, waking the
/// writer), which the tmpfs side's p50 shows. `None` when no answer said it waited.
fn hold_cost(run: &Run) -> Option<HoldCost> {
    let ms = |d: &std::time::Duration| d.as_secs_f64() * 1e3;
    if run.held.iter().all(std::time::Duration::is_zero) {
        return None;
    }
    let pairs: Vec<(f64, f64)> = run.latencies.iter().zip(&run.held).map(|(l, h)| (ms(l), ms(l) - ms(h))).collect();
    let p99 = |mut v: Vec<f64>| quantile(&mut v, 0.99);
    let cost =
        |sample: &[(f64, f64)]| (p99(sample.iter().map(|p| p.0).collect()), p99(sample.iter().map(|p| p.1).collect()));
    let (with, without) = cost(&pairs);
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    let mut costs: Vec<f64> = (0..1000)
        .map(|_| {
            let sample: Vec<(f64, f64)> = (0..pairs.len()).map(|_| pairs[dice.below(pairs.len())]).collect();
            let (w, wo) = cost(&sample);
            w - wo
        })
        .collect();
    let mut held: Vec<f64> = run.held.iter().map(ms).collect();
    Some(HoldCost {
        cost: with - without,
        low: quantile(&mut costs, 0.025),
        high: quantile(&mut costs, 0.975),
        with,
        without,
        held_p50: quantile(&mut held, 0.50),
        held_p99: quantile(&mut held, 0.99),
    })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
