//! The result of a run, as a table for people and JSON for scripts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::proc_stat::Usage;
use crate::stats::Stats;
use crate::Args;

/// One run's figures.
#[derive(Debug)]
pub(crate) struct Report {
    v: Value,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub(crate) fn new(
        label: &str,
        mode: &str,
        args: &Args,
        s: &Stats,
        elapsed: Duration,
        usage: Usage,
    ) -> Self {
        let secs = elapsed.as_secs_f64();
        let h = &s.histogram();
        let q = |p: f64| ms(h.value_at_quantile(p));
        let v = json!({
            "label": label,
            "mode": mode,
            "connections": args.connections,
            "accounts": args.accounts,
            "window": args.window,
            "rate": args.rate,
            "encrypted": args.key_hex.is_some(),
            "mix": args.mix,
            "seconds": secs,
            "sent": s.sent,
            "acks": s.acks,
            "acks_per_sec": s.acks as f64 / secs,
            "nonconformant_acks": s.loose_acks,
            "naks": s.naks,
            "duhs": s.duhs,
            "wrong": s.wrong,
            "timeouts": s.timeouts,
            "null_acks": s.acks_null,
            "null_timeouts": s.timeouts_null,
            "connect_errors": s.connect_errors,
            "io_errors": s.io_errors,
            "latency_ms": {
                "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p99_9": q(0.999),
                "max": ms(h.max()), "mean": h.mean() / 1000.0,
            },
            "written": s.write_histograms().map(|(from_write, late)| json!({
                "latency_from_write_ms": {
                    "p50": ms(from_write.value_at_quantile(0.5)),
                    "p99": ms(from_write.value_at_quantile(0.99)),
                    "p99_9": ms(from_write.value_at_quantile(0.999)),
                },
                "late_ms": {
                    "p50": ms(late.value_at_quantile(0.5)),
                    "p99": ms(late.value_at_quantile(0.99)),
                    "max": ms(late.max()),
                },
            })),
            "load_cpu_secs": usage.load_cpu,
            "receiver_cpu_secs": usage.target_cpu,
            "receiver_rss_mib": usage.target_rss_kib.map(|k| k as f64 / 1024.0),
            "receiver_peak_rss_mib": usage.target_peak_kib.map(|k| k as f64 / 1024.0),
        });
        Self { v }
    }

    pub(crate) fn json(&self) -> String {
        self.v.to_string()
    }

    pub(crate) fn table(&self) -> String {
        let v = &self.v;
        let l = &v["latency_ms"];
        let f = |x: &Value| x.as_f64().unwrap_or(0.0);
        let opt = |x: &Value, unit: &str| {
            x.as_f64()
                .map_or_else(|| "-".to_owned(), |n| format!("{n:.1}{unit}"))
        };
        let rate = v["rate"].as_f64().map_or_else(
            || "closed loop".to_owned(),
            |r| format!("open loop {r:.0}/s"),
        );
        let loose = match v["nonconformant_acks"].as_u64() {
            Some(0) | None => String::new(),
            Some(n) => format!(" ({n} of them not valid DC-09)"),
        };
        // Open loop: how much of the latency is this generator's own lateness in writing.
        let written = match &v["written"] {
            Value::Null => String::new(),
            w => format!(
                "written after due ms: p50 {:.2}  p99 {:.2}  max {:.2}; ack latency from the write ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}\n",
                f(&w["late_ms"]["p50"]),
                f(&w["late_ms"]["p99"]),
                f(&w["late_ms"]["max"]),
                f(&w["latency_from_write_ms"]["p50"]),
                f(&w["latency_from_write_ms"]["p99"]),
                f(&w["latency_from_write_ms"]["p99_9"]),
            ),
        };
        format!(
            "{label} {mode}: {c} connections, {a} accounts, window {w}, {rate}, mix {mix}{enc}\n\
             sent {sent}, acked {acks} in {secs:.2} s = {aps:.0} acks/s{loose}\n\
             not acked: nak {naks}, duh {duhs}, wrong {wrong}, timeout {to} (null {nto}), connect errors {ce}, io errors {ioe}\n\
             ack latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  p99.9 {p999:.2}  max {max:.2}\n\
             {written}\
             cpu: load generator {lcpu:.2} s, receiver {rcpu}; receiver rss {rss}, peak {peak}\n",
            label = v["label"].as_str().unwrap_or(""),
            mode = v["mode"].as_str().unwrap_or(""),
            c = v["connections"],
            a = v["accounts"],
            w = v["window"],
            mix = v["mix"].as_str().unwrap_or(""),
            enc = if v["encrypted"] == true { ", AES" } else { "" },
            sent = v["sent"],
            acks = v["acks"],
            secs = f(&v["seconds"]),
            aps = f(&v["acks_per_sec"]),
            naks = v["naks"],
            duhs = v["duhs"],
            wrong = v["wrong"],
            to = v["timeouts"],
            nto = v["null_timeouts"],
            ce = v["connect_errors"],
            ioe = v["io_errors"],
            p50 = f(&l["p50"]),
            p90 = f(&l["p90"]),
            p99 = f(&l["p99"]),
            p999 = f(&l["p99_9"]),
            max = f(&l["max"]),
            lcpu = f(&v["load_cpu_secs"]),
            rcpu = opt(&v["receiver_cpu_secs"], " s"),
            rss = opt(&v["receiver_rss_mib"], " MiB"),
            peak = opt(&v["receiver_peak_rss_mib"], " MiB"),
        )
    }
}
