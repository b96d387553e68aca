//! Serial input end to end: a real `vakt serve` reading pseudo-terminals that stand in for a
//! receiver's automation port (Sur-Gard packets) and a raw Contact ID line, on SQLite and
//! PostgreSQL. The test is the receiver: it writes packets and checks the ACK/NAK bytes, and
//! that an acknowledged packet is already in the database.

#[macro_use]
mod common;

use std::time::Duration;

use common::pty::{read_for, send, PtyPair};
use common::*;
use vakt_protocol::contact_id::{encode_dc05, Qualifier};

const ACK: u8 = 0x06;
const NAK: u8 = 0x15;
const ANSWER_WAIT: Duration = Duration::from_secs(5);
const NO_ANSWER_WAIT: Duration = Duration::from_millis(1000);

on_both_databases!(receiver_packets_stored_before_ack, raw_contact_id_lines);

fn serial_listener(name: &str, device: &std::path::Path, extra: &str) -> String {
    format!(
        "\n[[listener]]\nname = \"{name}\"\nkind = \"serial\"\ndevice = \"{}\"\n{extra}\n",
        device.display()
    )
}

async fn wait_for<F: Fn(&serde_json::Value) -> bool>(
    gw: &Gateway,
    path: &str,
    what: &str,
    ok: F,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = gw.json(path).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {v}\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn line<'a>(lines: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    lines["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["listener"] == name)
        .unwrap_or_else(|| panic!("no line {name} in {lines}"))
}

async fn metric(gw: &Gateway, name_and_labels: &str) -> f64 {
    gw.metric(name_and_labels).await.unwrap_or(0.0)
}

/// Sur-Gard packets (MLR2-E's 19200 7E1, line width 1): Contact ID, SIA with two events, a
/// heartbeat, unreadable packets, garbage, an over-long packet.
async fn receiver_packets_stored_before_ack(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let pty = PtyPair::new(&db.scratch.0, "mlr2");
    let config = base_config(&db.url)
        + &serial_listener(
            "mlr2",
            &pty.device,
            "format = \"surgard\"\nbaud = 19200\ndata_bits = 7\nparity = \"even\"\nline_digits = 1",
        );
    let gw = Gateway::start(&db.scratch.0, &config);
    wait_for(&gw, "/api/lines", "the port to open", |v| {
        line(v, "mlr2")["open"] == true
    })
    .await;
    let mut rx = pty.open_peer();

    // Contact ID, protocol 5: ACK only once the event is stored.
    assert_eq!(
        send(&mut rx, b"5011 181234E13001003\x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    let events = gw.events("1234").await;
    assert_eq!(events.len(), 1, "stored before the ACK: {events:?}");
    let e = &events[0];
    assert_eq!(e["transport"], "serial");
    assert_eq!(e["listener"], "mlr2");
    assert_eq!(e["token"], "ADM-CID");
    assert_eq!(e["code"], "130");
    assert_eq!(e["qualifier"], "1");
    assert_eq!(e["class"], "alarm");
    assert_eq!(e["zone"], "003");
    assert_eq!(e["receiver"], "01");
    assert_eq!(e["prefix"], "1");
    assert_eq!(e["raw"], "5011 181234E13001003");

    // SIA: both events of the block.
    assert_eq!(
        send(&mut rx, b"S011[#ABC123|Nri1/BA501/BR501]\x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    let sia = gw.events("ABC123").await;
    assert_eq!(sia.len(), 2, "{sia:?}");
    assert_eq!(sia[1]["code"], "BA");
    assert_eq!(sia[0]["code"], "BR");

    // Heartbeat: ACK, nothing stored.
    let before = gw.json("/api/events?limit=1000").await["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        send(&mut rx, b"1011           @    \x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    // Unreadable: a bad qualifier, a line field of the wrong width, an unknown protocol.
    for bad in [
        &b"5011 181234X13001003\x14"[..],
        b"50111 181234E13001003\x14",
        b"Z011 hello\x14",
    ] {
        assert_eq!(
            send(&mut rx, bad, ANSWER_WAIT).await,
            Some(NAK),
            "{}",
            show(bad)
        );
    }
    // Garbage between packets is skipped without an answer; the packet after it is read.
    assert_eq!(
        send(&mut rx, b"\x01\x02\xff\xfe", NO_ANSWER_WAIT).await,
        None
    );
    assert_eq!(
        send(&mut rx, b"5011 181234R13001003\x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    // An over-long packet is dropped with NAK, not buffered; the line goes on.
    let mut long = vec![b'S'; 2000];
    long.push(0x14);
    assert_eq!(send(&mut rx, &long, ANSWER_WAIT).await, Some(NAK));
    assert_eq!(
        read_for(&mut rx, 1, NO_ANSWER_WAIT).await,
        b"",
        "one answer only"
    );
    assert_eq!(
        send(&mut rx, b"5011 181234E60200000\x14", ANSWER_WAIT).await,
        Some(ACK)
    );

    let all = gw.json("/api/events?limit=1000").await["events"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(all, before + 2, "heartbeat and rejected packets not stored");
    let l = line(&gw.json("/api/lines").await, "mlr2").clone();
    assert_eq!(l["settings"], "19200 7E1");
    assert_eq!(l["naks"], 4);
    assert_eq!(l["communication"], "unsupervised");
    assert!(
        metric(
            &gw,
            "vakt_framing_errors_total{transport=\"serial\",reason=\"garbage\"}"
        )
        .await
            >= 1.0
    );
    assert!(metric(&gw, "vakt_supervision_total{transport=\"serial\"}").await >= 1.0);
    assert!(gw.log().contains("unreadable packet: NAK"), "{}", gw.log());
}

/// Raw 16-digit Contact ID lines (CR or LF ended) with their check digit.
async fn raw_contact_id_lines(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let pty = PtyPair::new(&db.scratch.0, "cid");
    let config =
        base_config(&db.url) + &serial_listener("cid", &pty.device, "format = \"contact-id\"");
    let gw = Gateway::start(&db.scratch.0, &config);
    wait_for(&gw, "/api/lines", "the port to open", |v| {
        line(v, "cid")["open"] == true
    })
    .await;
    let mut rx = pty.open_peer();
    let good = encode_dc05("4321", "18", Qualifier::New, "401", "01", "005").unwrap();
    let mut packet = good.to_vec();
    packet.extend_from_slice(b"\r\n");
    assert_eq!(send(&mut rx, &packet, ANSWER_WAIT).await, Some(ACK));
    let events = gw.events("4321").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["code"], "401");
    assert_eq!(events[0]["class"], "opening");
    // The same digits with a wrong check digit.
    let mut bad = good;
    bad[15] = if bad[15] == b'1' { b'2' } else { b'1' };
    let mut packet = bad.to_vec();
    packet.push(b'\r');
    assert_eq!(send(&mut rx, &packet, ANSWER_WAIT).await, Some(NAK));
    assert_eq!(gw.events("4321").await.len(), 1);
}

/// The adapter is unplugged and plugged back: vakt reopens it with backoff, keeps running, and
/// what was acknowledged before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_vanishes_and_comes_back() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut pty = PtyPair::new(&db.scratch.0, "usb");
    let config =
        base_config(&db.url) + &serial_listener("usb", &pty.device, "format = \"surgard\"");
    let gw = Gateway::start(&db.scratch.0, &config);
    wait_for(&gw, "/api/lines", "the port to open", |v| {
        line(v, "usb")["open"] == true
    })
    .await;
    let mut rx = pty.open_peer();
    assert_eq!(
        send(&mut rx, b"5011 181234E13001003\x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    drop(rx);
    pty.unplug();
    let v = wait_for(&gw, "/api/lines", "the port to be seen lost", |v| {
        line(v, "usb")["open"] == false
    })
    .await;
    assert!(line(&v, "usb")["last_error"].is_string(), "{v}");
    // Stays away for a few reopen attempts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    pty.start();
    let v = wait_for(&gw, "/api/lines", "the port to be reopened", |v| {
        line(v, "usb")["open"] == true
    })
    .await;
    assert_eq!(line(&v, "usb")["opens"], 2, "{v}");
    let mut rx = pty.open_peer();
    assert_eq!(
        send(&mut rx, b"5011 181234E13001004\x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    assert_eq!(gw.events("1234").await.len(), 2);
    assert!(metric(&gw, "vakt_serial_reopens_total{listener=\"usb\"}").await >= 1.0);
    assert!(
        gw.log().contains("serial port lost; reopening"),
        "{}",
        gw.log()
    );
}

/// The receiver's heartbeat stops: a communication failure (YC) is stored for the line and
/// shown; traffic restores it (YK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_heartbeat_raises_line_failure_and_restore() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let pty = PtyPair::new(&db.scratch.0, "hb");
    let config = base_config(&db.url)
        + &serial_listener(
            "hb",
            &pty.device,
            "format = \"surgard\"\nheartbeat_secs = 1\nheartbeat_grace_secs = 1",
        );
    let gw = Gateway::start(&db.scratch.0, &config);
    let mut rx = pty.open_peer();
    // Heartbeats on time: no failure.
    for _ in 0..4 {
        assert_eq!(
            send(&mut rx, b"1011           @    \x14", ANSWER_WAIT).await,
            Some(ACK)
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(gw.events("%40HB").await.is_empty());
    // Silence.
    let v = wait_for(&gw, "/api/lines", "the line failure", |v| {
        line(v, "hb")["communication"] == "failed"
    })
    .await;
    assert!(line(&v, "hb")["failed_since"].is_string());
    let events = gw.events("%40HB").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["code"], "YC");
    assert_eq!(events[0]["class"], "trouble");
    assert_eq!(
        metric(&gw, "vakt_serial_line_up{listener=\"hb\"}").await,
        0.0
    );
    // Traffic again.
    assert_eq!(
        send(&mut rx, b"1011           @    \x14", ANSWER_WAIT).await,
        Some(ACK)
    );
    wait_for(&gw, "/api/lines", "the restore", |v| {
        line(v, "hb")["communication"] == "ok"
    })
    .await;
    let events = gw.events("%40HB").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["code"], "YK");
    assert_eq!(events[0]["class"], "restore");
    assert_eq!(
        metric(&gw, "vakt_serial_line_up{listener=\"hb\"}").await,
        1.0
    );
}

/// The automation output on a serial port: the automation (the test, on the pty's other end)
/// gets each event as a Sur-Gard packet, NAKs one and gets it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_output_on_a_serial_port() {
    use tokio::io::AsyncWriteExt;
    use vakt_protocol::dc09::TokenKind;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let pty = PtyPair::new(&db.scratch.0, "auto");
    let config = base_config(&db.url)
        + &format!(
            "\n[[output]]\nname = \"automation\"\nkind = \"surgard\"\ndevice = \"{}\"\n\
             baud = 19200\nack_timeout_secs = 1\nheartbeat_secs = 60\nline = \"001\"\n",
            pty.device.display()
        );
    let gw = Gateway::start(&db.scratch.0, &config);
    let mut auto = pty.open_peer();
    let f = frame(TokenKind::AdmCid, "0001", PLAIN, "#1234|1130 01 003");
    assert!(show(&ask_once(gw.tcp, &f).await.unwrap()).contains("ACK"));
    let want = b"501001 181234E13001003\x14";
    assert_eq!(read_for(&mut auto, want.len(), ANSWER_WAIT).await, want);
    auto.write_all(&[NAK]).await.unwrap();
    assert_eq!(
        read_for(&mut auto, want.len(), ANSWER_WAIT).await,
        want,
        "again after NAK"
    );
    auto.write_all(&[ACK]).await.unwrap();
    assert_eq!(
        read_for(&mut auto, 1, NO_ANSWER_WAIT).await,
        b"",
        "nothing more"
    );
}
