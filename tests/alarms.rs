//! The alarm queue, supervision and the live feed end to end (issue #5): scripted frames over
//! real sockets to a real `vakt serve`, checked through the HTTP API, on SQLite and
//! PostgreSQL; two nodes on one PostgreSQL database.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vakt_protocol::dc09::TokenKind;

on_both_databases!(
    burglary_cancel_take_resolve,
    fire_reorders_the_queue_and_duress_is_no_opening,
    heartbeat_loss_fails_and_traffic_restores,
    live_feed_streams_events_and_alarm_changes,
    many_sites_open_alarms_at_once,
    a_busy_station_writes_every_sites_last_seen,
);

/// A site supervised every 2 s, checked every 100 ms with no grace (only in the supervision
/// tests: elsewhere its failure would enter the queue the tests check).
const SUPERVISED: &str = "5A5A";

fn config(db_url: &str) -> String {
    format!(
        "{}\n[supervision]\ncheck_every_ms = 100\ngrace_secs = 0\n",
        base_config(db_url)
    )
}

fn supervised_config(db_url: &str) -> String {
    format!(
        "{}\n[[site]]\naccount = \"{SUPERVISED}\"\nname = \"supervised\"\nsupervision_secs = 2\n",
        config(db_url)
    )
}

async fn send(gw: &Gateway, account: &str, token: TokenKind<'_>, seq: &str, data: &str) {
    let f = frame(token, seq, account, data);
    let a = ask_once(gw.tcp, &f).await.expect("an answer");
    assert!(show(&a).contains("\"ACK\""), "{data}: {}", show(&a));
}

async fn cid(gw: &Gateway, account: &str, seq: &str, data: &str) {
    send(gw, account, TokenKind::AdmCid, seq, data).await
}

async fn queue(gw: &Gateway) -> Vec<Value> {
    gw.json("/api/alarms?state=open").await["alarms"]
        .as_array()
        .unwrap()
        .clone()
}

async fn burglary_cancel_take_resolve(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &config(&db.url));
    assert!(queue(&gw).await.is_empty());

    // A burglary, and a second zone a moment later: one incident, one alarm.
    cid(&gw, PLAIN, "0001", "#1234|1130 01 003").await;
    cid(&gw, PLAIN, "0002", "#1234|1130 01 004").await;
    let q = queue(&gw).await;
    assert_eq!(q.len(), 1, "{q:?}");
    let a = &q[0];
    assert_eq!(a["account"], PLAIN);
    assert_eq!(a["site_name"], "plain");
    assert_eq!(a["category"], "burglary");
    assert_eq!(a["priority"], 4);
    assert_eq!(a["state"], "new");
    assert_eq!(a["zone"], "003");
    assert_eq!(a["cancelled_at_panel"], Value::Null);
    let id = a["id"].as_i64().unwrap();

    // The user cancels at the keypad: marked, still in the queue for an operator.
    cid(&gw, PLAIN, "0003", "#1234|1406 01 005").await;
    let q = queue(&gw).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["cancelled_at_panel"]["user"], "5", "{q:?}");
    assert_eq!(q[0]["state"], "new");
    let site = gw.json(&format!("/api/sites/{PLAIN}")).await;
    assert_eq!(site["open_alarms"].as_array().unwrap().len(), 1, "{site}");
    // Last-seen times are written once a check period (100 ms here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let site = gw.json(&format!("/api/sites/{PLAIN}")).await;
    assert!(site["last_seen"].is_string(), "{site}");
    assert_eq!(site["supervision"]["state"], "unsupervised");

    // Resolving before taking, taking twice, bad bodies, no token: refused with a reason.
    // Who acts is the holder of the token.
    let (anna, bob) = (
        gw.add_operator("anna", "operator"),
        gw.add_operator("bob", "operator"),
    );
    let path = |what: &str| format!("/api/alarms/{id}/{what}");
    let (st, v) = gw
        .post_as(&anna, &path("resolve"), json!({"outcome": "test"}))
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("take it"), "{v}");
    let (st, body) = http_send(gw.http, "POST", &path("take"), "{}").await;
    assert_eq!(st, 401, "{body}");
    let (st, v) = gw.post_as(&anna, &path("take"), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "taken");
    assert_eq!(v["taken_by"], "anna");
    let (st, _) = gw.post_as(&anna, &path("take"), json!({})).await;
    assert_eq!(st, 200, "taking one's own alarm again is harmless");
    let (st, v) = gw.post_as(&bob, &path("take"), json!({})).await;
    assert_eq!(st, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("anna"), "{v}");
    let (st, v) = gw
        .post_as(&anna, &path("resolve"), json!({"outcome": "lunch"}))
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("dispatched"), "{v}");
    let (st, body) =
        http_request(gw.http, "POST", &path("resolve"), "{not json", Some(&anna)).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"error\""), "{body}");

    let (st, v) = gw
        .post_as(
            &anna,
            &path("resolve"),
            json!({"outcome": "false_alarm", "note": "owner called, cat"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(v["outcome"], "false_alarm");
    assert_eq!(v["resolved_by"], "anna");
    assert!(queue(&gw).await.is_empty());
    let (st, _) = gw
        .post_as(&anna, &path("resolve"), json!({"outcome": "test"}))
        .await;
    assert_eq!(st, 409);

    // The history: every step timestamped and attributed.
    let full = gw.json(&format!("/api/alarms/{id}")).await;
    let steps: Vec<(&str, &str)> = full["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap(), c["by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("opened", "panel"),
            ("cancelled_at_panel", "panel"),
            ("taken", "anna"),
            ("resolved", "anna")
        ],
        "{full}"
    );
    assert!(full["changes"][3]["detail"]
        .as_str()
        .unwrap()
        .contains("owner called"));
    // And in the audit log, by the same names.
    let audit = gw.json(&format!("/api/audit?account={PLAIN}")).await;
    let actions: Vec<(&str, &str)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("resolve", "anna"), ("take", "anna")], "{audit}");

    // A retransmission of the alarm frame is a duplicate: it changes nothing.
    cid(&gw, PLAIN, "0002", "#1234|1130 01 004").await;
    assert!(queue(&gw).await.is_empty(), "a duplicate reopened an alarm");
    let resolved = gw.json("/api/alarms?state=resolved").await;
    assert_eq!(resolved["alarms"].as_array().unwrap().len(), 1);

    // A new burglary after resolution is a new alarm.
    cid(&gw, PLAIN, "0004", "#1234|1130 01 003").await;
    let q = queue(&gw).await;
    assert_eq!(q.len(), 1);
    assert_ne!(q[0]["id"].as_i64().unwrap(), id);

    // Errors are JSON with a reason and the right status.
    let (st, body) = gw.get("/api/alarms/999999").await;
    assert_eq!(st, 404, "{body}");
    assert!(body.contains("no alarm"), "{body}");
    let (st, body) = gw.get("/api/alarms/abc").await;
    assert_eq!(st, 400, "{body}");
    let (st, body) = gw.get("/api/alarms?state=sleeping").await;
    assert_eq!(st, 400, "{body}");
    let (st, v) = gw.post("/api/alarms/999999/take", json!({})).await;
    assert_eq!(st, 404, "{v}");
}

async fn fire_reorders_the_queue_and_duress_is_no_opening(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &config(&db.url));
    // Two burglaries: the older first.
    cid(&gw, PLAIN, "0001", "#1234|1130 01 001").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    cid(&gw, PLAIN2, "0001", "#ABC123|1130 01 001").await;
    let order = |q: &[Value]| -> Vec<(String, String)> {
        q.iter()
            .map(|a| {
                (
                    a["account"].as_str().unwrap().to_owned(),
                    a["category"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let q = queue(&gw).await;
    assert_eq!(
        order(&q),
        [
            (PLAIN.into(), "burglary".into()),
            (PLAIN2.into(), "burglary".into())
        ]
    );
    let second = q[1]["id"].clone();

    // Fire during the second site's burglary: that alarm is raised and goes first.
    send(&gw, PLAIN2, TokenKind::SiaDcs, "0002", "#ABC123|Nri1/FA12").await;
    let q = queue(&gw).await;
    assert_eq!(
        order(&q),
        [
            (PLAIN2.into(), "fire".into()),
            (PLAIN.into(), "burglary".into())
        ],
        "{q:?}"
    );
    assert_eq!(q[0]["id"], second, "the same alarm, raised");
    assert_eq!(q[0]["priority"], 1);
    assert_eq!(q[0]["code"], "FA");
    let full = gw.json(&format!("/api/alarms/{second}")).await;
    assert_eq!(full["changes"][1]["change"], "escalated", "{full}");

    // A lower priority event joins without lowering it.
    cid(&gw, PLAIN2, "0003", "#ABC123|1137 01 002").await;
    assert_eq!(queue(&gw).await[0]["category"], "fire");

    // Duress on a third site: first-priority alarm, and the partition is not shown disarmed.
    cid(&gw, HEXSEQ, "0001", "#4321|3401 01 002").await;
    cid(&gw, HEXSEQ, "0002", "#4321|1121 01 002").await;
    let q = queue(&gw).await;
    let duress = q
        .iter()
        .find(|a| a["account"] == HEXSEQ)
        .expect("duress alarm");
    assert_eq!(duress["category"], "duress");
    assert_eq!(duress["priority"], 1);
    let site = gw.json(&format!("/api/sites/{HEXSEQ}")).await;
    assert_eq!(site["partitions"][0]["arming"], "armed_away", "{site}");
    // Fire (older) before duress (newer) at equal priority; burglary last.
    let cats: Vec<&str> = q.iter().map(|a| a["category"].as_str().unwrap()).collect();
    assert_eq!(cats, ["fire", "duress", "burglary"]);
}

async fn supervision_of(gw: &Gateway, account: &str) -> Value {
    gw.json(&format!("/api/sites/{account}")).await
}

async fn wait_for_state(gw: &Gateway, account: &str, state: &str, wait: Duration) -> Value {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let s = supervision_of(gw, account).await;
        if s["supervision"]["state"] == state {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "supervision never became {state}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn null(gw: &Gateway, account: &str, seq: &str) {
    send(gw, account, TokenKind::Null, seq, "").await
}

async fn heartbeat_loss_fails_and_traffic_restores(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &supervised_config(&db.url));
    // Heartbeats every 0.5 s for 3 s (longer than the 2 s interval): no failure.
    for i in 0..6 {
        null(&gw, SUPERVISED, &format!("{:04}", i + 1)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = supervision_of(&gw, SUPERVISED).await;
        assert_eq!(s["supervision"]["state"], "ok", "{s}");
    }
    assert!(supervision_of(&gw, SUPERVISED).await["last_seen"].is_string());

    // Silence: the failure is raised once, as a YC event and a supervision alarm.
    let s = wait_for_state(&gw, SUPERVISED, "failed", Duration::from_secs(10)).await;
    assert!(s["supervision"]["failed_since"].is_string(), "{s}");
    let alarms = s["open_alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{s}");
    assert_eq!(alarms[0]["category"], "supervision");
    assert_eq!(alarms[0]["priority"], 7);
    assert_eq!(alarms[0]["code"], "YC");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let yc: Vec<Value> = gw
        .events(SUPERVISED)
        .await
        .into_iter()
        .filter(|e| e["code"] == "YC")
        .collect();
    assert_eq!(yc.len(), 1, "raised once: {yc:?}");
    assert_eq!(yc[0]["transport"], "internal");

    // Traffic resumes: YK stored, supervision ok, the alarm marked restored (still open).
    null(&gw, SUPERVISED, "0010").await;
    let s = wait_for_state(&gw, SUPERVISED, "ok", Duration::from_secs(5)).await;
    assert!(s["supervision"]["restored_at"].is_string(), "{s}");
    let events = gw.events(SUPERVISED).await;
    assert_eq!(events.iter().filter(|e| e["code"] == "YK").count(), 1);
    let alarms = s["open_alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1);
    assert!(alarms[0]["restored_at"].is_string(), "{s}");
    assert_eq!(
        gw.metric("vakt_supervision_failures_total").await,
        Some(1.0)
    );
    // Unsupervised sites never fail.
    assert_eq!(
        supervision_of(&gw, PLAIN).await["supervision"]["state"],
        "unsupervised"
    );
}

async fn live_feed_streams_events_and_alarm_changes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut gw = Gateway::start(&db.scratch.0, &config(&db.url));
    let mut feed = SseClient::connect(gw.http, "/api/stream", &gw.token).await;
    // The feed starts from what is newest when the first client arrives; give it a poll.
    tokio::time::sleep(Duration::from_millis(600)).await;
    cid(&gw, PLAIN, "0001", "#1234|1110 01 009").await;
    let wait = Duration::from_secs(10);
    let e = feed
        .wait_for("event", wait, |d| d["account"] == PLAIN)
        .await
        .expect("the event on the feed");
    assert_eq!(e["code"], "110");
    assert_eq!(e["kind"], "fire");
    let a = feed
        .wait_for("alarm", wait, |d| d["change"]["change"] == "opened")
        .await
        .expect("the alarm on the feed");
    assert_eq!(a["alarm"]["category"], "fire");
    let id = a["alarm"]["id"].as_i64().unwrap();
    let eva = gw.add_operator("eva", "operator");
    gw.post_as(&eva, &format!("/api/alarms/{id}/take"), json!({}))
        .await;
    let t = feed
        .wait_for("alarm", wait, |d| d["change"]["change"] == "taken")
        .await
        .expect("the take on the feed");
    assert_eq!(t["change"]["by"], "eva");
    assert_eq!(t["alarm"]["state"], "taken");
    // An open feed does not hold up shutdown.
    let started = std::time::Instant::now();
    assert!(gw.signal("TERM").success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// More supervised sites than one commit writes last-seen times for (64), all talking while
/// frames keep coming: the supervision step goes in pieces with the frames' commits, its
/// check after its last piece, and still every site's time is written and none is claimed.
async fn a_busy_station_writes_every_sites_last_seen(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let accounts: Vec<String> = (0..150).map(|i| format!("7{i:03}")).collect();
    let mut cfg = config(&db.url);
    for a in &accounts {
        cfg.push_str(&format!(
            "\n[[site]]\naccount = \"{a}\"\nsupervision_secs = 4\n"
        ));
    }
    let gw = Gateway::start(&db.scratch.0, &cfg);
    // Periodic test reports (Contact ID 602): stored, so each frame is a commit that a piece
    // of the step goes with; the step falls due every 100 ms meanwhile.
    for round in 1..=3 {
        for a in &accounts {
            cid(&gw, a, &format!("{round:04}"), &format!("#{a}|1602 00 000")).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for a in &accounts {
        let s = supervision_of(&gw, a).await;
        assert_eq!(s["supervision"]["state"], "ok", "{a}: {s}");
        assert!(s["last_seen"].is_string(), "{a}: {s}");
    }
    assert_eq!(
        gw.metric("vakt_supervision_failures_total")
            .await
            .unwrap_or(0.0),
        0.0
    );
}

/// Two vakt processes on one PostgreSQL database: the same state on both, and a site's
/// supervision failure raised once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_state_and_raise_a_failure_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let a = Gateway::start(&db.scratch.0, &supervised_config(&db.url));
    let b = Gateway::start(&db.scratch.0, &supervised_config(&db.url));
    let mut feed_b = SseClient::connect(b.http, "/api/stream", &b.token).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Events into node A, state read from node B.
    cid(&a, PLAIN, "0001", "#1234|1131 01 015").await;
    cid(&a, PLAIN, "0002", "#1234|3401 01 007").await;
    let (sa, sb) = (
        a.json(&format!("/api/sites/{PLAIN}")).await,
        b.json(&format!("/api/sites/{PLAIN}")).await,
    );
    assert_eq!(sa["partitions"], sb["partitions"]);
    assert_eq!(sa["zones"], sb["zones"]);
    assert_eq!(sb["partitions"][0]["ready"], false, "{sb}");
    // (The supervised site may already have failed: only the burglary is compared.)
    let plain =
        |q: Vec<Value>| -> Vec<Value> { q.into_iter().filter(|x| x["account"] == PLAIN).collect() };
    assert_eq!(plain(queue(&a).await), plain(queue(&b).await));
    assert_eq!(plain(queue(&b).await).len(), 1);
    let seen = feed_b
        .wait_for("event", Duration::from_secs(10), |d| d["code"] == "131")
        .await;
    assert!(seen.is_some(), "node B's feed shows node A's event");

    // Node B takes the alarm; node A cannot.
    let id = plain(queue(&a).await)[0]["id"].as_i64().unwrap();
    // (Operators are shared too: one added through node A works on node B.)
    let (anna, bob) = (
        a.add_operator("anna", "operator"),
        a.add_operator("bob", "operator"),
    );
    let (st, _) = b
        .post_as(&anna, &format!("/api/alarms/{id}/take"), json!({}))
        .await;
    assert_eq!(st, 200);
    let (st, _) = a
        .post_as(&bob, &format!("/api/alarms/{id}/take"), json!({}))
        .await;
    assert_eq!(st, 409);

    // The supervised site talks to both, then goes quiet: one failure between the two.
    null(&a, SUPERVISED, "0001").await;
    null(&b, SUPERVISED, "0002").await;
    wait_for_state(&a, SUPERVISED, "failed", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let yc = a
        .events(SUPERVISED)
        .await
        .into_iter()
        .filter(|e| e["code"] == "YC")
        .count();
    assert_eq!(yc, 1, "exactly one node raised the failure");
    let raised = a
        .metric("vakt_supervision_failures_total")
        .await
        .unwrap_or(0.0)
        + b.metric("vakt_supervision_failures_total")
            .await
            .unwrap_or(0.0);
    assert_eq!(raised, 1.0);
    let open: Vec<Value> = queue(&b)
        .await
        .into_iter()
        .filter(|x| x["account"] == SUPERVISED)
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");
}

/// PostgreSQL: a batch that only adds events and zones and joins an alarm the writer knows to
/// be open commits in one statement (src/store/pg_batch.rs). Once an operator has moved the
/// queue (the alarm epoch), that statement is refused whole and the batch goes the
/// transaction's way, which sees the alarm resolved and opens a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_batch_commits_in_one_trip_until_an_operator_moves_the_queue() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // No supervision step while the frames arrive: a commit carrying one takes the
    // transaction's way whatever its frames.
    let gw = Gateway::start(
        &db.scratch.0,
        &format!(
            "{}\n[supervision]\ncheck_every_ms = 60000\n",
            base_config(&db.url)
        ),
    );
    let one_trip = |outcome: &'static str| {
        let gw = &gw;
        async move {
            gw.metric(&format!(
                "vakt_pg_one_trip_commits_total{{outcome=\"{outcome}\"}}"
            ))
            .await
            .unwrap_or(0.0)
        }
    };
    let open_zones = || async {
        let site = gw.json(&format!("/api/sites/{PLAIN}")).await;
        let mut zones: Vec<String> = site["zones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z["zone"].as_str().unwrap().to_owned())
            .collect();
        zones.sort();
        zones
    };

    // The first burglary opens an alarm: statements, in a transaction.
    cid(&gw, PLAIN, "0001", "#1234|1130 01 003").await;
    assert_eq!(one_trip("committed").await, 0.0);
    // A second zone joins it: one trip, with its zone.
    cid(&gw, PLAIN, "0002", "#1234|1130 01 004").await;
    assert_eq!(one_trip("committed").await, 1.0);
    assert_eq!(one_trip("refused").await, 0.0);
    let q = queue(&gw).await;
    assert_eq!(q.len(), 1, "{q:?}");
    let first = q[0]["id"].as_i64().unwrap();
    assert_eq!(open_zones().await, ["3", "4"]);
    assert_eq!(gw.events(PLAIN).await.len(), 2);

    // An operator takes and resolves it: the writer's cache still says open.
    let anna = gw.add_operator("anna", "operator");
    let (st, v) = gw
        .post_as(&anna, &format!("/api/alarms/{first}/take"), json!({}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = gw
        .post_as(
            &anna,
            &format!("/api/alarms/{first}/resolve"),
            json!({"outcome": "false_alarm", "note": "test"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // The next burglary would join it by the cache: refused, then a new alarm.
    cid(&gw, PLAIN, "0003", "#1234|1130 01 005").await;
    assert_eq!(one_trip("refused").await, 1.0);
    let q = queue(&gw).await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_ne!(q[0]["id"].as_i64().unwrap(), first, "{q:?}");
    assert_eq!(q[0]["zone"], "005");
    assert_eq!(open_zones().await, ["3", "4", "5"]);
    assert_eq!(gw.events(PLAIN).await.len(), 3, "stored once");

    // Joining the new alarm goes in one trip again.
    cid(&gw, PLAIN, "0004", "#1234|1130 01 006").await;
    assert_eq!(one_trip("committed").await, 2.0);
    assert_eq!(queue(&gw).await.len(), 1);
    assert_eq!(gw.events(PLAIN).await.len(), 4);
}

/// Forty sites alarm at the same moment: the writer opens their alarms together (one INSERT
/// for the batch); each gets its own alarm, with its own zone and its `opened` step.
async fn many_sites_open_alarms_at_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let accounts: Vec<String> = (0..40).map(|i| format!("{:04X}", 0xB000 + i)).collect();
    let mut text = config(&db.url);
    for a in &accounts {
        text.push_str(&format!("\n[[site]]\naccount = \"{a}\"\n"));
    }
    let gw = Gateway::start(&db.scratch.0, &text);
    let sends = accounts.iter().enumerate().map(|(i, a)| {
        let f = frame(
            TokenKind::AdmCid,
            "0001",
            a,
            &format!("#{a}|1130 01 {:03}", i + 1),
        );
        let addr = gw.tcp;
        async move { ask_once(addr, &f).await }
    });
    for answer in futures_util::future::join_all(sends).await {
        assert!(show(&answer.expect("an answer")).contains("\"ACK\""));
    }
    let q = queue(&gw).await;
    assert_eq!(q.len(), accounts.len(), "{q:?}");
    for (i, a) in accounts.iter().enumerate() {
        let alarm = q
            .iter()
            .find(|x| x["account"] == a.as_str())
            .unwrap_or_else(|| panic!("no alarm for {a}"));
        assert_eq!(alarm["zone"], format!("{:03}", i + 1), "{alarm}");
        assert_eq!(alarm["category"], "burglary");
        let full = gw.json(&format!("/api/alarms/{}", alarm["id"])).await;
        let changes = full["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{full}");
        assert_eq!(changes[0]["change"], "opened");
        assert_eq!(changes[0]["alarm_id"], alarm["id"]);
    }
}
