//! `vakt serve` end to end: a real gateway process, real loopback sockets, a real database
//! (every test runs on SQLite and on PostgreSQL, but the WAL fsync's, which is SQLite's alone).

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use vakt_protocol::dc09::{decrypt, parse_frame, Content, Key, Quirks, TokenKind};

on_both_databases!(
    answers_and_stores,
    rejections,
    duplicates,
    udp,
    tcp_split_and_coalesced,
    restart_keeps_everything,
    sigterm_under_load_loses_nothing_acknowledged,
    kill9_under_load_loses_nothing_acknowledged,
    database_failure_stops_acks_then_resumes,
    http_api,
    site_cli,
    connection_limits,
    writer_cpu,
    no_transparent_huge_pages,
);

const NO_ANSWER_WAIT: Duration = Duration::from_millis(1500);

fn aes_key() -> Key {
    Key::from_hex(AES_KEY_HEX).unwrap()
}

fn aes256_key() -> Key {
    Key::from_ascii(AES256_KEY_ASCII).unwrap()
}

/// Checks an `*ACK`: header echoed, and the encrypted part opens with `key` to `]` + a
/// receiver time within seconds of now.
fn assert_encrypted_ack(answer: &[u8], echo: &str, key: &Key) {
    let f = parse_frame(answer, &Quirks::default())
        .unwrap_or_else(|e| panic!("*ACK does not parse: {e}: {}", show(answer)));
    assert!(f.header.token.encrypted, "{}", show(answer));
    assert_eq!(f.header.token.kind, TokenKind::Ack);
    assert_eq!(f.header.echo, echo.as_bytes());
    let Content::Encrypted(hex) = f.content else {
        panic!("*ACK must carry ciphertext: {}", show(answer))
    };
    let mut buf = Vec::new();
    let clear = decrypt(hex, key, &mut buf).expect("*ACK opens with the site key");
    assert!(clear.data.is_empty());
    let ts = clear
        .timestamp
        .valid()
        .expect("*ACK carries the receiver time");
    assert!((ts.unix() - now_unix()).abs() <= 5);
}

async fn answers_and_stores(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));

    // Plain ADM-CID, one connection per frame, two sites.
    let f = frame(TokenKind::AdmCid, "0001", PLAIN, "#1234|1131 01 015");
    assert_eq!(
        ask_once(gw.tcp, &f).await.unwrap(),
        expected_ack("0001L0#1234")
    );
    let f = frame(TokenKind::AdmCid, "0002", PLAIN2, "#ABC123|3401 02 007");
    assert_eq!(
        ask_once(gw.tcp, &f).await.unwrap(),
        expected_ack("0002L0#ABC123")
    );
    // SIA-DCS with two events and a receiver field, echoed exactly (`L000` stays `L000`).
    let f = frame_with(
        TokenKind::SiaDcs,
        "0003",
        Some("0A1"),
        "000",
        PLAIN,
        "#1234|Nri2/BA12/FA03",
        None,
        None,
    );
    assert_eq!(
        ask_once(gw.tcp, &f).await.unwrap(),
        expected_ack("0003R0A1L000#1234")
    );
    // Encrypted, AES-128 (hex key) and AES-256 (ASCII key).
    let key = aes_key();
    let f = frame_with(
        TokenKind::AdmCid,
        "0004",
        None,
        "0",
        AES,
        "#5678|1602 00 000",
        Some(now_unix()),
        Some(&key),
    );
    assert_encrypted_ack(&ask_once(gw.tcp, &f).await.unwrap(), "0004L0#5678", &key);
    let key256 = aes256_key();
    let f = frame_with(
        TokenKind::SiaDcs,
        "0005",
        Some("1"),
        "2",
        AES256,
        "#9ABC|Nri1/PA501",
        Some(now_unix()),
        Some(&key256),
    );
    assert_encrypted_ack(
        &ask_once(gw.tcp, &f).await.unwrap(),
        "0005R1L2#9ABC",
        &key256,
    );

    let e = gw.events(PLAIN).await;
    assert_eq!(e.len(), 3, "{e:#?}");
    // Newest first: the SIA frame's two events, then the Contact ID event.
    assert_eq!(e[2]["code"], "131");
    assert_eq!(e[2]["qualifier"], "1");
    assert_eq!(e[2]["class"], "alarm");
    assert_eq!(e[2]["kind"], "burglary");
    assert_eq!(e[2]["zone"], "015");
    assert_eq!(e[2]["partition"], "01");
    assert_eq!(e[2]["transport"], "tcp");
    assert_eq!(e[2]["listener"], "tcp");
    assert_eq!(e[2]["outcome"], "ack");
    assert!(e[2]["raw"].as_str().unwrap().contains("1131 01 015"));
    // A frame's events get ascending ids in the frame's order (newest first: FA, then BA).
    let sia: Vec<_> = e[..2]
        .iter()
        .map(|x| {
            (
                x["code"].as_str().unwrap(),
                x["seq_in_frame"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(sia, [("FA", 1), ("BA", 0)]);
    assert!(e[0]["id"].as_i64() > e[1]["id"].as_i64());
    assert_eq!(e[0]["frame_ref"], e[1]["frame_ref"]);
    assert_eq!(e[0]["receiver"], "0A1");
    assert_eq!(e[0]["prefix"], "000");
    let e = gw.events(PLAIN2).await;
    assert_eq!(
        (e[0]["code"].as_str(), e[0]["class"].as_str()),
        (Some("401"), Some("closing"))
    );
    let e = gw.events(AES).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["encrypted"], true);
    assert_eq!(e[0]["data"], "#5678|1602 00 000");
    assert_eq!(e[0]["class"], "test");
    assert!(e[0]["panel_time"].is_string());
    let e = gw.events(AES256).await;
    assert_eq!(
        (e[0]["code"].as_str(), e[0]["kind"].as_str()),
        (Some("PA"), Some("panic"))
    );
}

async fn rejections(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    // All on one long-lived connection: none of these may close it.
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    let good = |seq: &str| frame(TokenKind::AdmCid, seq, PLAIN, "#1234|1131 01 015");

    // Bad CRC and bad length: no answer, the panel retries.
    let mut bad = good("0001");
    bad[1] = if bad[1] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        ask_with_wait(&mut c, &bad).await,
        None,
        "bad CRC gets no answer"
    );
    let mut bad = good("0001");
    bad[8] = if bad[8] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        ask_with_wait(&mut c, &bad).await,
        None,
        "bad length gets no answer"
    );
    // Bytes outside any frame are dropped; the next frame is still answered.
    c.write_all(b"garbage without a frame start").await.unwrap();
    assert_eq!(
        ask(&mut c, &good("0002")).await.unwrap(),
        expected_ack("0002L0#1234")
    );

    // NAK: unknown account, wrong key, plaintext where encryption is required, timestamps
    // outside the window (40 s behind, 20 s ahead).
    let nak = |what: &str, a: Option<Vec<u8>>| {
        let a = a.unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(
            is_nak_now(&a),
            "{what}: want NAK with receiver time, got {}",
            show(&a)
        );
    };
    nak(
        "unknown account",
        ask(
            &mut c,
            &frame(TokenKind::AdmCid, "0003", "FFF1", "#FFF1|1131 01 015"),
        )
        .await,
    );
    let wrong = Key::from_hex("0F0E0D0C0B0A09080706050403020100").unwrap();
    let enc = |seq, ts, key: &Key| {
        frame_with(
            TokenKind::AdmCid,
            seq,
            None,
            "0",
            AES,
            "#5678|1131 01 015",
            Some(ts),
            Some(key),
        )
    };
    nak(
        "wrong key",
        ask(&mut c, &enc("0004", now_unix(), &wrong)).await,
    );
    nak(
        "plaintext for an encrypted site",
        ask(
            &mut c,
            &frame(TokenKind::AdmCid, "0005", AES, "#5678|1131 01 015"),
        )
        .await,
    );
    nak(
        "41 s old",
        ask(&mut c, &enc("0006", now_unix() - 45, &aes_key())).await,
    );
    nak(
        "25 s ahead",
        ask(&mut c, &enc("0007", now_unix() + 25, &aes_key())).await,
    );
    let plain_old = frame_with(
        TokenKind::AdmCid,
        "0008",
        None,
        "0",
        PLAIN,
        "#1234|1131 01 015",
        Some(now_unix() - 300),
        None,
    );
    nak(
        "plain frame with an old timestamp",
        ask(&mut c, &plain_old).await,
    );
    // Inside the window: accepted.
    assert_encrypted_ack(
        &ask(&mut c, &enc("0009", now_unix() - 30, &aes_key()))
            .await
            .unwrap(),
        "0009L0#5678",
        &aes_key(),
    );
    // A site pinned to R12 L3 refuses frames for other receivers or lines.
    let pinned = |r: Option<&str>, l: &str| {
        frame_with(
            TokenKind::AdmCid,
            "0010",
            r,
            l,
            PINNED,
            "#7777|1131 01 015",
            None,
            None,
        )
    };
    nak(
        "wrong receiver",
        ask(&mut c, &pinned(Some("13"), "3")).await,
    );
    nak("wrong prefix", ask(&mut c, &pinned(Some("12"), "4")).await);
    assert_eq!(
        ask(&mut c, &pinned(Some("012"), "03")).await.unwrap(),
        expected_ack("0010R012L03#7777")
    );

    // DUH: a token we do not process, and data that does not parse. Stored raw first.
    let f = frame(TokenKind::Other("XYZ-ABC"), "0011", PLAIN, "whatever");
    assert_eq!(
        ask(&mut c, &f).await.unwrap(),
        expected_reply("DUH", "0011L0#1234")
    );
    let f = frame(TokenKind::AdmCid, "0012", PLAIN, "#1234|not contact id");
    assert_eq!(
        ask(&mut c, &f).await.unwrap(),
        expected_reply("DUH", "0012L0#1234")
    );
    // dc09-spt's hex sequence: DUH (stored raw) by default, decoded with the site's quirk.
    let f = frame(TokenKind::AdmCid, "000A", PLAIN, "#1234|1110 00 003");
    assert_eq!(
        ask(&mut c, &f).await.unwrap(),
        expected_reply("DUH", "000AL0#1234")
    );
    let f = frame(TokenKind::AdmCid, "000A", HEXSEQ, "#4321|1110 00 003");
    assert_eq!(ask(&mut c, &f).await.unwrap(), expected_ack("000AL0#4321"));

    // NULL: ACK, counted, not stored.
    let f = frame(TokenKind::Null, "0000", PLAIN, "");
    assert_eq!(ask(&mut c, &f).await.unwrap(), expected_ack("0000L0#1234"));
    // An answer token sent to a receiver is not answered.
    let f = frame(TokenKind::Ack, "0013", PLAIN, "");
    assert_eq!(ask_with_wait(&mut c, &f).await, None);
    // And the connection still works after all of that.
    assert_eq!(
        ask(&mut c, &good("0014")).await.unwrap(),
        expected_ack("0014L0#1234")
    );

    let e = gw.events(PLAIN).await;
    let seqs: Vec<_> = e.iter().map(|x| x["sequence"].as_str().unwrap()).collect();
    assert_eq!(seqs, ["0014", "000A", "0012", "0011", "0002"], "{e:#?}");
    for duh in &e[1..4] {
        assert_eq!(duh["outcome"], "duh");
        assert_eq!(duh["class"], "unprocessed");
        assert!(duh["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(duh["raw"].as_str().unwrap().starts_with("\\n"));
    }
    assert_eq!(e[3]["token"], "XYZ-ABC");
    let e = gw.events(HEXSEQ).await;
    assert_eq!(
        (e[0]["code"].as_str(), e[0]["sequence"].as_str()),
        (Some("110"), Some("000A"))
    );
    assert!(gw.events(AES).await.len() == 1);

    let (_, m) = gw.get("/metrics").await;
    for line in [
        r#"vakt_answers_total{answer="nak",reason="unknown_account"} 1"#,
        r#"vakt_answers_total{answer="nak",reason="encryption_required"} 1"#,
        r#"vakt_answers_total{answer="nak",reason="wrong_receiver"} 1"#,
        r#"vakt_answers_total{answer="nak",reason="wrong_prefix"} 1"#,
        r#"vakt_answers_total{answer="duh",reason="unsupported_token"} 1"#,
        r#"vakt_answers_total{answer="ack",reason="supervision"} 1"#,
        r#"vakt_supervision_total{transport="tcp"} 1"#,
        r#"vakt_frames_total{transport="tcp",token="other",outcome="duh"} 1"#,
        r#"vakt_framing_errors_total{transport="tcp",reason="garbage"} 1"#,
    ] {
        assert!(m.contains(line), "metrics lack {line}:\n{m}");
    }
    let log = gw.log();
    assert!(log.contains("reason=\"unknown_account\""), "{log}");
    assert!(!log.contains(AES_KEY_HEX), "the key must never be logged");
}

async fn ask_with_wait(c: &mut TcpStream, f: &[u8]) -> Option<Vec<u8>> {
    c.write_all(f).await.unwrap();
    read_answer(c, NO_ANSWER_WAIT).await
}

async fn duplicates(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let ts = now_unix();
    let f = frame_with(
        TokenKind::AdmCid,
        "0042",
        None,
        "0",
        PLAIN,
        "#1234|1131 01 015",
        Some(ts),
        None,
    );
    // Our ACK "was lost": the panel sends the same frame again, on a new connection.
    for _ in 0..3 {
        assert_eq!(
            ask_once(gw.tcp, &f).await.unwrap(),
            expected_ack("0042L0#1234")
        );
    }
    assert_eq!(
        gw.events(PLAIN).await.len(),
        1,
        "a retransmission is stored once"
    );
    // An encrypted retransmission has a new random pad but the same content.
    let key = aes_key();
    let e1 = frame_with(
        TokenKind::AdmCid,
        "0007",
        None,
        "0",
        AES,
        "#5678|1131 01 015",
        Some(ts),
        Some(&key),
    );
    let e2 = frame_with(
        TokenKind::AdmCid,
        "0007",
        None,
        "0",
        AES,
        "#5678|1131 01 015",
        Some(ts),
        Some(&key),
    );
    assert_ne!(e1, e2);
    assert!(ask_once(gw.tcp, &e1).await.is_some());
    assert!(ask_once(gw.tcp, &e2).await.is_some());
    assert_eq!(gw.events(AES).await.len(), 1);
    // A rebooted panel restarts at 0001 with the same event: a new message (new timestamp).
    let a = frame_with(
        TokenKind::AdmCid,
        "0001",
        None,
        "0",
        PLAIN2,
        "#ABC123|1602 00 000",
        Some(ts - 10),
        None,
    );
    let b = frame_with(
        TokenKind::AdmCid,
        "0001",
        None,
        "0",
        PLAIN2,
        "#ABC123|1602 00 000",
        Some(ts),
        None,
    );
    assert!(ask_once(gw.tcp, &a).await.is_some());
    assert!(ask_once(gw.tcp, &b).await.is_some());
    // Same sequence, different data: a different message.
    let c = frame(TokenKind::AdmCid, "0001", PLAIN2, "#ABC123|1130 00 001");
    assert!(ask_once(gw.tcp, &c).await.is_some());
    assert_eq!(gw.events(PLAIN2).await.len(), 3);
    // Duplicates within one batch (sent concurrently) are stored once too.
    let f = frame(TokenKind::SiaDcs, "0100", PLAIN2, "#ABC123|Nri1/BA01");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            let addr = gw.tcp;
            tokio::spawn(async move { ask_once(addr, &f).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), expected_ack("0100L0#ABC123"));
    }
    assert_eq!(gw.events(PLAIN2).await.len(), 4);
    let (_, m) = gw.get("/metrics").await;
    assert!(m.contains("vakt_duplicates_total 10"), "{m}");
}

/// Two nodes on one PostgreSQL database: a panel whose ACK from node A was lost fails over and
/// sends node B the same frame. B's duplicate window is its own, read from the database only
/// as B starts (which may still catch the first frame below, stored just then), so for the
/// later frames the database's claim must catch it: B answers ACK and stores nothing, while
/// new frames that B commits together with them are stored. (B's commits go in one statement that assumes every
/// frame new; this is the case that rolls it back and commits step by step,
/// src/store/pg_batch.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_another_node_stored_is_acked_and_stored_once() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // No supervision step while the frames arrive: that commit always goes step by step.
    let config = format!(
        "{}\n[supervision]\ncheck_every_ms = 60000\n",
        base_config(&db.url)
    );
    let (a, b) = (
        Gateway::start(&db.scratch.0, &config),
        Gateway::start(&db.scratch.0, &config),
    );
    let ts = now_unix();
    let burglary = |seq: &str, zone: u32| {
        frame_with(
            TokenKind::AdmCid,
            seq,
            None,
            "0",
            PLAIN,
            &format!("#1234|1131 01 {zone:03}"),
            Some(ts),
            None,
        )
    };
    let f = burglary("0042", 15);
    assert_eq!(
        ask_once(a.tcp, &f).await.unwrap(),
        expected_ack("0042L0#1234")
    );
    assert_eq!(
        ask_once(b.tcp, &f).await.unwrap(),
        expected_ack("0042L0#1234")
    );
    assert_eq!(
        b.events(PLAIN).await.len(),
        1,
        "stored once between the nodes"
    );
    assert_eq!(b.metric("vakt_duplicates_total").await, Some(1.0));

    // Node A stores four more; then node B gets them again at the same moment as eight new
    // ones, so that the repeats share commits with new frames.
    let old: Vec<Vec<u8>> = (0..4)
        .map(|i| burglary(&format!("{:04}", 100 + i), 20 + i))
        .collect();
    for f in &old {
        assert!(ask_once(a.tcp, f).await.is_some());
    }
    let new: Vec<Vec<u8>> = (0..8)
        .map(|i| burglary(&format!("{:04}", 200 + i), 40 + i))
        .collect();
    let tasks: Vec<_> = old
        .iter()
        .chain(&new)
        .cloned()
        .map(|f| {
            let addr = b.tcp;
            tokio::spawn(async move { ask_once(addr, &f).await })
        })
        .collect();
    for t in tasks {
        let answer = t.await.unwrap().expect("every frame answered");
        assert!(answer.windows(5).any(|w| w == b"\"ACK\""), "{answer:?}");
    }
    let stored = b.events(PLAIN).await;
    assert_eq!(stored.len(), 1 + 4 + 8, "{stored:?}");
    let mut zones: Vec<String> = stored.iter().map(|e| e["zone"].to_string()).collect();
    zones.sort();
    zones.dedup();
    assert_eq!(zones.len(), 13, "each frame once: {zones:?}");
    assert_eq!(b.metric("vakt_duplicates_total").await, Some(5.0));
    // The zones the new frames opened are in the site's state, as on the one-trip path.
    let state = b.json(&format!("/api/sites/{PLAIN}")).await;
    let open = state["zones"].as_array().map_or(0, Vec::len);
    assert_eq!(open, 13, "{state}");

    // Now B knows the site's open alarm, so a frame joining it goes in one statement
    // (pg_batch::one_trip) that assumes the frame new: A stored it first, so that statement
    // is refused whole and the frame is answered as the duplicate it is.
    let refused = r#"vakt_pg_one_trip_commits_total{outcome="refused"}"#;
    let before = b.metric(refused).await.unwrap_or(0.0);
    let again = burglary("0300", 60);
    assert!(ask_once(a.tcp, &again).await.is_some());
    let answer = ask_once(b.tcp, &again).await.expect("answered");
    assert!(answer.windows(5).any(|w| w == b"\"ACK\""), "{answer:?}");
    assert_eq!(b.metric(refused).await.unwrap_or(0.0), before + 1.0);
    assert_eq!(b.events(PLAIN).await.len(), 1 + 4 + 8 + 1);
    assert_eq!(b.metric("vakt_duplicates_total").await, Some(6.0));
}

async fn udp(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let wait = Duration::from_secs(5);
    let f = frame(TokenKind::SiaDcs, "0001", PLAIN, "#1234|Nri1/BA12");
    assert_eq!(
        ask_udp(gw.udp, &f, wait).await.unwrap(),
        expected_ack("0001L0#1234")
    );
    let key = aes_key();
    let f = frame_with(
        TokenKind::AdmCid,
        "0002",
        None,
        "0",
        AES,
        "#5678|1131 01 015",
        Some(now_unix()),
        Some(&key),
    );
    assert_encrypted_ack(
        &ask_udp(gw.udp, &f, wait).await.unwrap(),
        "0002L0#5678",
        &key,
    );
    let f = frame(TokenKind::AdmCid, "0003", "FFF1", "#FFF1|1131 01 015");
    assert!(is_nak_now(&ask_udp(gw.udp, &f, wait).await.unwrap()));
    let mut bad = frame(TokenKind::AdmCid, "0004", PLAIN, "#1234|1131 01 015");
    bad[2] ^= 1;
    assert_eq!(ask_udp(gw.udp, &bad, NO_ANSWER_WAIT).await, None);
    // Two frames in one datagram are not one frame: no answer.
    let two = [
        frame(TokenKind::AdmCid, "0005", PLAIN, "#1234|1131 01 015"),
        frame(TokenKind::AdmCid, "0006", PLAIN, "#1234|1131 01 015"),
    ]
    .concat();
    assert_eq!(ask_udp(gw.udp, &two, NO_ANSWER_WAIT).await, None);
    let e = gw.events(PLAIN).await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["transport"], "udp");
    assert_eq!(e[0]["listener"], "udp");
    assert_eq!(gw.events(AES).await.len(), 1);
}

async fn tcp_split_and_coalesced(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    // Three frames in one write: three answers, in order.
    let frames: Vec<_> = (1..=3)
        .map(|i| {
            frame(
                TokenKind::AdmCid,
                &format!("{i:04}"),
                PLAIN,
                &format!("#1234|1131 01 {i:03}"),
            )
        })
        .collect();
    c.write_all(&frames.concat()).await.unwrap();
    for i in 1..=3 {
        let a = read_answer(&mut c, Duration::from_secs(10)).await.unwrap();
        assert_eq!(a, expected_ack(&format!("{i:04}L0#1234")));
    }
    // One frame a few bytes at a time.
    let f = frame(TokenKind::SiaDcs, "0004", PLAIN, "#1234|Nri1/FA03");
    for chunk in f.chunks(5) {
        c.write_all(chunk).await.unwrap();
        c.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        read_answer(&mut c, Duration::from_secs(10)).await.unwrap(),
        expected_ack("0004L0#1234")
    );
    // The end of one frame and the start of the next in one write.
    let (a, b) = (
        frame(TokenKind::AdmCid, "0005", PLAIN, "#1234|1131 01 005"),
        frame(TokenKind::AdmCid, "0006", PLAIN, "#1234|1131 01 006"),
    );
    c.write_all(&a[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(&[&a[10..], &b[..7]].concat()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.write_all(&b[7..]).await.unwrap();
    assert_eq!(
        read_answer(&mut c, Duration::from_secs(10)).await.unwrap(),
        expected_ack("0005L0#1234")
    );
    assert_eq!(
        read_answer(&mut c, Duration::from_secs(10)).await.unwrap(),
        expected_ack("0006L0#1234")
    );
    assert_eq!(gw.events(PLAIN).await.len(), 6);
}

/// Contact ID burglaries in zones 1..=n for `PLAIN`, each on a connection of its own and
/// acknowledged.
async fn send_burglaries(addr: std::net::SocketAddr, n: u32) {
    for i in 1..=n {
        let f = frame(
            TokenKind::AdmCid,
            &format!("{i:04}"),
            PLAIN,
            &format!("#1234|1131 01 {i:03}"),
        );
        assert!(ask_once(addr, &f).await.is_some());
    }
}

async fn restart_keeps_everything(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let config = base_config(&db.url);
    let mut gw = Gateway::start(&db.scratch.0, &config);
    send_burglaries(gw.tcp, 20).await;
    assert!(gw.signal("TERM").success());
    drop(gw);
    let gw = Gateway::start(&db.scratch.0, &config);
    assert_eq!(gw.events(PLAIN).await.len(), 20);
    // The duplicate window survives the restart too.
    let f = frame(TokenKind::AdmCid, "0020", PLAIN, "#1234|1131 01 020");
    assert!(ask_once(gw.tcp, &f).await.is_some());
    let f = frame(TokenKind::AdmCid, "0021", PLAIN, "#1234|1131 01 021");
    assert!(ask_once(gw.tcp, &f).await.is_some());
    assert_eq!(gw.events(PLAIN).await.len(), 21);
}

/// Clients on many connections send frames as fast as the gateway answers; the gateway is
/// stopped with `sig` meanwhile. Returns the zones whose frames were acknowledged.
async fn load_until_signal(backend: Backend, sig: &str) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for client in 0..16u32 {
        let (addr, acked) = (gw.tcp, acked.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut c) = TcpStream::connect(addr).await else {
                return;
            };
            for n in 0..100_000u32 {
                let data = format!("#1234|Nri1/BA{client:02}{n:05}");
                let f = frame(
                    TokenKind::SiaDcs,
                    &format!("{:04}", n % 9999 + 1),
                    PLAIN,
                    &data,
                );
                if c.write_all(&f).await.is_err() {
                    return;
                }
                match read_answer(&mut c, Duration::from_secs(10)).await {
                    Some(a) if a.windows(5).any(|w| w == b"\"ACK\"") => {
                        acked.lock().unwrap().push(format!("{client:02}{n:05}"))
                    }
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = acked.lock().unwrap().len();
    let status = gw.signal(sig);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        before > 100,
        "load too light to mean anything: {before} ACKs"
    );
    if sig == "TERM" {
        assert!(
            status.success(),
            "SIGTERM must end vakt cleanly: {status:?}\n{}",
            gw.log()
        );
        assert!(gw.log().contains("shutting down"));
    }
    // Everything acknowledged is in the database.
    let store = db.connect().await;
    if backend == Backend::Sqlite {
        // As if vakt had stopped before copying the later half of the events into site_events
        // and writing their zone rows (a busy writer does both in bulk): the queries below
        // must find those events by id range and their zones from the events.
        db.exec(
            "UPDATE derived_upto SET upto = (SELECT MAX(id) / 2 FROM events); \
             DELETE FROM site_events WHERE id > (SELECT upto FROM derived_upto); \
             DELETE FROM zones WHERE frame_ref IN \
               (SELECT frame_ref FROM events WHERE id > (SELECT upto FROM derived_upto))",
        )
        .await;
    }
    let mut stored = std::collections::HashSet::new();
    let mut before_id = None;
    loop {
        let page = store
            .events(&vakt::store::EventQuery {
                account: Some(PLAIN.into()),
                since_micros: None,
                before_id,
                limit: 10_000,
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        stored.extend(page.iter().filter_map(|e| e.address.clone()));
    }
    let lost: Vec<_> = acked.iter().filter(|z| !stored.contains(*z)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost after SIG{sig}: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "SIG{sig}: {} acknowledged, {} stored, none lost",
        acked.len(),
        stored.len()
    );
    // Every acknowledged burglary is in the site's state: each event opened a zone of its own.
    let alarmed: std::collections::HashSet<String> = store
        .site_state(PLAIN)
        .await
        .unwrap()
        .zones
        .into_iter()
        .filter(|z| z.state == "alarm")
        .map(|z| z.zone)
        .collect();
    let zone_of = |address: &str| match address.trim_start_matches('0') {
        "" => "0".to_owned(),
        z => z.to_owned(),
    };
    let missing: Vec<_> = acked
        .iter()
        .filter(|a| !alarmed.contains(&zone_of(a)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged alarms not in the site state: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    if let vakt::store::Db::Sqlite { read, .. } = &store {
        // The events not yet copied when vakt stopped (found above by id range) are copied
        // by the restarted writer's first step, frames or none.
        assert!(uncopied_count(read).await > 0);
        assert!(unwritten_zones(read).await > 0);
        drop(gw);
        let _gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while uncopied_count(read).await > 0 || unwritten_zones(read).await > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} events still not in site_events and {} zones not in zones 10 s after \
                 the restart",
                uncopied_count(read).await,
                unwritten_zones(read).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    store.close().await;
}

/// Zones named by a stored event that `zones` does not hold (SQLite).
async fn unwritten_zones(db: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e WHERE e.zone IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM zones z WHERE z.account = e.account AND z.zone = \
         CASE ltrim(e.zone, '0') WHEN '' THEN '0' ELSE ltrim(e.zone, '0') END)",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Events that `site_events` does not hold (SQLite).
async fn uncopied_count(db: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM site_events s \
         WHERE s.account = e.account AND s.id = e.id)",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

async fn sigterm_under_load_loses_nothing_acknowledged(backend: Backend) {
    load_until_signal(backend, "TERM").await;
}

async fn kill9_under_load_loses_nothing_acknowledged(backend: Backend) {
    load_until_signal(backend, "KILL").await;
}

async fn database_failure_stops_acks_then_resumes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let f1 = frame(TokenKind::AdmCid, "0001", PLAIN, "#1234|1131 01 001");
    assert!(ask_once(gw.tcp, &f1).await.is_some());
    // Every insert into events now fails, as on a full or broken disk.
    match backend {
        Backend::Sqlite => db.exec("CREATE TRIGGER broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END").await,
        Backend::Postgres => db.exec("CREATE FUNCTION broken() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql; CREATE TRIGGER broken BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION broken()").await,
    }
    let f2 = frame(TokenKind::AdmCid, "0002", PLAIN, "#1234|1131 01 002");
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    assert_eq!(
        ask_with_wait(&mut c, &f2).await,
        None,
        "no ACK for a frame that was not stored"
    );
    assert_eq!(
        ask_with_wait(&mut c, &f2).await,
        None,
        "the connection stays; still no ACK"
    );
    // NULL needs no storage and is still answered; the process is alive.
    let null = frame(TokenKind::Null, "0000", PLAIN, "");
    assert_eq!(
        ask(&mut c, &null).await.unwrap(),
        expected_ack("0000L0#1234")
    );
    let (_, m) = gw.get("/metrics").await;
    assert!(m.contains("vakt_commit_errors_total"), "{m}");
    assert!(
        m.contains(r#"vakt_answers_total{answer="none",reason="store_failed"}"#),
        "{m}"
    );
    assert!(gw.log().contains("database commit failed"));
    // The disk is repaired: the panel's next retry is stored and acknowledged.
    match backend {
        Backend::Sqlite => db.exec("DROP TRIGGER broken").await,
        Backend::Postgres => {
            db.exec("DROP TRIGGER broken ON events; DROP FUNCTION broken()")
                .await
        }
    }
    let mut answered = None;
    for _ in 0..20 {
        answered = ask_with_wait(&mut c, &f2).await;
        if answered.is_some() {
            break;
        }
    }
    assert_eq!(answered.unwrap(), expected_ack("0002L0#1234"));
    let e = gw.events(PLAIN).await;
    assert_eq!(e.len(), 2);
    assert!(gw.log().contains("acknowledging resumes"));
}

/// SQLite: the answers of a commit wait for the fsync of the WAL (`src/wal_sync.rs`); when that
/// fsync fails, nothing is acknowledged any more, not even once the file is back, while the
/// process and the connection stay up. The failure is made by moving the WAL file away, so the
/// fsync thread cannot find the file SQLite writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_sync_failure_stops_acks_for_good() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let f1 = frame(TokenKind::AdmCid, "0001", PLAIN, "#1234|1131 01 001");
    assert_eq!(
        ask_once(gw.tcp, &f1).await.unwrap(),
        expected_ack("0001L0#1234")
    );
    assert!(gw.metric("vakt_wal_syncs_total").await >= Some(1.0));
    // Registered at start, so an alert on it sees 0 before the first failure.
    assert_eq!(gw.metric("vakt_wal_sync_errors_total").await, Some(0.0));

    let wal = db.scratch.0.join("vakt.db-wal");
    let moved = db.scratch.0.join("vakt.db-wal.moved");
    std::fs::rename(&wal, &moved).unwrap();
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    let f2 = frame(TokenKind::AdmCid, "0002", PLAIN, "#1234|1131 01 002");
    assert_eq!(ask_with_wait(&mut c, &f2).await, None, "no fsync, no ACK");
    assert!(gw.metric("vakt_wal_sync_errors_total").await >= Some(1.0));
    assert!(
        gw.log().contains("fsync of the SQLite WAL failed"),
        "{}",
        gw.log()
    );

    // The file is back, but a failed fsync proves the disk lost pages: still no ACK.
    std::fs::rename(&moved, &wal).unwrap();
    assert_eq!(
        ask_with_wait(&mut c, &f2).await,
        None,
        "fails closed for good"
    );
    // A NULL needs no storage: answered on the same connection; the process is alive.
    let null = frame(TokenKind::Null, "0000", PLAIN, "");
    assert_eq!(
        ask(&mut c, &null).await.unwrap(),
        expected_ack("0000L0#1234")
    );
}

async fn http_api(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    let h = gw.json("/health").await;
    assert_eq!(h["status"], "ok");
    assert_eq!(
        h["database"],
        if backend == Backend::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    let sites = gw.json("/api/sites").await;
    let list = sites["sites"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    let (_, body) = gw.get("/api/sites").await;
    assert!(
        !body.contains(AES_KEY_HEX) && !body.contains(AES256_KEY_ASCII),
        "keys are never served"
    );
    let s = gw.json("/api/sites/5678").await;
    assert_eq!(s["key"]["bits"], 128);
    assert_eq!(s["key"]["form"], "hex");
    assert_eq!(s["encryption_required"], true);
    let s = gw.json("/api/sites/9abc").await;
    assert_eq!(s["key"]["bits"], 256);
    let s = gw.json("/api/sites/4321").await;
    assert_eq!(s["quirks"][0], "hex-sequence");
    let (status, body) = gw.get("/api/sites/FFFF").await;
    assert_eq!(status, 404);
    assert!(body.contains("no site with account FFFF"), "{body}");
    let (status, body) = gw.get("/api/sites?after=5678&limit=2").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let accounts: Vec<_> = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["account"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accounts, ["7777", "9ABC"]);

    for i in 1..=5 {
        let f = frame(
            TokenKind::AdmCid,
            &format!("{i:04}"),
            PLAIN,
            &format!("#1234|1131 01 {i:03}"),
        );
        assert!(ask_once(gw.tcp, &f).await.is_some());
    }
    let v = gw.json("/api/events?limit=2").await;
    let ev = v["events"].as_array().unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["zone"], "005");
    let before = ev[1]["id"].as_i64().unwrap();
    let v = gw
        .json(&format!("/api/events?before={before}&limit=10"))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    let v = gw
        .json(&format!("/api/events?since={}", now_unix() + 3600))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 0);
    let v = gw
        .json(&format!("/api/events?since={}", now_unix() - 3600))
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 5);
    let v = gw
        .json("/api/events?since=2020-01-01T00:00:00Z&account=abc123")
        .await;
    assert_eq!(v["events"].as_array().unwrap().len(), 0);

    for (path, want) in [
        ("/api/events?limit=0", "limit must be"),
        ("/api/events?limit=abc", "limit must be"),
        ("/api/events?since=yesterday", "since must be"),
        ("/api/events?before=x", "before must be"),
        ("/nope", "no such endpoint"),
    ] {
        let (status, body) = gw.get(path).await;
        assert!(status == 400 || status == 404, "{path}: {status}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(want),
            "{path}: {body}"
        );
    }
    let (status, m) = gw.get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "vakt_frames_total",
        "vakt_answers_total",
        "vakt_commit_batch_frames_bucket",
        "vakt_commit_seconds_bucket",
        "vakt_ack_latency_seconds_bucket",
        "vakt_connections_open",
        "vakt_queue_depth",
        "vakt_events_stored_total",
    ] {
        assert!(m.contains(name), "metrics lack {name}:\n{m}");
    }
    // The ACK's time by stage: every stored frame is counted in each (SQLite: also the wait
    // for the WAL fsync).
    let count = |stage: &str| -> f64 {
        let key = format!("vakt_ack_wait_seconds_count{{stage=\"{stage}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .unwrap_or_else(|| panic!("metrics lack the {stage} stage:\n{m}"))
            .parse()
            .unwrap()
    };
    let mut stages = vec!["queue", "commit", "stored"];
    if backend == Backend::Sqlite {
        stages.push("sync");
    }
    for stage in stages {
        assert!(count(stage) >= 1.0, "{stage}: {}", count(stage));
    }
}

async fn site_cli(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let config = base_config(&db.url).replace("[receiver]\n", "[receiver]\nsite_cache_secs = 1\n");
    let gw = Gateway::start(&db.scratch.0, &config);
    let vakt = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vakt"))
            .args(["site", "--database", &db.url])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let reads = |m: &str, how: &str| -> f64 {
        let key = format!("vakt_site_reads_total{{how=\"{how}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    // A known site's frames over three epoch checks (every half site_cache_secs) are answered
    // from the cache, read once as a whole at start-up: no read of the site itself.
    for i in 0..4 {
        let seq = format!("{:04}", 10 + i);
        let f = frame(TokenKind::AdmCid, &seq, PLAIN, "#1234|1131 01 015");
        assert_eq!(
            ask_once(gw.tcp, &f).await.unwrap(),
            expected_ack(&format!("{seq}L0#1234"))
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
    let (_, m) = gw.get("/metrics").await;
    assert_eq!((reads(&m, "all"), reads(&m, "one")), (1.0, 0.0), "{m}");
    // Unknown to the running gateway: NAK.
    let f = frame(TokenKind::AdmCid, "0001", "BEEF", "#BEEF|1131 01 001");
    assert!(is_nak_now(&ask_once(gw.tcp, &f).await.unwrap()));
    let (ok, out, err) = vakt(&[
        "add",
        "--account",
        "beef",
        "--name",
        "Bageriet",
        "--key-ascii",
        "abcdefghijklmnop",
        "--quirk",
        "hex-sequence",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"account\":\"beef\"") || out.contains("\"account\":\"BEEF\""),
        "{out}"
    );
    assert!(
        !out.contains("abcdefghijklmnop"),
        "the key is never printed"
    );
    // The running gateway sees the new site within site_cache_secs: the added row moved the
    // sites' epoch, so every site was read again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        ask_once(gw.tcp, &f).await.unwrap(),
        expected_ack("0001L0#BEEF")
    );
    let (_, m) = gw.get("/metrics").await;
    assert_eq!((reads(&m, "all"), reads(&m, "one")), (2.0, 1.0), "{m}");
    // A changed site (the same account added again, renamed) moves it too. The same site
    // given again as stored changes nothing, so nothing is read: every start upserts the
    // configured sites.
    for reads_after in [3.0, 3.0] {
        let (ok, _, err) = vakt(&[
            "add",
            "--account",
            "beef",
            "--name",
            "Bageriet 2",
            "--key-ascii",
            "abcdefghijklmnop",
            "--quirk",
            "hex-sequence",
        ]);
        assert!(ok, "{err}");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (_, m) = gw.get("/metrics").await;
        assert_eq!(reads(&m, "all"), reads_after, "{m}");
    }
    let (ok, out, _) = vakt(&["list"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 7);
    let (ok, out, _) = vakt(&["show", "BEEF"]);
    assert!(
        ok && out.contains("Bageriet") && out.contains("\"bits\": 128"),
        "{out}"
    );
    // Bad input is refused with a reason.
    let (ok, _, err) = vakt(&["add", "--account", "XYZ"]);
    assert!(!ok && err.contains("not 3-16 hex digits"), "{err}");
    let (ok, _, err) = vakt(&["add", "--account", "1111", "--key-hex", "0011"]);
    assert!(!ok && err.contains("key"), "{err}");
    let (ok, _, err) = vakt(&["add", "--account", "1111", "--encryption-required"]);
    assert!(!ok && err.contains("needs a key"), "{err}");
    let (ok, out, _) = vakt(&["remove", "beef"]);
    assert!(ok && out.contains("removed BEEF"));
    let (ok, _, err) = vakt(&["remove", "beef"]);
    assert!(!ok && err.contains("no site"), "{err}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let f = frame(TokenKind::AdmCid, "0002", "BEEF", "#BEEF|1131 01 001");
    assert!(is_nak_now(&ask_once(gw.tcp, &f).await.unwrap()));
    // Its stored events stay.
    assert_eq!(gw.events("BEEF").await.len(), 1);
}

async fn connection_limits(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let config = base_config(&db.url).replace(
        "[receiver]\n",
        "[receiver]\nmax_connections = 2\nidle_timeout_secs = 3\nmax_frame_bytes = 200\n",
    );
    let gw = Gateway::start(&db.scratch.0, &config);
    let ok = |seq: &str| frame(TokenKind::AdmCid, seq, PLAIN, "#1234|1131 01 001");
    let mut a = TcpStream::connect(gw.tcp).await.unwrap();
    let mut b = TcpStream::connect(gw.tcp).await.unwrap();
    assert!(ask(&mut a, &ok("0001")).await.is_some());
    assert!(ask(&mut b, &ok("0002")).await.is_some());
    // A third connection is closed at once.
    let mut c = TcpStream::connect(gw.tcp).await.unwrap();
    let _ = c.write_all(&ok("0003")).await;
    assert_eq!(read_answer(&mut c, NO_ANSWER_WAIT).await, None);
    // Over-long frame: dropped, no answer, connection goes on.
    let long = frame(
        TokenKind::SiaDcs,
        "0004",
        PLAIN,
        &format!("#1234|Nri1/BA01^{}^", "x".repeat(300)),
    );
    assert_eq!(ask_with_wait(&mut a, &long).await, None);
    assert!(ask(&mut a, &ok("0005")).await.is_some());
    // Idle connections are closed after idle_timeout_secs, which frees a slot; one that
    // sends a frame every second meanwhile stays open past its first idle_timeout_secs.
    for seq in ["0007", "0008", "0009", "0010"] {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(
            ask(&mut b, &ok(seq)).await.is_some(),
            "busy connection answered"
        );
    }
    let mut buf = [0u8; 8];
    assert_eq!(
        tokio::io::AsyncReadExt::read(&mut a, &mut buf)
            .await
            .unwrap_or(0),
        0,
        "idle connection closed"
    );
    assert!(
        ask(&mut b, &ok("0011")).await.is_some(),
        "busy connection still open"
    );
    let mut d = TcpStream::connect(gw.tcp).await.unwrap();
    assert!(ask(&mut d, &ok("0006")).await.is_some());
    let (_, m) = gw.get("/metrics").await;
    assert!(
        m.contains(r#"vakt_connections_refused_total{listener="tcp"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"vakt_framing_errors_total{transport="tcp",reason="oversize"} 1"#),
        "{m}"
    );
}

/// The CPUs in a `Cpus_allowed_list` line ("0-1,3").
fn cpu_list(s: &str) -> Vec<usize> {
    s.trim()
        .split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// The CPUs a process or thread may run on, from its `status` file under /proc.
fn allowed_cpus(status: &std::path::Path) -> Vec<usize> {
    std::fs::read_to_string(status)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(cpu_list)
        .unwrap()
}

/// Each thread of `pid`: its name and the CPUs it may run on.
fn threads(pid: u32) -> Vec<(String, Vec<usize>)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| {
            let dir = t.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap();
            (name.trim().to_owned(), allowed_cpus(&dir.join("status")))
        })
        .collect()
}

/// `[receiver] writer_cpu`: the writer thread (and on SQLite the connection it opens) runs on
/// that CPU alone, every other thread of vakt on the rest; frames are stored and answered as
/// ever. A CPU the process may not use stops the start with the reason.
async fn writer_cpu(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let cpus = allowed_cpus("/proc/self/status".as_ref());
    assert!(cpus.len() >= 2, "this test needs two CPUs, has {cpus:?}");
    let cpu = *cpus.last().unwrap();
    let config =
        base_config(&db.url).replace("[receiver]\n", &format!("[receiver]\nwriter_cpu = {cpu}\n"));
    let gw = Gateway::start(&db.scratch.0, &config);
    send_burglaries(gw.tcp, 5).await;
    assert_eq!(gw.events(PLAIN).await.len(), 5);
    let threads = threads(gw.pid());
    let on_writer_cpu: Vec<&str> = threads
        .iter()
        .filter(|(_, allowed)| allowed.as_slice() == [cpu])
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(on_writer_cpu.contains(&"vakt-writer"), "{threads:?}");
    if backend == Backend::Sqlite {
        // The writer's SQLite connection, and the thread that fsyncs its WAL.
        assert!(on_writer_cpu.contains(&"sqlx-sqlite-wor"), "{threads:?}");
        assert!(on_writer_cpu.contains(&"vakt-walsync"), "{threads:?}");
    }
    for (name, allowed) in &threads {
        if allowed.as_slice() != [cpu] {
            assert!(
                !allowed.contains(&cpu),
                "{name} may run on the writer's CPU: {threads:?}"
            );
        }
    }
    assert!(
        threads.iter().any(|(name, _)| name == "tokio-rt-worker"),
        "{threads:?}"
    );
    drop(gw);

    // A CPU this process may not use: vakt does not start, and says why.
    let bad = base_config(&db.url).replace("[receiver]\n", "[receiver]\nwriter_cpu = 100000\n");
    let path = db.scratch.0.join("bad-cpu.toml");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vakt"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("writer_cpu = 100000, but this process may only use CPUs"),
        "{err}"
    );
}

/// The gateway turns transparent huge pages off for itself (`no_huge_pages` in main.rs): with
/// them, a first write to a fresh 2 MiB page held the writer, and the ACKs behind it, for
/// milliseconds. The kernel shows the process's setting in its status file.
async fn no_transparent_huge_pages(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = Gateway::start(&db.scratch.0, &base_config(&db.url));
    send_burglaries(gw.tcp, 2).await;
    assert_eq!(gw.events(PLAIN).await.len(), 2);
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    assert!(
        status.lines().any(|l| l == "THP_enabled:\t0"),
        "huge pages not off:\n{status}"
    );
}
