//! RAGnos Vault: a self-hosted, multi-tenant secrets manager that speaks the AWS Secrets
//! Manager wire protocol.
//!
//! # Layout
//! A request flows `server → protocol → engine → store`:
//! - [`server`]: hyper accept loop, limits, routing, request ids, graceful shutdown.
//! - [`protocol`]: AWS JSON 1.1 — `X-Amz-Target` to [`protocol::Operation`], SigV4, AWS error shapes.
//! - [`rest`]: the native admin REST API under `/api/v1` (JWT login, workspaces, members,
//!   access keys, secrets, audit queries, OpenAPI document) over the same engine.
//! - [`sigv4`]: our own SigV4 verifier (parse without the secret, verify with a cached signing key).
//! - [`auth`]: roles, permissions, and the keyring mapping access keys to workspaces.
//! - [`engine`]: secrets, versions, staging labels, deletion lifecycle, listing, rotation
//!   settings and Multi-Region replication — AWS semantics.
//! - [`crypto`]: master key → wrapped workspace keys → HKDF data keys → AES-256-GCM with AAD.
//! - [`store`]: SQL over SQLite or PostgreSQL with diesel-async; migrations at start-up.
//! - [`admin`]: workspaces and access keys (first start, admin CLI, REST).
//! - [`bootstrap`]: opening storage and the master key, and first-start provisioning
//!   (workspace `default`, its root access key and the root admin user).
//! - [`audit`]: the durable, fail-closed audit log with its group-commit writer.
//! - [`telemetry`]: Prometheus metrics with bounded labels.
//! - [`import`]: `ragnos-vault import aws`, copying a whole AWS account into a workspace.
//! - [`bench`]: `ragnos-vault bench`, the load generator with its bare-hyper baseline.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod bootstrap;
pub mod config;
pub mod crypto;
pub mod engine;
pub mod import;
pub mod protocol;
pub mod rest;
pub mod server;
pub mod sigv4;
pub mod store;
pub mod telemetry;
