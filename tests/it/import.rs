//! `ragnos-vault import aws` against real, independent Secrets Manager implementations:
//! moto's server standing in for AWS, and a second RAGnos Vault instance. Everything is
//! seeded and compared through the official Rust SDK; the imported secrets are read back
//! through the running target server, not through the store.

use crate::both_backends_redis;
use crate::harness::{
    ACCOUNT_ID, Backend, ROOT_AKID, ROOT_SECRET, TestServer, root_client, sdk_client, unique,
};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A `moto_server` process on a loopback port; killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Start moto; `None` (and a loud skip) if it is not installed, a failure under `CI=true`.
    fn start() -> Option<Moto> {
        let installed = Command::new("moto_server")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !installed {
            assert!(
                !in_ci(),
                "moto_server is required under CI=true (pip install \"moto[server]\")"
            );
            eprintln!(
                "SKIPPED: import tests against moto (moto_server not installed; pip install \"moto[server]\")"
            );
            return None;
        }
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn moto_server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    });
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // lost the port race; try another
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    fn client(&self) -> Client {
        sdk_client(&self.endpoint, "testing", "testing", "us-east-1")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One run of the import command.
struct ImportRun {
    code: i32,
    output: String,
    report: Value,
}

/// Run `ragnos-vault import aws` against `server`'s storage, reading from `endpoint` with
/// the given keys (passed the standard way, through the environment).
fn import(server: &TestServer, endpoint: &str, keys: (&str, &str), extra: &[&str]) -> ImportRun {
    let report_path = server
        .data_dir
        .path()
        .join(format!("report-{}.json", uuid::Uuid::new_v4().simple()));
    let out = Command::new(env!("CARGO_BIN_EXE_ragnos-vault"))
        .args([
            "import",
            "aws",
            "--from-endpoint-url",
            endpoint,
            "--from-region",
            "us-east-1",
        ])
        .arg("--report-json")
        .arg(&report_path)
        .args(extra)
        .env("RAGNOS_DATA_DIR", server.data_dir.path())
        .env("DATABASE_URL", &server.database_url)
        .env("VAULT_MASTER_KEY", crate::harness::TEST_MASTER_KEY)
        .env("REDIS_URL", server.redis_url.as_deref().unwrap_or(""))
        .env_remove("RAGNOS_LOG")
        .env("AWS_ACCESS_KEY_ID", keys.0)
        .env("AWS_SECRET_ACCESS_KEY", keys.1)
        // Hermetic: no profile, region or endpoint from the machine running the tests.
        .env("AWS_CONFIG_FILE", "/nonexistent/ragnos-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ragnos-test/credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .output()
        .expect("run import");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read(&report_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    ImportRun {
        code: out.status.code().unwrap_or(-1),
        output,
        report,
    }
}

fn secret_report<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["secrets"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in report: {report:#}"))
}

/// A timestamp to the millisecond, the store's precision (moto sends microseconds).
fn ms(t: Option<&aws_sdk_secretsmanager::primitives::DateTime>) -> Option<i64> {
    t.map(|t| (t.as_secs_f64() * 1000.0).round() as i64)
}

fn code<E: ProvideErrorMetadata, R>(e: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> String {
    e.code().unwrap_or("no code").to_string()
}

/// label → VersionId, and every VersionId, from ListSecretVersionIds (paginated, deprecated included).
async fn versions_of(
    c: &Client,
    id: &str,
) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Option<i64>>) {
    let mut stages = BTreeMap::new();
    let mut created = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = c
            .list_secret_version_ids()
            .secret_id(id)
            .include_deprecated(true)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("list versions");
        for v in page.versions() {
            let mut s = v.version_stages().to_vec();
            s.sort();
            stages.insert(v.version_id().expect("id").to_string(), s);
            created.insert(
                v.version_id().expect("id").to_string(),
                ms(v.created_date()),
            );
        }
        // moto answers "" (and ignores MaxResults).
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return (stages, created);
        }
    }
}

fn labelled(
    map: Option<&std::collections::HashMap<String, Vec<String>>>,
) -> BTreeMap<String, Vec<String>> {
    map.into_iter()
        .flatten()
        .filter(|(_, s)| !s.is_empty())
        .map(|(v, s)| {
            let mut s = s.clone();
            s.sort();
            (v.clone(), s)
        })
        .collect()
}

/// How the target's ARN must relate to the source's.
#[derive(Clone, Copy, PartialEq)]
enum ArnRule {
    /// Source account = workspace account: identical ARN.
    Same,
    /// Other account: a new ARN in the workspace's account, same name, fresh 6-char suffix.
    New,
}

/// Compare one secret, as seen through two Secrets Manager endpoints, in every detail the
/// importer promises. `exact_listing_dates`: the source's ListSecretVersionIds dates are real
/// (moto reports the time of the call there).
async fn assert_same_secret(
    src: &Client,
    dst: &Client,
    name: &str,
    arn: ArnRule,
    exact_listing_dates: bool,
) {
    let s = src
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .expect("describe source");
    let d = dst
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name} missing in target: {}", code(&e)));
    let (sarn, darn) = (s.arn().expect("arn"), d.arn().expect("arn"));
    match arn {
        ArnRule::Same => assert_eq!(darn, sarn, "{name}: ARN kept"),
        ArnRule::New => {
            let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:{name}-");
            assert!(
                darn.starts_with(&prefix) && darn.len() == prefix.len() + 6,
                "{name}: new ARN {darn}"
            );
            assert_ne!(darn, sarn);
        }
    }
    assert_eq!(d.name(), s.name());
    assert_eq!(d.description(), s.description(), "{name}: description");
    assert_eq!(d.kms_key_id(), s.kms_key_id(), "{name}: KmsKeyId");
    let tags = |t: &[Tag]| {
        t.iter()
            .map(|t| (t.key().map(str::to_string), t.value().map(str::to_string)))
            .collect::<Vec<_>>()
    };
    assert_eq!(tags(d.tags()), tags(s.tags()), "{name}: tags, in order");
    assert_eq!(
        ms(d.created_date()),
        ms(s.created_date()),
        "{name}: CreatedDate"
    );
    assert_eq!(
        ms(d.deleted_date()),
        ms(s.deleted_date()),
        "{name}: DeletedDate"
    );
    assert_eq!(
        labelled(d.version_ids_to_stages()),
        labelled(s.version_ids_to_stages()),
        "{name}: VersionIdsToStages"
    );
    let (sv, sdates) = versions_of(src, name).await;
    let (dv, ddates) = versions_of(dst, name).await;
    assert_eq!(dv, sv, "{name}: every VersionId with its labels");
    if exact_listing_dates {
        assert_eq!(
            ddates, sdates,
            "{name}: version CreatedDates in the listing"
        );
    }
    if s.deleted_date().is_some() {
        return; // values of a secret scheduled for deletion cannot be read on either side
    }
    for vid in sv.keys() {
        let a = src
            .get_secret_value()
            .secret_id(name)
            .version_id(vid)
            .send()
            .await
            .expect("source value");
        let b = dst
            .get_secret_value()
            .secret_id(name)
            .version_id(vid)
            .send()
            .await
            .expect("target value");
        assert_eq!(
            b.secret_string(),
            a.secret_string(),
            "{name} {vid}: SecretString"
        );
        assert_eq!(
            b.secret_binary(),
            a.secret_binary(),
            "{name} {vid}: SecretBinary"
        );
        assert_eq!(
            ms(b.created_date()),
            ms(a.created_date()),
            "{name} {vid}: CreatedDate"
        );
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        assert_eq!(
            sorted(b.version_stages()),
            sorted(a.version_stages()),
            "{name} {vid}: stages"
        );
    }
    let a = src.get_secret_value().secret_id(name).send().await;
    let b = dst.get_secret_value().secret_id(name).send().await;
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(b.version_id(), a.version_id(), "{name}: AWSCURRENT"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "{name}: AWSCURRENT differs: source ok={} target ok={}",
            a.is_ok(),
            b.is_ok()
        ),
    }
}

/// Every secret in the target (scheduled ones included).
async fn target_names(c: &Client) -> Vec<String> {
    let page = c
        .list_secrets()
        .include_planned_deletion(true)
        .max_results(100)
        .send()
        .await
        .expect("list");
    let mut names: Vec<String> = page
        .secret_list()
        .iter()
        .filter_map(|s| s.name().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// What was seeded at the source: names and every plaintext (to grep the output for).
struct Seeded {
    live: Vec<String>,
    scheduled_with_values: String,
    scheduled_empty: String,
    values: Vec<String>,
}

/// Seed a Secrets Manager with the cases the importer must carry over.
async fn seed(c: &Client, run: &str) -> Seeded {
    let value = |i: usize| format!("{run}-plaintext-{i}-do-not-print");
    let mut values = Vec::new();
    // Several versions: CreateSecret + PutSecretValue ×3 leaves AWSCURRENT, AWSPREVIOUS and two
    // deprecated versions; one of the puts is binary; a custom label sits on a deprecated one.
    let db = format!("{run}/app/db");
    let tokens: Vec<String> = (1..=4)
        .map(|i| format!("{run}-token-000000000000000000000{i}"))
        .collect();
    c.create_secret()
        .name(&db)
        .description("the payments database")
        .kms_key_id("alias/payments")
        .tags(Tag::builder().key("team").value("payments").build())
        .tags(Tag::builder().key("env").value("prod").build())
        .secret_string(value(1))
        .client_request_token(&tokens[0])
        .send()
        .await
        .expect("create app/db");
    values.push(value(1));
    for (i, token) in tokens.iter().enumerate().skip(1) {
        let put = c
            .put_secret_value()
            .secret_id(&db)
            .client_request_token(token);
        let put = if i == 2 {
            put.secret_binary(Blob::new(
                format!("\u{0}{}\u{ff}", value(i + 1)).into_bytes(),
            ))
        } else {
            put.secret_string(value(i + 1))
        };
        put.send().await.expect("put");
        values.push(value(i + 1));
    }
    c.update_secret_version_stage()
        .secret_id(&db)
        .version_stage("STAGING")
        .move_to_version_id(&tokens[1])
        .send()
        .await
        .expect("custom label");
    // A binary secret that is not UTF-8.
    let bin = format!("{run}/tls/key");
    let mut raw = vec![0u8, 159, 146, 150, 255, 254];
    raw.extend_from_slice(value(10).as_bytes());
    c.create_secret()
        .name(&bin)
        .secret_binary(Blob::new(raw))
        .send()
        .await
        .expect("create binary");
    values.push(value(10));
    // No value at all: imported with no versions.
    let empty = format!("{run}/placeholder");
    c.create_secret()
        .name(&empty)
        .description("filled in later")
        .send()
        .await
        .expect("create empty");
    // Scheduled for deletion, with a value (unreadable: skipped) and without (imported as scheduled).
    let doomed = format!("{run}/old/doomed");
    c.create_secret()
        .name(&doomed)
        .secret_string(value(20))
        .send()
        .await
        .expect("create doomed");
    values.push(value(20));
    c.delete_secret()
        .secret_id(&doomed)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete doomed");
    let doomed_empty = format!("{run}/old/empty");
    c.create_secret()
        .name(&doomed_empty)
        .send()
        .await
        .expect("create doomed empty");
    c.delete_secret()
        .secret_id(&doomed_empty)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete doomed empty");
    Seeded {
        live: vec![db, bin, empty],
        scheduled_with_values: doomed,
        scheduled_empty: doomed_empty,
        values,
    }
}

fn assert_no_plaintext(run: &ImportRun, seeded: &Seeded) {
    for v in &seeded.values {
        assert!(
            !run.output.contains(v.as_str()),
            "a secret value was printed"
        );
        assert!(
            !run.report.to_string().contains(v.as_str()),
            "a secret value is in the report"
        );
    }
}

fn assert_clean_rerun(run: &ImportRun, versions: u64) {
    assert_eq!(run.code, 0, "re-run: {}", run.output);
    let t = &run.report["totals"];
    assert_eq!(t["versions_copied"], 0, "{t}");
    assert_eq!(t["versions_skipped"], versions, "{t}");
    assert_eq!(t["created"], 0, "{t}");
    assert_eq!(t["updated"], 0, "{t}");
    assert_eq!(t["conflicts"], 0, "{t}");
    for s in run.report["secrets"].as_array().expect("secrets") {
        assert!(
            s["outcome"] == "unchanged" || s["outcome"] == "skipped",
            "{s}"
        );
    }
}

/// moto → RAGnos Vault: dry run, import, compare everything, idempotent re-run, catch-up.
async fn from_moto(server: &TestServer) {
    let Some(moto) = Moto::start() else { return };
    let src = moto.client();
    let dst = root_client(server);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let seeded = seed(&src, &run).await;
    let keys = ("testing", "testing");

    // --dry-run reports everything and writes nothing.
    let dry = import(server, &moto.endpoint, keys, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.output);
    assert_eq!(dry.report["dry_run"], true);
    assert_eq!(
        secret_report(&dry.report, &seeded.live[0])["outcome"],
        "would-create"
    );
    assert_eq!(
        secret_report(&dry.report, &seeded.live[0])["versions_copied"],
        4
    );
    assert!(
        target_names(&dst).await.is_empty(),
        "a dry run wrote something"
    );
    assert_no_plaintext(&dry, &seeded);

    let first = import(server, &moto.endpoint, keys, &["--workspace", "default"]);
    assert_eq!(first.code, 0, "{}", first.output);
    assert_no_plaintext(&first, &seeded);
    assert_eq!(first.report["ok"], true);
    let t = &first.report["totals"];
    assert_eq!(
        (
            t["secrets"].as_u64(),
            t["created"].as_u64(),
            t["skipped"].as_u64()
        ),
        (Some(5), Some(4), Some(1)),
        "{t}"
    );
    assert_eq!(t["versions_copied"], 5, "{t}");
    assert_eq!(t["mismatches"], 0, "{t}");
    // Per version: both hashes present and equal.
    let db = secret_report(&first.report, &seeded.live[0]);
    assert_eq!(db["outcome"], "created");
    assert_eq!(db["labels_match"], true);
    for v in db["versions"].as_array().expect("versions") {
        assert_eq!(v["status"], "copied");
        assert_eq!(v["matches"], true);
        assert_eq!(v["source_sha256"], v["target_sha256"]);
        assert_eq!(v["source_sha256"].as_str().map(str::len), Some(64));
    }
    let doomed = secret_report(&first.report, &seeded.scheduled_with_values);
    assert_eq!(doomed["outcome"], "skipped");
    assert!(
        doomed["notes"][0]
            .as_str()
            .unwrap_or("")
            .contains("RestoreSecret"),
        "{doomed}"
    );
    assert!(first.output.contains("result: OK"), "{}", first.output);

    for name in &seeded.live {
        assert_same_secret(&src, &dst, name, ArnRule::New, false).await;
    }
    assert_same_secret(&src, &dst, &seeded.scheduled_empty, ArnRule::New, false).await;
    let e = dst
        .describe_secret()
        .secret_id(&seeded.scheduled_with_values)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    // The imported data reads like any other secret: by stage, and a non-UTF-8 binary.
    let staging = dst
        .get_secret_value()
        .secret_id(&seeded.live[0])
        .version_stage("STAGING")
        .send()
        .await
        .expect("STAGING");
    assert!(staging.version_id().unwrap_or("").ends_with("0002"));
    let bin = dst
        .get_secret_value()
        .secret_id(&seeded.live[1])
        .send()
        .await
        .expect("binary");
    assert_eq!(
        &bin.secret_binary().expect("binary").as_ref()[..6],
        &[0u8, 159, 146, 150, 255, 254]
    );

    // A re-run copies nothing and skips every version.
    let again = import(server, &moto.endpoint, keys, &[]);
    assert_clean_rerun(&again, 5);

    // The source moves on: a new version, a new description. The next run catches up.
    let v5 = format!("{run}-plaintext-5-do-not-print");
    src.put_secret_value()
        .secret_id(&seeded.live[0])
        .secret_string(&v5)
        .send()
        .await
        .expect("put v5");
    src.update_secret()
        .secret_id(&seeded.live[0])
        .description("moved to the new cluster")
        .send()
        .await
        .expect("describe v5");
    let catch_up = import(server, &moto.endpoint, keys, &[]);
    assert_eq!(catch_up.code, 0, "{}", catch_up.output);
    assert!(!catch_up.output.contains(&v5));
    let db = secret_report(&catch_up.report, &seeded.live[0]);
    assert_eq!(
        (
            db["outcome"].as_str(),
            db["versions_copied"].as_u64(),
            db["versions_skipped"].as_u64()
        ),
        (Some("updated"), Some(1), Some(4)),
        "{db}"
    );
    assert_same_secret(&src, &dst, &seeded.live[0], ArnRule::New, false).await;
    assert_eq!(
        dst.get_secret_value()
            .secret_id(&seeded.live[0])
            .send()
            .await
            .expect("current")
            .secret_string(),
        Some(v5.as_str())
    );
}
both_backends_redis!(from_moto);

/// A same-name secret that is not the source's, and a target that diverged after an import,
/// are conflicts: reported, never overwritten, exit status non-zero; other secrets still import.
async fn conflicts(server: &TestServer) {
    let Some(moto) = Moto::start() else { return };
    let src = moto.client();
    let dst = root_client(server);
    let keys = ("testing", "testing");
    let clash = unique("clash");
    let fine = unique("fine");
    let deleted_later = unique("deleted-later");
    dst.create_secret()
        .name(&clash)
        .secret_string("target-value-of-clash")
        .send()
        .await
        .expect("target clash");
    // moto's dates have whole seconds: make sure the two secrets' creation dates differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    src.create_secret()
        .name(&clash)
        .secret_string("source-value-of-clash")
        .send()
        .await
        .expect("seed clash");
    src.create_secret()
        .name(&fine)
        .secret_string("source-value-of-fine")
        .send()
        .await
        .expect("seed fine");
    src.create_secret()
        .name(&deleted_later)
        .secret_string("source-value-3")
        .send()
        .await
        .expect("seed third");

    let run = import(server, &moto.endpoint, keys, &[]);
    assert_eq!(run.code, 3, "conflicts exit with status 3: {}", run.output);
    assert_eq!(run.report["ok"], false);
    assert_eq!(run.report["totals"]["conflicts"], 1);
    let c = secret_report(&run.report, &clash);
    assert_eq!(c["outcome"], "conflict", "{c}");
    assert!(c["notes"].to_string().contains("different secret"), "{c}");
    assert!(run.output.contains("DIFFERENCES FOUND"), "{}", run.output);
    assert_eq!(
        dst.get_secret_value()
            .secret_id(&clash)
            .send()
            .await
            .expect("target value")
            .secret_string(),
        Some("target-value-of-clash"),
        "the target's secret was overwritten"
    );
    assert_eq!(secret_report(&run.report, &fine)["outcome"], "created");
    assert_same_secret(&src, &dst, &fine, ArnRule::New, false).await;

    // The target diverges from an imported secret: a version only it has is a conflict; so is
    // a deletion scheduled in the target only (an import never restores).
    dst.put_secret_value()
        .secret_id(&fine)
        .secret_string("written-in-target")
        .send()
        .await
        .expect("diverge");
    dst.delete_secret()
        .secret_id(&deleted_later)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete in target");
    let run = import(server, &moto.endpoint, keys, &[]);
    assert_eq!(run.code, 3, "{}", run.output);
    let d = secret_report(&run.report, &deleted_later);
    assert_eq!(d["outcome"], "conflict", "{d}");
    assert!(
        d["notes"]
            .to_string()
            .contains("scheduled for deletion in the target"),
        "{d}"
    );
    let described = dst
        .describe_secret()
        .secret_id(&deleted_later)
        .send()
        .await
        .expect("describe");
    assert!(
        described.deleted_date().is_some(),
        "the import restored a secret deleted in the target"
    );
    let f = secret_report(&run.report, &fine);
    assert_eq!(f["outcome"], "conflict", "{f}");
    assert_eq!(f["versions_conflicting"], 1, "{f}");
    assert!(
        f["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .any(|v| v["status"] == "target-only"),
        "{f}"
    );
    assert_eq!(
        dst.get_secret_value()
            .secret_id(&fine)
            .send()
            .await
            .expect("target value")
            .secret_string(),
        Some("written-in-target"),
        "labels were reconciled despite a conflict"
    );
    // A dry run reports the same conflicts.
    let dry = import(server, &moto.endpoint, keys, &["--dry-run"]);
    assert_eq!(dry.code, 3, "{}", dry.output);
}
both_backends_redis!(conflicts);

/// RAGnos Vault A → RAGnos Vault B with A's root keys: identical ARNs (same account id),
/// exact dates, every version and label, binary values, tags, resource policy.
async fn from_second_vault(b: &TestServer) {
    let a = TestServer::start(b.backend).expect("server A");
    let src = root_client(&a);
    let dst = root_client(b);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let seeded = seed(&src, &run).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    src.put_resource_policy()
        .secret_id(&seeded.live[0])
        .resource_policy(policy)
        .send()
        .await
        .expect("policy");
    // Another region is not part of a us-east-1 import.
    let west = sdk_client(&a.endpoint, ROOT_AKID, ROOT_SECRET, "us-west-2");
    west.create_secret()
        .name(format!("{run}/west"))
        .secret_string("west-value")
        .send()
        .await
        .expect("west");

    let first = import(b, &a.endpoint, (ROOT_AKID, ROOT_SECRET), &[]);
    assert_eq!(first.code, 0, "{}", first.output);
    assert_no_plaintext(&first, &seeded);
    let t = &first.report["totals"];
    assert_eq!(
        (
            t["secrets"].as_u64(),
            t["created"].as_u64(),
            t["skipped"].as_u64()
        ),
        (Some(5), Some(4), Some(1)),
        "{t}"
    );
    for name in &seeded.live {
        assert_same_secret(&src, &dst, name, ArnRule::Same, true).await;
    }
    assert_same_secret(&src, &dst, &seeded.scheduled_empty, ArnRule::Same, true).await;
    assert_eq!(
        dst.get_resource_policy()
            .secret_id(&seeded.live[0])
            .send()
            .await
            .expect("policy")
            .resource_policy(),
        Some(policy)
    );
    let d = dst
        .describe_secret()
        .secret_id(&seeded.live[0])
        .send()
        .await
        .expect("describe");
    let s = src
        .describe_secret()
        .secret_id(&seeded.live[0])
        .send()
        .await
        .expect("describe");
    assert_eq!(
        ms(d.last_changed_date()),
        ms(s.last_changed_date()),
        "LastChangedDate"
    );
    // Lookups by the (identical) full ARN work in the target.
    dst.get_secret_value()
        .secret_id(s.arn().expect("arn"))
        .send()
        .await
        .expect("by ARN");
    let west_b = sdk_client(&b.endpoint, ROOT_AKID, ROOT_SECRET, "us-west-2");
    assert!(
        target_names(&west_b).await.is_empty(),
        "another region was imported"
    );

    assert_clean_rerun(&import(b, &a.endpoint, (ROOT_AKID, ROOT_SECRET), &[]), 5);

    // --region puts the secrets in another target region, with new ARNs there.
    let moved = import(
        b,
        &a.endpoint,
        (ROOT_AKID, ROOT_SECRET),
        &["--region", "eu-west-1"],
    );
    assert_eq!(moved.code, 0, "{}", moved.output);
    let eu = sdk_client(&b.endpoint, ROOT_AKID, ROOT_SECRET, "eu-west-1");
    let arn = eu
        .describe_secret()
        .secret_id(&seeded.live[0])
        .send()
        .await
        .expect("eu")
        .arn()
        .expect("arn")
        .to_string();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:secretsmanager:eu-west-1:{ACCOUNT_ID}:secret:{}-",
            seeded.live[0]
        )),
        "{arn}"
    );
}
both_backends_redis!(from_second_vault);

/// A proxy in front of a Secrets Manager that answers every other request with
/// ThrottlingException. Returns its endpoint and the number of throttled requests.
async fn throttling_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let throttled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicUsize::new(0));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let t = throttled.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (t, counter, upstream) = (t.clone(), counter.clone(), upstream.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request: headers, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 8192];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request: Vec<u8> = buf.drain(..head_end + len).collect();
                    if counter.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                        t.fetch_add(1, Ordering::SeqCst);
                        let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                        let reply = format!(
                            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    // Forward on a fresh upstream connection and relay the whole response.
                    let Ok(mut up) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&request[..head_end])
                        .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
                    let head = head
                        .replace("Connection: keep-alive\r\n", "")
                        .replace("connection: keep-alive\r\n", "");
                    if up.write_all(head.as_bytes()).await.is_err()
                        || up.write_all(&request[head_end..]).await.is_err()
                    {
                        return;
                    }
                    let mut response = Vec::new();
                    if up.read_to_end(&mut response).await.is_err()
                        || conn.write_all(&response).await.is_err()
                    {
                        return;
                    }
                    // The upstream's Connection: close ends this exchange for the client too.
                    return;
                }
            });
        }
    });
    (endpoint, throttled)
}

/// Half the source's answers are ThrottlingException; with the SDK's own retries turned off
/// (`--max-attempts 1`), the importer's backoff alone gets everything across.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backs_off_when_throttled() {
    let Some(moto) = Moto::start() else { return };
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let src = moto.client();
    let name = unique("throttled");
    src.create_secret()
        .name(&name)
        .secret_string("throttled-value-1")
        .send()
        .await
        .expect("seed");
    src.put_secret_value()
        .secret_id(&name)
        .secret_string("throttled-value-2")
        .send()
        .await
        .expect("seed");
    let (proxy, throttled) = throttling_proxy(moto.endpoint.clone()).await;
    let endpoint = proxy.clone();
    let server = Arc::new(server);
    let s = server.clone();
    let run = tokio::task::spawn_blocking(move || {
        import(
            &s,
            &endpoint,
            ("testing", "testing"),
            &["--max-attempts", "1"],
        )
    })
    .await
    .expect("import thread");
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        throttled.load(Ordering::SeqCst) >= 3,
        "the proxy throttled {} requests",
        throttled.load(Ordering::SeqCst)
    );
    assert_eq!(secret_report(&run.report, &name)["versions_copied"], 2);
    assert_same_secret(&src, &root_client(&server), &name, ArnRule::New, false).await;
}

/// Bad input: a clear message and a non-zero exit, before anything is read or written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_options() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let keys = ("testing", "testing");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = import(
        &server,
        &nowhere,
        keys,
        &["--workspace", "no-such-workspace"],
    );
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(
        run.output
            .contains("workspace 'no-such-workspace' not found"),
        "{}",
        run.output
    );
    let run = import(&server, &nowhere, keys, &["--region", "mars"]);
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(run.output.contains("not a region name"), "{}", run.output);
    let run = import(&server, "ftp://example.com", keys, &[]);
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(run.output.contains("http:// or https://"), "{}", run.output);
    // An unreachable source fails the run (after the SDK's retries), writing nothing.
    let run = import(
        &server,
        &nowhere,
        keys,
        &["--max-attempts", "1", "--throttle-retries", "0"],
    );
    assert_eq!(run.code, 1, "{}", run.output);
    assert!(
        run.output.contains("listing the source's secrets failed"),
        "{}",
        run.output
    );
}

/// The REST form: `POST /api/v1/workspaces/{id}/migrate/aws` runs the same importer as a
/// job inside the server; progress and the report are read back with `GET`.
async fn migrate_over_rest(server: &TestServer) {
    use crate::raw::send;
    use bytes::Bytes;
    use http_body_util::Full;
    let Some(moto) = Moto::start() else { return };
    let src = moto.client();
    let dst = root_client(server);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let seeded = seed(&src, &run).await;
    let call = |method: &str, path: String, token: Option<String>, body: serde_json::Value| {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.endpoint))
            .header("content-type", "application/json");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        send(
            b.body(Full::new(Bytes::from(body.to_string())))
                .expect("request"),
        )
    };
    let login = call(
        "POST",
        "/api/v1/auth/login".into(),
        None,
        serde_json::json!({"email": crate::harness::ROOT_EMAIL, "password": crate::harness::ROOT_PASSWORD}),
    )
    .await;
    assert_eq!(login.status, 200, "{}", String::from_utf8_lossy(&login.raw));
    let token = login.json["token"].as_str().expect("token").to_string();
    let ws = login.json["workspaces"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .or_else(|| login.json["claims"]["aud"][0].as_str().map(String::from))
        .unwrap_or_else(|| {
            let c = token.split('.').nth(1).expect("payload");
            use base64::Engine as _;
            let v: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .expect("b64"),
            )
            .expect("json");
            v["aud"][0].as_str().expect("aud").to_string()
        });
    let secret_key = "source-secret-key-never-logged";
    let started = call(
        "POST",
        format!("/api/v1/workspaces/{ws}/migrate/aws"),
        Some(token.clone()),
        serde_json::json!({
            "fromEndpointUrl": moto.endpoint,
            "fromRegion": "us-east-1",
            "accessKeyId": "testing",
            "secretAccessKey": secret_key,
        }),
    )
    .await;
    assert_eq!(
        started.status,
        202,
        "{}",
        String::from_utf8_lossy(&started.raw)
    );
    let job = started.json["id"].as_str().expect("job id").to_string();
    let mut view = started.json.clone();
    for _ in 0..600 {
        if view["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = call(
            "GET",
            format!("/api/v1/workspaces/{ws}/migrate/aws/{job}"),
            Some(token.clone()),
            serde_json::Value::Null,
        )
        .await;
        assert_eq!(r.status, 200);
        view = r.json;
    }
    assert_eq!(view["status"], "succeeded", "{view}");
    assert_eq!(view["report"]["ok"], true);
    assert_eq!(view["done"], view["total"]);
    for name in &seeded.live {
        assert_same_secret(&src, &dst, name, ArnRule::New, false).await;
    }
    // Another workspace's token cannot see the job; an unknown job is 404.
    let r = call(
        "GET",
        format!("/api/v1/workspaces/{ws}/migrate/aws/nope"),
        Some(token.clone()),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(r.status, 404);
    // The source credentials appear nowhere: not in the job, the audit log or the logs.
    assert!(!view.to_string().contains(secret_key));
    let audit = call(
        "GET",
        format!("/api/v1/workspaces/{ws}/audit?action=migrate.aws.start"),
        Some(token),
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(audit.status, 200);
    assert_eq!(audit.json["events"].as_array().map(Vec::len), Some(1));
    assert!(
        !audit
            .raw
            .windows(secret_key.len())
            .any(|w| w == secret_key.as_bytes())
    );
    assert!(!server.logs().contains(secret_key));
}
both_backends_redis!(migrate_over_rest);
