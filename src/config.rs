//! Server configuration from flags and environment (brief §3).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the server listens, stores and connects.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Directory for the SQLite database and the generated dev master key.
    #[arg(long, env = "RAGNOS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; defaults to SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Master key file (32 raw bytes or base64); `VAULT_MASTER_KEY` (base64) wins over it.
    #[arg(long, env = "VAULT_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Database connections in the pool.
    #[arg(long, env = "RAGNOS_DB_POOL", default_value_t = default_db_pool())]
    pub db_pool: u32,
}

/// The default pool size: 4 connections per CPU, between 4 and 32.
///
/// More is slower, not faster, once the database's backends outnumber the cores: on 2 cores
/// `ragnos-vault bench` measured PostgreSQL PutSecretValue at ~1,600/s with 8 connections
/// and ~1,300/s with 16.
pub fn default_db_pool() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cpus.saturating_mul(4))
        .unwrap_or(32)
        .clamp(4, 32)
}

impl StorageArgs {
    /// The database URL, defaulting to `<data-dir>/vault.db`.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("vault.db").display()),
        }
    }
}

/// `ragnos-vault server` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port and prints it).
    #[arg(long, env = "RAGNOS_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Redis URL for cross-node cache invalidation (optional).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Storage settings.
    #[command(flatten)]
    pub storage: StorageArgs,
}
