//! The black-box test harness: starts the real `cairn` binary (built by
//! `make test` / `make build`) on a fresh temporary data dir and a free
//! port, talks HTTP to it, and stops it by its pid.
//!
//! `CAIRN_TEST_BACKEND=postgres` runs every server on PostgreSQL instead
//! (`cairn up --database-url`): one throwaway server per test process
//! (`cairn-testpg`, stopped by its pid when the process exits) and one
//! database per data dir, so a server restarted on its data dir finds its
//! data again. `make test` runs the suite once per backend.

use cairn_spin::sql::Sql;
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The repository root. Read at run time (`cargo test` sets
/// `CARGO_MANIFEST_DIR`): a build directory shared by several checkouts may
/// hold this crate compiled in another one, with another path baked in.
pub fn repo_root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().expect("tests/ has a parent").to_path_buf()
}

/// A Python venv with `packages` (pinned `name==version`) for a black-box
/// test, made once and kept in `~/.cache/cairn/venv-<packages>` (or at
/// `$<dir_var>`); `import_probe` is a Python statement that succeeds once
/// the packages are installed. Returns the venv's python.
pub fn pip_venv(dir_var: &str, packages: &[&str], import_probe: &str) -> PathBuf {
    let dir = std::env::var_os(dir_var).map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
        let tag = packages.join("_").replace("==", "-");
        cache.join("cairn").join(format!("venv-{tag}"))
    });
    let python = dir.join("bin/python");
    let ready = python.exists()
        && Command::new(&python).args(["-c", import_probe]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ready {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&dir).status().expect("python3 -m venv").success();
        assert!(ok, "creating the venv at {} failed", dir.display());
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .expect("pip install")
            .success();
        assert!(ok, "pip install {packages:?} failed");
    }
    python
}

/// The `cairn` binary under test (`CAIRN_BIN`, else `target/release/cairn`).
pub fn cairn_bin() -> PathBuf {
    let p =
        std::env::var_os("CAIRN_BIN").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target/release/cairn"));
    assert!(p.exists(), "cairn binary not found at {} — run `make build` (make test does)", p.display());
    p
}

/// The backend the servers of this run store in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `CAIRN_TEST_BACKEND` (`sqlite`, the default, or `postgres`).
pub fn backend() -> Backend {
    match std::env::var("CAIRN_TEST_BACKEND").as_deref().map(str::trim) {
        Ok("postgres") => Backend::Postgres,
        Ok("") | Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("CAIRN_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// For a test of what only the SQLite backend has (its file in the data
/// dir, its durability settings): true, after saying so, when this run is
/// on PostgreSQL, so the test returns early.
pub fn skip_unless_sqlite(what: &str) -> bool {
    let skip = backend() != Backend::Sqlite;
    if skip {
        eprintln!("skipped on {:?}: {what}", backend());
    }
    skip
}

/// The test process's PostgreSQL server, started on first use and stopped
/// (by its pid) when the process exits.
fn shared_postgres() -> &'static cairn_testpg::TestPg {
    static SERVER: std::sync::OnceLock<cairn_testpg::TestPg> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let pg = cairn_testpg::TestPg::start().unwrap_or_else(|e| panic!("CAIRN_TEST_BACKEND=postgres: {e}"));
        extern "C" fn stop_at_exit() {
            if let Some(pg) = SERVER.get() {
                pg.stop();
            }
        }
        // SAFETY: registers a plain function; it runs once, at exit.
        unsafe {
            libc::atexit(stop_at_exit);
        }
        pg
    })
}

/// The database of `data_dir` on the shared server (created on first use)
/// and its connection URL.
fn postgres_database(data_dir: &Path) -> (String, String) {
    let pg = shared_postgres();
    let hash = cairn_core::digest::sha256_hex(data_dir.to_string_lossy().as_bytes());
    let name = format!("cairn_{}", &hash[..16]);
    // Created once per process (the server is the process's own).
    static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    if !created.contains(&name) {
        pg.create_database(&name).unwrap_or_else(|e| panic!("{e}"));
        created.push(name.clone());
    }
    let url = pg.url(&name);
    (name, url)
}

/// Runs a read-only query on the database of the server that stores in
/// `data_dir` (its SQLite file, or its PostgreSQL database); values come
/// back as libsql's (integers, reals, text, blobs, NULL) on both.
pub fn db_query(data_dir: &Path, sql: &str) -> Vec<Vec<libsql::Value>> {
    if backend() == Backend::Postgres {
        let rows = postgres_seam(data_dir).query(sql, &[]).unwrap_or_else(|e| panic!("{}: {sql}", e.message));
        return rows.into_iter().map(|r| r.0.into_iter().map(libsql_value).collect()).collect();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = libsql::Builder::new_local(data_dir.join("cairn.db")).build().await.unwrap();
        let conn = db.connect().unwrap();
        let mut rows = conn.query(sql, ()).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
        let mut out = Vec::new();
        while let Some(r) = rows.next().await.unwrap() {
            out.push((0..r.column_count()).map(|i| r.get_value(i).unwrap()).collect());
        }
        out
    })
}

/// Runs statements on the database of the server in `data_dir` (seeding
/// rows a test needs), in one transaction.
pub fn db_exec(data_dir: &Path, statements: &[String]) {
    if backend() == Backend::Postgres {
        let db = postgres_seam(data_dir);
        cairn_spin::sql::write_txn(&db, |db| statements.iter().try_for_each(|sql| db.exec(sql, &[])))
            .unwrap_or_else(|e| panic!("{}", e.message));
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let db = libsql::Builder::new_local(data_dir.join("cairn.db")).build().await.expect("open database");
        let conn = db.connect().expect("connect");
        conn.execute("PRAGMA busy_timeout=5000", ()).await.ok();
        for sql in statements {
            conn.execute(sql, ()).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
        }
    });
}

/// The `Sql` seam's native PostgreSQL client on `data_dir`'s database:
/// the values read as the components read them.
fn postgres_seam(data_dir: &Path) -> cairn_spin::native_postgres::NativePostgres {
    let (_, url) = postgres_database(data_dir);
    cairn_spin::native_postgres::connect(&url).unwrap_or_else(|e| panic!("{e}"))
}

fn libsql_value(v: cairn_spin::sql::SqlValue) -> libsql::Value {
    use cairn_spin::sql::SqlValue;
    match v {
        SqlValue::Null => libsql::Value::Null,
        SqlValue::Integer(i) => libsql::Value::Integer(i),
        SqlValue::Real(x) => libsql::Value::Real(x),
        SqlValue::Text(t) => libsql::Value::Text(t),
        SqlValue::Blob(b) => libsql::Value::Blob(b),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "cairn-test-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of the repository's spin.toml, edited by `edit`, in a fresh temp
/// dir (its component paths made absolute, so it loads from there).
pub fn manifest_variant(tag: &str, edit: impl Fn(String) -> String) -> (TempDir, PathBuf) {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("spin.toml")).expect("read spin.toml");
    let target = format!("\"{}/target/", root.display());
    let text = text.replace("\"target/", &target);
    let dir = TempDir::new(tag);
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, edit(text)).expect("write the manifest variant");
    (dir, path)
}

/// `from` must occur in `text`; replaced once by `to`.
pub fn replace_once(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the manifest no longer contains {from:?}");
    text.replacen(from, to, 1)
}

/// An executable: `$env` when it names a file, else the first of `names`
/// on PATH (chromium, chromedriver for the browser tests).
pub fn find_exe(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|d| names.iter().map(move |n| d.join(n))).find(|p| p.is_file())
}

/// One request a [`Receiver`] got: lowercase headers and the body.
pub type Received = (Vec<(String, String)>, String);

/// An HTTP receiver on a free loopback port (webhooks, bundle uploads):
/// keeps every request and answers each with the next status of `answers`
/// (the last one repeats; empty = 200).
pub struct Receiver {
    pub port: u16,
    pub got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    pub answers: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u16>>>,
}

impl Receiver {
    pub fn start(answers: &[u16]) -> Receiver {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let port = listener.local_addr().expect("addr").port();
        let got: std::sync::Arc<std::sync::Mutex<Vec<Received>>> = Default::default();
        let script = std::sync::Arc::new(std::sync::Mutex::new(answers.iter().copied().collect()));
        let (store, plan) = (got.clone(), std::sync::Arc::clone(&script));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut headers = Vec::new();
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap_or(0));
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                store.lock().unwrap().push((headers, String::from_utf8_lossy(&body).into_owned()));
                let status = {
                    let mut q: std::sync::MutexGuard<std::collections::VecDeque<u16>> = plan.lock().unwrap();
                    if q.len() > 1 { q.pop_front().unwrap_or(200) } else { q.front().copied().unwrap_or(200) }
                };
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Receiver { port, got, answers: script }
    }

    /// From now on, answer every request with `status`.
    pub fn answer(&self, status: u16) {
        let mut q = self.answers.lock().unwrap();
        q.clear();
        q.push_back(status);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind :0").local_addr().expect("addr").port()
}

/// How to start a server.
#[derive(Default, Clone)]
pub struct Options {
    pub admin_token: Option<String>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The app manifest (default: the repository's spin.toml).
    pub manifest: Option<PathBuf>,
    /// Run the manifest's cron schedules (derivation in the background).
    /// Off by default so a test sees only the derivation it asks for.
    pub cron: bool,
}

/// A running `cairn up`.
pub struct Server {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
    log_path: PathBuf,
    agent: ureq::Agent,
    /// The server's PostgreSQL database (`CAIRN_TEST_BACKEND=postgres`).
    pub database: Option<String>,
    _owned_dir: Option<TempDir>,
}

/// An HTTP response: status, headers (lowercase names) and JSON body
/// (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Server {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Server {
        let dir = TempDir::new("srv");
        let path = dir.path().to_path_buf();
        let mut s = Self::spawn(&path, &opts);
        s._owned_dir = Some(dir);
        s
    }

    /// Starts a server on an existing data dir (kept by the caller).
    pub fn start_on(data_dir: &Path, opts: &Options) -> Server {
        Self::spawn(data_dir, opts)
    }

    fn spawn(data_dir: &Path, opts: &Options) -> Server {
        let root = repo_root();
        let port = free_port();
        let log_path = data_dir.join(format!("cairn-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(cairn_bin());
        cmd.arg("up")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--manifest")
            .arg(opts.manifest.clone().unwrap_or_else(|| root.join("spin.toml")))
            .args(&opts.extra_args)
            .env_remove("CAIRN_ADMIN_TOKEN")
            .env_remove("SPIN_VARIABLE_ADMIN_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if !opts.cron && !opts.extra_args.iter().any(|a| a == "--no-cron") {
            cmd.arg("--no-cron");
        }
        // The lexical embedder unless a test asks for another: fast, and the
        // expectations of the tests written for it stay exact.
        if !opts.extra_args.iter().any(|a| a == "--embedder") {
            cmd.arg("--embedder").arg("lexical");
        }
        if !opts.extra_args.iter().any(|a| a == "--tiers") {
            cmd.arg("--tiers").arg(root.join("config/tiers.yaml"));
        }
        if let Some(t) = &opts.admin_token {
            cmd.arg("--admin-token").arg(t);
        }
        let mut database = None;
        if backend() == Backend::Postgres && !opts.extra_args.iter().any(|a| a == "--database-url") {
            let (name, url) = postgres_database(data_dir);
            cmd.arg("--database-url").arg(url);
            database = Some(name);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn cairn up");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let s = Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            data_dir: data_dir.to_path_buf(),
            child: Some(child),
            log_path,
            agent,
            database,
            _owned_dir: None,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = self.agent.get(format!("{}/health", self.base)).call()
                && r.status().as_u16() == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!("cairn did not become ready; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut resp = resp.expect("HTTP request failed at the transport level");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let mut text = String::new();
        resp.body_mut().as_reader().read_to_string(&mut text).expect("read body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    /// POST a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_with(path, body, &[])
    }

    /// POST a JSON body; `None` when the server cannot be reached (a
    /// process a test killed).
    pub fn try_post(&self, path: &str, body: &Value) -> Option<Resp> {
        let req = self.agent.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        let resp = req.send(body.to_string().as_bytes()).ok()?;
        Some(Self::finish(Ok(resp)))
    }

    /// POST a JSON body with extra headers.
    pub fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.post_raw(path, body.to_string().as_bytes(), headers)
    }

    /// POST raw bytes (for malformed bodies).
    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.send(body))
    }

    pub fn get(&self, path: &str) -> Resp {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call())
    }

    /// PUT a JSON body with extra headers.
    pub fn put_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.put(format!("{}{path}", self.base)).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.send(body.to_string().as_bytes()))
    }

    /// DELETE with extra headers.
    pub fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.delete(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Self::finish(req.call())
    }

    /// Runs one SQL statement against the server's database directly
    /// (tests that tamper with stored rows); it must change exactly one row.
    pub fn tamper(&self, sql: &str) {
        if let Some(db) = &self.database {
            let counted = format!("WITH changed AS ({sql} RETURNING 1) SELECT count(*) FROM changed");
            let n = shared_postgres().psql(db, &counted).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n.trim(), "1", "tamper statement must change exactly one row: {sql}");
            return;
        }
        let path = self.data_dir.join("cairn.db");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let db = libsql::Builder::new_local(&path).build().await.expect("open database");
            let conn = db.connect().expect("connect");
            conn.execute("PRAGMA busy_timeout=5000", ()).await.ok();
            let changed = conn.execute(sql, ()).await.expect("tamper statement");
            assert_eq!(changed, 1, "tamper statement must change exactly one row: {sql}");
        });
    }

    /// Sends `signal` and waits for the process to exit; returns its status.
    pub fn signal_and_wait(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        child.wait().expect("wait for cairn")
    }

    /// SIGKILL: the process dies without any chance to clean up.
    pub fn kill9(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_and_wait(libc::SIGTERM)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal write body: one shared event with `client_id`.
pub fn event_write(client_id: &str, text: &str) -> Value {
    serde_json::json!({
        "input_text": format!("write {client_id}: {text}"),
        "memory_lane": "shared",
        "nodes": [{"client_id": client_id, "type": "event", "text_summary": text}],
    })
}

/// Runs the `cairn` binary with `args` (from the repository root) and
/// returns its exit status, stdout and stderr.
pub fn cairn(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(cairn_bin());
    cmd.args(args).current_dir(repo_root());
    // On PostgreSQL a job on a data dir works on that dir's database.
    if backend() == Backend::Postgres
        && let Some(dir) = args.iter().position(|a| *a == "--data-dir").and_then(|i| args.get(i + 1))
        && !args.contains(&"--database-url")
    {
        cmd.env("CAIRN_DATABASE_URL", postgres_database(Path::new(dir)).1);
    }
    let out = cmd.output().expect("run cairn");
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Writes a tiers file for tests: one `solo` tier whose `ops.outbox` sets
/// the attempt limit and backoff.
pub fn tiers_with_outbox(dir: &Path, max_attempts: i64, retry_base_ms: i64, retry_max_ms: i64) -> PathBuf {
    let text = format!(
        "version: 1\ndefault_tier: solo\ntiers:\n  solo:\n    resource_caps: {{embedding_dims: 384, vector_index: flat}}\n    \
         ops:\n      outbox: {{max_attempts: {max_attempts}, retry_base_ms: {retry_base_ms}, retry_max_ms: {retry_max_ms}}}\n"
    );
    let path = dir.join("tiers-test.yaml");
    std::fs::write(&path, text).expect("write tiers");
    path
}

/// A stand-in for an OpenAI-compatible `POST /v1/embeddings` endpoint, on
/// a free port, whose behaviour tests switch at run time.
pub struct FakeEmbedder {
    pub url: String,
    pub state: std::sync::Arc<std::sync::Mutex<FakeState>>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    /// Answer every request with 503.
    pub down: bool,
    /// Answer 429 Too Many Requests.
    pub rate_limited: bool,
    /// Inputs containing this answer 503 (a retryable poison pill).
    pub retryable_poison: Option<String>,
    /// Inputs containing this answer 400 (non-retryable).
    pub fatal_poison: Option<String>,
    /// Requests and inputs seen (answered 200 or not).
    pub requests: usize,
    pub inputs: usize,
    /// Hold every request unanswered while set (an embedding that takes as
    /// long as the test wants); `held` counts the requests waiting now.
    pub hold: bool,
    pub held: usize,
}

impl FakeEmbedder {
    pub fn start() -> FakeEmbedder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake embedder");
        let url = format!("http://{}/v1/embeddings", listener.local_addr().unwrap());
        let state: std::sync::Arc<std::sync::Mutex<FakeState>> = Default::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve_fake(conn, &st));
            }
        });
        FakeEmbedder { url, state }
    }

    pub fn set(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.state.lock().unwrap());
    }
}

fn serve_fake(mut conn: std::net::TcpStream, st: &std::sync::Mutex<FakeState>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        hold_while_asked(st);
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let inputs: Vec<String> = req["input"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let (status, resp) = {
            let mut s = st.lock().unwrap();
            s.requests += 1;
            s.inputs += inputs.len();
            let has = |p: &Option<String>| p.as_ref().is_some_and(|p| inputs.iter().any(|i| i.contains(p.as_str())));
            if s.rate_limited {
                (429, serde_json::json!({"error": {"message": "rate limit reached"}}))
            } else if s.down || has(&s.retryable_poison) {
                (503, serde_json::json!({"error": {"message": "overloaded"}}))
            } else if has(&s.fatal_poison) {
                (400, serde_json::json!({"error": {"message": "input rejected"}}))
            } else {
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| serde_json::json!({"index": i, "embedding": fake_vector(t)}))
                    .collect();
                (200, serde_json::json!({"data": data, "usage": {"prompt_tokens": inputs.len()}}))
            }
        };
        let text = resp.to_string();
        let head =
            format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", text.len());
        if conn.write_all(head.as_bytes()).and_then(|_| conn.write_all(text.as_bytes())).is_err() {
            return;
        }
    }
}

/// Waits while the test holds the embedder (`FakeState::hold`).
fn hold_while_asked(st: &std::sync::Mutex<FakeState>) {
    let mut counted = false;
    loop {
        let mut s = st.lock().unwrap();
        if !s.hold {
            if counted {
                s.held -= 1;
            }
            return;
        }
        if !counted {
            s.held += 1;
            counted = true;
        }
        drop(s);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A deterministic 384-dim vector of a text (character bigram counts).
pub fn fake_vector(t: &str) -> Vec<f32> {
    let mut v = vec![0f32; 384];
    let b = t.as_bytes();
    for w in b.windows(2) {
        v[(w[0] as usize * 31 + w[1] as usize) % 384] += 1.0;
    }
    v[0] += 0.5;
    v
}
