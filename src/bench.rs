//! `ragnos-vault bench`: the load generator behind `docs/benchmarks.md`.
//!
//! One invocation measures a bare hyper server (the baseline: what HTTP alone costs on this
//! machine) and then our server, built exactly as `ragnos-vault server` builds it, on each
//! backend asked for. Every request to either is SigV4-signed, so both sides of the ratio pay
//! the same client cost. The load is closed-loop over N keep-alive HTTP/1.1 connections; each
//! workload gets a warm-up and then a measured window, and only requests that start and end
//! inside the window count.
//!
//! Seeding goes straight through the store with multi-row INSERTs (sealed exactly as the engine
//! seals), because a million CreateSecret calls would take longer than the benchmark itself.

use crate::admin::{generate_access_key_id, generate_account_id};
use crate::auth::ACCESS_KEY_PURPOSE;
use crate::crypto::{MasterKey, VersionAad, WorkspaceKey};
use crate::server;
use crate::sigv4::{self, SigningKey};
use crate::store::{self, AccessKeyRow, Db, SecretRow, StageRow, VersionRow, WorkspaceRow};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;

const REGION: &str = "us-east-1";
const SERVICE: &str = "secretsmanager";
const DAY_MS: i64 = 86_400_000;
/// Secrets per seeding transaction.
const SEED_BATCH: usize = 20_000;

/// `ragnos-vault bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Backends to measure: sqlite, postgres or both.
    #[arg(long, default_value = "both", value_parser = ["sqlite", "postgres", "both"])]
    pub backend: String,
    /// PostgreSQL URL of a role that may create databases; each run uses a fresh one.
    #[arg(
        long,
        env = "RAGNOS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Warm-up per workload, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Measured window per workload, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Only these workloads (repeatable); default all but the scale reads.
    #[arg(long = "workload", value_name = "NAME")]
    pub workloads: Vec<String>,
    /// Smoke mode: 0.5 s warm-up, 2 s windows, 1,000 secrets for the 10k set and 10,000 for the list.
    #[arg(long)]
    pub quick: bool,
    /// Also run the scale reads: seed 1,000,000 more secrets over 10,000 workspaces and repeat
    /// the hot reads on that database, then read uniformly over all of it.
    #[arg(long)]
    pub scale: bool,
    /// Secrets the scale run seeds (100 per workspace).
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_secrets: usize,
    /// Write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the Markdown table to FILE (it is always printed).
    #[arg(long, value_name = "FILE")]
    pub out_md: Option<PathBuf>,
    /// Where SQLite runs live (a fresh directory inside, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database connections in the server's pool (the server's default).
    #[arg(long, default_value_t = crate::config::default_db_pool())]
    pub db_pool: u32,
    /// Where the in-process server's JSON logs go (info level, one line per request).
    #[arg(long, value_name = "FILE", default_value = "/dev/null")]
    pub server_log: PathBuf,
    /// Worker threads of the in-process server's runtime (the load generator has its own).
    #[arg(long, default_value_t = 2)]
    pub server_threads: usize,
    /// Seed secrets as never read, so each secret's first read also records its
    /// LastAccessedDate (in the audit batch); by default they look already read today.
    #[arg(long)]
    pub unread: bool,
}

/// One measured row of the results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    /// Workload name.
    pub workload: String,
    /// `baseline`, `sqlite` or `postgres`.
    pub backend: String,
    /// Concurrent connections.
    pub connections: usize,
    /// 200 answers inside the window.
    pub ok: u64,
    /// Other answers, by status and AWS error code (or transport error).
    pub errors: BTreeMap<String, u64>,
    /// 200 answers per second.
    pub req_per_s: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// `req_per_s` over the baseline's.
    pub ratio_to_baseline: Option<f64>,
    /// Scale rows: `req_per_s` over the same kind of read on the small database.
    pub ratio_to_small: Option<f64>,
    /// Share of the machine's CPU time (all CPUs) spent busy during the window, from
    /// `/proc/stat`: with the load generator, the server and PostgreSQL all on this box, less
    /// than the baseline's share means time spent waiting, not computing. `None` off Linux.
    pub cpu_busy: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// When it ran (RFC 3339, UTC).
    pub date: String,
    /// `nproc`.
    pub cpus: usize,
    /// Warm-up and window, seconds.
    pub warmup_s: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Every row, baseline first.
    pub results: Vec<BenchResult>,
}

// ----- latency histogram -----

/// Log-linear histogram of microseconds: exact below 64 µs, then 64 buckets per power of
/// two, so any reported percentile is within 1.6% of the true value.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
}

const SUB: u64 = 64;

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; (SUB as usize) * 60],
        }
    }

    fn index(us: u64) -> usize {
        if us < SUB {
            return us as usize;
        }
        let e = 63 - u64::from(us.leading_zeros()); // floor(log2), >= 6
        let sub = (us >> (e - 6)) & (SUB - 1);
        (SUB + (e - 6) * SUB + sub) as usize
    }

    fn value(index: usize) -> f64 {
        let i = index as u64;
        if i < SUB {
            return i as f64;
        }
        let e = (i - SUB) / SUB + 6;
        let sub = (i - SUB) % SUB;
        let width = 1u64 << (e - 6);
        ((SUB + sub) * width) as f64 + width as f64 / 2.0
    }

    fn record(&mut self, d: Duration) {
        let i = Self::index(d.as_micros().min(u128::from(u32::MAX)) as u64);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The `q` quantile in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i) / 1000.0;
            }
        }
        0.0
    }
}

// ----- request generation -----

/// A small, fast PRNG (xorshift64*); the load generator needs speed, not secrecy.
struct Rng(u64);

impl Rng {
    fn seeded(i: usize) -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }

    fn hex(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

/// Credentials the generator signs with.
#[derive(Clone)]
struct Credential {
    access_key_id: String,
    secret_access_key: String,
}

/// One request to send: target operation, JSON body, and which credential signs it.
struct Call {
    target: &'static str,
    body: String,
    credential: usize,
}

/// What a workload sends.
#[derive(Clone)]
enum Workload {
    /// GetSecretValue on one of `names` chosen uniformly, signed with credential 0.
    Get { names: Arc<Vec<String>> },
    /// PutSecretValue with a fresh token on one of `names`.
    Put { names: Arc<Vec<String>> },
    /// CreateSecret with a new name.
    Create,
    /// 90% Get, 10% Put over `names`.
    Mixed { names: Arc<Vec<String>> },
    /// ListSecrets, first page of 100, signed with credential `credential`.
    List { credential: usize },
    /// GetSecretValue across `workspaces` workspaces of `per_workspace` secrets each, signed
    /// with each workspace's own key: uniformly over all of them, or over a fixed working set
    /// of `working_set` secrets spread over every workspace.
    Spread {
        workspaces: usize,
        per_workspace: usize,
        working_set: Option<usize>,
    },
}

fn secret_name(i: usize) -> String {
    format!("bench/{i:07}")
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl Workload {
    fn call(&self, rng: &mut Rng) -> Call {
        match self {
            Workload::Get { names } => get_call(&names[rng.below(names.len())], 0),
            Workload::Put { names } => put_call(&names[rng.below(names.len())], rng),
            Workload::Mixed { names } => {
                let name = &names[rng.below(names.len())];
                if rng.below(10) == 0 {
                    put_call(name, rng)
                } else {
                    get_call(name, 0)
                }
            }
            Workload::Create => {
                let name = format!("bench-create/{}", rng.hex());
                Call {
                    target: "secretsmanager.CreateSecret",
                    body: format!(
                        r#"{{"Name":{},"SecretString":"{{\"password\":\"{}\"}}","ClientRequestToken":"{}"}}"#,
                        json_string(&name),
                        rng.hex(),
                        uuid::Uuid::new_v4()
                    ),
                    credential: 0,
                }
            }
            Workload::List { credential } => Call {
                target: "secretsmanager.ListSecrets",
                body: r#"{"MaxResults":100}"#.to_owned(),
                credential: *credential,
            },
            Workload::Spread {
                workspaces,
                per_workspace,
                working_set,
            } => {
                let (ws, i) = match working_set {
                    None => (rng.below(*workspaces), rng.below(*per_workspace)),
                    Some(n) => spread_item(rng.below(*n), *workspaces, *per_workspace),
                };
                get_call(&secret_name(i), ws)
            }
        }
    }

    /// The secrets a hot read goes over, with the credential of each, for [`prime`]; `None`
    /// for workloads that are not hot reads.
    fn working_set(&self) -> Option<Vec<(String, usize)>> {
        match self {
            Workload::Get { names } => Some(names.iter().map(|n| (n.clone(), 0)).collect()),
            Workload::Spread {
                workspaces,
                per_workspace,
                working_set: Some(n),
            } => Some(
                (0..*n)
                    .map(|k| {
                        let (ws, i) = spread_item(k, *workspaces, *per_workspace);
                        (secret_name(i), ws)
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// Item `k` of a working set spread over every workspace: (workspace, secret index).
fn spread_item(k: usize, workspaces: usize, per_workspace: usize) -> (usize, usize) {
    (k % workspaces, (k / workspaces) % per_workspace)
}

fn get_call(name: &str, credential: usize) -> Call {
    Call {
        target: "secretsmanager.GetSecretValue",
        body: format!(r#"{{"SecretId":{}}}"#, json_string(name)),
        credential,
    }
}

fn put_call(name: &str, rng: &mut Rng) -> Call {
    Call {
        target: "secretsmanager.PutSecretValue",
        body: format!(
            r#"{{"SecretId":{},"SecretString":"{{\"password\":\"{}\"}}","ClientRequestToken":"{}"}}"#,
            json_string(name),
            rng.hex(),
            uuid::Uuid::new_v4()
        ),
        credential: 0,
    }
}

// ----- load generation -----

/// Signs calls, deriving each credential's signing key once a day for all connections, as
/// each workspace's own SDK client would; re-derived when the date changes (a run across
/// midnight UTC). With keys kept per connection only, the spread reads (10,000
/// credentials over 64 connections) re-derived one on nearly every request, load that the
/// baseline's single credential never paid. A connection still keeps the keys it used, so
/// a hot read's signature takes no lock.
#[derive(Clone)]
struct Signer {
    credentials: Arc<Vec<Credential>>,
    shared: Arc<Vec<std::sync::Mutex<Option<DatedKey>>>>,
    kept: std::collections::HashMap<usize, DatedKey>,
}

/// A signing key with the date (`YYYYMMDD`) it signs for.
type DatedKey = (String, SigningKey);

impl Signer {
    fn new(credentials: Arc<Vec<Credential>>) -> Signer {
        let shared = credentials
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        Signer {
            credentials,
            shared: Arc::new(shared),
            kept: std::collections::HashMap::new(),
        }
    }

    /// The signing key of credential `index` for `date`.
    fn key(&mut self, index: usize, date: &str) -> Result<SigningKey, String> {
        if let Some((d, key)) = self.kept.get(&index)
            && d == date
        {
            return Ok(key.clone());
        }
        let slot = self.shared.get(index).ok_or("no such credential")?;
        let key = {
            let mut shared = slot.lock().map_err(|_| "signing key lock poisoned")?;
            match &*shared {
                Some((d, key)) if d == date => key.clone(),
                _ => {
                    let cred = self.credentials.get(index).ok_or("no such credential")?;
                    let key = SigningKey::derive(
                        cred.secret_access_key.as_bytes(),
                        date,
                        REGION,
                        SERVICE,
                    );
                    *shared = Some((date.to_owned(), key.clone()));
                    key
                }
            }
        };
        self.kept.insert(index, (date.to_owned(), key.clone()));
        Ok(key)
    }

    fn sign(&mut self, call: &Call, host: &str) -> Result<HeaderMap, String> {
        let now = sigv4::amz_date(SystemTime::now());
        let key = &self.key(call.credential, &now[..8])?;
        let cred = self
            .credentials
            .get(call.credential)
            .ok_or("no such credential")?;
        let mut headers = HeaderMap::new();
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| e.to_string());
        headers.insert("content-type", value("application/x-amz-json-1.1")?);
        headers.insert("host", value(host)?);
        headers.insert("x-amz-date", value(&now)?);
        headers.insert("x-amz-target", value(call.target)?);
        let auth = sigv4::authorization(
            &cred.access_key_id,
            key,
            REGION,
            SERVICE,
            &now,
            "POST",
            "/",
            &headers,
            call.body.as_bytes(),
        )
        .map_err(|e| e.message())?;
        headers.insert("authorization", value(&auth)?);
        Ok(headers)
    }
}

struct Tally {
    histogram: Histogram,
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// The machine's busy share over the window ([`BenchResult::cpu_busy`]).
    cpu_busy: Option<f64>,
}

/// Busy and total CPU time of all CPUs so far, in clock ticks, from `/proc/stat`.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    cpu_ticks_of(stat.lines().next()?)
}

/// Busy and total ticks from the aggregate `cpu` line of `/proc/stat`: user, nice, system,
/// idle, iowait, irq, softirq, steal, (guest time, already inside user). Idle, iowait and
/// steal (time the hypervisor gave to others) count as not busy.
fn cpu_ticks_of(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if ticks.len() < 4 {
        return None;
    }
    // Older kernels list fewer fields: those missing count as zero.
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    Some((busy, busy + at(3) + at(4) + at(7)))
}

/// The busy share between two [`cpu_ticks`] readings.
fn busy_share(from: Option<(u64, u64)>, to: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (from?, to?);
    let total = t1.checked_sub(t0).filter(|t| *t > 0)?;
    Some(b1.saturating_sub(b0) as f64 / total as f64)
}

/// Drive `connections` closed-loop connections against `addr` for warm-up + window, after
/// [`prime`] if the workload is a hot read.
async fn drive(
    addr: SocketAddr,
    workload: &Workload,
    credentials: Arc<Vec<Credential>>,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> Result<(Tally, Duration), String> {
    let signer = Signer::new(credentials);
    if let Some(set) = workload.working_set() {
        prime(addr, Arc::new(set), &signer, connections).await?;
    }
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + window;
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let from = cpu_ticks();
        tokio::time::sleep_until(stop.into()).await;
        busy_share(from, cpu_ticks())
    });
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let workload = workload.clone();
        let signer = signer.clone();
        tasks.push(tokio::spawn(async move {
            connection(addr, workload, signer, c, measure_from, stop).await
        }));
    }
    let mut total = Tally {
        histogram: Histogram::new(),
        ok: 0,
        errors: BTreeMap::new(),
        cpu_busy: None,
    };
    for t in tasks {
        let tally = t.await.map_err(|e| e.to_string())??;
        total.histogram.merge(&tally.histogram);
        total.ok += tally.ok;
        for (k, v) in tally.errors {
            *total.errors.entry(k).or_default() += v;
        }
    }
    total.cpu_busy = cpu.await.ok().flatten();
    Ok((total, window))
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A keep-alive HTTP/1.1 connection to `addr`.
async fn open(addr: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (s, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(s)
}

/// How one request went: `Ok` for a 200, else the error's key in the tally; the flag says
/// whether the connection broke.
async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> (Result<(), String>, bool) {
    match sender.send_request(req).await {
        Ok(resp) => {
            let status = resp.status();
            let code = resp
                .headers()
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let outcome = match resp.into_body().collect().await {
                Ok(_) if status == StatusCode::OK => Ok(()),
                Ok(_) => Err(format!("{} {}", status.as_u16(), code.unwrap_or_default())),
                Err(e) => Err(format!("body: {e}")),
            };
            (outcome, false)
        }
        Err(e) => (Err(format!("transport: {e}")), true),
    }
}

/// A signed request for `call`.
fn request(signer: &mut Signer, call: Call, host: &str) -> Result<Request<Full<Bytes>>, String> {
    let headers = signer.sign(&call, host)?;
    let mut req = Request::post("/")
        .body(Full::new(Bytes::from(call.body)))
        .map_err(|e| e.to_string())?;
    *req.headers_mut() = headers;
    Ok(req)
}

async fn connection(
    addr: SocketAddr,
    workload: Workload,
    mut signer: Signer,
    index: usize,
    measure_from: Instant,
    stop: Instant,
) -> Result<Tally, String> {
    let host = addr.to_string();
    let mut rng = Rng::seeded(index);
    let mut tally = Tally {
        histogram: Histogram::new(),
        ok: 0,
        errors: BTreeMap::new(),
        cpu_busy: None,
    };
    let mut sender = None;
    while Instant::now() < stop {
        if sender.is_none() {
            sender = Some(open(addr).await?);
        }
        let Some(s) = sender.as_mut() else { break };
        let req = request(&mut signer, workload.call(&mut rng), &host)?;
        let began = Instant::now();
        let (outcome, broken) = send(s, req).await;
        if broken {
            sender = None;
        }
        let ended = Instant::now();
        if began >= measure_from && ended <= stop {
            match outcome {
                Ok(()) => {
                    tally.ok += 1;
                    tally.histogram.record(ended - began);
                }
                Err(e) => *tally.errors.entry(e).or_default() += 1,
            }
        }
    }
    Ok(tally)
}

/// Read every secret of `working_set` once, over `connections` connections, so that a hot
/// read's measurement starts from the steady state it is about (each secret read before)
/// however long the first read of each takes. Any answer but 200 is an error.
async fn prime(
    addr: SocketAddr,
    working_set: Arc<Vec<(String, usize)>>,
    signer: &Signer,
    connections: usize,
) -> Result<(), String> {
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let (set, mut signer) = (working_set.clone(), signer.clone());
        tasks.push(tokio::spawn(async move {
            let host = addr.to_string();
            let mut sender = open(addr).await?;
            for (name, credential) in set.iter().skip(c).step_by(connections) {
                let req = request(&mut signer, get_call(name, *credential), &host)?;
                send(&mut sender, req)
                    .await
                    .0
                    .map_err(|e| format!("priming {name}: {e}"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

// ----- the baseline server -----

/// A bare hyper HTTP/1.1 server: reads each body and answers a fixed GetSecretValue-shaped
/// JSON with the headers our server sends. The physical limit of HTTP here.
async fn baseline_server(listener: TcpListener) {
    let body = Bytes::from_static(
        br#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/0000000-AbCdEf","CreatedDate":1.764460800123E9,"Name":"bench/0000000","SecretString":"{\"username\":\"bench\",\"password\":\"0123456789abcdef0123456789abcdef\"}","VersionId":"01234567-89ab-cdef-0123-456789abcdef","VersionStages":["AWSCURRENT"]}"#,
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    let mut r = Response::new(Full::new(body));
                    let h = r.headers_mut();
                    h.insert(
                        "content-type",
                        HeaderValue::from_static("application/x-amz-json-1.1"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                        h.insert("x-amzn-requestid", v);
                    }
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ----- seeding -----

/// A workspace made for the benchmark, with one admin key.
struct SeededWorkspace {
    row: WorkspaceRow,
    key: WorkspaceKey,
    credential: Credential,
    access: AccessKeyRow,
}

fn new_workspace(master: &MasterKey, name: &str, now: i64) -> SeededWorkspace {
    let id = uuid::Uuid::new_v4().to_string();
    let key = WorkspaceKey::generate();
    let akid = generate_access_key_id();
    let secret = format!("bench-secret-{}", uuid::Uuid::new_v4().simple());
    SeededWorkspace {
        row: WorkspaceRow {
            wrapped_key: master.wrap_workspace_key(&id, &key),
            id: id.clone(),
            name: name.to_owned(),
            account_id: generate_account_id(),
            created_at: now,
        },
        access: AccessKeyRow {
            sealed_secret: master.seal_value(ACCESS_KEY_PURPOSE, &akid, secret.as_bytes()),
            access_key_id: akid.clone(),
            workspace_id: id,
            role: "admin".into(),
            scopes: "[]".into(),
            created_at: now,
            revoked_at: None,
        },
        credential: Credential {
            access_key_id: akid,
            secret_access_key: secret,
        },
        key,
    }
}

/// Rows for secrets `range` of one workspace, sealed as the engine seals them. Unless
/// `unread`, they look already read today, so a read benchmark measures reads, not
/// LastAccessedDate writes.
fn secret_rows(
    ws: &SeededWorkspace,
    range: std::ops::Range<usize>,
    now: i64,
    unread: bool,
    out: &mut (Vec<SecretRow>, Vec<VersionRow>, Vec<StageRow>),
) {
    let today = (!unread).then(|| now - now.rem_euclid(DAY_MS));
    for i in range {
        let id = uuid::Uuid::new_v4().to_string();
        let version_id = uuid::Uuid::new_v4().to_string();
        let name = secret_name(i);
        let value = format!(
            r#"{{"username":"bench","password":"{}"}}"#,
            uuid::Uuid::new_v4().simple()
        );
        let sealed = ws.key.seal(
            &VersionAad {
                workspace_id: &ws.row.id,
                secret_id: &id,
                version_id: &version_id,
            },
            value.as_bytes(),
        );
        out.0.push(SecretRow {
            arn: format!(
                "arn:aws:secretsmanager:{REGION}:{}:secret:{name}-{}",
                ws.row.account_id,
                crate::engine::arn_suffix()
            ),
            id: id.clone(),
            workspace_id: ws.row.id.clone(),
            region: REGION.into(),
            name,
            description: None,
            kms_key_id: None,
            secret_type: None,
            tags: "[]".into(),
            resource_policy: None,
            rotation: None,
            created_at: now,
            last_changed_at: now,
            last_accessed_at: today,
            deleted_at: None,
            deletion_date: None,
            revision: 0,
            primary_region: None,
            replication: None,
        });
        out.1.push(VersionRow {
            secret_id: id.clone(),
            version_id: version_id.clone(),
            workspace_id: ws.row.id.clone(),
            sealed_value: sealed,
            is_binary: false,
            created_at: now,
            last_accessed_at: today,
        });
        out.2.push(StageRow {
            secret_id: id,
            stage: "AWSCURRENT".into(),
            version_id,
            workspace_id: ws.row.id.clone(),
        });
    }
}

/// Create `workspaces` workspaces of `per_workspace` secrets each, in transactions of about
/// [`SEED_BATCH`] secrets; returns their credentials in workspace order.
async fn seed(
    db: &Db,
    master: &MasterKey,
    prefix: &str,
    workspaces: usize,
    per_workspace: usize,
    unread: bool,
) -> Result<Vec<Credential>, String> {
    let now = crate::bootstrap::now_ms();
    let mut credentials = Vec::with_capacity(workspaces);
    let per_batch = (SEED_BATCH / per_workspace.max(1)).max(1);
    let started = Instant::now();
    let mut done = 0;
    while done < workspaces {
        let n = per_batch.min(workspaces - done);
        let made: Vec<SeededWorkspace> = (done..done + n)
            .map(|i| new_workspace(master, &format!("{prefix}-{i}"), now))
            .collect();
        // A single big workspace is split over several transactions.
        let chunk = SEED_BATCH.min(per_workspace.max(1));
        let mut first = true;
        let mut from = 0;
        while from < per_workspace || first {
            let to = (from + chunk).min(per_workspace);
            let mut rows = (Vec::new(), Vec::new(), Vec::new());
            for ws in &made {
                secret_rows(ws, from..to, now, unread, &mut rows);
            }
            let (ws_rows, keys): (Vec<WorkspaceRow>, Vec<AccessKeyRow>) = if first {
                made.iter()
                    .map(|w| (w.row.clone(), w.access.clone()))
                    .unzip()
            } else {
                (Vec::new(), Vec::new())
            };
            db.seed(&ws_rows, &keys, &rows.0, &rows.1, &rows.2)
                .await
                .map_err(|e| format!("seeding: {e}"))?;
            first = false;
            from = to;
        }
        credentials.extend(made.into_iter().map(|w| w.credential));
        done += n;
        if workspaces * per_workspace >= 100_000 {
            eprintln!(
                "  seeded {} of {} secrets ({:.0} s)",
                done * per_workspace,
                workspaces * per_workspace,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(credentials)
}

// ----- running it all -----

/// A runtime that may be dropped inside another runtime (a plain drop there panics).
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl OwnedRuntime {
    fn new(name: &str, threads: usize) -> Result<OwnedRuntime, String> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()
            .map(|rt| OwnedRuntime(Some(rt)))
            .map_err(|e| e.to_string())
    }

    fn handle(&self) -> Result<&tokio::runtime::Handle, String> {
        self.0
            .as_ref()
            .map(|rt| rt.handle())
            .ok_or_else(|| "runtime stopped".into())
    }
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A running in-process server on one backend, with its storage to clean up.
struct Target {
    addr: SocketAddr,
    db: Db,
    master: Arc<MasterKey>,
    runtime: OwnedRuntime,
    cleanup: Cleanup,
    admin_url: Option<String>,
    /// Seed secrets as never read (`--unread`).
    unread: bool,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Target {
    async fn start(args: &BenchArgs, backend: &'static str) -> Result<Target, String> {
        let master = Arc::new(MasterKey::generate());
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let (url, cleanup, admin_url) = if backend == "sqlite" {
            let base = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
            let dir = base.join(format!("ragnos-bench-{tag}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            (
                format!("sqlite://{}", dir.join("vault.db").display()),
                Cleanup::Dir(dir),
                None,
            )
        } else {
            let name = format!("ragnos_bench_{tag}");
            store::postgres_admin(&args.postgres_url, &format!("CREATE DATABASE {name}"))
                .await
                // Not the URL itself: it may carry a password.
                .map_err(|e| format!("creating database {name}: {e}"))?;
            let url = match args.postgres_url.rfind('/') {
                Some(i) => format!("{}/{name}", &args.postgres_url[..i]),
                None => return Err("--postgres-url has no database part".into()),
            };
            (
                url.clone(),
                Cleanup::Postgres {
                    admin_url: args.postgres_url.clone(),
                    name,
                },
                Some(url),
            )
        };
        let runtime = OwnedRuntime::new("bench-server", args.server_threads)?;
        let pool = args.db_pool;
        let m = master.clone();
        // The server lives wholly on its own runtime, as in its own process.
        let (db, addr) = runtime
            .handle()?
            .spawn(async move {
                let db = Db::connect(&url, pool).await.map_err(|e| e.to_string())?;
                let app = server::build_app(db.clone(), m, None).await?;
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                tokio::spawn(async move {
                    if let Err(e) = server::run(listener, app, std::future::pending()).await {
                        tracing::error!(error = %e, "bench server stopped");
                    }
                });
                Ok::<_, String>((db, addr))
            })
            .await
            .map_err(|e| e.to_string())??;
        Ok(Target {
            addr,
            db,
            master,
            runtime,
            cleanup,
            admin_url,
            unread: args.unread,
        })
    }

    /// Seed on the server's runtime (its pool's connections belong there).
    async fn seed(
        &self,
        prefix: &str,
        workspaces: usize,
        per_workspace: usize,
    ) -> Result<Vec<Credential>, String> {
        let db = self.db.clone();
        let master = self.master.clone();
        let prefix = prefix.to_owned();
        let unread = self.unread;
        let creds = self
            .runtime
            .handle()?
            .spawn(
                async move { seed(&db, &master, &prefix, workspaces, per_workspace, unread).await },
            )
            .await
            .map_err(|e| e.to_string())??;
        self.settle().await?;
        Ok(creds)
    }

    /// Do now, before anything is measured, the work a bulk load leaves to the background.
    ///
    /// On PostgreSQL: statistics (until autovacuum analyzes fresh tables, the planner picks
    /// sequential scans), the vacuum that autovacuum would start on them (and the hint bits
    /// the first reads would otherwise set), and a checkpoint of the dirty buffers. On
    /// SQLite: copying the load's WAL back into the database file. Left to run during the
    /// next workload, this work took 20–35% off reads measured right after a 200,000-secret
    /// load.
    async fn settle(&self) -> Result<(), String> {
        if let Some(url) = &self.admin_url {
            for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
                store::postgres_admin(url, sql)
                    .await
                    .map_err(|e| format!("{sql}: {e}"))?;
            }
        }
        if let Cleanup::Dir(dir) = &self.cleanup {
            let path = dir.join("vault.db").display().to_string();
            tokio::task::spawn_blocking(move || {
                use diesel::Connection;
                use diesel::connection::SimpleConnection;
                let mut conn =
                    diesel::SqliteConnection::establish(&path).map_err(|e| e.to_string())?;
                conn.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(|e| format!("WAL checkpoint: {e}"))
            })
            .await
            .map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    async fn stop(self) {
        drop(self.runtime);
        drop(self.db);
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                // Pool connections are gone with the runtime; give the server a moment to notice.
                for _ in 0..20 {
                    if store::postgres_admin(
                        &admin_url,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    )
                    .await
                    .is_ok()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }
}

fn row(
    workload: &str,
    backend: &str,
    connections: usize,
    tally: Tally,
    window: Duration,
    baseline: Option<f64>,
) -> BenchResult {
    let req_per_s = tally.ok as f64 / window.as_secs_f64();
    BenchResult {
        workload: workload.to_owned(),
        backend: backend.to_owned(),
        connections,
        ok: tally.ok,
        errors: tally.errors,
        req_per_s,
        p50_ms: tally.histogram.quantile_ms(0.50),
        p99_ms: tally.histogram.quantile_ms(0.99),
        ratio_to_baseline: baseline.filter(|b| *b > 0.0).map(|b| req_per_s / b),
        ratio_to_small: None,
        cpu_busy: tally.cpu_busy,
    }
}

/// Every workload name, in the order they run.
pub const WORKLOADS: &[&str] = &[
    "get-hot-1",
    "get-hot-10k",
    "list-100k",
    "mixed-90-10",
    "put",
    "create",
];

/// Run the benchmark and print the table; returns the report.
pub async fn run(args: BenchArgs) -> Result<BenchReport, String> {
    let (warmup, window) = if args.quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (
            Duration::from_secs_f64(args.warmup.max(0.0)),
            Duration::from_secs_f64(args.duration.max(0.1)),
        )
    };
    let (hot_n, list_n) = if args.quick {
        (1_000, 10_000)
    } else {
        (10_000, 100_000)
    };
    for w in &args.workloads {
        if !WORKLOADS.contains(&w.as_str()) && w != "scale" {
            return Err(format!(
                "unknown workload '{w}' (known: {}, scale)",
                WORKLOADS.join(", ")
            ));
        }
    }
    let scale =
        args.scale && (args.workloads.is_empty() || args.workloads.iter().any(|x| x == "scale"));
    // The scale rows are read against the hot reads on the small database, so those run too.
    let wanted = |w: &str| {
        args.workloads.is_empty()
            || args.workloads.iter().any(|x| x == w)
            || (scale && (w == "get-hot-1" || w == "get-hot-10k"))
    };
    let backends: Vec<&'static str> = match args.backend.as_str() {
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        _ => vec!["sqlite", "postgres"],
    };
    let conns = args.connections.max(1);
    let mut results = Vec::new();

    // Baseline: same client, same signing, a server that does nothing.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let base_rt = OwnedRuntime::new("bench-baseline", args.server_threads)?;
    base_rt.handle()?.spawn(baseline_server(listener));
    let base_creds = Arc::new(vec![Credential {
        access_key_id: "AKIABENCHBASELINE000".into(),
        secret_access_key: "baseline-secret-key-0000000000000000".into(),
    }]);
    let hot1 = Workload::Get {
        names: Arc::new(vec![secret_name(0)]),
    };
    eprintln!("baseline …");
    let (tally, w) = drive(base_addr, &hot1, base_creds, conns, warmup, window).await?;
    drop(base_rt);
    let base = row("baseline", "baseline", conns, tally, w, None);
    let baseline = Some(base.req_per_s);
    print_row(&base);
    results.push(base);

    for backend in backends {
        eprintln!("{backend}: starting and seeding …");
        let target = Target::start(&args, backend).await?;
        let outcome = async {
            let mut out = Vec::new();
            let creds = Arc::new(target.seed("bench", 1, hot_n).await?);
            let names: Arc<Vec<String>> = Arc::new((0..hot_n).map(secret_name).collect());
            let mut all_creds = (*creds).clone();
            if wanted("list-100k") {
                let list = target.seed("bench-list", 1, list_n).await?;
                all_creds.extend(list);
            }
            let all_creds = Arc::new(all_creds);
            let plan: Vec<(&str, Workload)> = vec![
                ("get-hot-1", hot1.clone()),
                (
                    "get-hot-10k",
                    Workload::Get {
                        names: names.clone(),
                    },
                ),
                ("list-100k", Workload::List { credential: 1 }),
                (
                    "mixed-90-10",
                    Workload::Mixed {
                        names: names.clone(),
                    },
                ),
                (
                    "put",
                    Workload::Put {
                        names: names.clone(),
                    },
                ),
                ("create", Workload::Create),
            ];
            for (name, workload) in plan {
                if !wanted(name) {
                    continue;
                }
                eprintln!("{backend}: {name} …");
                let (tally, w) = drive(
                    target.addr,
                    &workload,
                    all_creds.clone(),
                    conns,
                    warmup,
                    window,
                )
                .await?;
                let r = row(name, backend, conns, tally, w, baseline);
                print_row(&r);
                out.push(r);
            }
            if scale {
                let per = 100;
                let workspaces = (args.scale_secrets / per).max(1);
                eprintln!(
                    "{backend}: seeding {} secrets in {workspaces} workspaces …",
                    workspaces * per
                );
                let creds = Arc::new(target.seed("scale", workspaces, per).await?);
                // Each scale read against the same kind of read on the small database.
                let plan = [
                    ("scale-hot-1", hot1.clone(), "get-hot-1"),
                    (
                        "scale-10k",
                        Workload::Spread {
                            workspaces,
                            per_workspace: per,
                            working_set: Some(hot_n),
                        },
                        "get-hot-10k",
                    ),
                    (
                        "scale-1m",
                        Workload::Spread {
                            workspaces,
                            per_workspace: per,
                            working_set: None,
                        },
                        "get-hot-10k",
                    ),
                ];
                for (name, workload, small) in plan {
                    eprintln!("{backend}: {name} …");
                    let (tally, w) =
                        drive(target.addr, &workload, creds.clone(), conns, warmup, window).await?;
                    let mut r = row(name, backend, conns, tally, w, baseline);
                    r.ratio_to_small = out
                        .iter()
                        .find(|s: &&BenchResult| s.workload == small)
                        .filter(|s| s.req_per_s > 0.0)
                        .map(|s| r.req_per_s / s.req_per_s);
                    print_row(&r);
                    out.push(r);
                }
            }
            Ok::<_, String>(out)
        }
        .await;
        target.stop().await;
        results.extend(outcome?);
    }

    let report = BenchReport {
        date: {
            // 20261130T022011Z → 2026-11-30 02:20:11 UTC
            let d = crate::sigv4::amz_date(SystemTime::now());
            format!(
                "{}-{}-{} {}:{}:{} UTC",
                &d[0..4],
                &d[4..6],
                &d[6..8],
                &d[9..11],
                &d[11..13],
                &d[13..15]
            )
        },
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        warmup_s: warmup.as_secs_f64(),
        duration_s: window.as_secs_f64(),
        results,
    };
    let md = markdown(&report);
    println!("\n{md}");
    if let Some(path) = &args.out_md {
        std::fs::write(path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(report)
}

fn print_row(r: &BenchResult) {
    eprintln!(
        "  {:<12} {:<9} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
        r.workload,
        r.backend,
        r.req_per_s,
        r.p50_ms,
        r.p99_ms,
        r.errors.values().sum::<u64>()
    );
}

/// The results as a Markdown table; a "vs small" column appears when scale rows are present.
pub fn markdown(report: &BenchReport) -> String {
    let scale = report.results.iter().any(|r| r.ratio_to_small.is_some());
    let percent = |x: Option<f64>| x.map_or("—".to_owned(), |x| format!("{:.1}%", x * 100.0));
    let mut out = format!(
        "Measured {} on {} CPUs; warm-up {} s, window {} s.\n\n\
         | workload | backend | conns | req/s | vs baseline |{} p50 ms | p99 ms | CPU busy | errors |\n\
         |---|---|---:|---:|---:|{}---:|---:|---:|---|\n",
        report.date,
        report.cpus,
        report.warmup_s,
        report.duration_s,
        if scale { " vs small |" } else { "" },
        if scale { "---:|" } else { "" },
    );
    for r in &report.results {
        let errors = if r.errors.is_empty() {
            "0".to_owned()
        } else {
            r.errors
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let small = if scale {
            format!(" {} |", percent(r.ratio_to_small))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} |{small} {:.2} | {:.2} | {} | {} |\n",
            r.workload,
            r.backend,
            r.connections,
            r.req_per_s,
            percent(r.ratio_to_baseline),
            r.p50_ms,
            r.p99_ms,
            percent(r.cpu_busy),
            errors
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let mut h = Histogram::new();
        for us in 1..=100_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, exact) in [(0.5, 50.0), (0.99, 99.0), (0.999, 99.9)] {
            let got = h.quantile_ms(q);
            assert!((got - exact).abs() / exact < 0.02, "q{q}: {got} vs {exact}");
        }
        let mut small = Histogram::new();
        small.record(Duration::from_micros(7));
        assert_eq!(small.quantile_ms(0.99), 0.007);
    }

    #[test]
    fn cpu_ticks_count_idle_iowait_and_steal_as_not_busy() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let line = "cpu  100 5 50 800 20 3 7 15 40 0";
        assert_eq!(cpu_ticks_of(line), Some((165, 1000)));
        // Older kernels list fewer fields.
        assert_eq!(cpu_ticks_of("cpu 10 0 10 80"), Some((20, 100)));
        assert_eq!(cpu_ticks_of("cpu 10 0 10 80 5 2"), Some((22, 107)));
        assert_eq!(cpu_ticks_of("cpu0 100 5 50 800 20 3 7 15"), None);
        assert_eq!(cpu_ticks_of("cpu 1 2"), None);
        assert_eq!(cpu_ticks_of("cpu x 2 3 4"), None);
        let share = busy_share(Some((165, 1000)), Some((465, 1400))).unwrap();
        assert!((share - 0.75).abs() < 1e-9, "{share}");
        assert_eq!(busy_share(Some((1, 10)), Some((1, 10))), None);
        assert_eq!(busy_share(None, Some((1, 10))), None);
        let (busy, total) = cpu_ticks().expect("/proc/stat on Linux");
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn histogram_index_is_monotonic_and_in_range() {
        let mut last = 0;
        for us in (0..u64::from(u32::MAX)).step_by(9_973) {
            let i = Histogram::index(us);
            assert!(i >= last && i < SUB as usize * 60, "{us}");
            last = i;
        }
    }
}
