//! The operator console (`/console`, docs/console.md) in a real browser:
//! headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by tools/ensure-browser.sh) with
//! `fantoccini`. The test signs in with the admin token, opens a tenant's
//! SLO page and finds its charts drawn from seeded telemetry, dry-runs
//! and replays a real dead letter, sees both audit events on the audit
//! page with the chain verified, looks at the alerts page, and signs out.
//! Screenshots go to target/test-artifacts/console/.
//!
//! Without chromium and chromedriver the test prints why and skips, unless
//! `CAIRN_REQUIRE_BROWSER=1` (CI), where it fails.

use cairn_e2e::{FakeEmbedder, Options, Server, event_write, find_exe, free_port, repo_root};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "console-test-admin-token";
const ADMIN: &[(&str, &str)] = &[("x-admin-token", TOKEN)];

/// chromedriver, started on a free port in its own process group, so
/// stopping it (by that group's id) also stops the browser it started.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(exe: &Path, log: PathBuf) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        while agent.get(format!("{url}/status")).call().map(|r| r.status().as_u16()).ok() != Some(200) {
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, url, log }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this test created (pgid = pid).
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = repo_root().join("target/test-artifacts/console");
    std::fs::create_dir_all(&dir).expect("create the screenshot directory");
    dir
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// 23 past hours of the default tenant's request telemetry (each hour's
/// rows in its middle, so none straddles a bucket): writes fast until the
/// last two hours (then slow: the write-latency objective breaks),
/// recall_text steady, four 503s five hours ago.
fn seed_telemetry(data_dir: &Path) -> usize {
    const HOUR: i64 = 3_600_000;
    let this_hour = now_ms() / HOUR * HOUR;
    let mut values = Vec::new();
    for h in 1..=23i64 {
        let at = |i: i64| cairn_core::time_fmt::rfc3339_millis(this_hour - h * HOUR + HOUR / 2 - i * 1000);
        for i in 0..20 {
            let latency = if h <= 2 { 160 + i * 3 } else { 20 + (h * 7) % 40 + i };
            let status = if h == 5 && i < 4 { 503 } else { 200 };
            values.push(format!("('default', 'write', {status}, {latency}, '{}')", at(i)));
        }
        for i in 0..10 {
            values.push(format!("('default', 'recall_text', 200, {}, '{}')", 120 + (h * 13) % 90 + i * 4, at(i)));
        }
    }
    let n = values.len();
    cairn_e2e::db_exec(
        data_dir,
        &[format!(
            "INSERT INTO memory_request_telemetry (tenant_id, endpoint, status_code, latency_ms, created_at) VALUES {}",
            values.join(", ")
        )],
    );
    n
}

/// Waits until `script` (a JS expression) is truthy; panics with `what`.
async fn wait_js(c: &Client, script: &str, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A page still loading may not have the elements yet: that is "not yet".
        let v = c
            .execute(&format!("try {{ return ({script}); }} catch (e) {{ return false; }}"), vec![])
            .await
            .expect("execute script");
        if v.as_bool() != Some(false) && !v.is_null() && v != json!(0) && v != json!("") {
            return v;
        }
        if Instant::now() > deadline {
            let status = c.execute("return document.getElementById('status').textContent", vec![]).await.ok();
            let _ = shot(c, &format!("failed-{}", what.replace(' ', "-"))).await;
            panic!("timed out waiting for {what} ({script}); status line: {status:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.expect("find_all").len()
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
}

/// A screenshot of the whole page (the window grown to its height).
async fn shot(c: &Client, name: &str) -> PathBuf {
    let _ = c.set_window_size(1280, 800).await;
    let height = c
        .execute("return Math.ceil(document.documentElement.scrollHeight)", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(900)
        .clamp(700, 4000);
    let _ = c.set_window_size(1280, height as u32 + 140).await;
    let png = c.screenshot().await.expect("screenshot");
    let path = artifacts().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Confirms the open confirm dialog (after checking it is open and says `says`).
async fn confirm(c: &Client, says: &str, name: &str) {
    wait_js(c, "document.getElementById('confirm').open", "the confirm dialog").await;
    let body = text(c, "#confirm-body").await;
    assert!(body.contains(says), "the dialog says {body:?}, not {says:?}");
    shot(c, name).await;
    click(c, "#confirm-ok").await;
    wait_js(c, "!document.getElementById('confirm').open", "the dialog to close").await;
}

#[test]
fn the_console_signs_in_charts_an_slo_replays_a_dead_letter_and_shows_it_audited() {
    let require = std::env::var("CAIRN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let (Some(chromium), Some(chromedriver)) = (
        find_exe("CAIRN_CHROMIUM", &["chromium", "chromium-browser"]),
        find_exe("CAIRN_CHROMEDRIVER", &["chromedriver"]),
    ) else {
        let msg = "console browser test: chromium and chromedriver are not installed \
                   (tools/ensure-browser.sh installs them: apt-get install chromium chromium-driver)";
        assert!(!require, "{msg}; CAIRN_REQUIRE_BROWSER=1 needs them");
        // Straight to stderr: the test harness would hold back an eprintln!.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {msg}");
        return;
    };

    // A dead letter the real way: an embedding the provider rejects (400)
    // dead-letters at once.
    let fake = FakeEmbedder::start();
    fake.set(|f| f.fatal_poison = Some("REJECT".into()));
    let s = Server::start_with(Options {
        admin_token: Some(TOKEN.into()),
        extra_args: ["--embedder", "openai", "--embedder-url", &fake.url, "--var", "alert_loopback_targets=true"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    });
    let mut w = event_write("poison", "a REJECT memory the provider refuses");
    w["trigger_topic_cluster"] = json!(false);
    assert_eq!(s.post("/v1/memory/write", &w).status, 200);
    let tick = s.post_with("/v1/admin/derive/tick", &json!({}), ADMIN);
    assert_eq!((tick.status, tick.body["dead_lettered"].as_i64()), (200, Some(1)), "{}", tick.text);
    let seeded = seed_telemetry(&s.data_dir);
    // A tenant with a key and an alert route whose one delivery failed.
    assert_eq!(
        s.post_with("/v1/admin/control/tenants", &json!({"tenant_id": "acme", "display_name": "Acme"}), ADMIN).status,
        200
    );
    assert_eq!(
        s.post_with("/v1/admin/control/api-keys", &json!({"tenant_id": "acme", "label": "ci"}), ADMIN).status,
        200
    );
    let closed = free_port();
    let r = s.post_with(
        "/v1/admin/control/alerts/routes",
        &json!({"tenant_id": "default", "channel": "webhook", "label": "on-call",
                "target": format!("http://127.0.0.1:{closed}/hook")}),
        ADMIN,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let data = s.data_dir.to_str().unwrap().to_string();
    let (st, out, err) = cairn_e2e::cairn(&["job", "alert-dispatch", "--embedder", "lexical", "--data-dir", &data]);
    assert!(st.success(), "{out}\n{err}");

    // The page itself: security headers, built-in assets.
    let page = s.get("/console");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(
        (page.header("x-content-type-options"), page.header("referrer-policy"), page.header("cache-control")),
        (Some("nosniff"), Some("no-referrer"), Some("no-store"))
    );
    let js = s.get("/console/app.js");
    assert_eq!((js.status, js.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    assert_eq!(s.get("/console/nope.js").status, 404);

    let driver_log = artifacts().join("chromedriver.log");
    let driver = Driver::start(&chromedriver, driver_log);
    let profile = cairn_e2e::TempDir::new("chromium-profile");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.to_str().unwrap(), "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())]}),
        );
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("WebDriver session: {e}; see {}", driver.log.display()));
        c.goto(&format!("{}/console", s.base)).await.expect("open the console");
        // Content-Security-Policy violations from here on are counted.
        c.execute(
            "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', \
             (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();
        shot(&c, "sign-in").await;

        // A wrong token is refused and the console stays signed out.
        c.find(Locator::Id("token")).await.unwrap().send_keys("not-the-token").await.unwrap();
        click(&c, "#sign-in-button").await;
        wait_js(&c, "document.getElementById('status').textContent.includes('refused')", "the refusal").await;
        assert!(count(&c, "#nav:not([hidden])").await == 0, "a refused token must not sign in");

        // Sign in: the Tenants page with both tenants.
        let input = c.find(Locator::Id("token")).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(TOKEN).await.unwrap();
        click(&c, "#sign-in-button").await;
        wait_js(&c, "document.querySelector('#view h1') && document.querySelector('#view h1').textContent === 'Tenants'", "the tenants page").await;
        let tenants = text(&c, "#view table").await;
        assert!(tenants.contains("acme") && tenants.contains("default"), "{tenants}");
        assert!(tenants.contains("1 active · 0 revoked"), "acme's key: {tenants}");
        assert!(tenants.contains("1 dead letter"), "the default tenant's dead letter: {tenants}");
        assert!(tenants.contains("of 100 MB"), "storage against the solo cap: {tenants}");
        // The token is in no storage, cookie or URL, and not in the page.
        let kept = c
            .execute(
                "return [localStorage.length, sessionStorage.length, document.cookie, location.href, \
                 document.documentElement.outerHTML.includes(arguments[0])]",
                vec![json!(TOKEN)],
            )
            .await
            .unwrap();
        assert_eq!((&kept[0], &kept[1], &kept[2]), (&json!(0), &json!(0), &json!("")), "{kept}");
        assert!(!kept[3].as_str().unwrap().contains(TOKEN) && kept[4] == json!(false), "{kept}");
        shot(&c, "tenants").await;

        // The default tenant's SLO over 24 hours: charts from the seeded rows.
        click(&c, "a.tenant-link[href='#/slo/default']").await;
        wait_js(&c, "document.querySelector('svg.chart-latency')", "the latency chart").await;
        c.execute("location.hash = '#/slo/default?window=24'", vec![]).await.unwrap();
        wait_js(&c, "document.querySelector('#view h1').textContent === 'SLO: default' && \
                     document.querySelector('select') && document.querySelector('select').value === '24' && \
                     document.querySelectorAll('svg.chart-latency circle.point').length >= 46", "the 24 h charts").await;
        // An hourly point per endpoint (write, recall_text) for each seeded
        // hour, and the test's own write in this one; p95 from the seed.
        let write_points = count(&c, "svg.chart-latency g[data-series='write'] circle.point").await;
        let recall_points = count(&c, "svg.chart-latency g[data-series='recall_text'] circle.point").await;
        assert!((23..=24).contains(&write_points) && recall_points == 23, "{write_points} write, {recall_points} recall_text points");
        assert!(count(&c, "svg.chart-latency path.line").await >= 2);
        let peak: f64 = c
            .execute(
                "return Math.max(...[...document.querySelectorAll(\"svg.chart-latency g[data-series='write'] circle.point\")].map(p => Number(p.dataset.v)))",
                vec![],
            )
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        assert!((200.0..=220.0).contains(&peak), "the slow hours' write p95 is about 215 ms: {peak}");
        let error_points: Vec<f64> = c
            .execute("return [...document.querySelectorAll('svg.chart-errors circle.point')].map(p => Number(p.dataset.v))", vec![])
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(error_points.len() >= 23, "{error_points:?}");
        assert!(error_points.iter().any(|v| (v - 4.0 / 30.0).abs() < 1e-9), "4 of 30 failed five hours ago: {error_points:?}");
        assert!(count(&c, "svg.chart-errors path.area").await >= 1);
        // Accessible: each chart names itself and says what it shows.
        let titles = c
            .execute("return [...document.querySelectorAll('svg.chart')].map(s => s.querySelector('title').textContent + ' | ' + s.querySelector('desc').textContent)", vec![])
            .await
            .unwrap();
        assert!(titles.to_string().contains("p95 latency per hour") && titles.to_string().contains("Error rate per hour"), "{titles}");
        assert!(text(&c, "svg.chart-latency + figcaption").await.contains("write: highest p95"));
        // Objectives: three gauges and burn charts; write latency breached.
        assert_eq!((count(&c, "svg.gauge").await, count(&c, "svg.burn rect.bar").await), (3, 9));
        let at_risk = text(&c, "#at-risk").await;
        assert!(at_risk.contains("write_latency") && !at_risk.contains("availability"), "{at_risk}");
        assert!(text(&c, "article.objective.breached h3").await.contains("write_latency"));
        let summary = text(&c, "svg.chart-errors + figcaption").await;
        assert!(summary.contains(&format!("of {}", seeded + 1)) || summary.contains(&format!("of {seeded}")), "{summary}");
        shot(&c, "slo").await;

        // Outbox: the dead letter and its reason; dry run, then replay.
        click(&c, "a[href='#/outbox?tenant=default']").await;
        wait_js(&c, "document.querySelectorAll('tr[data-job]').length === 1", "the dead letter row").await;
        let row = text(&c, "tr[data-job]").await;
        assert!(row.contains("embed_nodes") && row.contains("fatal"), "{row}");
        assert!(!c.find(Locator::Id("replay")).await.unwrap().is_enabled().await.unwrap(), "replay waits for a dry run");
        click(&c, "#dry-run").await;
        confirm(&c, "Nothing changes", "outbox-confirm-dry-run").await;
        wait_js(&c, "document.getElementById('dry-run-summary')", "the dry run result").await;
        assert!(text(&c, "#dry-run-summary").await.contains("1 job would be replayed"));
        let still = s.get_with("/v1/admin/control/outbox?tenant_id=default", ADMIN);
        assert_eq!(still.body["outbox"]["dead_letter"], 1, "a dry run changes nothing");
        shot(&c, "outbox-dry-run").await;
        click(&c, "#replay").await;
        confirm(&c, "every dead letter of tenant default", "outbox-confirm-replay").await;
        wait_js(&c, "document.getElementById('replay-summary')", "the replay result").await;
        let replayed = text(&c, "#replay-summary").await;
        assert!(replayed.contains("1 job replayed"), "{replayed}");
        let after = s.get_with("/v1/admin/control/outbox?tenant_id=default", ADMIN);
        assert_eq!((after.body["outbox"]["dead_letter"].as_i64(), after.body["outbox"]["pending"].as_i64()), (Some(0), Some(1)), "{}", after.text);
        wait_js(&c, "document.querySelector('#backlog').textContent.includes('Dead letters0')", "the refreshed backlog").await;
        shot(&c, "outbox-replayed").await;

        // Audit: the replay (and its dry run) recorded, the chain verified.
        click(&c, "#replay-summary a").await;
        wait_js(&c, "document.querySelectorAll('tr[data-action=\"outbox.replay\"]').length === 1", "the replay's audit event").await;
        let events = s.get_with("/v1/admin/control/audit-events?action=outbox.replay", ADMIN);
        let event_id = events.body["events"][0]["event_id"].as_str().unwrap().to_string();
        assert_eq!(events.body["events"][0]["actor"], "admin_token");
        assert!(replayed.contains(&event_id), "the page named audit event {event_id}: {replayed}");
        assert_eq!(count(&c, &format!("tr[data-event='{event_id}']")).await, 1);
        click(&c, "#nav a[href='#/audit']").await;
        wait_js(&c, "document.querySelectorAll('tr[data-action=\"outbox.replay.preview\"]').length === 1 && \
                     document.querySelectorAll('tr[data-action=\"outbox.replay\"]').length === 1", "both replay events").await;
        let chain = text(&c, "#chain-status").await;
        assert!(chain.starts_with("Chain verified:"), "{chain}");
        shot(&c, "audit").await;

        // Alerts: the route and its failed delivery.
        click(&c, "#nav a[href='#/alerts']").await;
        wait_js(&c, "document.querySelector('#view h1').textContent === 'Alerts' && document.querySelectorAll('table').length === 2", "the alerts tables").await;
        let tables = text(&c, "#view").await;
        assert!(tables.contains("on-call") && tables.contains("failed"), "{tables}");
        shot(&c, "alerts").await;

        // Keyboard: Tab from the skip link lands on the first nav link,
        // which shows a focus ring.
        c.execute("document.querySelector('a.skip').focus()", vec![]).await.unwrap();
        c.find(Locator::Css("a.skip")).await.unwrap().send_keys("\u{E004}").await.unwrap();
        let focus = c
            .execute(
                "const a = document.activeElement; const st = getComputedStyle(a); \
                 return [a.tagName, a.getAttribute('href'), st.outlineStyle, st.outlineWidth]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(focus, json!(["A", "#/tenants", "solid", "3px"]), "focus after Tab");
        let violations = c.execute("return window.__cspViolations", vec![]).await.unwrap();
        assert_eq!(violations, json!([]), "Content-Security-Policy violations");

        // Sign out: the view is emptied and the token forgotten.
        click(&c, "#sign-out").await;
        wait_js(&c, "!document.getElementById('sign-in').hidden", "the sign-in form").await;
        assert_eq!(c.execute("return document.getElementById('view').children.length", vec![]).await.unwrap(), json!(0));
        c.execute("location.hash = '#/audit'", vec![]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(&c, "#view table").await, 0, "signed out, no page loads");
        c.close().await.expect("end the browser session");
    });
    drop(driver);
    println!("console screenshots: {}", artifacts().display());
}
