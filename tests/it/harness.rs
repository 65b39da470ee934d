//! Starts the real `ragnos-vault` binary on a free port against SQLite or a freshly
//! created PostgreSQL database, and hands out clients for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The root key every test server is provisioned with.
pub const ROOT_AKID: &str = "AKIATESTROOT00000001";
/// Its secret.
pub const ROOT_SECRET: &str = "test-root-secret-key-0000000000000000000";
/// One master key for every test server, so nodes of a cluster share it (base64 of 32 bytes).
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmchISE=";
/// The default workspace's account id.
pub const ACCOUNT_ID: &str = "111122223333";
/// The root admin user's email (`RAGNOS_ROOT_EMAIL`).
pub const ROOT_EMAIL: &str = "root@example.com";
/// Its password (`RAGNOS_ROOT_PASSWORD`).
pub const ROOT_PASSWORD: &str = "root-password-for-tests";

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in the server's data dir.
    Sqlite,
    /// A fresh database on the local PostgreSQL.
    Postgres,
}

/// Base URL of the PostgreSQL server used for tests (its maintenance database).
pub fn pg_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Run `psql` against the maintenance database; returns false if PostgreSQL is unreachable.
fn psql(url: &str, sql: &str) -> bool {
    Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The output of one SQL statement run by `psql` at `url` (unaligned, no headers); panics
/// if it fails.
pub fn psql_value(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Is PostgreSQL reachable? Outside CI a missing server skips PostgreSQL tests loudly;
/// under `CI=true` it is a failure.
pub fn postgres_available() -> bool {
    let ok = psql(&pg_admin_url(), "SELECT 1");
    if !ok {
        assert!(
            !in_ci(),
            "PostgreSQL is required under CI=true but {} is unreachable",
            pg_admin_url()
        );
        eprintln!(
            "SKIPPED: PostgreSQL tests (no server at {})",
            pg_admin_url()
        );
    }
    ok
}

/// The local Redis for tests, if reachable. Outside CI a missing Redis skips loudly; under
/// `CI=true` it is a failure.
pub fn redis_url() -> Option<String> {
    let addr = std::env::var("TEST_REDIS_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into());
    if std::net::TcpStream::connect(&addr).is_ok() {
        return Some(format!("redis://{addr}/"));
    }
    assert!(
        !in_ci(),
        "Redis is required under CI=true but {addr} is unreachable"
    );
    eprintln!("SKIPPED: a test that needs Redis (none at {addr})");
    None
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running server process; killed (and its database dropped) on drop.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Data directory (SQLite file, master key).
    pub data_dir: tempfile::TempDir,
    /// The database URL the server uses.
    pub database_url: String,
    /// The backend.
    pub backend: Backend,
    pg_db: Option<String>,
    /// Captured stderr (JSON logs) file path.
    pub log_path: std::path::PathBuf,
    /// The Redis this server shares invalidations through, if any.
    pub redis_url: Option<String>,
    /// Extra environment the server was started with (kept across restarts).
    env: Vec<(String, String)>,
}

impl TestServer {
    /// Start a server on `backend` that shares cache invalidations through the local Redis
    /// (as a deployment with out-of-process writers such as `import aws` would); `None` if
    /// Redis or PostgreSQL is unavailable outside CI.
    pub fn start_with_redis(backend: Backend) -> Option<TestServer> {
        let url = redis_url()?;
        let mut server = Self::start_with_env(backend, &[("REDIS_URL", url.as_str())])?;
        server.redis_url = Some(url);
        Some(server)
    }

    /// Start a server on `backend`; `None` if PostgreSQL was asked for but is unavailable.
    pub fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with_env(backend, &[])
    }

    /// [`TestServer::start`] with extra environment (e.g. `RAGNOS_JWT_TTL_SECONDS`).
    pub fn start_with_env(backend: Backend, env: &[(&str, &str)]) -> Option<TestServer> {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let (database_url, pg_db) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", data_dir.path().join("vault.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, name) = fresh_pg_database()?;
                (url, Some(name))
            }
        };
        let server = Self::spawn(data_dir, database_url, backend, pg_db, env);
        Some(server)
    }

    /// Start `n` nodes at once on one fresh PostgreSQL database, each with `env` (e.g.
    /// REDIS_URL): they migrate and provision it together, as replicas of a new deployment
    /// would. The first node owns (and drops) the database.
    pub fn start_cluster(n: usize, env: &[(&str, &str)]) -> Option<Vec<TestServer>> {
        let (url, name) = fresh_pg_database()?;
        let nodes = std::thread::scope(|scope| {
            let starting: Vec<_> = (0..n)
                .map(|i| {
                    let owner = (i == 0).then(|| name.clone());
                    let url = url.clone();
                    scope.spawn(move || {
                        let dir = tempfile::tempdir().expect("tempdir");
                        Self::spawn(dir, url, Backend::Postgres, owner, env)
                    })
                })
                .collect();
            starting
                .into_iter()
                .map(|t| t.join().expect("a node failed to start"))
                .collect()
        });
        Some(nodes)
    }

    fn spawn(
        data_dir: tempfile::TempDir,
        database_url: String,
        backend: Backend,
        pg_db: Option<String>,
        env: &[(&str, &str)],
    ) -> TestServer {
        let log_path = data_dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragnos-vault"))
            .args(["server", "--listen", "127.0.0.1:0"])
            .env("RAGNOS_DATA_DIR", data_dir.path())
            .env("DATABASE_URL", &database_url)
            .env("RAGNOS_ROOT_ACCESS_KEY_ID", ROOT_AKID)
            .env("RAGNOS_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
            .env("RAGNOS_ROOT_ACCOUNT_ID", ACCOUNT_ID)
            .env("RAGNOS_ROOT_EMAIL", ROOT_EMAIL)
            .env("RAGNOS_ROOT_PASSWORD", ROOT_PASSWORD)
            .env("RAGNOS_LOG", "debug")
            .env("VAULT_MASTER_KEY", TEST_MASTER_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn ragnos-vault");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut endpoint = None;
        for line in lines.by_ref() {
            let line = line.expect("read stdout");
            if let Some(url) = line.strip_prefix("ragnos-vault listening on ") {
                endpoint = Some(url.trim().to_string());
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let endpoint = endpoint.unwrap_or_else(|| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("server did not start; log:\n{log}")
        });
        TestServer {
            child,
            endpoint,
            data_dir,
            database_url,
            backend,
            pg_db,
            log_path,
            redis_url: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Ask the server to stop with SIGTERM and wait for it; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("server did not stop within 10 s of SIGTERM");
    }

    /// Stop this process (SIGKILL) and start a new one on the same data.
    pub fn restart(self) -> TestServer {
        self.restart_after(|| {})
    }

    /// [`restart`](Self::restart), running `between` once the old process is gone.
    pub fn restart_after(mut self, between: impl FnOnce()) -> TestServer {
        let _ = self.child.kill();
        let _ = self.child.wait();
        between();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("tempdir"));
        let pg_db = self.pg_db.take();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut next = Self::spawn(
            data_dir,
            self.database_url.clone(),
            self.backend,
            pg_db,
            &env,
        );
        next.redis_url = self.redis_url.take();
        next
    }

    /// [`TestServer::restart`] with different extra environment.
    pub fn restart_with_env(mut self, env: &[(&str, &str)]) -> TestServer {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.restart()
    }

    /// Run the binary's `admin` subcommand against this server's storage; returns stdout JSON.
    pub fn admin(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_ragnos-vault"))
            .arg("admin")
            .args(args)
            .env("RAGNOS_DATA_DIR", self.data_dir.path())
            .env("DATABASE_URL", &self.database_url)
            .env("VAULT_MASTER_KEY", TEST_MASTER_KEY)
            .output()
            .expect("run admin");
        assert!(
            out.status.success(),
            "admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("admin prints JSON")
    }

    /// Create a workspace and an access key in it; returns (akid, secret, account id).
    pub fn new_workspace_key(&self, role: &str, scopes: &[&str]) -> (String, String, String) {
        let name = format!("ws{}", uuid::Uuid::new_v4().simple());
        self.admin(&["workspace", "create", &name]);
        self.new_key(&name, role, scopes)
    }

    /// Mint a key in an existing workspace.
    pub fn new_key(
        &self,
        workspace: &str,
        role: &str,
        scopes: &[&str],
    ) -> (String, String, String) {
        let mut args = vec![
            "access-key",
            "create",
            "--workspace",
            workspace,
            "--role",
            role,
        ];
        for s in scopes {
            args.push("--scope");
            args.push(s);
        }
        let v = self.admin(&args);
        (
            v["access_key_id"].as_str().expect("akid").to_string(),
            v["secret_access_key"].as_str().expect("secret").to_string(),
            v["account_id"].as_str().expect("account").to_string(),
        )
    }

    /// The server's captured logs, once the lines of the requests made so far are written
    /// (the server writes its log every `LOG_FLUSH_EVERY`).
    pub fn logs(&self) -> String {
        std::thread::sleep(ragnos_vault::telemetry::LOG_FLUSH_EVERY * 3);
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// Stop a server's process but keep its database (the cluster reuses it).
/// A new, empty PostgreSQL database: its URL and name. `None` when PostgreSQL is unavailable
/// outside CI.
fn fresh_pg_database() -> Option<(String, String)> {
    if !postgres_available() {
        return None;
    }
    let name = format!(
        "ragnos_it_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4().simple()
    );
    assert!(
        psql(&pg_admin_url(), &format!("CREATE DATABASE {name}")),
        "create database {name}"
    );
    let base = pg_admin_url();
    let url = match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("bad TEST_POSTGRES_URL"),
    };
    Some((url, name))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = &self.pg_db {
            psql(
                &pg_admin_url(),
                &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            );
        }
    }
}

/// An official Rust SDK client for `server` with the given key.
pub fn sdk_client(
    endpoint: &str,
    akid: &str,
    secret: &str,
    region: &str,
) -> aws_sdk_secretsmanager::Client {
    let creds = aws_credential_types::Credentials::new(akid, secret, None, None, "test");
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new(
            region.to_string(),
        ))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The root client in us-east-1.
pub fn root_client(server: &TestServer) -> aws_sdk_secretsmanager::Client {
    sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "us-east-1")
}

/// A unique secret name for one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The server's database, opened beside it (as the importer and the admin CLI open it).
///
/// On SQLite the server's audit journal is copied into the log first: every request
/// answered so far has its audit row in the log.
pub async fn open_db(server: &TestServer) -> ragnos_vault::store::Db {
    let db = ragnos_vault::store::Db::connect(&server.database_url, 2)
        .await
        .expect("open the server's database");
    ragnos_vault::store::audit_journal::caught_up(&db, std::time::Duration::from_secs(30))
        .await
        .expect("the server's audit journal reaches the log");
    db
}

/// The id of the root key's workspace.
pub async fn default_workspace(db: &ragnos_vault::store::Db) -> String {
    db.workspace_by_name("default")
        .await
        .expect("query")
        .expect("the default workspace")
        .id
}
