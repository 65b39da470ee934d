//! The audit log: one row per request (including denied and unauthenticated ones), never a
//! value, fail-closed; and PostgreSQL row-level security hiding other tenants' rows.

use crate::both_backends;
use crate::harness::{
    Backend, ROOT_AKID, ROOT_SECRET, TestServer, pg_admin_url, psql_value as psql, unique,
};
use crate::harness::{default_workspace, open_db};
use crate::raw::Raw;
use ragnos_vault::store::{AuditFilter, AuditRow, Db, SecretLookup};
use serde_json::json;
use std::collections::HashMap;

/// Every audit row of a workspace (or of unauthenticated calls, workspace ""), via the store.
async fn audit_rows(db: &Db, workspace_id: &str) -> Vec<AuditRow> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = db
            .audit_page(workspace_id, &AuditFilter::default(), before.clone(), 1000)
            .await
            .expect("audit page");
        let Some(last) = page.last() else { break };
        before = Some((last.at, last.id.clone()));
        out.extend(page);
    }
    out
}

/// A GetSecretValue row of `workspace_id` at `at`, as the audit writer would get it.
fn read_row(workspace_id: &str, at: i64, request_id: &str) -> AuditRow {
    AuditRow {
        at,
        id: uuid::Uuid::new_v4().to_string(),
        workspace_id: workspace_id.to_string(),
        api: "aws".into(),
        action: "GetSecretValue".into(),
        resource_type: "secret".into(),
        resource_id: None,
        principal: "anonymous".into(),
        access_key_id: None,
        outcome: "success".into(),
        status: 200,
        source_ip: None,
        user_agent: None,
        request_id: request_id.into(),
    }
}

fn request_id(r: &crate::raw::Reply) -> String {
    r.headers["x-amzn-requestid"]
        .to_str()
        .expect("request id")
        .to_string()
}

async fn one_row_per_request(server: &TestServer) {
    let root = Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET);
    let name = unique("audited");
    let value = format!("AUDIT-VALUE-{}", uuid::Uuid::new_v4().simple());
    let token = "0123456789abcdef0123456789abcdef";
    // (reply, expected outcome, expected to land in the root workspace)
    let mut expected: Vec<(String, &str, bool)> = Vec::new();
    let r = root
        .call_json(
            "CreateSecret",
            json!({"Name": name, "SecretString": value, "ClientRequestToken": token}),
        )
        .await;
    expected.push((request_id(&r), "success", true));
    let r = root
        .call_json(
            "CreateSecret",
            json!({"Name": name, "SecretString": value, "ClientRequestToken": token}),
        )
        .await;
    assert_eq!(r.status, 200, "idempotent replay");
    expected.push((request_id(&r), "success", true));
    let r = root
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    assert_eq!(r.json["SecretString"], value);
    expected.push((request_id(&r), "success", true));
    let r = root
        .call_json("GetSecretValue", json!({"SecretId": unique("missing")}))
        .await;
    expected.push((request_id(&r), "ResourceNotFoundException", true));
    let r = root.call_json("PutSecretValue", json!({"SecretId": name, "SecretString": format!("{value}-2"), "ClientRequestToken": "fedcba9876543210fedcba9876543210"})).await;
    expected.push((request_id(&r), "success", true));
    let r = root.call("CreateSecret", "{bad json").await;
    expected.push((request_id(&r), "SerializationException", true));
    let r = root.call_json("NoSuchOp", json!({})).await;
    expected.push((request_id(&r), "UnknownOperationException", true));
    let (akid, secret, _) = server.new_key("default", "read", &[]);
    let reader = Raw::new(&server.endpoint, &akid, &secret);
    let r = reader
        .call_json("DeleteSecret", json!({"SecretId": name}))
        .await;
    expected.push((request_id(&r), "AccessDeniedException", true));
    let stranger = Raw::new(
        &server.endpoint,
        "AKIANOBODYNOBODY0000",
        "nobody-secret-nobody-secret",
    );
    let r = stranger
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    expected.push((request_id(&r), "UnrecognizedClientException", false));
    let wrong = Raw::new(
        &server.endpoint,
        ROOT_AKID,
        "wrong-secret-wrong-secret-wrong",
    );
    let r = wrong
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    expected.push((request_id(&r), "InvalidSignatureException", false));

    let db = open_db(server).await;
    let workspace = db
        .workspace_by_name("default")
        .await
        .expect("query")
        .expect("default workspace");
    let mut rows = audit_rows(&db, &workspace.id).await;
    rows.extend(audit_rows(&db, "").await);
    let mut by_request: HashMap<&str, Vec<&AuditRow>> = HashMap::new();
    for row in &rows {
        by_request
            .entry(row.request_id.as_str())
            .or_default()
            .push(row);
    }
    for (rid, outcome, in_workspace) in &expected {
        let found = by_request
            .get(rid.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert_eq!(
            found.len(),
            1,
            "request {rid} ({outcome}) must have exactly one audit row, has {}",
            found.len()
        );
        let row = found[0];
        assert_eq!(row.outcome, *outcome, "request {rid}");
        assert_eq!(row.api, "aws");
        assert_eq!(row.workspace_id.is_empty(), !in_workspace, "request {rid}");
        assert!(row.source_ip.as_deref() == Some("127.0.0.1"));
        if *outcome == "success" {
            assert_eq!(row.status, 200);
            assert_eq!(row.resource_id.as_deref(), Some(name.as_str()));
        } else {
            assert_eq!(row.status, 400);
        }
    }
    // The unauthenticated-with-a-claimed-key rows still name the key that was claimed.
    let denied = by_request[expected[8].0.as_str()][0];
    assert_eq!(
        denied.access_key_id.as_deref(),
        Some("AKIANOBODYNOBODY0000")
    );
    // The log has one JSON line per request too, named by the id the client was sent.
    let logs = server.logs();
    let mut logged: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for line in logs.lines() {
        let line: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line {line}: {e}"));
        if line["fields"]["message"] == "request" {
            let rid = line["fields"]["request_id"].as_str().expect("request_id");
            logged.entry(rid.to_string()).or_default().push(line);
        }
    }
    for (rid, outcome, _) in &expected {
        let lines = logged.get(rid).map(Vec::as_slice).unwrap_or(&[]);
        assert_eq!(
            lines.len(),
            1,
            "request {rid} must have one log line: {lines:?}"
        );
        let fields = &lines[0]["fields"];
        let error = if *outcome == "success" { "" } else { outcome };
        assert_eq!(fields["error"], error, "request {rid}");
        assert_eq!(fields["status"], if error.is_empty() { 200 } else { 400 });
        assert_eq!(lines[0]["level"], "INFO");
    }
    // No value anywhere in the audit log or the logs.
    let dump = serde_json::to_string(&rows).expect("json");
    assert!(
        !dump.contains(&value),
        "a secret value reached the audit log"
    );
    assert!(
        !server.logs().contains(&value),
        "a secret value reached the server log"
    );
    assert!(
        !server.logs().contains(ROOT_SECRET),
        "the root secret key reached the server log"
    );
}
both_backends!(one_row_per_request);

/// CreateSecret `name` (value "v") through `raw`, which must succeed.
async fn create_with_raw(raw: &Raw, name: &str) {
    let r = raw
        .call_json(
            "CreateSecret",
            json!({"Name": name, "SecretString": "v",
                   "ClientRequestToken": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
}

/// `tasks` clients at once, each reading `each` times from `names` in turn; every read must
/// succeed. Returns the reads' request ids.
async fn read_concurrently(
    root: &std::sync::Arc<Raw>,
    names: &[String],
    tasks: usize,
    each: usize,
) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let root = root.clone();
        let names = names.to_vec();
        set.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..each {
                let name = &names[(t + i) % names.len()];
                let r = root
                    .call_json("GetSecretValue", json!({"SecretId": name}))
                    .await;
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
                ids.push(request_id(&r));
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = set.join_next().await {
        ids.extend(done.expect("task"));
    }
    ids
}

// Many reads at once: the audit writer commits batches back to back (on PostgreSQL two are
// in flight on its one connection), and batches that carry first reads' LastAccessedDate
// touches run alone between them. Every request still has exactly one row, and every answered
// read's touch is stored.
async fn concurrent_reads_each_leave_one_row(server: &TestServer) {
    let root = std::sync::Arc::new(Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET));
    let names: Vec<String> = (0..8).map(|i| unique(&format!("burst-{i}"))).collect();
    for name in &names {
        create_with_raw(&root, name).await;
    }
    let ids = read_concurrently(&root, &names, 32, 20).await;
    assert_eq!(ids.len(), 640);
    let db = open_db(server).await;
    let ws = default_workspace(&db).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for row in audit_rows(&db, &ws).await {
        *count.entry(row.request_id).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id), Some(&1), "request {id}");
    }
    let day = today_ms();
    for name in &names {
        let (row, _) = stored(&db, &ws, name).await;
        // A read just before midnight may have stored the day before.
        let stored_day = row.last_accessed_at.expect("LastAccessedDate");
        assert!(day - stored_day <= 86_400_000, "{name}: {stored_day}");
    }
}
both_backends!(concurrent_reads_each_leave_one_row);

// First reads of secrets in four workspaces at once: their LastAccessedDate touches
// share audit batches, each touch under its own workspace's setting (on PostgreSQL the
// whole batch, settings and touches in order, goes out in one flight). Every secret and the
// version read get the day, and no secret of a workspace is touched under another's.
async fn first_reads_across_workspaces_record_their_day(server: &TestServer) {
    let db = open_db(server).await;
    let mut targets = Vec::new();
    // Enough at once for a batch of more than 30 statements (two per touch).
    for w in 0..4 {
        let (akid, secret, _) = server.new_workspace_key("admin", &[]);
        let ws = db
            .access_key(&akid)
            .await
            .expect("q")
            .expect("key")
            .workspace_id;
        let raw = std::sync::Arc::new(Raw::new(&server.endpoint, &akid, &secret));
        for i in 0..10 {
            let name = unique(&format!("touch-{w}-{i}"));
            create_with_raw(&raw, &name).await;
            targets.push((raw.clone(), ws.clone(), name));
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    for round in 0..4 {
        for (raw, _, name) in &targets {
            let (raw, name) = (raw.clone(), name.clone());
            tasks.spawn(async move {
                let r = raw
                    .call_json("GetSecretValue", json!({"SecretId": name}))
                    .await;
                assert_eq!(
                    r.status,
                    200,
                    "round {round}: {}",
                    String::from_utf8_lossy(&r.raw)
                );
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("read");
    }
    let day = today_ms();
    for (_, ws, name) in &targets {
        let (row, versions) = stored(&db, ws, name).await;
        // A read just before midnight may have stored the day before.
        let stored_day = row.last_accessed_at.expect("the secret's LastAccessedDate");
        assert!(day - stored_day <= 86_400_000, "{name}: {stored_day}");
        assert_eq!(versions.len(), 1, "{name}");
        assert_eq!(
            versions[0].last_accessed_at,
            Some(stored_day),
            "{name}: its version"
        );
    }
}
both_backends!(first_reads_across_workspaces_record_their_day);

async fn audit_pages_over_ten_thousand_rows(server: &TestServer) {
    let db = open_db(server).await;
    let workspace = db
        .workspace_by_name("default")
        .await
        .expect("query")
        .expect("default");
    let base = 1_700_000_000_000i64;
    let rows: Vec<AuditRow> = (0..10_500)
        .map(|i| AuditRow {
            // Several rows share a millisecond, so the id breaks ties in the cursor.
            at: base + i / 3,
            id: format!("{i:08}"),
            workspace_id: workspace.id.clone(),
            api: "aws".into(),
            action: if i % 2 == 0 {
                "GetSecretValue"
            } else {
                "PutSecretValue"
            }
            .into(),
            resource_type: "secret".into(),
            resource_id: Some(format!("s{}", i % 7)),
            principal: "key:test".into(),
            access_key_id: None,
            outcome: "success".into(),
            status: 200,
            source_ip: None,
            user_agent: None,
            request_id: format!("req-{i}"),
        })
        .collect();
    db.append_audit(rows.clone(), Vec::new())
        .await
        .expect("append");
    let filter = AuditFilter {
        from: Some(base),
        to: Some(base + 100_000),
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut before = None;
    let mut previous: Option<(i64, String)> = None;
    loop {
        let page = db
            .audit_page(&workspace.id, &filter, before.clone(), 777)
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        for row in &page {
            let key = (row.at, row.id.clone());
            if let Some(p) = &previous {
                assert!(key < *p, "pages must be strictly newest-first");
            }
            previous = Some(key);
            assert!(seen.insert(row.id.clone()), "row {} returned twice", row.id);
        }
        before = Some((last.at, last.id.clone()));
    }
    assert_eq!(seen.len(), 10_500);
    let puts = AuditFilter {
        action: Some("PutSecretValue".into()),
        resource: Some("s3".into()),
        ..filter
    };
    let page = db
        .audit_page(&workspace.id, &puts, None, 10_000)
        .await
        .expect("filtered");
    let expected = (0..10_500).filter(|i| i % 2 == 1 && i % 7 == 3).count();
    assert_eq!(page.len(), expected);
}
both_backends!(audit_pages_over_ten_thousand_rows);

/// The secret's row and versions as stored (not as the node's cache holds them).
async fn stored(
    db: &Db,
    workspace_id: &str,
    name: &str,
) -> (
    ragnos_vault::store::SecretRow,
    Vec<ragnos_vault::store::VersionMetaRow>,
) {
    let (row, (versions, _, _)) = db
        .find_secret_state(workspace_id, "us-east-1", &SecretLookup::Name(name), None)
        .await
        .expect("query")
        .expect("stored");
    (row, versions)
}

// A recheck names each secret with its workspace. Named under another workspace, a secret
// comes back from neither backend: SQLite reads secrets by id alone and drops rows of
// workspaces not named; PostgreSQL's row-level security hides them as well.
async fn rechecks_read_only_the_workspaces_they_name(server: &TestServer) {
    let client = crate::harness::root_client(server);
    let name = unique("rechecked");
    client
        .create_secret()
        .name(&name)
        .secret_string("value")
        .send()
        .await
        .expect("create");
    let db = open_db(server).await;
    let ws = default_workspace(&db).await;
    let (row, _) = stored(&db, &ws, &name).await;
    let (rows, versions, stages) = db
        .states_across(&[(ws.as_str(), row.id.as_str())])
        .await
        .expect("read");
    assert_eq!((rows.len(), versions.len(), stages.len()), (1, 1, 1));
    let other = uuid::Uuid::new_v4().to_string();
    let (rows, versions, stages) = db
        .states_across(&[(other.as_str(), row.id.as_str())])
        .await
        .expect("read");
    assert!(
        rows.is_empty() && versions.is_empty() && stages.is_empty(),
        "a secret read under a workspace it does not belong to"
    );
}
both_backends!(rechecks_read_only_the_workspaces_they_name);

/// The start of today (UTC), in epoch milliseconds.
pub(crate) fn today_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    now - now % 86_400_000
}

// A read's LastAccessedDate rides in the audit batch the read waits on: once the answer is
// back, the secret and the version read carry today's date in the database.
async fn reads_record_last_accessed_before_answering(server: &TestServer) {
    let client = crate::harness::root_client(server);
    let name = unique("touched");
    client
        .create_secret()
        .name(&name)
        .secret_string("first")
        .send()
        .await
        .expect("create");
    let old = client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("second")
        .send()
        .await
        .expect("put")
        .version_id
        .expect("version");
    let db = open_db(server).await;
    let ws = default_workspace(&db).await;
    let (row, versions) = stored(&db, &ws, &name).await;
    assert_eq!(row.last_accessed_at, None, "never read yet");
    assert!(versions.iter().all(|v| v.last_accessed_at.is_none()));

    let day_before = today_ms();
    let got = client
        .get_secret_value()
        .secret_id(&name)
        .version_id(&old)
        .send()
        .await
        .expect("get");
    let day_after = today_ms();
    let (row, versions) = stored(&db, &ws, &name).await;
    let day = row.last_accessed_at.expect("the secret's LastAccessedDate");
    assert!(day == day_before || day == day_after, "{day}");
    for v in &versions {
        if v.version_id == got.version_id().expect("id") {
            assert_eq!(v.last_accessed_at, Some(day), "the version read");
        } else {
            assert_eq!(v.last_accessed_at, None, "a version not read");
        }
    }
    let rows = audit_rows(&db, &ws).await;
    assert!(
        rows.iter()
            .any(|r| r.action == "GetSecretValue" && r.outcome == "success"),
        "the read's own audit row"
    );
}
both_backends!(reads_record_last_accessed_before_answering);

// A cached secret keeps its AWSCURRENT version ready to open (`cache::CurrentVersion`).
// Reads served that way must follow every write: a new value, a label moved onto the
// current version, a label moved off it; and a new current version's first read must still
// record its LastAccessedDate.
async fn current_version_reads_follow_writes(server: &TestServer) {
    let client = crate::harness::root_client(server);
    let name = unique("current");
    let read = |stage: Option<&'static str>| {
        let req = client.get_secret_value().secret_id(&name);
        let req = match stage {
            Some(s) => req.version_stage(s),
            None => req,
        };
        async move {
            let got = req.send().await.expect("get");
            let mut stages = got.version_stages().to_vec();
            stages.sort();
            (
                got.secret_string().expect("string").to_string(),
                got.version_id().expect("id").to_string(),
                stages,
            )
        }
    };
    let v1 = client
        .create_secret()
        .name(&name)
        .secret_string("one")
        .send()
        .await
        .expect("create")
        .version_id
        .expect("version");
    // The first read fills the entry, the others are served from it.
    for stage in [None, None, Some("AWSCURRENT")] {
        assert_eq!(
            read(stage).await,
            ("one".into(), v1.clone(), vec!["AWSCURRENT".into()])
        );
    }

    let v2 = client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("two")
        .send()
        .await
        .expect("put")
        .version_id
        .expect("version");
    for _ in 0..2 {
        assert_eq!(
            read(None).await,
            ("two".into(), v2.clone(), vec!["AWSCURRENT".into()])
        );
    }
    assert_eq!(
        read(Some("AWSPREVIOUS")).await,
        ("one".into(), v1.clone(), vec!["AWSPREVIOUS".into()])
    );
    let db = open_db(server).await;
    let ws = default_workspace(&db).await;
    let (_, versions) = stored(&db, &ws, &name).await;
    let today = today_ms();
    for v in &versions {
        assert!(
            v.last_accessed_at.is_some_and(|d| d >= today),
            "{} read",
            v.version_id
        );
    }

    client
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage("blue")
        .move_to_version_id(&v2)
        .send()
        .await
        .expect("label the current version");
    let labelled = vec!["AWSCURRENT".to_string(), "blue".to_string()];
    for _ in 0..2 {
        assert_eq!(
            read(None).await,
            ("two".into(), v2.clone(), labelled.clone())
        );
    }
    client
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage("blue")
        .remove_from_version_id(&v2)
        .send()
        .await
        .expect("unlabel it");
    assert_eq!(
        read(None).await,
        ("two".into(), v2.clone(), vec!["AWSCURRENT".into()])
    );

    // A value too large for the entry is read through the version cache, across a put too.
    let large = unique("current-large");
    let (first, second) = ("a".repeat(3000), "b".repeat(3000));
    client
        .create_secret()
        .name(&large)
        .secret_string(&first)
        .send()
        .await
        .expect("create large");
    let get_large = || async {
        let got = client
            .get_secret_value()
            .secret_id(&large)
            .send()
            .await
            .expect("get large");
        got.secret_string().expect("string").to_string()
    };
    assert_eq!(get_large().await, first);
    assert_eq!(get_large().await, first);
    client
        .put_secret_value()
        .secret_id(&large)
        .secret_string(&second)
        .send()
        .await
        .expect("put large");
    assert_eq!(get_large().await, second);
    assert_eq!(get_large().await, second);
}
both_backends!(current_version_reads_follow_writes);

// A workspace id is put into SQL text only when it is made of safe characters; any other
// id is bound as a parameter. Hostile ids must neither fail nor reach the SQL.
async fn hostile_workspace_ids_stay_parameters(server: &TestServer) {
    let db = open_db(server).await;
    for ws in [
        "plain-id_0123",
        "it's",
        "x', true); DROP TABLE audit_log; --",
        "",
    ] {
        let row = read_row(ws, 1_700_000_000_000, "req");
        db.append_audit(vec![row.clone()], Vec::new())
            .await
            .expect("append");
        let found = db
            .find_secret_state(ws, "us-east-1", &SecretLookup::Name("nothing"), None)
            .await
            .expect("a lookup under a hostile id");
        assert!(found.is_none());
        let page = audit_rows(&db, ws).await;
        assert!(
            page.contains(&row),
            "{ws:?}: the row is there, under its own id"
        );
    }
    // The table survived the attempt.
    let ws = default_workspace(&db).await;
    let _ = audit_rows(&db, &ws).await;
}
both_backends!(hostile_workspace_ids_stay_parameters);

// One audit batch carries the rows of many workspaces (on PostgreSQL in one statement,
// under the audit writer's policy; on SQLite through the audit inbox); each lands under its
// own workspace and no other.
async fn one_batch_of_many_workspaces(server: &TestServer) {
    let db = open_db(server).await;
    let workspaces: Vec<String> = (0..6)
        .map(|i| format!("batch-ws-{i}-{}", unique("w")))
        .collect();
    let rows: Vec<AuditRow> = (0..60)
        .map(|i| {
            read_row(
                &workspaces[i % 6],
                1_700_000_000_000 + i as i64,
                &format!("req-{i}"),
            )
        })
        .collect();
    db.append_audit(rows.clone(), Vec::new())
        .await
        .expect("one batch of three workspaces");
    for ws in &workspaces {
        let mut want: Vec<AuditRow> = rows
            .iter()
            .filter(|r| &r.workspace_id == ws)
            .cloned()
            .collect();
        let mut got = audit_rows(&db, ws).await;
        want.sort_by_key(|r| r.at);
        got.sort_by_key(|r| r.at);
        assert_eq!(got, want, "{ws}: exactly its own ten rows");
    }
}
both_backends!(one_batch_of_many_workspaces);

/// Does PostgreSQL refuse `sql` (run by psql, stopping at the first error)?
fn psql_refused(url: &str, sql: &str) -> bool {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qtAc", sql])
        .output()
        .expect("psql");
    !out.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_other_tenants() {
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let root = crate::harness::root_client(&server);
    root.create_secret()
        .name(unique("tenant-a"))
        .secret_string("a")
        .send()
        .await
        .expect("a");
    let (akid, secret, _) = server.new_workspace_key("admin", &[]);
    let other = crate::harness::sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
    other
        .create_secret()
        .name(unique("tenant-b"))
        .secret_string("b")
        .send()
        .await
        .expect("b");
    let db = open_db(&server).await;
    let a = db
        .workspace_by_name("default")
        .await
        .expect("q")
        .expect("a")
        .id;
    let url = &server.database_url;
    for table in ["secrets", "secret_versions", "version_stages", "audit_log"] {
        let total = psql(url, &format!("SELECT count(*) FROM {table}"));
        let others = psql(
            url,
            &format!("SELECT count(*) FROM {table} WHERE workspace_id <> '{a}'"),
        );
        assert!(
            others.parse::<i64>().expect("n") > 0,
            "{table} has rows of other tenants (as the owner)"
        );
        // As the server's role, with workspace A set, a query that forgets its WHERE sees only A.
        let seen = psql(
            url,
            &format!(
                "SET ROLE ragnos_app; BEGIN; SET LOCAL app.current_workspace_id = '{a}'; \
                 SELECT count(*) FROM {table} WHERE workspace_id <> '{a}'; COMMIT;"
            ),
        );
        assert_eq!(
            seen, "0",
            "{table}: RLS leaked another tenant's rows (total {total})"
        );
        // And with no workspace set at all, nothing.
        let none = psql(
            url,
            &format!("SET ROLE ragnos_app; SELECT count(*) FROM {table};"),
        );
        assert_eq!(none, "0", "{table}: rows visible without a workspace");
        // Writes into another workspace are refused too.
    }
    let refused = psql_refused(
        url,
        &format!(
            "SET ROLE ragnos_app; BEGIN; SET LOCAL app.current_workspace_id = '{a}'; \
                 UPDATE secrets SET description = 'x' WHERE workspace_id <> '{a}'; \
                 INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, principal, outcome, status, request_id) \
                 VALUES (1, 'x', 'someone-else', 'aws', 'x', 'x', 'x', 'x', 200, 'x'); COMMIT;"
        ),
    );
    assert!(refused, "RLS must refuse a row of another workspace");
    // The audit writer's setting opens INSERT into the audit log, and nothing more: it sees
    // no row, changes no tenant row, and writes no other table across workspaces.
    let writer = "SET ROLE ragnos_app; BEGIN; SET LOCAL app.audit_writer = 'on'; ";
    psql(
        url,
        &format!(
            "{writer}INSERT INTO audit_log (at, id, workspace_id, api, action, resource_type, \
             principal, outcome, status, request_id) \
             VALUES (1, 'w', 'someone-else', 'aws', 'x', 'x', 'x', 'x', 200, 'x'); COMMIT;"
        ),
    );
    for sql in [
        "SELECT count(*) FROM audit_log;",
        "SELECT count(*) FROM secrets;",
        "WITH u AS (UPDATE secrets SET description = 'x' RETURNING 1) SELECT count(*) FROM u;",
    ] {
        assert_eq!(
            psql(url, &format!("{writer}{sql} COMMIT;")),
            "0",
            "the audit writer's setting reached further than INSERT: {sql}"
        );
    }
    let refused = psql_refused(
        url,
        &format!(
            "{writer}INSERT INTO version_stages (secret_id, stage, version_id, workspace_id) \
                 VALUES ('s', 'x', 'v', 'someone-else'); COMMIT;"
        ),
    );
    assert!(
        refused,
        "the audit writer's setting must not open other tables"
    );
    // A recheck's list of workspaces opens SELECT on the secret tables of exactly the
    // workspaces listed (migrations 000006 and 000008), and nothing more.
    let b = psql(
        url,
        &format!("SELECT min(workspace_id) FROM secrets WHERE workspace_id <> '{a}'"),
    );
    let reread = format!(
        "SET ROLE ragnos_app; BEGIN; SET LOCAL app.read_workspaces = '{},{b}'; ",
        uuid::Uuid::new_v4()
    );
    for table in ["secrets", "secret_versions", "version_stages"] {
        let listed = psql(
            url,
            &format!("{reread}SELECT count(*) FROM {table} WHERE workspace_id = '{b}'; COMMIT;"),
        );
        assert!(
            listed.parse::<i64>().expect("n") > 0,
            "{table}: a recheck could not read a workspace it listed"
        );
        let unlisted = psql(
            url,
            &format!("{reread}SELECT count(*) FROM {table} WHERE workspace_id <> '{b}'; COMMIT;"),
        );
        assert_eq!(
            unlisted, "0",
            "{table}: a recheck read a workspace it did not list"
        );
    }
    for sql in [
        "SELECT count(*) FROM audit_log;",
        "WITH u AS (UPDATE secrets SET description = 'x' RETURNING 1) SELECT count(*) FROM u;",
    ] {
        assert_eq!(
            psql(url, &format!("{reread}{sql} COMMIT;")),
            "0",
            "a recheck's list reached further than reading secrets: {sql}"
        );
    }
    // The role owns nothing and cannot bypass RLS.
    let flags = psql(
        url,
        "SELECT rolbypassrls::text || rolsuper::text FROM pg_roles WHERE rolname = 'ragnos_app'",
    );
    assert_eq!(flags, "falsefalse");
    let owned = psql(
        url,
        "SELECT count(*) FROM pg_tables WHERE tableowner = 'ragnos_app'",
    );
    assert_eq!(owned, "0");
    let _ = pg_admin_url();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_failure_fails_closed() {
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let root = Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET);
    let name = unique("closed");
    let value = format!("FAIL-CLOSED-{}", uuid::Uuid::new_v4().simple());
    let r = root.call_json("CreateSecret", json!({"Name": name, "SecretString": value, "ClientRequestToken": "0123456789abcdef0123456789abcdef"})).await;
    assert_eq!(r.status, 200);
    psql(
        &server.database_url,
        "REVOKE INSERT ON audit_log FROM ragnos_app",
    );
    let r = root
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    assert_eq!(r.status, 500, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.code(), "InternalServiceError");
    assert!(
        !String::from_utf8_lossy(&r.raw).contains(&value),
        "a value left without its audit row"
    );
    let r = root.call_json("PutSecretValue", json!({"SecretId": name, "SecretString": "new", "ClientRequestToken": "fedcba9876543210fedcba9876543210"})).await;
    assert_eq!(r.status, 500);
    psql(
        &server.database_url,
        "GRANT INSERT ON audit_log TO ragnos_app",
    );
    let r = root
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json["SecretString"], value,
        "the failed PutSecretValue must not have been applied"
    );
}

// A read's LastAccessedDate must not wait behind a writer's row lock: the touch rides in
// the audit batch that every read in flight waits on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_for_a_locked_secret() {
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let client = crate::harness::root_client(&server);
    let name = unique("locked");
    client
        .create_secret()
        .name(&name)
        .secret_string("v")
        .send()
        .await
        .expect("create");
    let db = open_db(&server).await;
    let ws = default_workspace(&db).await;
    let (row, _) = stored(&db, &ws, &name).await;
    let url = &server.database_url;
    // Another session holds the secret's row lock, as a write in progress does.
    let mut holder = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-qtAc",
            &format!(
                "BEGIN; SELECT id FROM secrets WHERE id = '{}' FOR UPDATE; \
                 SELECT pg_sleep(120); COMMIT;",
                row.id
            ),
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let mut held = false;
    for _ in 0..300 {
        let n = psql(
            url,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
        );
        if n == "1" {
            held = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held, "the lock holder never started");
    client
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("get");
    let still_holding = holder.try_wait().expect("try_wait").is_none();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(still_holding, "the read waited for the writer's lock");
    // The audit row went in all the same.
    assert!(
        audit_rows(&db, &ws)
            .await
            .iter()
            .any(|r| r.action == "GetSecretValue" && r.resource_id.as_deref() == Some(&name)),
        "the read's audit row"
    );
}

/// On SQLite a read is answered once its audit row is in the journal beside the database,
/// before the row reaches the log. Killed then, the server finds the rows in the journal
/// when it starts again and puts each into the log once. While the log cannot take rows,
/// reads are refused rather than answered with rows piling up in memory (fail-closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_read_rows_survive_kill() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let root = std::sync::Arc::new(Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET));
    let name = unique("journaled");
    create_with_raw(&root, &name).await;
    // The day's first read records LastAccessedDate, which goes straight into the database.
    let r = root
        .call_json("GetSecretValue", json!({"SecretId": name}))
        .await;
    assert_eq!(r.status, 200);
    let db = open_db(&server).await;
    let ws = default_workspace(&db).await;
    let before = audit_rows(&db, &ws).await.len();
    // Another connection holds SQLite's write lock: no row can reach the log.
    let path = server
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite url")
        .to_string();
    let mut holder = diesel::SqliteConnection::establish(&path).expect("second connection");
    holder.batch_execute("BEGIN IMMEDIATE").expect("write lock");
    let mut ids = read_concurrently(&root, std::slice::from_ref(&name), 4, 25).await;
    assert_eq!(
        audit_rows(&db, &ws).await.len(),
        before,
        "the reads were answered before their rows reached the log"
    );
    // The server's copy into the log gives up after SQLite's busy timeout; from then on
    // reads are refused, with no row and no value.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let refused = loop {
        let r = root
            .call_json("GetSecretValue", json!({"SecretId": name}))
            .await;
        if r.status != 200 {
            break r;
        }
        ids.push(request_id(&r));
        assert!(
            std::time::Instant::now() < deadline,
            "reads kept being answered while the log refused their rows"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status, 500);
    assert_eq!(refused.json["__type"], "InternalServiceError");
    drop(db);
    // kill -9 while the lock is held, let go of it, and start again on the same data.
    let server = server.restart_after(move || drop(holder));
    let db = open_db(&server).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for row in audit_rows(&db, &ws).await {
        *count.entry(row.request_id).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id), Some(&1), "acknowledged read {id}");
    }
    assert_eq!(count.get(&request_id(&refused)), None, "a refused read");
}

/// Poll `fut` once, give the database `wait` to act on what it sent, poll once more, then
/// drop it: a request cancelled part-way, as when its client goes away.
async fn cancel_part_way<F: std::future::Future>(fut: F, wait: std::time::Duration) {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..2 {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready()))
                .await;
        if ready {
            return;
        }
        // Blocking on purpose: the other worker thread drives the connection meanwhile.
        std::thread::sleep(wait);
    }
}

/// On PostgreSQL a read sends its `BEGIN`, workspace setting, reads and `COMMIT` in one
/// flight. Cancelled anywhere in that flight, it must not hand its pooled connection to
/// the next user inside the transaction: that user's writes would then never commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_reads_leave_no_transaction_open() {
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let name = unique("cancelled");
    crate::harness::root_client(&server)
        .create_secret()
        .name(&name)
        .secret_string("v0")
        .send()
        .await
        .expect("create");
    // One connection, so each call below reuses it unless the pool discarded it.
    let db = Db::connect(&server.database_url, 1).await.expect("db");
    let observer = open_db(&server).await;
    let ws = default_workspace(&observer).await;
    let lookup = SecretLookup::Name(&name);
    for step in 0..24u64 {
        let read = db.find_secret_state(&ws, "us-east-1", &lookup, Some("AWSCURRENT"));
        cancel_part_way(read, std::time::Duration::from_micros(step * 50)).await;
        let row = ragnos_vault::store::WorkspaceRow {
            id: uuid::Uuid::new_v4().to_string(),
            name: unique("after-cancel"),
            account_id: format!("{:012}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000),
            wrapped_key: vec![0; 8],
            created_at: 0,
        };
        db.insert_workspace(&row)
            .await
            .expect("a write after the cancelled read");
        assert!(
            observer.workspace(&row.id).await.expect("q").is_some(),
            "cancelled after step {step}: the next write did not commit"
        );
        // And the read itself still works on whatever connection the pool gives.
        let found = db
            .find_secret_state(&ws, "us-east-1", &lookup, None)
            .await
            .expect("read");
        assert!(found.is_some(), "step {step}");
    }
}
