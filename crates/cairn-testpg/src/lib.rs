//! A throwaway PostgreSQL server for tests.
//!
//! [`TestPg::start`] finds the installed server (`pg_config --bindir`, else
//! the newest `/usr/lib/postgresql/*/bin`), runs `initdb` into a fresh
//! temp dir (superuser `cairn`, trust auth on loopback only), and starts it
//! with `pg_ctl` on 127.0.0.1 and a free port, its socket in the same dir,
//! with durability off (`fsync`, `full_page_writes`, `synchronous_commit`:
//! a test server loses nothing a test needs). PostgreSQL refuses to run as
//! root, so under root every command runs as the `postgres` system user
//! (`runuser`), which owns the temp dir; otherwise as the calling user.
//! Dropping the handle stops the server by the postmaster's pid (SIGINT,
//! PostgreSQL's fast shutdown, then SIGKILL after 10 s) and removes the dir.
//!
//! Nothing here is shared between tests: each call is its own server
//! (initdb ~1 s, start ~0.3 s), so tests may run in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The superuser every test server has.
pub const SUPERUSER: &str = "cairn";

pub struct TestPg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    pid: i32,
    /// `Some("postgres")` when commands run as that user (we are root).
    run_as: Option<String>,
}

/// Where the server binaries are.
pub fn bindir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server found (pg_config --bindir, /usr/lib/postgresql: {e})"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| "no PostgreSQL server in /usr/lib/postgresql/*/bin".into())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

impl TestPg {
    /// Starts a fresh server; an error says what is missing or what failed
    /// (with the server's log).
    pub fn start() -> Result<TestPg, String> {
        Self::start_with(false)
    }

    /// [`TestPg::start`] with TLS on (`ssl=on`): a throwaway CA signs the
    /// server's certificate for 127.0.0.1 and localhost ([`TestPg::ca_file`]);
    /// made with the `openssl` command.
    pub fn start_with_tls() -> Result<TestPg, String> {
        Self::start_with(true)
    }

    /// The PEM file of the CA that signed the server's certificate (a
    /// server from [`TestPg::start_with_tls`]).
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.join("ca.pem")
    }

    fn start_with(tls: bool) -> Result<TestPg, String> {
        let bin = bindir()?;
        // SAFETY: plain libc calls with no pointers.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| "postgres".to_string());
        let dir = std::env::temp_dir().join(format!(
            "cairn-testpg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut pg = TestPg { dir, bin, port: 0, pid: 0, run_as };
        if let Some(user) = &pg.run_as {
            chown_to(&pg.dir, user)?;
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &["-D", path_str(&data)?, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
        )?;
        let tls_opts = if tls { pg.make_certificates()? } else { String::new() };
        // A port taken between the probe and the start is retried.
        let mut last = String::new();
        for _ in 0..3 {
            pg.port = free_port()?;
            let opts = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c synchronous_commit=off{tls_opts}",
                pg.port,
                path_str(&pg.dir)?
            );
            let log = pg.dir.join("server.log");
            match pg
                .run("pg_ctl", &["-D", path_str(&data)?, "-l", path_str(&log)?, "-w", "-t", "30", "-o", &opts, "start"])
            {
                Ok(()) => {
                    pg.pid = read_pid(&data)?;
                    return Ok(pg);
                }
                Err(e) => last = format!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()),
            }
        }
        Err(format!("PostgreSQL did not start: {last}"))
    }

    /// A CA and a server certificate signed by it in the server's dir; the
    /// server options that use them.
    fn make_certificates(&self) -> Result<String, String> {
        let openssl = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&self.dir)
                .output()
                .map_err(|e| format!("running openssl (needed for a TLS test server): {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
            }
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cairn-testpg CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ])?;
        std::fs::write(
            self.dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .map_err(|e| e.to_string())?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        let key = self.dir.join("server.key");
        // PostgreSQL refuses a key others can read, or one it does not own.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if let Some(user) = &self.run_as {
            for f in ["server.key", "server.crt", "ca.pem"] {
                chown_to(&self.dir.join(f), user)?;
            }
        }
        Ok(format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            path_str(&self.dir.join("server.crt"))?,
            path_str(&key)?
        ))
    }

    /// One of the server's tools, as the user the server runs as.
    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(&self.dir);
        cmd
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let out = self.command(tool, args).output().map_err(|e| format!("running {tool}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A connection URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let port = self.port.to_string();
        self.run("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])
    }

    /// Runs `sql` in `database` with `psql` as the superuser and returns
    /// its unaligned, header-less output (for a test to look at or change
    /// what a server stored).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let port = self.port.to_string();
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ];
        let out = self.command("psql", &args).output().map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl TestPg {
    /// Stops the server and removes its directory (what dropping the
    /// handle does; for a server kept in a static, from an exit handler).
    pub fn stop(&self) {
        // SAFETY: kill(pid, 0) only probes whether our server still runs.
        if self.pid > 0 && unsafe { libc::kill(self.pid, 0) } == 0 {
            stop(self.pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for TestPg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fast shutdown by pid, then a kill if it lingers.
fn stop(pid: i32) {
    // SAFETY: signals to a pid we started; kill(pid, 0) only probes.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while unsafe { libc::kill(pid, 0) } == 0 {
        if Instant::now() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(data: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).map_err(|e| format!("postmaster.pid: {e}"))?;
    text.lines().next().and_then(|l| l.trim().parse().ok()).ok_or_else(|| "postmaster.pid has no pid".into())
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

fn chown_to(dir: &Path, user: &str) -> Result<(), String> {
    let cuser = std::ffi::CString::new(user).map_err(|e| e.to_string())?;
    let cdir = std::ffi::CString::new(path_str(dir)?).map_err(|e| e.to_string())?;
    // SAFETY: getpwnam returns a pointer into static storage, read at once;
    // both strings outlive the calls.
    unsafe {
        let pw = libc::getpwnam(cuser.as_ptr());
        if pw.is_null() {
            return Err(format!("running as root, and there is no '{user}' user to run PostgreSQL as"));
        }
        if libc::chown(cdir.as_ptr(), (*pw).pw_uid, (*pw).pw_gid) != 0 {
            return Err(format!("chown {} to {user}: {}", dir.display(), std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts, answers on its port, and is gone (process and dir) once
    /// dropped.
    #[test]
    fn starts_serves_and_stops_by_pid() {
        let pg = TestPg::start().unwrap_or_else(|e| panic!("{e}"));
        pg.create_database("probe").unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
        assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok());
        let (pid, dir) = (pg.pid(), pg.dir.clone());
        drop(pg);
        // SAFETY: probing a pid.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the postmaster is still running");
        assert!(!dir.exists());
    }
}
