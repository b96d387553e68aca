//! The Sur-Gard automation output end to end: panels send DC-09 frames to a real `vakt serve`,
//! and a fake automation program on a TCP port (vakt connects to it) receives the events as
//! Sur-Gard packets. It ACKs, NAKs, goes silent, goes away and comes back; the order and the
//! completeness of what it received are checked, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vakt_protocol::dc09::TokenKind;

const HEARTBEAT: &[u8] = b"1011           @    ";

/// What the fake automation answers to the next packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ack,
    /// NAK the next event packet, then ACK.
    NakOnce,
    /// Say nothing to the next event packet, then ACK.
    SilentOnce,
}

/// Automation software listening for a receiver's output.
struct Automation {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Every packet received (without DC4), answered or not, heartbeats included.
    got: Arc<Mutex<Vec<Vec<u8>>>>,
    task: Option<JoinHandle<()>>,
}

impl Automation {
    async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = Self {
            addr: l.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(Mode::Ack)),
            got: Arc::new(Mutex::new(Vec::new())),
            task: None,
        };
        a.serve(l);
        a
    }

    fn serve(&mut self, l: TcpListener) {
        let (mode, got) = (self.mode.clone(), self.got.clone());
        self.task = Some(tokio::spawn(async move {
            // One connection at a time, as automation ports take.
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = Vec::new();
                let mut b = [0u8; 256];
                loop {
                    let n = match s.read(&mut b).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&b[..n]);
                    while let Some(end) = buf.iter().position(|&c| c == 0x14) {
                        let packet: Vec<u8> = buf.drain(..=end).take(end).collect();
                        // Heartbeats are always acknowledged: the scripted NAK or silence
                        // is for the next event packet, whenever a heartbeat slips in between.
                        let m = if packet.as_slice() == HEARTBEAT {
                            Mode::Ack
                        } else {
                            std::mem::replace(&mut *mode.lock().unwrap(), Mode::Ack)
                        };
                        got.lock().unwrap().push(packet);
                        let answer: &[u8] = match m {
                            Mode::Ack => &[0x06],
                            Mode::NakOnce => &[0x15],
                            Mode::SilentOnce => &[],
                        };
                        if s.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }

    /// The automation goes away: its port is closed and its connection dropped.
    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Comes back on the same port.
    async fn restart(&mut self) {
        let l = TcpListener::bind(self.addr).await.unwrap();
        self.serve(l);
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    /// Packets other than heartbeats, in arrival order.
    fn events(&self) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.as_slice() != HEARTBEAT)
            .cloned()
            .collect()
    }

    fn heartbeats(&self) -> usize {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.as_slice() == HEARTBEAT)
            .count()
    }

    async fn wait_events(&self, n: usize, gw: &Gateway) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.events();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "automation got {} of {n} packets: {:?}\n{}",
                got.len(),
                got.iter().map(|p| show(p)).collect::<Vec<_>>(),
                gw.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn output_config(db_url: &str, automation: SocketAddr) -> String {
    base_config(db_url)
        + &format!(
            "\n[[output]]\nname = \"automation\"\nkind = \"surgard\"\nconnect = \"{automation}\"\n\
             ack_timeout_secs = 0.5\nheartbeat_secs = 1\n"
        )
}

/// Sends a Contact ID event for account 1234, zone `zone`, and checks it is acknowledged.
async fn cid(gw: &Gateway, seq: u32, zone: u32) -> Vec<u8> {
    let data = format!("#1234|1130 01 {zone:03}");
    let f = frame(TokenKind::AdmCid, &format!("{seq:04}"), PLAIN, &data);
    let answer = ask_once(gw.tcp, &f).await.expect("an answer");
    assert!(show(&answer).contains("ACK"), "{}", show(&answer));
    format!("5011 181234E13001{zone:03}").into_bytes()
}

on_both_databases!(forwards_in_order_through_nak_silence_and_outage);

async fn forwards_in_order_through_nak_silence_and_outage(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut auto = Automation::start().await;
    let gw = Gateway::start(&db.scratch.0, &output_config(&db.url, auto.addr));
    let mut want = Vec::new();

    // Contact ID and a SIA block with two events (one packet: the block as received).
    want.push(cid(&gw, 1, 1).await);
    let f = frame(
        TokenKind::SiaDcs,
        "0002",
        PLAIN2,
        "#ABC123|Nri1/BA501/BR501",
    );
    assert!(show(&ask_once(gw.tcp, &f).await.unwrap()).contains("ACK"));
    want.push(b"S011[#ABC123|Nri1/BA501/BR501]".to_vec());
    want.push(cid(&gw, 3, 2).await);
    assert_eq!(auto.wait_events(3, &gw).await, want);

    // NAK: the same packet again.
    auto.set(Mode::NakOnce);
    want.push(cid(&gw, 4, 4).await);
    let got = auto.wait_events(5, &gw).await;
    assert_eq!(got[3], want[3]);
    assert_eq!(got[4], want[3], "re-sent after NAK");

    // Silence: the same packet again after the ACK timeout.
    auto.set(Mode::SilentOnce);
    want.push(cid(&gw, 5, 5).await);
    let got = auto.wait_events(7, &gw).await;
    assert_eq!(got[5], want[4]);
    assert_eq!(got[6], want[4], "re-sent after silence");

    // Idle: heartbeats.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(auto.heartbeats() >= 1, "no heartbeat while idle");

    // The automation goes away; panels are still acknowledged, events wait in the database.
    auto.stop();
    for i in 0..5 {
        want.push(cid(&gw, 10 + i, 10 + i).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backlog = gw
        .metric("vakt_output_backlog{output=\"automation\"}")
        .await;
    assert_eq!(backlog, Some(5.0), "{}", gw.get("/metrics").await.1);
    auto.restart().await;
    let got = auto.wait_events(12, &gw).await;
    // Everything, in order, each event once after its ACK (the NAKed and unanswered sends
    // are the only repeats).
    let mut expected = want[..4].to_vec();
    expected.insert(4, want[3].clone());
    expected.push(want[4].clone());
    expected.push(want[4].clone());
    expected.extend_from_slice(&want[5..]);
    assert_eq!(
        got.iter().map(|p| show(p)).collect::<Vec<_>>(),
        expected.iter().map(|p| show(p)).collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(auto.events().len(), 12, "nothing sent twice after its ACK");
    assert!(
        gw.log().contains("automation not reachable"),
        "{}",
        gw.log()
    );
}

/// After a restart the output goes on from the last packet the automation acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_restart_without_resending() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auto = Automation::start().await;
    let config = output_config(&db.url, auto.addr);
    let mut gw = Gateway::start(&db.scratch.0, &config);
    let mut want = Vec::new();
    for i in 0..3 {
        want.push(cid(&gw, 1 + i, 1 + i).await);
    }
    assert_eq!(auto.wait_events(3, &gw).await, want);
    assert!(gw.signal("TERM").success());
    let gw = Gateway::start(&db.scratch.0, &config);
    for i in 0..2 {
        want.push(cid(&gw, 20 + i, 20 + i).await);
    }
    assert_eq!(auto.wait_events(5, &gw).await, want);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(auto.events(), want, "nothing skipped, nothing sent twice");
}
