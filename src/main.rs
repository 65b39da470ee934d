//! The `ragnos-vault` command: `server`, and `admin` subcommands.

use clap::{Parser, Subcommand};
use ragnos_vault::auth::{Keyring, Role};
use ragnos_vault::config::{ServerArgs, StorageArgs};
use ragnos_vault::engine::Engine;
use ragnos_vault::protocol::Protocol;
use ragnos_vault::rest::{Rest, RestConfig};
use ragnos_vault::server::{self, App};
use ragnos_vault::{admin, bootstrap};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "ragnos-vault",
    version,
    about = "Self-hosted secrets manager speaking the AWS Secrets Manager API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: SQLite in ./data, 127.0.0.1:4000).
    Server(ServerArgs),
    /// Administer workspaces and access keys without the REST API.
    Admin {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Workspaces.
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Access keys.
    AccessKey {
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    /// Create a workspace (an AWS account of its own).
    Create {
        /// Workspace name.
        name: String,
        /// 12-digit account id for its ARNs (random if omitted).
        #[arg(long)]
        account_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccessKeyCommand {
    /// Mint an access key; prints its id and secret as JSON (the secret is shown once).
    Create {
        /// Workspace name.
        #[arg(long, default_value = "default")]
        workspace: String,
        /// admin | write | read
        #[arg(long, default_value = "read")]
        role: String,
        /// Limit the key to secret names starting with this prefix (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAGNOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_server(args: ServerArgs) -> Result<(), String> {
    let (db, master) = bootstrap::open(&args.storage)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(key) = bootstrap::provision_default(&db, &master)
        .await
        .map_err(|e| e.to_string())?
    {
        let json = serde_json::to_string_pretty(&key).map_err(|e| e.to_string())?;
        println!(
            "Created workspace 'default' (account {}) with an admin access key. It is shown only once:\n{json}",
            key.account_id
        );
    }
    if args.redis_url.is_some() {
        tracing::warn!(
            "REDIS_URL is set but cross-node invalidation is not enabled in this build; caching stays node-local"
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let engine = Engine::new(db.clone());
    let keyring = Arc::new(Keyring::new(db.clone(), master.clone()));
    let audit = ragnos_vault::audit::AuditWriter::start(db.clone());
    let rest = Rest::new(
        engine.clone(),
        keyring.clone(),
        audit.clone(),
        master,
        &RestConfig::from_env(),
    )?;
    let app = Arc::new(App {
        protocol: Protocol {
            engine: engine.clone(),
            keyring,
            audit,
        },
        rest,
    });
    // Background upkeep: purge secrets whose recovery window ended (reads purge lazily
    // too), and keep the next months' audit partitions created ahead of time.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = engine.purge_expired(bootstrap::now_ms()).await {
                tracing::warn!(error = %e, "purging expired secrets failed");
            }
            if rounds.is_multiple_of(24 * 60)
                && let Err(e) = engine.db().ensure_audit_partitions(3).await
            {
                tracing::warn!(error = %e, "creating audit partitions failed");
            }
            rounds += 1;
        }
    });
    println!("ragnos-vault listening on http://{addr}");
    tracing::info!(%addr, "listening");
    server::run(listener, app, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("shut down cleanly");
    Ok(())
}

async fn run_admin(storage: StorageArgs, command: AdminCommand) -> Result<(), String> {
    let (db, master) = bootstrap::open(&storage).await.map_err(|e| e.to_string())?;
    let now = bootstrap::now_ms();
    match command {
        AdminCommand::Workspace {
            command: WorkspaceCommand::Create { name, account_id },
        } => {
            let ws = admin::create_workspace(&db, &master, &name, account_id.as_deref(), now)
                .await
                .map_err(|e| e.to_string())?;
            let out =
                serde_json::json!({"id": ws.id, "name": ws.name, "account_id": ws.account_id});
            println!("{out}");
        }
        AdminCommand::AccessKey {
            command:
                AccessKeyCommand::Create {
                    workspace,
                    role,
                    scopes,
                },
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| format!("invalid role '{role}': use admin, write or read"))?;
            let ws = db
                .workspace_by_name(&workspace)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("workspace '{workspace}' not found"))?;
            let key = admin::create_access_key(&db, &master, &ws, role, scopes, None, now)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::to_string(&key).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => run_server(args).await,
            Command::Admin { storage, command } => run_admin(storage, command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
