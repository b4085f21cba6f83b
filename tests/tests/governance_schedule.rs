//! The weekly governance schedule on the real binary, with no manual call:
//! `cairn up` runs the manifest's `governance` cron (made to fire every two
//! seconds here) with its clock shifted a week ahead
//! (`CAIRN_CRON_CLOCK_OFFSET_SEC`), so the week the test seeds has closed.
//! Each tenant gets what its tier's governance profile names (config/tiers.yaml:
//! starter a shared report, growth its own export, solo none), once however
//! often the schedule runs; a month later retention deletes exactly the
//! 30-day report, records it, and the registry still verifies; a tampered
//! archived report does not.

use cairn_e2e::{Options, Server, TempDir, manifest_variant, replace_once};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TOKEN: &str = "governance-schedule-token";
const DAY_SEC: i64 = 86_400;

fn admin_get(s: &Server, path: &str) -> Value {
    let r = s.get_with(path, &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path}: {}\n{}", r.text, s.log());
    r.body
}

fn admin_post(s: &Server, path: &str, body: Value) -> Value {
    let r = s.post_with(path, &body, &[("x-admin-token", TOKEN)]);
    assert_eq!(r.status, 200, "{path} {body}: {}\n{}", r.text, s.log());
    r.body
}

/// A server on `dir` running the manifest's cron schedules, the governance
/// one every two seconds, its ticks told the time `offset_days` ahead.
fn scheduled(dir: &TempDir, manifest: &std::path::Path, offset_days: i64) -> Server {
    Server::start_on(
        dir.path(),
        &Options {
            admin_token: Some(TOKEN.into()),
            manifest: Some(manifest.to_path_buf()),
            cron: true,
            env: vec![("CAIRN_CRON_CLOCK_OFFSET_SEC".into(), (offset_days * DAY_SEC).to_string())],
            ..Default::default()
        },
    )
}

fn reports(s: &Server, query: &str) -> Vec<Value> {
    admin_get(s, &format!("/v1/admin/control/governance/reports?{query}"))["reports"].as_array().unwrap().clone()
}

/// Polls until `done` holds for the reports `query` lists (the schedule
/// runs in the background); panics with the server's log after 3 minutes.
fn wait_for(s: &Server, query: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = reports(s, query);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "waited 3 minutes for {what}; reports: {r:?}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn subjects(r: &[Value]) -> Vec<String> {
    let mut s: Vec<String> = r.iter().map(|r| r["subject"].as_str().unwrap().to_string()).collect();
    s.sort();
    s
}

#[test]
fn the_schedule_archives_one_report_per_tenant_per_week_and_retention_deletes_the_expired() {
    let dir = TempDir::new("governance-schedule");
    let (_mdir, manifest) = manifest_variant("governance-manifest", |t| {
        replace_once(
            t,
            "component = \"governance\"\ncron_expression = \"0 15 * * * *\"",
            "component = \"governance\"\ncron_expression = \"*/2 * * * * *\"",
        )
    });

    // Seeded with no schedule running: two starter tenants, one growth,
    // one solo, each with a memory.
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let seeded_at = cairn_core::time_fmt::rfc3339_millis(now_ms());
    {
        let s = Server::start_on(dir.path(), &Options { admin_token: Some(TOKEN.into()), ..Default::default() });
        for (tenant, tier) in [("sa", "starter"), ("sb", "starter"), ("gr", "growth"), ("so", "solo")] {
            admin_post(&s, &format!("/v1/admin/control/tenants/{tenant}/provision"), json!({"tier": tier}));
            let mut w = cairn_e2e::event_write(&format!("{tenant}-1"), &format!("{tenant} keeps a note"));
            w["tenant_id"] = json!(tenant);
            let r = s.post("/v1/memory/write", &w);
            assert_eq!(r.status, 200, "{}", r.text);
        }
    }

    // A week later (to the schedule): the seeded week has closed.
    let s = scheduled(&dir, &manifest, 7);
    let week = wait_for(&s, "", "the week's reports", |r| r.len() >= 2);
    assert_eq!(subjects(&week), ["shared", "tenant:gr"], "{week:?}");
    let label = week[0]["report_week"].as_str().unwrap().to_string();
    assert!(week.iter().all(|r| r["report_week"] == label.as_str()));
    let shared = week.iter().find(|r| r["subject"] == "shared").unwrap().clone();
    let growth = week.iter().find(|r| r["subject"] == "tenant:gr").unwrap().clone();
    assert_eq!(shared["covered_tenants"], json!(["sa", "sb"]));
    assert_eq!(shared["profile"], "shared_weekly");
    assert_eq!(shared["retention_days"], 30);
    assert_eq!(growth["tenant_id"], "gr");
    assert_eq!(growth["profile"], "tenant_weekly_export");
    assert_eq!(growth["retention_days"], 90);
    let (start, end) = (growth["period_start"].as_str().unwrap(), growth["period_end"].as_str().unwrap());
    assert!(start <= seeded_at.as_str() && seeded_at.as_str() < end, "{start} <= {seeded_at} < {end}");

    // The schedule keeps running (every two seconds): the week still has
    // one report per subject.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(subjects(&reports(&s, &format!("report_week={label}"))), ["shared", "tenant:gr"]);

    // Downloadable: the growth tenant's export is its own.
    let path = format!("/v1/admin/control/governance/reports/{}", growth["report_id"].as_str().unwrap());
    let got = admin_get(&s, &path);
    assert_eq!(got["summary"]["report_week"], label.as_str());
    assert_eq!(got["summary"]["tenant_id"], "gr");
    assert_eq!(got["summary"]["tenant_export"], true);
    assert_eq!(got["summary"]["chains"]["scopes"], 1);
    let html = admin_get(&s, &format!("{path}?file=weekly_report.html"));
    assert_eq!(html["file"]["content_type"], "text/html; charset=utf-8");
    assert!(html["file"]["content"].as_str().unwrap().contains(&label));
    let r = s.get_with(&format!("{path}?file=report.pdf"), &[("x-admin-token", TOKEN)]);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")), "{}", r.text);
    // Registered as evidence, and verified.
    let ev = admin_get(&s, "/v1/admin/control/evidence?kind=weekly_report")["evidence"].as_array().unwrap().clone();
    assert_eq!(ev.len(), 2);
    let v = admin_post(&s, "/v1/admin/control/evidence/verify", json!({}));
    assert_eq!(v["ok"], true, "{v}");
    drop(s);

    // 38 days on: the seeded week's shared report (30 days) is past its
    // retention, the growth export (90) is not.
    let s = scheduled(&dir, &manifest, 38);
    let all = wait_for(&s, &format!("report_week={label}&include_deleted=true"), "retention", |r| {
        r.iter().any(|r| r["subject"] == "shared" && r["deleted_at"].is_string())
    });
    assert_eq!(all.len(), 2);
    assert!(all.iter().find(|r| r["subject"] == "tenant:gr").unwrap()["deleted_at"].is_null());
    assert_eq!(subjects(&reports(&s, &format!("report_week={label}"))), ["tenant:gr"]);
    let r = s.get_with(
        &format!("/v1/admin/control/governance/reports/{}", shared["report_id"].as_str().unwrap()),
        &[("x-admin-token", TOKEN)],
    );
    assert_eq!((r.status, r.body["error"].as_str()), (410, Some("report_deleted")), "{}", r.text);
    let deletions =
        admin_get(&s, "/v1/admin/control/audit-events?action=evidence.delete")["events"].as_array().unwrap().clone();
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert_eq!(deletions[0]["resource_id"], shared["report_id"]);
    assert_eq!(deletions[0]["actor"], "governance_schedule");
    assert_eq!(deletions[0]["details"]["why"]["reason"], "retention");
    assert_eq!(deletions[0]["details"]["evidence"]["sha256"], shared["sha256"]);
    let v = admin_post(&s, "/v1/admin/control/evidence/verify", json!({}));
    assert_eq!((v["ok"].as_bool(), v["deleted"].as_i64()), (Some(true), Some(1)), "{v}");

    // An archived report whose bytes change no longer verifies.
    s.tamper(&format!(
        "UPDATE control_evidence SET content = replace(content, '{label}', 'tampered') WHERE evidence_id = '{}'",
        growth["report_id"].as_str().unwrap()
    ));
    let v = admin_post(&s, "/v1/admin/control/evidence/verify", json!({}));
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(
        v["failures"],
        json!([{"evidence_id": growth["report_id"], "kind": "weekly_report", "reason": "content_changed"}])
    );
}
