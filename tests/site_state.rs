//! Site state end to end (issue #5, first part): scripted frames over a real socket to a real
//! `vakt serve`, the state checked through `GET /api/sites/{account}`, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use common::*;
use vakt_protocol::dc09::TokenKind;

on_both_databases!(arming_zones_and_not_ready);
on_both_databases!(a_zone_reported_twice_in_one_frame);

async fn send(gw: &Gateway, token: TokenKind<'_>, seq: &str, data: &str) {
    let f = frame(token, seq, PLAIN, data);
    let a = ask_once(gw.tcp, &f).await.expect("an answer");
    assert!(show(&a).contains("\"ACK\""), "{data}: {}", show(&a));
}

/// `GET /api/sites/{account}` of the test site.
async fn site(gw: &Gateway) -> serde_json::Value {
    let path = format!("/api/sites/{PLAIN}");
    let (status, body) = http_request(gw.http, "GET", &path, "", Some(&gw.token)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The entry of `list` (`partitions`, `zones`) whose `key` is `name`.
fn entry<'a>(
    site: &'a serde_json::Value,
    list: &str,
    key: &str,
    name: &str,
) -> &'a serde_json::Value {
    site[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[key] == name)
        .unwrap_or_else(|| panic!("no {key} {name}: {site}"))
}

/// The test site's zone `name`, as `GET /api/sites/{account}` gives it now.
async fn zone(gw: &Gateway, name: &str) -> serde_json::Value {
    entry(&site(gw).await, "zones", "zone", name).clone()
}

fn partition<'a>(site: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    entry(site, "partitions", "partition", name)
}

async fn arming_zones_and_not_ready(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));

    // A door (zone 15) in alarm, then the user arms partition 1 anyway.
    send(&gw, TokenKind::AdmCid, "0001", "#1234|1131 01 015").await;
    send(&gw, TokenKind::AdmCid, "0002", "#1234|3401 01 007").await;
    let s = site(&gw).await;
    let p1 = partition(&s, "1");
    assert_eq!(p1["arming"], "armed_away", "{s}");
    assert_eq!(p1["user"], "7");
    assert_eq!(p1["ready"], false);
    let reasons = p1["not_ready_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{s}");
    assert_eq!(reasons[0]["zone"], "15");
    assert_eq!(reasons[0]["state"], "alarm");
    assert_eq!(reasons[0]["code"], "131");
    assert!(reasons[0]["event"]["frame_ref"].is_string());

    // The zone restores (reported in SIA, zone written without zeros): ready again.
    send(&gw, TokenKind::SiaDcs, "0003", "#1234|Nri1/BR15").await;
    let s = site(&gw).await;
    assert_eq!(partition(&s, "1")["ready"], true, "{s}");

    // Partition 2: fail to arm with a forced point, a zone in alarm that is then bypassed.
    send(&gw, TokenKind::SiaDcs, "0004", "#1234|Nri2/CI3/XW5/BA9").await;
    let s = site(&gw).await;
    let p2 = partition(&s, "2");
    assert_eq!(p2["ready"], false);
    assert_eq!(p2["arming"], "unknown");
    let episodes = s["not_ready_episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 2, "{s}");
    assert_eq!(episodes[0]["reason"], "forced_point");
    assert_eq!(episodes[0]["zone"], "5");
    assert_eq!(episodes[1]["reason"], "fail_to_arm");
    send(&gw, TokenKind::SiaDcs, "0005", "#1234|Nri2/BB9/NL3").await;
    let s = site(&gw).await;
    let p2 = partition(&s, "2");
    assert_eq!(p2["ready"], true, "a bypassed zone does not block: {s}");
    assert_eq!(p2["arming"], "armed_stay");
    assert_eq!(entry(&s, "zones", "zone", "9")["state"], "bypassed");

    // A retransmission of a stored frame does not change state twice.
    send(&gw, TokenKind::SiaDcs, "0004", "#1234|Nri2/CI3/XW5/BA9").await;
    let s = site(&gw).await;
    assert_eq!(s["not_ready_episodes"].as_array().unwrap().len(), 2, "{s}");
    assert_eq!(partition(&s, "2")["ready"], true, "{s}");

    // Disarm.
    send(&gw, TokenKind::AdmCid, "0006", "#1234|1401 01 007").await;
    assert_eq!(partition(&site(&gw).await, "1")["arming"], "disarmed");
}

/// One frame can report a zone twice (SIA-DCS blocks). The state must be what the events give
/// one by one: the zone's event is the one that entered its last state.
async fn a_zone_reported_twice_in_one_frame(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    // Zone 5 in alarm; then one frame: restored and in alarm again. The zone is in alarm
    // since the second frame's alarm (its second event), not the first frame's.
    send(&gw, TokenKind::SiaDcs, "0001", "#1234|Nri1/BA5").await;
    let first = zone(&gw, "5").await;
    assert_eq!(first["state"], "alarm");
    send(&gw, TokenKind::SiaDcs, "0002", "#1234|Nri1/BR5/BA5").await;
    let again = zone(&gw, "5").await;
    assert_eq!(again["state"], "alarm", "{again}");
    assert_ne!(
        again["event"]["frame_ref"], first["event"]["frame_ref"],
        "{again}"
    );
    assert_eq!(again["event"]["seq_in_frame"], 1, "{again}");

    // Zone 6 reported in alarm twice in one frame: the first report entered the state.
    send(&gw, TokenKind::SiaDcs, "0003", "#1234|Nri1/BA6/BA6").await;
    let z6 = zone(&gw, "6").await;
    assert_eq!(z6["state"], "alarm");
    assert_eq!(z6["event"]["seq_in_frame"], 0, "{z6}");
}
