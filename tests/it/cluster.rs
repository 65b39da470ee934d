//! Several nodes on one PostgreSQL and one Redis: a write on any node is never served
//! stale by another once it returned, and with Redis gone reads stay correct.

use crate::harness::{TestServer, root_client, unique};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// A private redis-server on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(_) => {
                let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
                assert!(!ci, "redis-server is required under CI=true");
                eprintln!("SKIPPED: multi-node tests (no redis-server binary)");
                return None;
            }
        };
        let url = format!("redis://127.0.0.1:{port}/");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Redis { child, url });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_node_are_read_fresh_on_the_others() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let Some(nodes) = TestServer::start_cluster(3, &[("REDIS_URL", redis.url.as_str())]) else {
        return;
    };
    let clients: Vec<_> = nodes.iter().map(root_client).collect();
    let name = unique("cluster");
    clients[0]
        .create_secret()
        .name(&name)
        .secret_string("v0")
        .send()
        .await
        .expect("create");
    // Warm every node's cache so a missed invalidation would show as a stale read.
    for c in &clients {
        assert_eq!(
            c.get_secret_value()
                .secret_id(&name)
                .send()
                .await
                .expect("get")
                .secret_string(),
            Some("v0")
        );
    }
    for i in 1..=1000 {
        let writer = i % 3;
        let value = format!("v{i}");
        clients[writer]
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&value)
            .send()
            .await
            .expect("put");
        for (n, c) in clients.iter().enumerate() {
            if n == writer {
                continue;
            }
            let got = c
                .get_secret_value()
                .secret_id(&name)
                .send()
                .await
                .expect("get");
            assert_eq!(
                got.secret_string(),
                Some(value.as_str()),
                "node {n} served a stale value after write {i}"
            );
        }
    }
    // ListSecrets pages are cached too: a secret created on one node is listed at once by
    // the others, whose cached page of the same query predates it.
    let prefix = format!("{name}/");
    for c in &clients {
        assert!(listed(c, &prefix).await.is_empty());
    }
    created_are_listed_everywhere(&clients, &prefix, 0..30, "").await;
    a_revoked_key_fails_at_once_everywhere(&nodes, "").await;

    // Redis goes away: reads still succeed and are still fresh (nodes stop trusting caches).
    redis.stop();
    for i in 1001..=1050 {
        let writer = i % 3;
        let value = format!("v{i}");
        clients[writer]
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&value)
            .send()
            .await
            .expect("put without redis");
        for (n, c) in clients.iter().enumerate() {
            let got = c
                .get_secret_value()
                .secret_id(&name)
                .send()
                .await
                .expect("get without redis");
            assert_eq!(
                got.secret_string(),
                Some(value.as_str()),
                "node {n} stale without redis at {i}"
            );
        }
    }
    created_are_listed_everywhere(&clients, &prefix, 30..36, " without redis").await;
    a_revoked_key_fails_at_once_everywhere(&nodes, " without redis").await;
}

/// Mint an access key on the first node, use it on every node (each caches it), revoke it
/// on the first: the very next request with it fails on every node.
async fn a_revoked_key_fails_at_once_everywhere(nodes: &[TestServer], when: &str) {
    use crate::rest::{expect, new_workspace, root, sdk_code};
    let (ws, admin) = new_workspace(&root(&nodes[0]).await, &unique("revoke")).await;
    let keys = format!("/api/v1/workspaces/{ws}/access-keys");
    let minted = admin.post(&keys, serde_json::json!({"role": "read"})).await;
    expect(&minted, 201);
    let (akid, secret) = (
        minted.json["accessKeyId"].as_str().expect("akid"),
        minted.json["secretAccessKey"].as_str().expect("secret"),
    );
    let clients: Vec<_> = nodes
        .iter()
        .map(|n| crate::harness::sdk_client(&n.endpoint, akid, secret, "us-east-1"))
        .collect();
    for c in &clients {
        c.list_secrets()
            .send()
            .await
            .expect("list with a fresh key");
    }
    expect(&admin.delete(&format!("{keys}/{akid}")).await, 200);
    // Other nodes hear of it through Redis pub/sub, as it arrives rather than in step with
    // the request, so allow them a moment (the keys would otherwise live 30 s in their cache).
    let revoked = std::time::Instant::now();
    for (n, c) in clients.iter().enumerate() {
        loop {
            match c.list_secrets().send().await {
                Err(e) => {
                    assert_eq!(sdk_code(&e), "UnrecognizedClientException");
                    break;
                }
                Ok(_) => assert!(
                    revoked.elapsed() < std::time::Duration::from_secs(2),
                    "node {n} still took a revoked key{when} 2 s later"
                ),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Create `{prefix}{i}` for each `i` of `rounds`, on the nodes in turn, and check after each
/// that every node lists all of them at once (`when` qualifies a failure's message).
async fn created_are_listed_everywhere(
    clients: &[aws_sdk_secretsmanager::Client],
    prefix: &str,
    rounds: std::ops::Range<usize>,
    when: &str,
) {
    for i in rounds {
        let writer = i % clients.len();
        clients[writer]
            .create_secret()
            .name(format!("{prefix}{i}"))
            .secret_string("x")
            .send()
            .await
            .expect("create listed");
        for (n, c) in clients.iter().enumerate() {
            assert_eq!(
                listed(c, prefix).await.len(),
                i + 1,
                "node {n} listed a stale page{when} after create {i}"
            );
        }
    }
}

/// The names ListSecrets gives for a name prefix, planned deletions included.
async fn listed(c: &aws_sdk_secretsmanager::Client, prefix: &str) -> Vec<String> {
    list_by(c, FilterNameStringType::Name, prefix)
        .await
        .secret_list()
        .iter()
        .filter_map(|e| e.name().map(str::to_string))
        .collect()
}

/// ListSecrets with one filter, planned deletions included.
async fn list_by(
    c: &aws_sdk_secretsmanager::Client,
    key: FilterNameStringType,
    value: &str,
) -> aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput {
    c.list_secrets()
        .filters(Filter::builder().key(key).values(value).build())
        .include_planned_deletion(true)
        .send()
        .await
        .expect("list")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_traffic() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).expect("server");
    let scrape = || scrape(&server);
    let c = root_client(&server);
    let name = unique("metered");
    c.create_secret()
        .name(&name)
        .secret_string("secret-metric-value")
        .send()
        .await
        .expect("create");
    let count = |text: &str, op: &str, status: &str| -> f64 {
        parse(text)
            .into_iter()
            .filter(|(n, labels, _)| {
                n == "vault_secret_operations_total"
                    && labels.contains(&format!("operation=\"{op}\""))
                    && labels.contains(&format!("status=\"{status}\""))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let before = scrape().await;
    for _ in 0..5 {
        c.get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("get");
    }
    let _ = c
        .get_secret_value()
        .secret_id(unique("absent"))
        .send()
        .await;
    let after = scrape().await;
    assert_eq!(
        count(&after, "GetSecretValue", "success") - count(&before, "GetSecretValue", "success"),
        5.0
    );
    assert_eq!(
        count(&after, "GetSecretValue", "ResourceNotFoundException")
            - count(&before, "GetSecretValue", "ResourceNotFoundException"),
        1.0
    );
    for needed in [
        "vault_secret_operation_duration_seconds_bucket",
        "vault_cache_hits_total",
        "vault_audit_batch_size",
        "vault_db_pool_in_use",
    ] {
        assert!(after.contains(needed), "{needed} missing from /metrics");
    }
    // Batch sizes are counted in rows: every batch lands in a finite bucket (a batch holds
    // at most 1,024 rows), and the one-row batches of these sequential reads in the first.
    let batches = |le: &str| {
        parse(&after)
            .into_iter()
            .filter(|(n, labels, _)| {
                n == "vault_audit_batch_size_bucket" && labels.contains(&format!("le=\"{le}\""))
            })
            .map(|(_, _, v)| v)
            .sum::<f64>()
    };
    assert!(batches("+Inf") >= 6.0);
    assert_eq!(batches("1024"), batches("+Inf"));
    assert!(batches("1") >= 1.0);
    // On SQLite the reads after the first went through the audit journal; their copy into
    // the log, which nobody waits for, shows soon after (a liveness bound, not a speed check).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = scrape().await;
        let copied = delta(&before, &text, "vault_audit_journal_apply_rows_sum", "");
        if copied >= 5.0 {
            assert!(text.contains("vault_audit_journal_apply_seconds_count"));
            assert!(text.contains("vault_audit_journal_behind_rows"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal's copies never showed on /metrics ({copied} rows)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Bounded labels: no secret names or values.
    assert!(!after.contains(&name));
    assert!(!after.contains("secret-metric-value"));
}

// Concurrent reads from many workspaces commit in batches that name more than four of them,
// which SQLite appends to its audit inbox (store::audit_inbox); the inbox's move into the
// log, about once a second, shows on /metrics with the rows it carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_inbox_moves_show_on_metrics() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).expect("server");
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (akid, secret, _) = server.new_workspace_key("admin", &[]);
        let c = crate::harness::sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
        let name = unique("spread");
        c.create_secret()
            .name(&name)
            .secret_string("v")
            .send()
            .await
            .expect("create");
        readers.push((c, name));
    }
    // A liveness bound, not a speed check: batches are formed by timing, so reads repeat
    // until one names enough workspaces and the next move has run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reads = readers
            .iter()
            .flat_map(|(c, name)| (0..4).map(move |_| c.get_secret_value().secret_id(name).send()));
        for read in futures_util::future::join_all(reads).await {
            read.expect("get");
        }
        let text = scrape(&server).await;
        // Neither metric has labels: every sample counts.
        if sum_of(&text, "vault_audit_inbox_moved_rows_total", "") > 0.0 {
            assert!(sum_of(&text, "vault_audit_inbox_move_seconds_count", "") >= 1.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no move of the audit inbox showed on /metrics"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The server's `/metrics` text.
async fn scrape(server: &TestServer) -> String {
    let req = http::Request::builder()
        .method("GET")
        .uri(format!("{}/metrics", server.endpoint))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let r = crate::raw::send(req).await;
    assert_eq!(r.status, 200);
    String::from_utf8(r.raw.to_vec()).expect("utf8")
}

/// How much a cache counter (`vault_cache_hits_total` or `…_misses_total`) of one cache grew.
fn cache_delta(before: &str, after: &str, metric: &str, cache: &str) -> f64 {
    delta(before, after, metric, &format!("cache=\"{cache}\""))
}

/// The sum of the samples of `metric` whose labels contain `label` (`key="value"`).
fn sum_of(text: &str, metric: &str, label: &str) -> f64 {
    parse(text)
        .into_iter()
        .filter(|(n, labels, _)| n == metric && labels.contains(label))
        .map(|(_, _, v)| v)
        .sum()
}

/// How much the samples of `metric` whose labels contain `label` grew between two scrapes.
fn delta(before: &str, after: &str, metric: &str, label: &str) -> f64 {
    sum_of(after, metric, label) - sum_of(before, metric, label)
}

// A read that misses the cache loads the AWSCURRENT version's value with the secret's state,
// so it finds the value cached; a read of another label still fetches its own.
async fn a_cold_read_loads_the_current_value_with_the_state(server: &TestServer) {
    let c = root_client(server);
    let name = unique("prefetched");
    c.create_secret()
        .name(&name)
        .secret_string("one")
        .send()
        .await
        .expect("create");
    c.put_secret_value()
        .secret_id(&name)
        .secret_string("two")
        .send()
        .await
        .expect("put");
    let before = scrape(server).await;
    let got = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.secret_string(), Some("two"));
    let after = scrape(server).await;
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_misses_total", "state"),
        1.0
    );
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_misses_total", "version"),
        0.0
    );
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_hits_total", "version"),
        1.0
    );

    let previous = c
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("previous");
    assert_eq!(previous.secret_string(), Some("one"));
    let last = scrape(server).await;
    assert_eq!(
        cache_delta(&after, &last, "vault_cache_hits_total", "state"),
        1.0
    );
    assert_eq!(
        cache_delta(&after, &last, "vault_cache_misses_total", "version"),
        1.0
    );
}
crate::both_backends!(a_cold_read_loads_the_current_value_with_the_state);

// A cached state is trusted for at most 5 s after it last matched the database, because a
// writer outside every server (an import without Redis) invalidates nothing. A state read
// all along is rechecked in the background before then: reads never wait on a reload, yet a
// change written straight into the database still shows within the 5 s.
async fn hot_states_are_rechecked_and_outside_writes_still_show(server: &TestServer) {
    let c = root_client(server);
    let name = unique("rechecked");
    let describe = || async {
        c.describe_secret()
            .secret_id(&name)
            .send()
            .await
            .expect("describe")
            .description()
            .map(str::to_string)
    };
    c.create_secret()
        .name(&name)
        .description("before")
        .secret_string("v")
        .send()
        .await
        .expect("create");
    // A hot secret of a second workspace too, first read together with the first one so
    // that their rechecks share a read: rechecks read many workspaces at once.
    let other = other_workspace_client(server).await;
    let other_name = unique("rechecked-elsewhere");
    other
        .create_secret()
        .name(&other_name)
        .secret_string("w")
        .send()
        .await
        .expect("create elsewhere");
    // Described, not read: a first read of the day records LastAccessedDate, which a
    // recheck rightly finds changed.
    let read_other = || async {
        other
            .describe_secret()
            .secret_id(&other_name)
            .send()
            .await
            .expect("describe elsewhere")
            .name()
            .map(str::to_string)
    };
    assert_eq!(describe().await.as_deref(), Some("before"));
    assert_eq!(read_other().await.as_deref(), Some(other_name.as_str()));
    let before = scrape(server).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while std::time::Instant::now() < until {
        assert_eq!(describe().await.as_deref(), Some("before"));
        assert_eq!(read_other().await.as_deref(), Some(other_name.as_str()));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let after = scrape(server).await;
    let delta = |metric: &str, label: &str| delta(&before, &after, metric, label);
    assert_eq!(
        delta("vault_cache_misses_total", "cache=\"state\""),
        0.0,
        "a read waited on a reload although rechecks kept the state current"
    );
    assert!(delta("vault_cache_rechecks_total", "result=\"current\"") >= 1.0);
    assert_eq!(
        delta("vault_cache_rechecks_total", "result=\"stale\""),
        0.0,
        "a recheck found a change where there was none (a workspace left out of its read?)"
    );
    // On SQLite nothing but audit rows was written meanwhile, which the store's change count
    // shows: rechecks trust the states again without reading their rows. PostgreSQL keeps
    // no such count.
    let unread = delta("vault_cache_rechecks_unread_total", "");
    match server.backend {
        crate::harness::Backend::Sqlite => assert!(unread >= 1.0, "every recheck read rows"),
        crate::harness::Backend::Postgres => assert_eq!(unread, 0.0),
    }

    // Now a change straight into the database, as the importer writes without Redis.
    write_from_outside(server, &name, |row| row.description = Some("after".into())).await;
    shows_within_trust_window(describe, "after", "an outside write was still unseen").await;
}
crate::both_backends!(hot_states_are_rechecked_and_outside_writes_still_show);

// A secret read every few seconds, never in the last second before its state would expire,
// is still never reloaded on a read's path: a read queues the recheck, which runs on time.
async fn states_read_every_few_seconds_stay_cached(server: &TestServer) {
    let c = root_client(server);
    let name = unique("sparse");
    c.create_secret()
        .name(&name)
        .secret_string("v")
        .send()
        .await
        .expect("create");
    // Described, not read, as above: no LastAccessedDate write changes the state.
    let describe = || async {
        c.describe_secret()
            .secret_id(&name)
            .send()
            .await
            .expect("describe");
    };
    describe().await;
    let before = scrape(server).await;
    // Reads at 3, 6, 9 and 12 s: the state is 3 s old at each, below the 4 s from which
    // reads used to ask for a recheck, and is 6 s old by the second unless it was rechecked.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        describe().await;
    }
    let after = scrape(server).await;
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_misses_total", "state"),
        0.0,
        "a state read every 3 s expired and was reloaded on a read's path"
    );
    assert!(
        delta(
            &before,
            &after,
            "vault_cache_rechecks_total",
            "result=\"current\""
        ) >= 3.0
    );
}
crate::both_backends!(states_read_every_few_seconds_stay_cached);

// A day's first read records LastAccessedDate, which invalidates nothing. The recheck that
// then finds only that date changed keeps the secret cached with the database's state: a
// secret read all the time is not reloaded on a read's path (each day's first reads of
// every hot secret used to be), and DescribeSecret shows the date from the cache.
async fn a_days_first_read_keeps_its_secret_cached(server: &TestServer) {
    let c = root_client(server);
    let name = unique("first-read");
    c.create_secret()
        .name(&name)
        .secret_string("v")
        .send()
        .await
        .expect("create");
    let read = || async {
        c.get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("read");
    };
    let day = || crate::audit::today_ms() / 1000;
    let first_day = day();
    // Loads the state, which shows no read yet, and records today's.
    read().await;
    let before = scrape(server).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while std::time::Instant::now() < until {
        read().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = scrape(server).await;
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_misses_total", "state"),
        0.0,
        "the state was reloaded on a read's path after the day's first read"
    );
    assert!(
        delta(
            &before,
            &after,
            "vault_cache_rechecks_total",
            "result=\"touched\""
        ) >= 1.0
    );
    let described = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    // The day of the first read, or of a later one if midnight passed in between.
    let accessed = described.last_accessed_date().map(|d| d.secs());
    assert!(
        accessed == Some(first_day) || accessed == Some(day()),
        "LastAccessedDate {accessed:?} is not the day of the reads"
    );
    let after_describe = scrape(server).await;
    assert_eq!(
        cache_delta(&after, &after_describe, "vault_cache_misses_total", "state"),
        0.0,
        "DescribeSecret reloaded the state"
    );
}
crate::both_backends!(a_days_first_read_keeps_its_secret_cached);

// A ListSecrets page is served from the cache until a write in its workspace: the next
// listing after a write's response shows it. A write from outside every server still shows
// within the 5 s trust window, and a secret leaves the page the moment its recovery window
// ends, not when the cached page would have expired.
async fn list_pages_are_cached_until_a_write_or_a_deletion_date(server: &TestServer) {
    let c = root_client(server);
    let prefix = format!("{}/", unique("listed"));
    let (a, b) = (format!("{prefix}a"), format!("{prefix}b"));
    c.create_secret()
        .name(&a)
        .secret_string("v")
        .send()
        .await
        .expect("create a");
    assert_eq!(listed(&c, &prefix).await, std::slice::from_ref(&a));
    let before = scrape(server).await;
    assert_eq!(listed(&c, &prefix).await, std::slice::from_ref(&a));
    let after = scrape(server).await;
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_hits_total", "list"),
        1.0,
        "the same listing again was not served from the cache"
    );

    // Writes on this node show at once.
    c.create_secret()
        .name(&b)
        .secret_string("v")
        .send()
        .await
        .expect("create b");
    assert_eq!(listed(&c, &prefix).await, [a.clone(), b.clone()]);
    c.update_secret()
        .secret_id(&a)
        .description("changed")
        .send()
        .await
        .expect("update");
    let described = list_by(&c, FilterNameStringType::Name, &a).await;
    assert_eq!(described.secret_list()[0].description(), Some("changed"));
    c.delete_secret()
        .secret_id(&b)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete b");
    assert_eq!(listed(&c, &prefix).await, [a.clone(), b.clone()]);
    c.tag_resource()
        .secret_id(&a)
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("team")
                .value("x")
                .build(),
        )
        .send()
        .await
        .expect("tag");
    let tagged = list_by(&c, FilterNameStringType::TagKey, "team").await;
    assert!(
        tagged
            .secret_list()
            .iter()
            .any(|e| e.name() == Some(a.as_str()))
    );
    assert_eq!(listed(&c, &prefix).await, [a.clone(), b.clone()]);

    // b's recovery window is cut short straight in the database. That write invalidates
    // nothing: the page cached just now is dropped by age, the next one at the window's end,
    // so b is listed until then and not a listing longer.
    let ends = ragnos_vault::bootstrap::now_ms() + 6_000;
    write_from_outside(server, &b, |row| row.deletion_date = Some(ends)).await;
    let mut seen_before_end = false;
    loop {
        let started = ragnos_vault::bootstrap::now_ms();
        if started > ends + 2_000 {
            break;
        }
        let names = listed(&c, &prefix).await;
        if started < ends - 500 {
            seen_before_end |= names.contains(&b);
        } else if started > ends + 500 {
            assert_eq!(
                names,
                std::slice::from_ref(&a),
                "a secret past its recovery window was still listed {} ms later",
                started - ends
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        seen_before_end,
        "the secret vanished before its window ended"
    );
}
crate::both_backends!(list_pages_are_cached_until_a_write_or_a_deletion_date);

// A page listed all the time is read again in the background before it expires, so its
// readers never wait for the database; a change from outside every server still shows
// within the 5 s a page is trusted.
async fn busy_list_pages_are_read_again_ahead_of_expiry(server: &TestServer) {
    let c = root_client(server);
    let prefix = format!("{}/", unique("busy"));
    let a = format!("{prefix}a");
    c.create_secret()
        .name(&a)
        .description("before")
        .secret_string("v")
        .send()
        .await
        .expect("create");
    let description = || async {
        let page = list_by(&c, FilterNameStringType::Name, &a).await;
        page.secret_list()[0].description().map(str::to_string)
    };
    assert_eq!(description().await.as_deref(), Some("before"));
    let before = scrape(server).await;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while std::time::Instant::now() < until {
        assert_eq!(description().await.as_deref(), Some("before"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = scrape(server).await;
    assert_eq!(
        cache_delta(&before, &after, "vault_cache_misses_total", "list"),
        0.0,
        "a page listed every 200 ms expired and was read on a request's path"
    );

    write_from_outside(server, &a, |row| row.description = Some("after".into())).await;
    shows_within_trust_window(description, "after", "an outside write was still unlisted").await;
}
crate::both_backends!(busy_list_pages_are_read_again_ahead_of_expiry);

/// Poll `read` until it gives `want`; fail with `what` if the 5 s a cached state or page is
/// trusted (plus slack) pass first.
async fn shows_within_trust_window<F, Fut>(read: F, want: &str, what: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let written = std::time::Instant::now();
    while read().await.as_deref() != Some(want) {
        assert!(
            written.elapsed() < std::time::Duration::from_secs(7),
            "{what} after the 5 s trust window"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// An admin client of a new workspace of `server`, through a key minted over REST.
async fn other_workspace_client(server: &TestServer) -> aws_sdk_secretsmanager::Client {
    use crate::rest::{expect, new_workspace, root};
    let (ws, admin) = new_workspace(&root(server).await, &unique("elsewhere")).await;
    let minted = admin
        .post(
            &format!("/api/v1/workspaces/{ws}/access-keys"),
            serde_json::json!({"role": "admin"}),
        )
        .await;
    expect(&minted, 201);
    crate::harness::sdk_client(
        &server.endpoint,
        minted.json["accessKeyId"].as_str().expect("akid"),
        minted.json["secretAccessKey"].as_str().expect("secret"),
        "us-east-1",
    )
}

/// Change secret `name` of the default workspace straight in the database, as a writer
/// outside every server (an import without Redis) does: no cache hears of it.
async fn write_from_outside(
    server: &TestServer,
    name: &str,
    change: impl FnOnce(&mut ragnos_vault::store::SecretRow),
) {
    let db = crate::harness::open_db(server).await;
    let ws = crate::harness::default_workspace(&db).await;
    let row = db
        .find_secret(
            &ws,
            "us-east-1",
            &ragnos_vault::store::SecretLookup::Name(name),
        )
        .await
        .expect("find")
        .expect("stored");
    let mut changed = row.clone();
    change(&mut changed);
    changed.revision += 1;
    let write = ragnos_vault::store::SecretWrite::Update {
        expected_revision: row.revision,
        secret: changed,
        versions: Vec::new(),
        stages: None,
    };
    db.write_secrets(&ws, &[write], None).await.expect("write");
}

/// Parse Prometheus text format into (name, labels, value); panics on a malformed line.
fn parse(text: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad metrics line: {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in: {line}"));
        let (name, labels) = match head.find('{') {
            Some(i) => {
                assert!(head.ends_with('}'), "bad labels in: {line}");
                (head[..i].to_string(), head[i..].to_string())
            }
            None => (head.to_string(), String::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        out.push((name, labels, value));
    }
    out
}
