//! The HTTP server: accept loop, limits, routing, request ids and graceful shutdown.
//!
//! `POST /` is the AWS endpoint; `/api/v1/…` is the native REST API; `/healthz` and
//! `/readyz` are for orchestrators.

use crate::auth::Keyring;
use crate::crypto::MasterKey;
use crate::engine::Engine;
use crate::protocol::{AwsError, Protocol};
use crate::rest::{Rest, RestConfig};
use crate::store::Db;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Largest request body accepted. A 64 KiB binary secret is ~88 KiB in base64 JSON.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Shared state of a running server.
pub struct App {
    /// The AWS protocol front.
    pub protocol: Protocol,
    /// Prometheus handle, when this process installed the recorder.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Per-request counters and durations.
    pub request_metrics: crate::telemetry::RequestMetrics,
    /// The native REST API.
    pub rest: Rest,
}

type Body = Full<Bytes>;

/// Wire a server over opened storage, as `ragnos-vault server` runs it: engine (with a
/// Redis-shared cache when `redis_url` is set), keyring, audit writer, metrics and REST.
pub async fn build_app(
    db: Db,
    master: Arc<MasterKey>,
    redis_url: Option<&str>,
) -> Result<Arc<App>, String> {
    // First: the engine's cache counters bind to the recorder installed here.
    let metrics = crate::telemetry::install();
    let audit = crate::audit::AuditWriter::start(db.clone())
        .await
        .map_err(|e| format!("audit: {e}"))?;
    let (engine, shared) = match redis_url {
        Some(url) if !url.is_empty() => {
            let cache = crate::engine::cache::SecretCache::with_redis(url)
                .await
                .map_err(|e| format!("redis: {e}"))?;
            tracing::info!("cache invalidations shared through Redis");
            (Engine::with_cache(db.clone(), cache.clone()), Some(cache))
        }
        _ => (Engine::new(db.clone()), None),
    };
    let engine = engine.recording_reads_with(audit.clone());
    let keyring = Arc::new(Keyring::new(db.clone(), master.clone()));
    if let Some(cache) = shared {
        keyring.share_revocations(cache);
    }
    let rest = Rest::new(
        engine.clone(),
        keyring.clone(),
        audit.clone(),
        master,
        &RestConfig::from_env(),
    )?;
    Ok(Arc::new(App {
        protocol: Protocol {
            engine,
            keyring,
            audit,
        },
        metrics,
        request_metrics: crate::telemetry::RequestMetrics::default(),
        rest,
    }))
}

/// Background upkeep: purge secrets whose recovery window ended (reads purge lazily too),
/// and keep the next months' audit partitions created ahead of time.
pub fn spawn_upkeep(engine: Engine) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = engine.purge_expired(crate::bootstrap::now_ms()).await {
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
}

fn response(
    status: StatusCode,
    content_type: &str,
    request_id: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn aws_error(e: &AwsError, request_id: &str) -> Response<Body> {
    let mut r = response(e.status, JSON_CONTENT_TYPE, request_id, e.body());
    if let Ok(v) = HeaderValue::from_str(e.code) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// Route one request.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path == crate::rest::PREFIX || path.starts_with("/api/v1/") {
        let started = std::time::Instant::now();
        let out = app
            .rest
            .handle(&parts, body, &request_id, peer, SystemTime::now())
            .await;
        app.request_metrics.record(
            "rest",
            out.route,
            out.error_code.unwrap_or("success"),
            started.elapsed(),
        );
        tracing::info!(
            request_id = request_id.as_str(),
            route = out.route,
            status = out.status.as_u16(),
            error = out.error_code.unwrap_or(""),
            micros = started.elapsed().as_micros() as u64,
            "rest request"
        );
        let mut r = response(out.status, "application/json", &request_id, out.body);
        for (name, value) in out.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(name, v);
            }
        }
        return r;
    }
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/healthz") => {
            return response(
                StatusCode::OK,
                "application/json",
                &request_id,
                r#"{"status":"ok"}"#,
            );
        }
        (&Method::GET, "/readyz") => {
            return match app.protocol.engine.db().ping().await {
                Ok(()) => response(
                    StatusCode::OK,
                    "application/json",
                    &request_id,
                    r#"{"status":"ready"}"#,
                ),
                Err(_) => response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    &request_id,
                    r#"{"status":"database unavailable"}"#,
                ),
            };
        }
        (&Method::GET, "/metrics") => {
            let Some(handle) = &app.metrics else {
                return response(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    &request_id,
                    "metrics disabled\n",
                );
            };
            let (open, idle) = app.protocol.engine.db().pool_state();
            metrics::gauge!("vault_db_pool_connections").set(f64::from(open));
            metrics::gauge!("vault_db_pool_idle").set(f64::from(idle));
            metrics::gauge!("vault_db_pool_in_use").set(f64::from(open.saturating_sub(idle)));
            return response(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                &request_id,
                handle.render(),
            );
        }
        (&Method::POST, "/") => {}
        _ => {
            let e = AwsError {
                code: "UnknownOperationException",
                status: StatusCode::NOT_FOUND,
                message: "No such endpoint.".into(),
            };
            return aws_error(&e, &request_id);
        }
    }
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let e = AwsError {
                code: "RequestEntityTooLargeException",
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!("Request body exceeds {MAX_BODY_BYTES} bytes."),
            };
            return aws_error(&e, &request_id);
        }
    };
    let started = std::time::Instant::now();
    let out = app
        .protocol
        .handle(&parts, &body, &request_id, peer, SystemTime::now())
        .await;
    app.request_metrics.record(
        "aws",
        out.operation,
        out.error_code.unwrap_or("success"),
        started.elapsed(),
    );
    tracing::info!(
        request_id = request_id.as_str(),
        operation = out.operation,
        workspace = out.workspace.as_deref().unwrap_or(""),
        status = out.status.as_u16(),
        error = out.error_code.unwrap_or(""),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    let mut r = response(out.status, JSON_CONTENT_TYPE, &request_id, out.body);
    if let Some(code) = out.error_code
        && let Ok(v) = HeaderValue::from_str(code)
    {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// Serve on `listener` until `shutdown` resolves, then drain open connections.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .max_buf_size(64 * 1024)
        .header_read_timeout(Duration::from_secs(30))
        .timer(hyper_util::rt::TokioTimer::new());
    builder.http2().max_header_list_size(64 * 1024);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(app, req, Some(peer)).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection closed with error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10s; closing them");
        }
    }
    Ok(())
}
