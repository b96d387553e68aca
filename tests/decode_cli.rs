//! `vakt decode` as a user runs it: the real binary, frames on stdin, JSON lines on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

fn decode(args: &[&str], input: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vakt"))
        .arg("decode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vakt runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("vakt exits");
    assert!(
        out.status.success(),
        "vakt decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn plain_contact_id_frame_is_acked_with_its_events() {
    let out = decode(
        &["--now", "20:59:45,02-20-2024"],
        "\\nF68B003B\"ADM-CID\"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\\r\n",
    );
    let r = &out[0];
    assert_eq!(r["format"], "dc09");
    assert_eq!(r["ok"], true);
    assert_eq!(r["response"], "ACK");
    assert_eq!(r["response_frame"], "\\n4C270012\"ACK\"0028L0#9757[]\\r");
    assert_eq!(r["crc"]["valid"], true);
    assert_eq!(r["header"]["account"], "9757");
    assert_eq!(r["events"][0]["class"], "test");
    assert_eq!(r["events"][0]["code"], "602");
    assert_eq!(r["events"][0]["mapped_code"], "RP");
}

#[test]
fn rejections_name_their_reason_and_answer() {
    let input = [
        // CRC wrong (whitespace lost in a copy): no answer.
        "\\n9618004D\"SIA-DCS\"7960L0#123456[#123456|Nri1CL0^VX FRONTE ^]_22:40:48,04-11-2021\\r",
        // dc09-spt's hex sequence: DUH echoing the header.
        "\\n4AB40027\"ADM-CID\"000AL0#1234[#1234|1110 00 003]\\r",
        // Fresh in the frame, stale for the receiver clock given: NAK with the receiver time.
        "\\n3F60003C\"SIA-DCS\"0001L0#51449[#51449|Nri0000/LR]_21:26:19,12-20-2023\\r",
        // A raw DC-05 string with a wrong check digit.
        "1234181131010159",
    ]
    .join("\n");
    let out = decode(&["--now", "21:30:00,12-20-2023"], &input);
    assert_eq!(
        (
            out[0]["ok"].clone(),
            out[0]["response"].clone(),
            out[0]["error"]["kind"].clone()
        ),
        (false.into(), "none".into(), "crc_mismatch".into())
    );
    assert_eq!(out[0]["crc"]["computed"], "B7C9");
    assert_eq!(out[1]["response"], "DUH");
    assert_eq!(out[1]["error"]["kind"], "bad_sequence");
    assert_eq!(
        out[1]["response_frame"],
        format!("\\n{}\"DUH\"000AL0#1234[]\\r", duh_prefix("000AL0#1234"))
    );
    assert_eq!(out[2]["response"], "NAK");
    assert_eq!(out[2]["error"]["kind"], "stale_timestamp");
    assert_eq!(out[2]["timestamp_offset_secs"], 221);
    assert!(out[2]["response_frame"]
        .as_str()
        .expect("frame")
        .ends_with("\"NAK\"0000R0L0A0[]_21:30:00,12-20-2023\\r"));
    assert_eq!(
        out[2]["events"][0]["class"], "restore",
        "events still shown for a rejected frame"
    );
    assert_eq!(
        (out[3]["format"].clone(), out[3]["error"]["kind"].clone()),
        ("contact_id".into(), "bad_checksum".into())
    );
}

/// CRC and length of a DUH body, computed here independently of the crate.
fn duh_prefix(echo: &str) -> String {
    let body = format!("\"DUH\"{echo}[]");
    let mut crc = 0u16;
    for b in body.bytes() {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    format!("{crc:04X}{:04X}", body.len())
}

#[test]
fn encrypted_frame_opens_with_the_key_and_fails_with_another() {
    let frame = "\\n7FF90053\"*NULL\"0000L0#5678[7B51B587B367987C27DFDC6D6D9DBE67E39A7AD5767C5E1D072BC7A995174067\\r\n";
    let ok = decode(
        &[
            "--key-ascii",
            "0123456789ABCDEF",
            "--now",
            "13:55:26,11-24-2026",
        ],
        frame,
    );
    assert_eq!(
        (ok[0]["ok"].clone(), ok[0]["response"].clone()),
        (true.into(), "*ACK".into())
    );
    assert_eq!(ok[0]["encryption"]["pad_length"], 10);
    assert_eq!(ok[0]["events"][0]["class"], "link_test");
    assert!(ok[0]["response_frame"]
        .as_str()
        .expect("frame")
        .starts_with("\\n"));
    let wrong = decode(
        &[
            "--key",
            "00112233445566778899AABBCCDDEEFF",
            "--now",
            "13:55:26,11-24-2026",
        ],
        frame,
    );
    assert_eq!(
        (
            wrong[0]["response"].clone(),
            wrong[0]["error"]["kind"].clone()
        ),
        ("NAK".into(), "decrypt_failed".into())
    );
    let none = decode(&["--now", "13:55:26,11-24-2026"], frame);
    assert_eq!(none[0]["error"]["kind"], "no_key");
}

#[test]
fn serial_formats_are_told_apart() {
    let input = [
        "5011 181234E12101001\\x14",
        "S01001[#1234|Nda04-22-94ti16:02:15/id22/CL/PA31]\\u0014",
        "1011           @    \\x14",
        "11 1234 18 E131 01 C015",
        "6556183402A1015D",
    ]
    .join("\n");
    let out = decode(&[], &input);
    let formats: Vec<&str> = out
        .iter()
        .map(|r| r["format"].as_str().expect("format"))
        .collect();
    assert_eq!(
        formats,
        ["surgard", "surgard", "surgard", "ademco685", "contact_id"]
    );
    assert_eq!(out[0]["events"][0]["kind"], "duress");
    assert_eq!(out[0]["events"][0]["user"], "001");
    assert_eq!(out[1]["events"][0]["code"], "CL");
    assert_eq!(out[1]["events"][0]["user"], "22");
    assert_eq!(out[1]["events"][1]["zone"], "31");
    assert_eq!(out[2]["protocol"], "heartbeat");
    assert_eq!(out[3]["events"][0]["zone"], "015");
    assert_eq!(out[4]["events"][0]["partition"], "01");
    assert!(out
        .iter()
        .all(|r| r["ok"] == true && r["response"] == "ACK"));
}

#[test]
fn raw_frames_piped_with_real_control_bytes() {
    let out = decode(
        &["--no-plain-timestamp-check"],
        "\n9EC40027\"ADM-CID\"0001L0#1002[#1002|1602 00 001]\r\n1EF20013\"NULL\"0000L0#1234[]\r",
    );
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r["response"] == "ACK"), "{out:?}");
}

#[test]
fn a_bare_body_is_framed_with_its_crc_and_length() {
    // The frame of the vector above, written without LF, CRC, length and CR.
    let out = decode(
        &["--now", "20:59:45,02-20-2024"],
        "\"ADM-CID\"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\n",
    );
    let r = &out[0];
    assert_eq!(
        r["frame"],
        "\\nF68B003B\"ADM-CID\"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\\r"
    );
    assert_eq!(r["ok"], true);
    assert_eq!(r["response"], "ACK");
}
