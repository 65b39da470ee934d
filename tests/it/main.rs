//! Integration tests: the real `ragnos-vault` binary driven by the official Rust SDK and by
//! raw signed requests, on SQLite and on a fresh PostgreSQL database.

mod at_rest;
mod audit;
mod bench;
mod clients;
mod cluster;
mod harness;
mod import;
mod matrix;
mod raw;
mod rejections;
mod rest;
mod rotation_replication;
mod sdk;

/// Define one `#[tokio::test]` per backend for an `async fn(&TestServer)`, optionally
/// with extra server environment: `both_backends!(name, env = [("K", "V")]);`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, env = [$(($k:expr, $v:expr)),* $(,)?]) => {
        mod $name {
            use $crate::harness::{Backend, TestServer};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let server = TestServer::start_with_env(Backend::Sqlite, &[$(($k, $v)),*])
                    .expect("sqlite server");
                super::$name(&server).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(server) = TestServer::start_with_env(Backend::Postgres, &[$(($k, $v)),*])
                else {
                    return;
                };
                super::$name(&server).await;
            }
        }
    };
    ($name:ident) => {
        mod $name {
            use $crate::harness::{Backend, TestServer};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let server = TestServer::start(Backend::Sqlite).expect("sqlite server");
                super::$name(&server).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(server) = TestServer::start(Backend::Postgres) else {
                    return;
                };
                super::$name(&server).await;
            }
        }
    };
}

/// Like `both_backends!`, with servers sharing cache invalidations through Redis.
#[macro_export]
macro_rules! both_backends_redis {
    ($name:ident) => {
        mod $name {
            use $crate::harness::{Backend, TestServer};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some(server) = TestServer::start_with_redis(Backend::Sqlite) else {
                    return;
                };
                super::$name(&server).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(server) = TestServer::start_with_redis(Backend::Postgres) else {
                    return;
                };
                super::$name(&server).await;
            }
        }
    };
}
