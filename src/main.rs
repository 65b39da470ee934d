//! The `ragnos-vault` command: `server`, `admin` subcommands, and `import aws`.

use clap::{Parser, Subcommand};
use ragnos_vault::auth::Role;
use ragnos_vault::config::{ServerArgs, StorageArgs};
use ragnos_vault::import::{self, ImportOptions, ImportProgress, SourceConfig, TargetWorkspace};
use ragnos_vault::server;
use ragnos_vault::telemetry::LogSink;
use ragnos_vault::{admin, bootstrap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

// glibc malloc was 15% of a hot read's server CPU (perf, 2026-11-30): every request
// allocates and frees many small buffers on two worker threads. With mimalloc, hot reads
// measured 16-17% more req/s on both backends (interleaved A/B runs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Measure throughput and latency against a bare hyper baseline (docs/benchmarks.md).
    Bench(ragnos_vault::bench::BenchArgs),
    /// Copy secrets from another Secrets Manager into a workspace.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

#[derive(Subcommand)]
enum ImportSource {
    /// Copy every secret of an AWS account and region (or of any Secrets Manager-compatible
    /// endpoint) into a workspace: every version with its VersionId and staging labels, tags,
    /// description and dates. Exit status: 0 clean, 1 failed, 3 conflicts or differences.
    Aws(ImportAwsArgs),
}

/// `ragnos-vault import aws` flags.
#[derive(clap::Args)]
struct ImportAwsArgs {
    /// Source region [default: AWS_REGION, AWS_DEFAULT_REGION or the profile's, else us-east-1].
    #[arg(long, value_name = "REGION")]
    from_region: Option<String>,
    /// Source endpoint, for any Secrets Manager-compatible server (moto, another RAGnos Vault).
    #[arg(long, value_name = "URL")]
    from_endpoint_url: Option<String>,
    /// Named profile for the source's credentials and region (else the standard chain).
    #[arg(long, value_name = "NAME")]
    from_profile: Option<String>,
    /// Target workspace name.
    #[arg(long, default_value = "default")]
    workspace: String,
    /// Target region [default: the source region].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// List what would be imported, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also write the validation report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// Attempts per source call in the SDK's standard retry mode.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    max_attempts: u32,
    /// Further retries of a throttled call (ThrottlingException, 429, 5xx), with exponential backoff.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=30))]
    throttle_retries: u32,
    /// Redis of running servers: they drop cached copies of what the import changes.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Storage settings (the same as the server's).
    #[command(flatten)]
    storage: StorageArgs,
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

fn init_logging(default_filter: &str, file: Option<std::fs::File>) -> LogSink {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAGNOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let sink = LogSink::start(match file {
        Some(f) => Box::new(f),
        None => Box::new(std::io::stderr()),
    });
    tracing_subscriber::fmt()
        .event_format(ragnos_vault::telemetry::JsonLine)
        .with_env_filter(filter)
        .with_writer(sink.clone())
        .init();
    sink
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
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = server::build_app(db, master, args.redis_url.as_deref()).await?;
    server::spawn_upkeep(app.protocol.engine.clone());
    println!("ragnos-vault listening on http://{addr}");
    tracing::info!(%addr, "listening");
    server::run(listener, app, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Exit status of an import that finished but found conflicts, errors or differences.
const EXIT_DIFFERENCES: u8 = 3;

async fn run_import(args: ImportAwsArgs) -> Result<ExitCode, String> {
    for region in [&args.from_region, &args.region].into_iter().flatten() {
        if !import::valid_region(region) {
            return Err(format!("'{region}' is not a region name (like us-east-1)"));
        }
    }
    if let Some(url) = &args.from_endpoint_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(format!(
            "--from-endpoint-url must be an http:// or https:// URL, not '{url}'"
        ));
    }
    let source = SourceConfig {
        region: args.from_region.clone(),
        endpoint_url: args.from_endpoint_url.clone(),
        profile: args.from_profile.clone(),
        credentials: None,
        max_attempts: args.max_attempts,
    };
    let (client, source_region) = import::source_client(&source).await;
    // One secret at a time needs few connections; leave the rest of a shared database alone.
    let mut storage = args.storage.clone();
    storage.db_pool = storage.db_pool.min(4);
    let (db, master) = bootstrap::open(&storage).await.map_err(|e| e.to_string())?;
    let options = ImportOptions {
        workspace: TargetWorkspace::Name(args.workspace.clone()),
        target_region: args.region.clone().unwrap_or_else(|| source_region.clone()),
        source_region,
        source_endpoint: args.from_endpoint_url.clone(),
        dry_run: args.dry_run,
        throttle_retries: args.throttle_retries,
        throttle_backoff: std::time::Duration::from_millis(500),
        now_ms: bootstrap::now_ms(),
        cache: match &args.redis_url {
            Some(url) if !url.is_empty() => Some(
                ragnos_vault::engine::cache::SecretCache::with_redis(url)
                    .await
                    .map_err(|e| format!("redis: {e}"))?,
            ),
            _ => None,
        },
    };
    let progress: Box<dyn ImportProgress> = if std::io::stdout().is_terminal() {
        Box::new(import::BarProgress::new())
    } else {
        Box::new(import::LineProgress::new())
    };
    let report = import::import_aws(&db, &master, &client, &options, progress.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    print!("\n{}", report.to_table());
    if let Some(path) = &args.report_json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("report written to {}", path.display());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DIFFERENCES)
    })
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
    // The importer talks to people on stdout; its logs stay quiet unless RAGNOS_LOG asks.
    // aws-config warns at length when a region or credential source it probes is absent
    // (IMDS off EC2); the chain's final answer is what matters.
    // The benchmark's server logs as a server would, into --server-log.
    let log_file = match &cli.command {
        Command::Bench(args) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&args.server_log)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("error: {}: {e}", args.server_log.display());
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let logs = init_logging(
        if matches!(cli.command, Command::Import { .. }) {
            "warn,aws_config=error"
        } else {
            "info"
        },
        log_file,
    );
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
            Command::Server(args) => run_server(args).await.map(|()| ExitCode::SUCCESS),
            Command::Admin { storage, command } => run_admin(storage, command)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Import {
                source: ImportSource::Aws(args),
            } => run_import(args).await,
            Command::Bench(args) => ragnos_vault::bench::run(args)
                .await
                .map(|_| ExitCode::SUCCESS),
        }
    });
    // The runtime's tasks are gone: nothing logs after this.
    drop(runtime);
    logs.write_pending();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
