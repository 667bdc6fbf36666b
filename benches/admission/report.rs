//! The printed report: in-process step costs, the throughput details, and the summary with
//! each figure's target and PASS/MISS.

use std::time::Duration;

use crate::load::{self, Comparison, Tally};
use crate::{Config, Results, FIXTURE, MAX_GROWTH, MAX_P99, MIN_RATIO};

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{:.0} %", x * 100.0))
}

fn us(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.1} µs"))
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Prints everything measured, ending with the summary table.
pub fn report(
    cfg: &Config,
    r: &Results,
    steps: &[(&str, f64)],
    steps_large: &[(&str, f64)],
    answer_len: usize,
    took: Duration,
) {
    println!();
    println!("nsoffload admission benchmark: POST /mutate/pod over TLS, server on one core");
    println!(
        "  body {} B (pod-create-replicaset-synthetic.json), answer {answer_len} B; \
         {} s per figure after {:.2} s warm-up; logs {}; threads {}",
        FIXTURE.len(),
        cfg.secs,
        cfg.warmup,
        if cfg.logs { "info (as `serve`)" } else { "off" },
        if r.pinned {
            "pinned (server CPU 1, client CPU 0)"
        } else {
            "not pinned"
        },
    );
    println!();
    println!("in-process cost of one decision (no TLS, no HTTP)      1 ns   10,000 ns");
    for ((name, a), (_, b)) in steps.iter().zip(steps_large) {
        println!("  {name:<50} {a:>6.2} µs {b:>6.2} µs");
    }
    println!();
    println!(
        "{:<40} {:>8} {:>15} {:>12} {:>12}",
        "closed-loop throughput", "req/s", "server CPU/req", "server busy", "client busy"
    );
    let h1 = format!("HTTP/1.1, {} conns", cfg.conns);
    let h2 = format!("h2, {} streams/1 conn", cfg.streams);
    let rows = [
        (format!("{h1}: constant"), r.h1.a),
        (format!("{h1}: /mutate/pod"), r.h1.b),
        (format!("{h2}: constant"), r.h2.a),
        (format!("{h2}: /mutate/pod"), r.h2.b),
        (format!("{h1}: mutate, 1 ns"), r.namespaces.a),
        (format!("{h1}: mutate, 10,000 ns"), r.namespaces.b),
    ];
    for (name, t) in &rows {
        let (rps, cpu) = (t.rps(), us(t.server_us()));
        let (server, client) = (pct(t.server_busy()), pct(t.client_busy()));
        println!("  {name:<38} {rps:>8.0} {cpu:>15} {server:>12} {client:>12}");
    }
    if !rows
        .iter()
        .all(|(_, t)| t.server_busy().is_none_or(|b| b >= 0.9))
    {
        println!("  note: the server core was under 90 % busy in some runs (the client on the");
        println!("  other core was the limit); the CPU-per-request ratios below are what a");
        println!("  saturated server core would give.");
    }
    println!(
        "  each pair measured in {} alternating slices; \"pair spread\" below is the middle half",
        r.h1.pairs() * 2
    );
    println!("  of the figure over adjacent slice pairs: the noise of the run");

    let lat = &r.latency;
    println!();
    println!(
        "open-loop latency, HTTP/1.1 /mutate/pod at {} req/s: {} answers in {:.1} s \
         (pacer p99 late {})",
        cfg.rate,
        lat.total.len(),
        lat.wall.as_secs_f64(),
        ms(load::quantile(&lat.pacer_late, 0.99))
    );

    // Ratios of totals over the interleaved slices; the spread column is the interquartile
    // range of the same ratio over adjacent slice pairs, i.e. the run's noise.
    let rps = |a: &Tally, b: &Tally| Some(b.rps() / a.rps().max(1e-9));
    let cpu = |a: &Tally, b: &Tally| Some(a.server_us()? / b.server_us()?);
    let growth = |a: &Tally, b: &Tally| Some(b.server_us()? / a.server_us()? - 1.0);
    let spread = |c: &Comparison, f: &dyn Fn(&Tally, &Tally) -> Option<f64>, signed: bool| {
        c.spread(f).map_or(String::new(), |(lo, hi)| {
            let (lo, hi) = (lo * 100.0, hi * 100.0);
            if signed {
                format!("{lo:+.0}..{hi:+.0} %")
            } else {
                format!("{lo:.0}..{hi:.0} %")
            }
        })
    };
    let p99 = load::quantile(&lat.total, 0.99);
    let ns = &r.namespaces;
    let ns_growth = growth(&ns.a, &ns.b)
        .or_else(|| Some(ns.a.rps() / ns.b.rps().max(1e-9) - 1.0))
        .unwrap_or(f64::NAN);
    let ratio_target = format!(">= {:.0} %", MIN_RATIO * 100.0);
    let ratio_row = |name: &str, c: &Comparison| {
        let x = rps(&c.a, &c.b).unwrap_or(0.0);
        let (target, result) = (ratio_target.clone(), verdict(x >= MIN_RATIO).into());
        [
            name.into(),
            pct(Some(x)),
            spread(c, &rps, false),
            target,
            result,
        ]
    };
    let cpu_row = |name: &str, c: &Comparison| {
        let value = pct(cpu(&c.a, &c.b));
        [
            name.into(),
            value,
            spread(c, &cpu, false),
            String::new(),
            String::new(),
        ]
    };
    let info = |name: &str, value: String| {
        [
            name.into(),
            value,
            String::new(),
            String::new(),
            String::new(),
        ]
    };
    let req_s = |t: &Tally| format!("{:.0}", t.rps());
    let max = lat.total.last().copied().unwrap_or_default();
    let table: Vec<[String; 5]> = vec![
        info("HTTP/1.1 constant answer, req/s", req_s(&r.h1.a)),
        info("HTTP/1.1 /mutate/pod, req/s", req_s(&r.h1.b)),
        ratio_row("HTTP/1.1 mutate / constant, throughput", &r.h1),
        cpu_row("HTTP/1.1 mutate / constant, server CPU per req", &r.h1),
        info("h2 constant answer, req/s", req_s(&r.h2.a)),
        info("h2 /mutate/pod, req/s", req_s(&r.h2.b)),
        ratio_row("h2 mutate / constant, throughput", &r.h2),
        cpu_row("h2 mutate / constant, server CPU per req", &r.h2),
        info(
            "latency p50 at 1,000 req/s (HTTP/1.1)",
            ms(load::quantile(&lat.total, 0.5)),
        ),
        [
            "latency p99 at 1,000 req/s (HTTP/1.1)".into(),
            ms(p99),
            String::new(),
            format!("<= {}", ms(MAX_P99)),
            verdict(p99 <= MAX_P99).into(),
        ],
        info("latency max at 1,000 req/s (HTTP/1.1)", ms(max)),
        info("mutate with 1 namespace, req/s", req_s(&ns.a)),
        info("mutate with 10,000 namespaces, req/s", req_s(&ns.b)),
        [
            "10,000 / 1 namespaces, throughput".into(),
            pct(rps(&ns.a, &ns.b)),
            spread(ns, &rps, false),
            String::new(),
            String::new(),
        ],
        [
            "cost growth 1 -> 10,000 ns (server CPU per req)".into(),
            format!("{:+.1} %", ns_growth * 100.0),
            spread(ns, &growth, true),
            format!("<= {:.0} %", MAX_GROWTH * 100.0),
            verdict(ns_growth <= MAX_GROWTH).into(),
        ],
    ];
    println!();
    println!(
        "{:<50} {:>11} {:>13} {:>12} {:>6}",
        "summary", "value", "pair spread", "target", ""
    );
    for [name, value, spread, target, result] in &table {
        println!("  {name:<48} {value:>11} {spread:>13} {target:>12} {result:>6}");
    }
    println!();
    println!("benchmark wall time: {:.1} s", took.as_secs_f64());
}
