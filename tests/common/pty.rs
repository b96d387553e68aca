//! Pseudo-terminal pairs standing in for serial hardware: `socat` links two ptys, vakt opens
//! one end as its device, the test drives the other end as the receiver or the automation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

/// A pty pair: `device` for vakt, `peer` for the test.
pub struct PtyPair {
    child: Option<Child>,
    pub device: PathBuf,
    pub peer: PathBuf,
}

/// `socat` must be installed (Debian package `socat`); `.ci/run` installs it.
fn socat() -> Command {
    let ok = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "socat is required for the serial tests (apt-get install socat)"
    );
    Command::new("socat")
}

impl PtyPair {
    /// Links `dir/NAME-dev` (vakt's side) and `dir/NAME-peer` (the test's side).
    pub fn new(dir: &Path, name: &str) -> Self {
        let device = dir.join(format!("{name}-dev"));
        let peer = dir.join(format!("{name}-peer"));
        let mut p = Self {
            child: None,
            device,
            peer,
        };
        p.start();
        p
    }

    /// (Re)starts socat with the same link names: the device comes back.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = socat()
            .arg(format!(
                "pty,raw,echo=0,link={}",
                self.device.to_str().unwrap()
            ))
            .arg(format!(
                "pty,raw,echo=0,link={}",
                self.peer.to_str().unwrap()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn socat");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(self.device.exists() && self.peer.exists()) {
            assert!(Instant::now() < deadline, "socat did not create the ptys");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills socat: both ptys and their links vanish, as an unplugged USB adapter does.
    pub fn unplug(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.device.exists() || self.peer.exists() {
            assert!(Instant::now() < deadline, "socat left its links behind");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Opens the test's end.
    pub fn open_peer(&self) -> SerialStream {
        tokio_serial::new(self.peer.to_str().unwrap(), 9600)
            .open_native_async()
            .expect("open the peer pty")
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads what arrives within `wait` (returns early once `want` bytes came).
pub async fn read_for(s: &mut SerialStream, want: usize, wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 512];
    while out.len() < want {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("pty read failed: {e}"),
        }
    }
    out
}

/// Writes `packet` and returns the one-byte answer, if any came within `wait`.
pub async fn send(s: &mut SerialStream, packet: &[u8], wait: Duration) -> Option<u8> {
    s.write_all(packet).await.expect("pty write");
    s.flush().await.unwrap();
    read_for(s, 1, wait).await.first().copied()
}
