//! Shared by the end-to-end tests: a real `vakt serve` process on loopback ports, a real
//! database (a fresh SQLite file, or a fresh PostgreSQL database), and DC-09 client helpers.
#![allow(dead_code, unreachable_pub, unused_macros)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
pub mod pty;

/// Runs an async test body once per database backend: `on_both_databases!(name, …)` makes the
/// tests `name::sqlite` and `name::postgres`, each calling `name(Backend)`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await
            }
        }
    )*};
}

use vakt::store::Db;
use vakt_protocol::dc09::{
    encode_message, encode_nak, Dialect, Key, Message, Timestamp, TokenKind,
};

/// The database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where PostgreSQL tests connect to create their databases.
fn pg_admin_url() -> String {
    std::env::var("VAKT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}_{}_{n}_{t:x}", std::process::id())
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vakt-{}", unique(tag)));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty database.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub scratch: Scratch,
    pg_name: Option<String>,
}

impl TestDb {
    /// A new database, or `None` (with the reason printed) when PostgreSQL is not reachable
    /// and `VAKT_REQUIRE_POSTGRES` is not set. CI sets it, so there a missing server fails.
    pub async fn new(backend: Backend) -> Option<Self> {
        let scratch = Scratch::new("db");
        match backend {
            Backend::Sqlite => Some(Self {
                backend,
                url: format!("sqlite://{}", scratch.0.join("vakt.db").display()),
                scratch,
                pg_name: None,
            }),
            Backend::Postgres => {
                let admin = pg_admin_url();
                let pool = match sqlx::PgPool::connect(&admin).await {
                    Ok(p) => p,
                    Err(e) => {
                        if std::env::var_os("VAKT_REQUIRE_POSTGRES").is_some() {
                            panic!("PostgreSQL at {admin} is required (VAKT_REQUIRE_POSTGRES) but unreachable: {e}");
                        }
                        eprintln!("SKIPPED: PostgreSQL test, {admin} unreachable ({e}); set VAKT_TEST_POSTGRES to a server where databases can be created");
                        return None;
                    }
                };
                let name = unique("vakt_t").to_lowercase();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .expect("CREATE DATABASE");
                pool.close().await;
                let base = admin.rsplit_once('/').unwrap().0;
                Some(Self {
                    backend,
                    url: format!("{base}/{name}"),
                    scratch,
                    pg_name: Some(name),
                })
            }
        }
    }

    /// A connection of the test's own (migrates, like the gateway).
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url, 2).await.expect("test db connect")
    }

    /// Everything the database holds, as bytes to search: the SQLite files (database and
    /// write-ahead log), or `pg_dump` of the PostgreSQL database.
    pub fn dump(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut all = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                        all.extend(b);
                    }
                }
                assert!(!all.is_empty(), "no SQLite file at {path}");
                all
            }
            Backend::Postgres => {
                let out = Command::new("pg_dump")
                    .arg(&self.url)
                    .output()
                    .expect("pg_dump");
                assert!(
                    out.status.success(),
                    "pg_dump: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }

    /// Runs one SQL statement on the database (trigger tricks, checks).
    pub async fn exec(&self, sql: &str) {
        let db = self.connect().await;
        match &db {
            Db::Sqlite { write, .. } => {
                sqlx::raw_sql(sql).execute(write).await.expect(sql);
            }
            Db::Postgres(p) => {
                sqlx::raw_sql(sql).execute(p).await.expect(sql);
            }
        }
        db.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Best effort, synchronously: psql is on every machine that runs PostgreSQL tests.
            let _ = Command::new("psql")
                .arg(pg_admin_url())
                .args([
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A running `vakt serve`.
pub struct Gateway {
    child: Option<Child>,
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    pub http: SocketAddr,
    pub stderr: PathBuf,
    pub config: PathBuf,
    pub stdout_tail: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// An admin's bearer token (`vakt operator add` at start), sent by `get`, `post`, `json`.
    pub token: String,
}

/// Runs `vakt` with `args`, returning stdout (panics with stderr on failure).
pub fn vakt_cli(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vakt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vakt");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "vakt {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sites every test gateway has.
pub const PLAIN: &str = "1234";
pub const PLAIN2: &str = "ABC123";
pub const AES: &str = "5678";
pub const AES_KEY_HEX: &str = "000102030405060708090A0B0C0D0E0F";
pub const AES256: &str = "9ABC";
pub const AES256_KEY_ASCII: &str = "0123456789abcdef0123456789ABCDEF";
pub const HEXSEQ: &str = "4321";
pub const PINNED: &str = "7777";

pub fn base_config(db_url: &str) -> String {
    format!(
        r#"
[database]
url = "{db_url}"

[http]
bind = "127.0.0.1:0"

[receiver]
store_timeout_secs = 5

[[listener]]
name = "tcp"
kind = "tcp"
bind = "127.0.0.1:0"

[[listener]]
name = "udp"
kind = "udp"
bind = "127.0.0.1:0"

[[site]]
account = "{PLAIN}"
name = "plain"

[[site]]
account = "{PLAIN2}"
name = "plain two"

[[site]]
account = "{AES}"
name = "aes-128"
key_hex = "{AES_KEY_HEX}"
encryption_required = true

[[site]]
account = "{AES256}"
name = "aes-256 ascii key"
key_ascii = "{AES256_KEY_ASCII}"

[[site]]
account = "{HEXSEQ}"
name = "dc09-spt"
quirks = ["hex-sequence"]

[[site]]
account = "{PINNED}"
name = "pinned to R12 L3"
receiver = "12"
prefix = "3"
"#
    )
}

impl Gateway {
    /// Starts `vakt serve` on `config_text` and waits until it is ready.
    pub fn start(dir: &std::path::Path, config_text: &str) -> Self {
        let config = dir.join(format!("{}.toml", unique("vakt")));
        std::fs::write(&config, config_text).unwrap();
        let stderr = config.with_extension("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vakt"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn vakt");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut tcp, mut udp, mut http) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "vakt did not get ready");
            let Some(Ok(line)) = lines.next() else {
                let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("vakt exited before ready: {:?}\n{log}", child.try_wait());
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["vakt:", "listener", _, "tcp", a] => tcp = Some(a.parse().unwrap()),
                ["vakt:", "listener", _, "udp", a] => udp = Some(a.parse().unwrap()),
                ["vakt:", "http", url] => {
                    http = Some(url.trim_start_matches("http://").parse().unwrap())
                }
                ["vakt:", "ready"] => break,
                _ => {}
            }
        }
        let tail = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let t2 = tail.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                t2.lock().unwrap().push(line);
            }
        });
        let admin = unique("admin");
        let token = vakt_cli(
            &[
                "operator",
                "add",
                &admin,
                "--role",
                "admin",
                "--config",
                config.to_str().unwrap(),
            ],
            "",
        )
        .trim()
        .to_owned();
        Self {
            token,
            child: Some(child),
            tcp: tcp.expect("tcp listener"),
            udp: udp.unwrap_or(([127, 0, 0, 1], 9).into()),
            http: http.expect("http"),
            stderr,
            config,
            stdout_tail: tail,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal (`TERM`, `KILL`, …) and waits for the process to end.
    pub fn signal(&mut self, sig: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "vakt did not exit after SIG{sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// A new operator (`vakt operator add`, as the engineer would): their token.
    pub fn add_operator(&self, name: &str, role: &str) -> String {
        let out = vakt_cli(
            &[
                "operator",
                "add",
                name,
                "--role",
                role,
                "--config",
                self.config.to_str().unwrap(),
            ],
            "",
        );
        out.trim().to_owned()
    }

    /// GET on the HTTP API as the admin: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_request(self.http, "GET", path, "", Some(&self.token)).await
    }

    /// POST with a JSON body as the admin: (status, parsed body).
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send_as(&self.token, "POST", path, body).await
    }

    /// POST with a JSON body as the holder of `token`.
    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.send_as(token, "POST", path, body).await
    }

    /// Any method with a JSON body as the holder of `token`: (status, parsed body).
    pub async fn send_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = http_request(self.http, method, path, &body, Some(token)).await;
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, v)
    }

    /// GET returning JSON.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// A metric's value from `/metrics`: the first line starting with `name_and_labels`.
    pub async fn metric(&self, name_and_labels: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Events of one account, newest first.
    pub async fn events(&self, account: &str) -> Vec<serde_json::Value> {
        let v = self
            .json(&format!("/api/events?account={account}&limit=1000"))
            .await;
        v["events"].as_array().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET (the tests need no HTTP client crate).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_send(addr, "GET", path, "").await
}

/// A minimal HTTP/1.1 request with a JSON body and no token: (status, body).
pub async fn http_send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_request(addr, method, path, body, None).await
}

/// A minimal HTTP/1.1 request with a JSON body, and a bearer token when given.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// A Server-Sent Events client: `next` returns each `(event, data)` as it arrives.
pub struct SseClient {
    stream: TcpStream,
    buf: String,
}

impl SseClient {
    pub async fn connect(addr: SocketAddr, path: &str, token: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer {token}\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
        Self {
            stream,
            buf: String::new(),
        }
    }

    /// The next event whose name is `kind` and whose data satisfies `want`, within `wait`.
    pub async fn wait_for(
        &mut self,
        kind: &str,
        wait: Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Chunked framing lines and comments are skipped; an event is `event:` + `data:`.
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = "message".to_owned();
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = serde_json::from_str::<serde_json::Value>(v.trim()).ok();
                    }
                }
                if let Some(d) = data {
                    if name == kind && want(&d) {
                        return Some(d);
                    }
                }
            }
            let mut chunk = [0u8; 8192];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return None,
            };
            // Drop the chunk-size lines of chunked encoding: they never start with a field name.
            let text = String::from_utf8_lossy(&chunk[..n]).replace("\r\n", "\n");
            self.buf.push_str(&text);
        }
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A plain request frame.
pub fn frame(token: TokenKind<'_>, seq: &str, account: &str, data: &str) -> Vec<u8> {
    frame_with(token, seq, None, "0", account, data, None, None)
}

/// Any request frame; encrypted when `key` is given (with a fresh random pad).
#[allow(clippy::too_many_arguments)]
pub fn frame_with(
    token: TokenKind<'_>,
    seq: &str,
    receiver: Option<&str>,
    prefix: &str,
    account: &str,
    data: &str,
    timestamp: Option<i64>,
    key: Option<&Key>,
) -> Vec<u8> {
    let msg = Message {
        token,
        sequence: seq,
        receiver,
        prefix,
        account,
        data: data.as_bytes(),
        xdata: &[],
        timestamp: timestamp.map(Timestamp::from_unix),
    };
    let mut out = BytesMut::new();
    encode_message(
        &msg,
        key.map(|k| (k, rand::random::<[u8; 16]>())),
        Dialect::STANDARD,
        &mut out,
    );
    out.to_vec()
}

/// Reads one answer (up to CR) or `None` if nothing complete arrives within `wait`.
pub async fn read_answer(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let mut b = [0u8; 1];
        match tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            Ok(Ok(1)) => {
                out.push(b[0]);
                if b[0] == b'\r' {
                    return Some(out);
                }
            }
            _ => return None,
        }
    }
}

/// Sends one frame on a connection and reads the answer.
pub async fn ask(s: &mut TcpStream, frame: &[u8]) -> Option<Vec<u8>> {
    s.write_all(frame).await.unwrap();
    read_answer(s, Duration::from_secs(10)).await
}

/// Sends one frame on a new connection (the way most panels do) and reads the answer.
pub async fn ask_once(addr: SocketAddr, frame: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    ask(&mut s, frame).await
}

/// One datagram and its answer.
pub async fn ask_udp(addr: SocketAddr, frame: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(frame, addr).await.unwrap();
    let mut buf = [0u8; 2048];
    match tokio::time::timeout(wait, s.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => {
            assert_eq!(from, addr, "answer must come from the listener's address");
            Some(buf[..n].to_vec())
        }
        _ => None,
    }
}

/// Whether `answer` is exactly the NAK vakt must send at a receiver time within a few
/// seconds of now.
pub fn is_nak_now(answer: &[u8]) -> bool {
    let now = now_unix();
    (now - 5..=now + 1).any(|t| {
        let mut nak = BytesMut::new();
        encode_nak(Timestamp::from_unix(t), Dialect::STANDARD, &mut nak);
        nak[..] == answer[..]
    })
}

/// The exact ACK for a plain frame: `"ACK"` + echoed header + `[]`, with CRC and length.
pub fn expected_ack(echo: &str) -> Vec<u8> {
    expected_reply("ACK", echo)
}

pub fn expected_reply(token: &str, echo: &str) -> Vec<u8> {
    let body = format!("\"{token}\"{echo}[]");
    let crc = vakt_protocol::crc::crc16_arc(body.as_bytes());
    format!("\n{crc:04X}{:04X}{body}\r", body.len()).into_bytes()
}

pub fn show(b: &[u8]) -> String {
    vakt::escape::escape(b)
}
