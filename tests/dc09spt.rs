//! A real third-party DC-09 transmitter, dc09-spt (PyPI), against a running gateway.
//!
//! Needs `VAKT_DC09SPT_PYTHON`: a Python with dc09-spt installed (`.ci/run` makes a
//! virtualenv with `pip install --no-deps dc09-spt`). Without it the test says it was skipped,
//! unless `VAKT_REQUIRE_DC09SPT` is set (CI), where that is a failure.

mod common;

use std::process::Command;

use common::*;

fn python() -> Option<String> {
    match std::env::var("VAKT_DC09SPT_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("VAKT_REQUIRE_DC09SPT").is_some() => {
            panic!("VAKT_REQUIRE_DC09SPT is set but VAKT_DC09SPT_PYTHON is not")
        }
        Err(_) => {
            eprintln!("SKIPPED: dc09-spt test; set VAKT_DC09SPT_PYTHON to a python with dc09-spt installed (.ci/run does)");
            None
        }
    }
}

/// Runs dc09-spt; returns whether it reports every event acknowledged.
fn send(
    py: &str,
    gw: &Gateway,
    kind: &str,
    account: &str,
    count: u32,
    timeout_s: u32,
    first_zone: u32,
) -> bool {
    let port = if kind == "tcp" {
        gw.tcp.port()
    } else {
        gw.udp.port()
    };
    let out = Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/dc09spt/send.py"
        ))
        .args(["127.0.0.1", &port.to_string(), account, kind])
        .args([count, timeout_s, first_zone].map(|n| n.to_string()))
        .output()
        .expect("run dc09-spt driver");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("dc09-spt {kind} {account}: {stdout}");
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("dc09-spt driver failed: {out:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dc09spt_events_arrive() {
    let Some(py) = python() else { return };
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));

    // The site set up for dc09-spt (hex-sequence quirk): 12 events over TCP, so the sequence
    // runs past 0009 into dc09-spt's hex 000A..000C, all acknowledged and decoded.
    assert!(send(&py, &gw, "tcp", HEXSEQ, 12, 30, 1), "{}", gw.log());
    let e = gw.events(HEXSEQ).await;
    assert_eq!(e.len(), 12, "{e:#?}");
    let mut seqs: Vec<_> = e
        .iter()
        .map(|x| x["sequence"].as_str().unwrap().to_owned())
        .collect();
    seqs.sort();
    assert_eq!(seqs[9..], ["000A", "000B", "000C"]);
    for x in &e {
        assert_eq!(x["outcome"], "ack");
        let zone: u32 = x["zone"].as_str().unwrap().parse().unwrap();
        match x["token"].as_str().unwrap() {
            "ADM-CID" => assert_eq!((x["code"].as_str(), zone % 2), (Some("131"), 1)),
            "SIA-DCS" => assert_eq!((x["code"].as_str(), zone % 2), (Some("FA"), 0)),
            t => panic!("token {t}"),
        }
    }
    // UDP.
    assert!(send(&py, &gw, "udp", HEXSEQ, 3, 30, 101));
    let e = gw.events(HEXSEQ).await;
    assert_eq!(e.len(), 15);
    assert!(e[..3].iter().all(|x| x["transport"] == "udp"));

    // A strict site: message 10 goes out as 000A, which is not a DC-09 sequence. vakt stores
    // the raw frame and answers DUH; dc09-spt (against the standard) keeps re-sending it, and
    // the re-sends are recognised as the same frame and stored once.
    assert!(
        !send(&py, &gw, "tcp", PLAIN, 10, 8, 1),
        "message 10 must not be acknowledged"
    );
    let e = gw.events(PLAIN).await;
    assert_eq!(e.len(), 10, "{e:#?}");
    assert_eq!(e[0]["sequence"], "000A");
    assert_eq!(e[0]["outcome"], "duh");
    assert!(e[0]["raw"]
        .as_str()
        .unwrap()
        .contains("\"SIA-DCS\"000AL0#1234"));
    assert!(e[1..].iter().all(|x| x["outcome"] == "ack"));
    let (_, m) = gw.get("/metrics").await;
    let duh = m
        .lines()
        .find(|l| l.starts_with(r#"vakt_answers_total{answer="duh",reason="bad_sequence"}"#))
        .unwrap_or_else(|| panic!("no DUH counted:\n{m}"));
    let n: u64 = duh.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2, "dc09-spt re-sends after DUH: {duh}");
}
