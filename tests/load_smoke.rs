//! A few seconds of `vakt-load` against a real gateway, on both databases: every frame of
//! every mode (long-lived TCP with a window, one frame per connection, UDP, AES) must be
//! acknowledged, and every acknowledged event must be in the database. Not a speed test: the
//! full benchmark is `benches/gateway.sh`.

mod common;

use std::process::Command;

use common::*;

const KEY: &str = "30313233343536373839616263646566";

fn load(gw: &Gateway, target: std::net::SocketAddr, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vakt-load"))
        .args(["--target", &target.to_string(), "--json", "--require-all"])
        .args(["--accounts", "10", "--duration", "2"])
        .args(args)
        .output()
        .expect("run vakt-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vakt-load {args:?}: {:?}\n{stdout}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(v["sent"].as_u64().unwrap() > 0);
    assert_eq!(v["sent"], v["acks"], "{v}");
    v
}

async fn smoke(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let sites = Command::new(env!("CARGO_BIN_EXE_vakt-load"))
        .args(["--print-sites", "--accounts", "10", "--key-hex", KEY])
        .output()
        .unwrap();
    let config = base_config(&db.url) + &String::from_utf8_lossy(&sites.stdout);
    let gw = Gateway::start(&db.scratch.0, &config);
    let (tcp, udp) = (gw.tcp, gw.udp);
    let runs = [
        load(
            &gw,
            tcp,
            &["-c", "20", "-w", "4", "--mix", "cid=45,sia=45,null=10"],
        ),
        load(&gw, tcp, &["--mode", "tcp-per-frame", "-c", "5"]),
        load(&gw, udp, &["--mode", "udp", "-c", "10", "-w", "2"]),
        load(&gw, tcp, &["-c", "10", "--key-hex", KEY, "--rate", "500"]),
    ];
    // Open loop only: the ACKs' latencies from each frame's write, which can only be shorter
    // than those counted from when it was due (or written, if earlier), and how late the writes
    // were.
    assert!(runs[0]["written"].is_null(), "{}", runs[0]);
    let (paced, written) = (&runs[3]["latency_ms"], &runs[3]["written"]);
    for p in ["p50", "p99", "p99_9"] {
        let (from_write, from_due) = (
            written["latency_from_write_ms"][p].as_f64().unwrap(),
            paced[p].as_f64().unwrap(),
        );
        assert!(
            from_write > 0.0 && from_write <= from_due,
            "{p}: {}",
            runs[3]
        );
    }
    assert!(written["late_ms"]["max"].as_f64().unwrap() >= 0.0);
    let events: u64 = runs
        .iter()
        .map(|r| r["acks"].as_u64().unwrap() - r["null_acks"].as_u64().unwrap())
        .sum();
    let store = db.connect().await;
    assert_eq!(
        store.count_events().await.unwrap() as u64,
        events,
        "every acknowledged event is stored, once"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_acknowledged_and_stored_sqlite() {
    smoke(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_acknowledged_and_stored_postgres() {
    smoke(Backend::Postgres).await;
}
