//! Decisions per second on one thread and the latency of one decision, with the default policy
//! set: an allowed login (physician, CPS, DPI), an allowed DMP access, and a refused login with its
//! step-up computed (nurse, password + TOTP, DPI). The engine keeps its decisions: the first rows
//! are served from that cache, the `uncached` rows ask for a principal never seen each time.
//! Run: `cargo bench -p vigie-policies --bench decide` (pin it with `taskset -c 0` for a one-core
//! figure). Target (issue 4): ≥ 100,000 decisions/s/core, < 50 µs p99.
use std::hint::black_box;
use std::time::{Duration, Instant};

use vigie_core::policy::{
    AccountKind, Action, ClientResource, PolicyContext, PolicyEngine, PolicyRequest, Principal, Resource, factors_of,
};
use vigie_core::{Authentication, Mie};
use vigie_policies::{CedarEngine, ReloadablePolicies};

const NOW: i64 = 1_780_000_000;

fn principal(id: &str, code: &str) -> Principal {
    Principal {
        id: id.into(),
        profession_code: Some(code.into()),
        category: "medical".into(),
        roles: vec!["cards".into()],
        units: vec!["UF-CARDIO".into(), "UF-USIC".into()],
        has_idnat: true,
        employment_status: "active".into(),
        account_kind: AccountKind::Personal,
    }
}

/// CPU time this thread has run (Linux `/proc/thread-self/schedstat`, first field, ns): on a
/// shared machine, wall time also counts the time other processes had the core.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// Runs `f` for about `for_how_long`; decisions per wall-clock second and per CPU second.
fn throughput(for_how_long: Duration, mut f: impl FnMut() -> bool) -> (f64, Option<f64>) {
    let mut n = 0u64;
    let cpu_start = thread_cpu();
    let start = Instant::now();
    while start.elapsed() < for_how_long {
        for _ in 0..1000 {
            black_box(f());
        }
        n += 1000;
    }
    let wall = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_start.zip(thread_cpu()).map(|(a, b)| n as f64 / (b - a).as_secs_f64());
    (wall, cpu)
}

/// Times `n` single decisions; (p50, p99, max) in microseconds.
fn latency(n: usize, mut f: impl FnMut() -> bool) -> (f64, f64, f64) {
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .collect();
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(samples[n / 2]), us(samples[n * 99 / 100]), us(samples[n - 1]))
}

fn report(name: &str, f: &mut dyn FnMut() -> bool) {
    // `DECIDE_ONLY=<words>` runs only the scenarios whose name contains them (for a profiler).
    if std::env::var("DECIDE_ONLY").is_ok_and(|only| !name.contains(&only)) {
        return;
    }
    for _ in 0..20_000 {
        black_box(f()); // warm-up
    }
    let (per_sec, per_cpu_sec) = throughput(Duration::from_secs(3), &mut *f);
    let (p50, p99, max) = latency(100_000, &mut *f);
    let per_cpu_sec = per_cpu_sec.map_or("?".into(), |c| format!("{c:.0}"));
    println!(
        "{name:<62} {per_sec:>7.0}/s wall {per_cpu_sec:>7}/s CPU   p50 {p50:>5.1} µs   p99 {p99:>5.1} µs   max {max:>7.1} µs"
    );
}

fn main() {
    let engine = CedarEngine::builtin().expect("the built-in policy set validates");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let reloadable = ReloadablePolicies::load(&dir).expect("policies/default validates");

    let physician = principal("dr-martin", "10");
    let nurse = principal("ide-durand", "60");
    let dpi = Resource::Client(ClientResource {
        id: "dpi".into(),
        sensitive: true,
        required_level: None,
        audience: "staff".into(),
    });
    let ctx = PolicyContext { network_zone: "internal".into(), hour: 10, ..Default::default() };
    let cps = Authentication::hypothetical(physician.id.clone(), Mie::Cps, factors_of(Mie::Cps), NOW - 30);
    let totp =
        Authentication::hypothetical(nurse.id.clone(), Mie::PasswordTotp, factors_of(Mie::PasswordTotp), NOW - 30);
    let allowed = PolicyRequest {
        principal: &physician,
        action: Action::LoginToClient,
        resource: &dpi,
        authentication: &cps,
        context: &ctx,
        now: NOW,
    };
    let refused = PolicyRequest { principal: &nurse, authentication: &totp, ..allowed.clone() };
    let dmp = PolicyRequest { action: Action::AccessDmp, resource: &Resource::Dmp, ..allowed.clone() };

    let d = engine.decide(&allowed);
    assert!(d.allowed, "{d:?}");
    let d = engine.decide(&refused);
    assert!(!d.allowed && d.step_up.len() == 4, "{d:?}");
    assert!(engine.decide(&dmp).allowed);

    println!("vigie-policies decide, default set ({} policies), one thread", engine.policy_ids().len());
    report("allowed: physician, CPS, DPI (login_to_client)", &mut || engine.decide(black_box(&allowed)).allowed);
    report("allowed: physician, CPS, DMP (access_dmp)", &mut || engine.decide(black_box(&dmp)).allowed);
    report("refused + step-up: nurse, password+TOTP, DPI", &mut || engine.decide(black_box(&refused)).allowed);
    report("allowed, through ReloadablePolicies (arc-swap load)", &mut || {
        reloadable.decide(black_box(&allowed)).allowed
    });
    // The engine keeps its decisions (bounded): above, every decision after the first is served
    // from it. Below, each decision is for a principal never seen, so none is: the cost of a
    // first login (the figures include building the principal, a few hundred ns).
    let mut n = 0u64;
    let mut fresh = |who: &Principal| {
        n += 1;
        Principal { id: format!("{}-{n}", who.id), ..who.clone() }
    };
    report("uncached allowed: physician, CPS, DPI", &mut || {
        let p = fresh(&physician);
        engine.decide(black_box(&PolicyRequest { principal: &p, ..allowed.clone() })).allowed
    });
    report("uncached allowed: physician, CPS, DMP", &mut || {
        let p = fresh(&physician);
        engine.decide(black_box(&PolicyRequest { principal: &p, ..dmp.clone() })).allowed
    });
    report("uncached refused + step-up: nurse, password+TOTP, DPI", &mut || {
        let p = fresh(&nurse);
        engine.decide(black_box(&PolicyRequest { principal: &p, ..refused.clone() })).allowed
    });
}
