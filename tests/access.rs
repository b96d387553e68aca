//! Site codes, contact persons, operators and the audit log end to end (issue #6): a real
//! `vakt serve` on SQLite and PostgreSQL, operators added with `vakt operator add`, codes set
//! with `vakt site set-codes`, everything else over HTTP; and no code or token in clear text in
//! the log, the answers or the database.

#[macro_use]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vakt_protocol::dc09::TokenKind;

on_both_databases!(
    tokens_and_roles,
    verification_lockout_and_audit,
    revoking_alarms_with_codes,
    contacts_and_codes_need_a_verified_code,
);

const REVOKE: &str = "tulpan-2468";
const MAIN: &str = "blå häst 7913";
const WRONG: &str = "tulpan-2469";

/// Three wrong codes lock a site for two seconds; a verification lasts a minute.
fn config(db_url: &str) -> String {
    format!(
        "{}\n[codes]\nmax_failures = 3\nfailure_window_secs = 60\nlockout_secs = 2\nverified_for_secs = 60\n",
        base_config(db_url)
    )
}

/// A gateway whose site PLAIN has both codes (set from the CLI, as the engineer would).
fn start(db: &TestDb) -> Gateway {
    let gw = Gateway::start(&db.scratch.0, &config(&db.url));
    let out = vakt_cli(
        &[
            "site",
            "set-codes",
            PLAIN,
            "--config",
            gw.config.to_str().unwrap(),
        ],
        &format!("{REVOKE}\n{MAIN}\n"),
    );
    assert!(out.contains("set"), "{out}");
    gw
}

/// `vakt site show` tells whether codes are set, never the codes or their hashes.
fn shown_codes(gw: &Gateway, account: &str) -> Value {
    let out = vakt_cli(
        &[
            "site",
            "show",
            account,
            "--config",
            gw.config.to_str().unwrap(),
        ],
        "",
    );
    assert!(!out.contains("argon2"), "{out}");
    serde_json::from_str::<Value>(&out).unwrap()["codes"].clone()
}

async fn alarm(gw: &Gateway, seq: &str, zone: &str) -> i64 {
    let f = frame(
        TokenKind::AdmCid,
        seq,
        PLAIN,
        &format!("#1234|1130 01 {zone}"),
    );
    let a = ask_once(gw.tcp, &f).await.expect("an answer");
    assert!(show(&a).contains("\"ACK\""), "{}", show(&a));
    let q = gw.json("/api/alarms?state=open").await;
    q["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["zone"] == zone)
        .unwrap_or_else(|| panic!("an alarm for zone {zone}: {q}"))["id"]
        .as_i64()
        .unwrap()
}

async fn audit(gw: &Gateway, query: &str) -> Vec<Value> {
    gw.json(&format!("/api/audit?{query}")).await["audit"]
        .as_array()
        .unwrap()
        .clone()
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {v}"))
}

async fn tokens_and_roles(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = start(&db);
    let op = gw.add_operator("olle", "operator");

    let codes = shown_codes(&gw, PLAIN);
    assert_eq!(codes["revoke_code_set"], true, "{codes}");
    assert_eq!(codes["main_code_set"], true, "{codes}");
    assert_eq!(shown_codes(&gw, PLAIN2)["revoke_code_set"], false);

    // Open: /health and /metrics. Everything else needs a token.
    assert_eq!(http_get(gw.http, "/health").await.0, 200);
    assert_eq!(http_get(gw.http, "/metrics").await.0, 200);
    for path in [
        "/api/events",
        "/api/sites",
        &format!("/api/sites/{PLAIN}"),
        "/api/alarms",
        "/api/lines",
        "/api/stream",
        "/api/audit",
    ] {
        let (st, body) = http_get(gw.http, path).await;
        assert_eq!(st, 401, "{path}: {body}");
        assert!(body.contains("\"error\""), "{path}: {body}");
        let (st, body) = http_request(gw.http, "GET", path, "", Some("vakt_guess")).await;
        assert_eq!(st, 401, "{path}: {body}");
        assert!(body.contains("unknown or revoked token"), "{body}");
    }
    let (st, _) = http_request(gw.http, "GET", "/api/alarms", "", Some(&op)).await;
    assert_eq!(st, 200);

    // Admin only: audit, operators, sites.
    for (method, path, body) in [
        ("GET", "/api/audit", Value::Null),
        ("GET", "/api/operators", Value::Null),
        (
            "POST",
            "/api/operators",
            json!({"name": "x", "role": "admin"}),
        ),
        ("PUT", "/api/sites/ABCD", json!({"name": "new"})),
        ("DELETE", &format!("/api/sites/{PLAIN}"), Value::Null),
        ("DELETE", "/api/operators/olle", Value::Null),
    ] {
        let (st, v) = gw.send_as(&op, method, path, body).await;
        assert_eq!(st, 403, "{method} {path}: {v}");
        assert!(error_of(&v).contains("admin"), "{v}");
    }

    // An admin adds an operator over HTTP: the token comes once and works at once.
    let (st, v) = gw
        .post(
            "/api/operators",
            json!({"name": "carl", "role": "operator"}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let carl = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        http_request(gw.http, "GET", "/api/alarms", "", Some(&carl))
            .await
            .0,
        200
    );
    let (st, v) = gw
        .post(
            "/api/operators",
            json!({"name": "carl", "role": "operator"}),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = gw
        .post("/api/operators", json!({"name": "c d", "role": "boss"}))
        .await;
    assert_eq!(st, 400, "{v}");
    let list = gw.json("/api/operators").await;
    let names: Vec<&str> = list["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"carl") && names.contains(&"olle"), "{list}");
    assert!(!list.to_string().contains(&carl));
    // Removed: the token stops working; an admin cannot remove themselves.
    let (st, _) = gw
        .send_as(&gw.token, "DELETE", "/api/operators/carl", Value::Null)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        http_request(gw.http, "GET", "/api/alarms", "", Some(&carl))
            .await
            .0,
        401
    );
    let me = gw.json("/api/operators").await["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["role"] == "admin")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = gw
        .send_as(
            &gw.token,
            "DELETE",
            &format!("/api/operators/{me}"),
            Value::Null,
        )
        .await;
    assert_eq!(st, 409, "{v}");
    // A new token from the CLI replaces the old one.
    let config = gw.config.to_str().unwrap().to_owned();
    let new = vakt_cli(&["operator", "token", "olle", "--config", &config], "");
    let new = new.trim();
    assert_eq!(
        http_request(gw.http, "GET", "/api/alarms", "", Some(&op))
            .await
            .0,
        401
    );
    assert_eq!(
        http_request(gw.http, "GET", "/api/alarms", "", Some(new))
            .await
            .0,
        200
    );

    // An admin adds a site with a code hash made by `vakt site hash-code`: it verifies.
    let hash = vakt_cli(&["site", "hash-code"], "ekorre-5150\n");
    let (st, v) = gw
        .send_as(
            &gw.token,
            "PUT",
            "/api/sites/ABCD",
            json!({"name": "new site", "revoke_code_hash": hash.trim()}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["name"], "new site");
    assert!(!v.to_string().contains("argon2"), "{v}");
    let (st, v) = gw
        .post_as(
            new,
            "/api/sites/ABCD/verify",
            json!({"code": "ekorre-5150"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["level"], "revoke");
    let (st, v) = gw
        .send_as(
            &gw.token,
            "PUT",
            "/api/sites/ABCD",
            json!({"revoke_code_hash": "ekorre-5150"}),
        )
        .await;
    assert_eq!(st, 400, "a code where a hash belongs: {v}");
    let (st, _) = gw
        .send_as(&gw.token, "DELETE", "/api/sites/ABCD", Value::Null)
        .await;
    assert_eq!(st, 200);
    assert_eq!(gw.get("/api/sites/ABCD").await.0, 404);

    // The audit log has the admin's changes by name.
    let rows = audit(&gw, "").await;
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    for want in [
        "operator_add",
        "operator_remove",
        "operator_token",
        "site_put",
        "site_remove",
        "codes",
    ] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
}

async fn verification_lockout_and_audit(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = start(&db);
    let op = gw.add_operator("olle", "operator");
    let verify = |code: &'static str| {
        let (gw, op) = (&gw, op.clone());
        async move {
            gw.post_as(
                &op,
                &format!("/api/sites/{PLAIN}/verify"),
                json!({ "code": code }),
            )
            .await
        }
    };
    let mut answers = Vec::new();

    // Each code answers its level; a wrong one none.
    let (st, v) = verify(REVOKE).await;
    assert_eq!((st, v["level"].as_str()), (200, Some("revoke")), "{v}");
    assert!(v["verified_until"].is_string(), "{v}");
    answers.push(v);
    let (st, v) = verify(MAIN).await;
    assert_eq!((st, v["level"].as_str()), (200, Some("main")), "{v}");
    answers.push(v);
    let (st, v) = verify(WRONG).await;
    assert_eq!((st, v["level"].as_str()), (200, Some("none")), "{v}");
    assert_eq!(v["wrong_codes"], 1, "{v}");
    assert_eq!(v["verified_until"], Value::Null);
    answers.push(v);

    // Bad requests, unknown sites, sites without codes: a reason each.
    let (st, v) = gw
        .post_as(&op, &format!("/api/sites/{PLAIN}/verify"), json!({}))
        .await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = gw
        .post_as(&op, "/api/sites/FFFF/verify", json!({"code": REVOKE}))
        .await;
    assert_eq!(st, 404, "{v}");
    let (st, v) = gw
        .post_as(
            &op,
            &format!("/api/sites/{PLAIN2}/verify"),
            json!({"code": REVOKE}),
        )
        .await;
    assert_eq!(st, 409, "{v}");
    assert!(error_of(&v).contains("no codes"), "{v}");

    // A right code resets the count: wrong, wrong, right, wrong, wrong is not a lock…
    for code in [WRONG, REVOKE, WRONG] {
        answers.push(verify(code).await.1);
    }
    let (_, v) = verify(WRONG).await;
    assert_eq!(v["wrong_codes"], 2, "{v}");
    assert_eq!(v["locked_until"], Value::Null, "{v}");
    // … the third wrong in a row is.
    let (st, v) = verify(WRONG).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["locked_until"].is_string(), "{v}");
    // Locked: even the right code is refused, without being checked, until the lock ends.
    let (st, v) = verify(MAIN).await;
    assert_eq!(st, 423, "{v}");
    assert!(error_of(&v).contains("locked until"), "{v}");
    let until = v["locked_until"].as_str().unwrap().to_owned();
    let site = gw.json(&format!("/api/sites/{PLAIN}")).await;
    assert_eq!(site["codes"]["locked_until"], until.as_str(), "{site}");
    assert_eq!(site["codes"]["revoke_code_set"], true);
    answers.push(site);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (st, v) = verify(MAIN).await;
    assert_eq!((st, v["level"].as_str()), (200, Some("main")), "{v}");
    let site = gw.json(&format!("/api/sites/{PLAIN}")).await;
    assert_eq!(site["codes"]["locked_until"], Value::Null, "{site}");

    // Every attempt audited: site, operator, time, outcome; never the code.
    let rows = audit(&gw, &format!("account={PLAIN}")).await;
    let verifies: Vec<&str> = rows
        .iter()
        .rev()
        .filter(|r| r["action"] == "verify")
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        verifies,
        [
            "revoke", "main", "wrong", "wrong", "revoke", "wrong", "wrong", "wrong", "locked",
            "main"
        ],
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r["at"].is_string()));
    assert!(rows
        .iter()
        .filter(|r| r["action"] == "verify")
        .all(|r| r["actor"] == "olle" && r["account"] == PLAIN));
    assert!(rows
        .iter()
        .any(|r| r["action"] == "lock" && r["outcome"] == "locked"));
    answers.extend(rows);

    // No code or token anywhere in clear text: answers, log, database.
    let tokens = [gw.token.clone(), op.clone()];
    let secrets: Vec<&str> = [REVOKE, MAIN, WRONG]
        .into_iter()
        .chain(tokens.iter().map(String::as_str))
        .collect();
    let answers = serde_json::to_string(&answers).unwrap();
    let log = gw.log() + &gw.stdout_tail.lock().unwrap().join("\n");
    let dump = db.dump();
    for s in secrets {
        assert!(!answers.contains(s), "{s:?} in an answer");
        assert!(!log.contains(s), "{s:?} in the log");
        assert!(
            !dump.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s:?} in the database"
        );
    }
}

async fn revoking_alarms_with_codes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = start(&db);
    let (olle, pia) = (
        gw.add_operator("olle", "operator"),
        gw.add_operator("pia", "operator"),
    );
    let revoke = |id: i64, token: &str, code: &str| {
        let (gw, token, code) = (&gw, token.to_owned(), code.to_owned());
        async move {
            gw.post_as(
                &token,
                &format!("/api/alarms/{id}/revoke"),
                json!({ "code": code }),
            )
            .await
        }
    };

    // A wrong code: the alarm stays open and carries the attempt.
    let id = alarm(&gw, "0001", "003").await;
    let (st, v) = revoke(id, &olle, WRONG).await;
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("wrong code"), "{v}");
    let a = gw.json(&format!("/api/alarms/{id}")).await;
    assert_eq!(a["state"], "new", "{a}");
    assert_eq!(a["wrong_codes"], 1, "{a}");
    let flagged = a["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change"] == "wrong_code")
        .unwrap_or_else(|| panic!("the wrong code in the history: {a}"));
    assert_eq!(flagged["by"], "olle");

    // The revoke code resolves it: taken and resolved by the operator on the phone.
    let (st, v) = revoke(id, &olle, REVOKE).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(v["outcome"], "revoked_by_customer");
    assert_eq!(v["resolved_by"], "olle");
    assert_eq!(v["taken_by"], "olle");
    assert!(v["resolved_at"].is_string());
    assert!(v["note"].as_str().unwrap().contains("revoke code"), "{v}");
    let (st, v) = revoke(id, &olle, REVOKE).await;
    assert_eq!(st, 409, "already resolved: {v}");

    // Another operator's alarm: refused before the code is looked at (no attempt spent).
    let id2 = alarm(&gw, "0002", "004").await;
    let (st, _) = gw
        .post_as(&pia, &format!("/api/alarms/{id2}/take"), json!({}))
        .await;
    assert_eq!(st, 200);
    let before = audit(&gw, &format!("account={PLAIN}")).await.len();
    let (st, v) = revoke(id2, &olle, REVOKE).await;
    assert_eq!(st, 409, "{v}");
    assert!(error_of(&v).contains("pia"), "{v}");
    assert_eq!(audit(&gw, &format!("account={PLAIN}")).await.len(), before);
    // The main code revokes too.
    let (st, v) = revoke(id2, &pia, MAIN).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["note"].as_str().unwrap().contains("main code"), "{v}");
    let (st, v) = revoke(999_999, &pia, MAIN).await;
    assert_eq!(st, 404, "{v}");

    // The audit log: who, when, outcome, alarm.
    let rows = audit(&gw, &format!("account={PLAIN}")).await;
    let revokes: Vec<(&str, &str, i64)> = rows
        .iter()
        .rev()
        .filter(|r| r["action"] == "revoke")
        .map(|r| {
            (
                r["actor"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["alarm_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        revokes,
        [
            ("olle", "wrong", id),
            ("olle", "revoke", id),
            ("pia", "main", id2)
        ],
        "{rows:?}"
    );
}

async fn contacts_and_codes_need_a_verified_code(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let gw = start(&db);
    let (olle, pia) = (
        gw.add_operator("olle", "operator"),
        gw.add_operator("pia", "operator"),
    );
    let contacts_path = format!("/api/sites/{PLAIN}/contacts");
    let codes_path = format!("/api/sites/{PLAIN}/codes");
    let verify = |token: &str, code: &str| {
        let (gw, token, code) = (&gw, token.to_owned(), code.to_owned());
        async move {
            let (st, v) = gw
                .post_as(
                    &token,
                    &format!("/api/sites/{PLAIN}/verify"),
                    json!({ "code": code }),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            v["level"].as_str().unwrap().to_owned()
        }
    };
    let list = json!({"contacts": [
        {"name": "Karin Ek", "phones": ["+46 70 123 45 67"], "may_receive_info": true},
        {"name": "Granne Nilsson", "phones": ["08-123 456", "070-999 88 77"], "may_receive_info": false, "note": "has a key"},
    ]});

    let (st, v) = gw.send_as(&olle, "GET", &contacts_path, Value::Null).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["contacts"], json!([]));
    // Without a verified code: refused, with what to do.
    let (st, v) = gw.send_as(&olle, "PUT", &contacts_path, list.clone()).await;
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("verify"), "{v}");
    // A wrong code verifies nothing.
    assert_eq!(verify(&olle, WRONG).await, "none");
    let (st, _) = gw.send_as(&olle, "PUT", &contacts_path, list.clone()).await;
    assert_eq!(st, 403);
    // The revoke code lets this operator change the call list…
    assert_eq!(verify(&olle, REVOKE).await, "revoke");
    let (st, v) = gw.send_as(&olle, "PUT", &contacts_path, list.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = gw.send_as(&pia, "GET", &contacts_path, Value::Null).await;
    assert_eq!(v["contacts"][0]["name"], "Karin Ek", "{v}");
    assert_eq!(v["contacts"][1]["order"], 2);
    assert_eq!(v["contacts"][1]["phones"][1], "070-999 88 77");
    assert_eq!(v["contacts"][1]["may_receive_info"], false);
    assert_eq!(v["contacts"][1]["note"], "has a key");
    // … not another operator, and not with a bad list.
    let (st, _) = gw
        .send_as(&pia, "PUT", &contacts_path, json!({"contacts": []}))
        .await;
    assert_eq!(st, 403);
    for bad in [
        json!({"contacts": [{"name": "", "phones": ["123"], "may_receive_info": true}]}),
        json!({"contacts": [{"name": "A", "phones": ["call me"], "may_receive_info": true}]}),
        json!({"contacts": [{"name": "A", "phones": ["123"]}]}),
        json!({"people": []}),
    ] {
        let (st, v) = gw.send_as(&olle, "PUT", &contacts_path, bad).await;
        assert_eq!(st, 400, "{v}");
    }

    // Codes need the main code: the revoke level is not enough.
    let (st, v) = gw
        .send_as(&olle, "PUT", &codes_path, json!({"revoke": "ny-kod-1111"}))
        .await;
    assert_eq!(st, 403, "{v}");
    assert!(error_of(&v).contains("main"), "{v}");
    assert_eq!(verify(&olle, MAIN).await, "main");
    for bad in [
        json!({}),
        json!({"revoke": "12"}),
        json!({"revoke": "samma-kod", "main": "samma-kod"}),
        json!({"main": REVOKE}),
        json!({"pin": "12345"}),
    ] {
        let (st, v) = gw.send_as(&olle, "PUT", &codes_path, bad.clone()).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = gw
        .send_as(&olle, "PUT", &codes_path, json!({"revoke": "ny-kod-1111"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["codes"]["revoke_code_set"], true, "{v}");
    assert!(!v.to_string().contains("ny-kod"), "{v}");
    // The old revoke code is gone, the new one works, the main code stayed.
    assert_eq!(verify(&pia, REVOKE).await, "none");
    assert_eq!(verify(&pia, "ny-kod-1111").await, "revoke");
    assert_eq!(verify(&pia, MAIN).await, "main");
    // A change of codes ends earlier verifications.
    let (st, _) = gw.send_as(&olle, "PUT", &contacts_path, list.clone()).await;
    assert_eq!(st, 403, "olle's verification predates the new codes");

    // A site without codes: an admin sets it up; an operator cannot.
    let plain2_codes = format!("/api/sites/{PLAIN2}/codes");
    let (st, _) = gw
        .send_as(&olle, "PUT", &plain2_codes, json!({"revoke": "första-1"}))
        .await;
    assert_eq!(st, 403);
    let (st, v) = gw
        .send_as(
            &gw.token,
            "PUT",
            &plain2_codes,
            json!({"revoke": "första-1", "main": "första-2"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Once it has codes, the admin needs the main code like anyone.
    let (st, _) = gw
        .send_as(
            &gw.token,
            "PUT",
            &plain2_codes,
            json!({"revoke": "andra-1"}),
        )
        .await;
    assert_eq!(st, 403);

    let rows = audit(&gw, &format!("account={PLAIN}&actor=olle")).await;
    let changes: Vec<&str> = rows
        .iter()
        .filter(|r| r["action"] == "contacts" || r["action"] == "codes")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["codes", "contacts"], "{rows:?}");
}
