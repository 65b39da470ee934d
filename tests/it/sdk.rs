//! The full lifecycle of every implemented operation through `aws-sdk-secretsmanager`.

use crate::both_backends;
use crate::harness::{ACCOUNT_ID, TestServer, root_client, sdk_client, unique};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

/// The error code of an SDK error.
fn code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> String {
    match e.as_service_error() {
        Some(s) => s.code().unwrap_or("").to_string(),
        None => format!("not a service error: {e:?}"),
    }
}

async fn lifecycle(server: &TestServer) {
    let c = root_client(server);
    let name = unique("app/db");
    let token1 = "terraform-20261129212737000000000001".to_string();
    let created = c
        .create_secret()
        .name(&name)
        .description("the database")
        .secret_string("v1-value")
        .client_request_token(&token1)
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .expect("create");
    let arn = created.arn().expect("arn").to_string();
    assert_eq!(created.version_id(), Some(token1.as_str()));
    let prefix = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:{name}-");
    assert!(arn.starts_with(&prefix), "{arn}");
    assert_eq!(arn.len(), prefix.len() + 6);

    // Idempotent replay of the same create.
    let again = c
        .create_secret()
        .name(&name)
        .secret_string("v1-value")
        .client_request_token(&token1)
        .send()
        .await;
    assert_eq!(again.expect("replay").version_id(), Some(token1.as_str()));
    // Same token, different value.
    let e = c
        .create_secret()
        .name(&name)
        .secret_string("other")
        .client_request_token(&token1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceExistsException");
    // Same name, no token match.
    let e = c
        .create_secret()
        .name(&name)
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceExistsException");

    // Reads by name, full ARN and partial ARN.
    for id in [
        name.clone(),
        arn.clone(),
        prefix.trim_end_matches('-').to_string(),
    ] {
        let v = c
            .get_secret_value()
            .secret_id(&id)
            .send()
            .await
            .expect("get");
        assert_eq!(v.secret_string(), Some("v1-value"));
        assert_eq!(v.version_stages(), ["AWSCURRENT"]);
        assert!(v.created_date().is_some());
    }

    // New versions move AWSCURRENT and AWSPREVIOUS.
    let v2 = c
        .put_secret_value()
        .secret_id(&name)
        .secret_string("v2-value")
        .send()
        .await
        .expect("put");
    let v2id = v2.version_id().expect("v2").to_string();
    let prev = c
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("prev");
    assert_eq!(prev.secret_string(), Some("v1-value"));
    let v3 = c
        .update_secret()
        .secret_id(&name)
        .secret_string("v3-value")
        .description("new desc")
        .send()
        .await
        .expect("update");
    let v3id = v3.version_id().expect("v3").to_string();
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    let map = d.version_ids_to_stages().expect("stages");
    assert_eq!(map[&v3id], ["AWSCURRENT"]);
    assert_eq!(map[&v2id], ["AWSPREVIOUS"]);
    assert!(!map.contains_key(&token1), "v1 is deprecated now");
    assert_eq!(d.description(), Some("new desc"));
    assert_eq!(d.tags().len(), 1);

    // Custom labels leave AWSCURRENT alone.
    let v4 = c
        .put_secret_value()
        .secret_id(&name)
        .secret_binary(Blob::new(vec![0u8, 159, 146, 150]))
        .version_stages("STAGING")
        .send()
        .await
        .expect("put staging");
    assert_eq!(v4.version_stages(), ["STAGING"]);
    let cur = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("current");
    assert_eq!(cur.secret_string(), Some("v3-value"));
    let staged = c
        .get_secret_value()
        .secret_id(&name)
        .version_stage("STAGING")
        .send()
        .await
        .expect("staging");
    assert_eq!(
        staged.secret_binary().map(|b| b.as_ref().to_vec()),
        Some(vec![0u8, 159, 146, 150])
    );

    // VersionId + mismatching stage.
    let e = c
        .get_secret_value()
        .secret_id(&name)
        .version_id(&v2id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");

    // UpdateSecretVersionStage: move AWSCURRENT back to v2 (AWSPREVIOUS follows).
    let e = c
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    c.update_secret_version_stage()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2id)
        .remove_from_version_id(&v3id)
        .send()
        .await
        .expect("move current");
    let cur = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("current");
    assert_eq!(cur.secret_string(), Some("v2-value"));
    let prev = c
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .expect("prev");
    assert_eq!(prev.version_id(), Some(v3id.as_str()));
    let e = c
        .update_secret_version_stage()
        .secret_id(&name)
        .version_stage("AWSCURRENT")
        .remove_from_version_id(&v2id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");

    // ListSecretVersionIds with and without deprecated versions.
    let listed = c
        .list_secret_version_ids()
        .secret_id(&name)
        .send()
        .await
        .expect("versions");
    assert_eq!(listed.versions().len(), 3);
    let all = c
        .list_secret_version_ids()
        .secret_id(&name)
        .include_deprecated(true)
        .send()
        .await
        .expect("all versions");
    assert_eq!(all.versions().len(), 4);

    // Tags.
    c.tag_resource()
        .secret_id(&name)
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await
        .expect("tag");
    c.untag_resource()
        .secret_id(&name)
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .expect("untag");
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.tags()
            .iter()
            .map(|t| t.key().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["env"]
    );

    // Resource policies.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let none = c
        .get_resource_policy()
        .secret_id(&name)
        .send()
        .await
        .expect("get policy");
    assert!(none.resource_policy().is_none());
    c.put_resource_policy()
        .secret_id(&name)
        .resource_policy(policy)
        .send()
        .await
        .expect("put policy");
    let got = c
        .get_resource_policy()
        .secret_id(&name)
        .send()
        .await
        .expect("get policy");
    assert_eq!(got.resource_policy(), Some(policy));
    let e = c
        .put_resource_policy()
        .secret_id(&name)
        .resource_policy(public)
        .block_public_policy(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PublicPolicyException");
    let e = c
        .put_resource_policy()
        .secret_id(&name)
        .resource_policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "MalformedPolicyDocumentException");
    let v = c
        .validate_resource_policy()
        .resource_policy(public)
        .send()
        .await
        .expect("validate");
    assert!(!v.policy_validation_passed());
    let v = c
        .validate_resource_policy()
        .resource_policy(policy)
        .send()
        .await
        .expect("validate");
    assert!(v.policy_validation_passed());
    c.delete_resource_policy()
        .secret_id(&name)
        .send()
        .await
        .expect("delete policy");
    assert!(
        c.get_resource_policy()
            .secret_id(&name)
            .send()
            .await
            .expect("get")
            .resource_policy()
            .is_none()
    );

    // Random passwords.
    let p = c
        .get_random_password()
        .password_length(40)
        .exclude_punctuation(true)
        .send()
        .await
        .expect("password");
    let p = p.random_password().expect("password");
    assert_eq!(p.len(), 40);
    assert!(p.chars().all(|ch| ch.is_ascii_alphanumeric()));

    // Deletion lifecycle.
    let e = c
        .delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(6)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let del = c
        .delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete");
    assert!(del.deletion_date().is_some());
    let e = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    assert!(
        e.as_service_error()
            .and_then(|s| s.message())
            .unwrap_or("")
            .contains("marked for deletion")
    );
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe deleted");
    assert!(d.deleted_date().is_some());
    let e = c
        .create_secret()
        .name(&name)
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let listed = c
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&name)
                .build(),
        )
        .send()
        .await
        .expect("list");
    assert!(listed.secret_list().is_empty());
    let listed = c
        .list_secrets()
        .include_planned_deletion(true)
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&name)
                .build(),
        )
        .send()
        .await
        .expect("list");
    assert_eq!(listed.secret_list().len(), 1);
    c.restore_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("restore");
    assert_eq!(
        c.get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("get")
            .secret_string(),
        Some("v2-value")
    );

    // Force delete, then it is gone and the name can be reused with a new ARN.
    c.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("force");
    let e = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    c.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("force again is fine");
    let re = c
        .create_secret()
        .name(&name)
        .secret_string("fresh")
        .send()
        .await
        .expect("recreate");
    assert_ne!(re.arn(), Some(arn.as_str()));
}
both_backends!(lifecycle);

async fn list_and_batch(server: &TestServer) {
    let c = root_client(server);
    let prefix = unique("list");
    let mut names = Vec::new();
    for i in 0..7 {
        let n = format!("{prefix}/s{i}");
        let mut req = c
            .create_secret()
            .name(&n)
            .secret_string(format!("value-{i}"));
        if i % 2 == 0 {
            req = req.tags(Tag::builder().key("even").value("yes").build());
        }
        req.send().await.expect("create");
        names.push(n);
    }
    // Paginate by 3 over the prefix: every secret exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_secrets()
            .max_results(3)
            .set_next_token(token.clone())
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&prefix)
                    .build(),
            )
            .send()
            .await
            .expect("list page");
        assert!(page.secret_list().len() <= 3);
        for s in page.secret_list() {
            seen.push(s.name().unwrap_or("").to_string());
            assert!(s.secret_versions_to_stages().is_some());
        }
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, names);
    // Tag filter and negation.
    let even = c
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .filters(
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values("even")
                .build(),
        )
        .send()
        .await
        .expect("tag filter");
    assert_eq!(even.secret_list().len(), 4);
    let odd = c
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(&prefix)
                .build(),
        )
        .filters(
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values("!even")
                .build(),
        )
        .send()
        .await
        .expect("negated filter");
    assert_eq!(odd.secret_list().len(), 3);
    let bad = c
        .list_secrets()
        .next_token("bm90LWEtdG9rZW4")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad), "InvalidNextTokenException");

    // BatchGetSecretValue by ids, with one missing.
    let missing = unique("missing");
    let b = c
        .batch_get_secret_value()
        .secret_id_list(&names[0])
        .secret_id_list(&names[1])
        .secret_id_list(&missing)
        .send()
        .await
        .expect("batch");
    assert_eq!(b.secret_values().len(), 2);
    assert_eq!(b.errors().len(), 1);
    assert_eq!(
        b.errors()[0].error_code(),
        Some("ResourceNotFoundException")
    );
    // By filters, paginated.
    let mut got = 0;
    let mut token = None;
    loop {
        let page = c
            .batch_get_secret_value()
            .filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&prefix)
                    .build(),
            )
            .max_results(4)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("batch by filter");
        got += page.secret_values().len();
        token = page.next_token().map(String::from);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(got, 7);
}
both_backends!(list_and_batch);

async fn workspace_isolation(server: &TestServer) {
    let root = root_client(server);
    let name = unique("isolated");
    root.create_secret()
        .name(&name)
        .secret_string("tenant-a-value")
        .send()
        .await
        .expect("create");
    let (akid, secret, other_account) = server.new_workspace_key("admin", &[]);
    assert_ne!(other_account, ACCOUNT_ID);
    let other = sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
    let root_arn = root
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("d")
        .arn()
        .unwrap_or("")
        .to_string();
    for id in [name.as_str(), root_arn.as_str()] {
        let e = other
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = other
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = other
            .put_secret_value()
            .secret_id(id)
            .secret_string("evil")
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = other
            .delete_secret()
            .secret_id(id)
            .recovery_window_in_days(7)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
        let e = other
            .tag_resource()
            .secret_id(id)
            .tags(Tag::builder().key("k").value("v").build())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "ResourceNotFoundException");
    }
    let listed = other.list_secrets().send().await.expect("list");
    assert!(
        listed
            .secret_list()
            .iter()
            .all(|s| s.name() != Some(name.as_str()))
    );
    // The other workspace can use the same name independently.
    other
        .create_secret()
        .name(&name)
        .secret_string("tenant-b-value")
        .send()
        .await
        .expect("same name elsewhere");
    let a = root
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("a");
    assert_eq!(a.secret_string(), Some("tenant-a-value"));
    // Region is part of identity.
    let west = sdk_client(
        &server.endpoint,
        crate::harness::ROOT_AKID,
        crate::harness::ROOT_SECRET,
        "eu-west-1",
    );
    let e = west
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}
both_backends!(workspace_isolation);

async fn roles_and_scopes(server: &TestServer) {
    let root = root_client(server);
    let name = unique("team-a/secret");
    root.create_secret()
        .name(&name)
        .secret_string("scoped")
        .send()
        .await
        .expect("create");
    let (akid, secret, _) = server.new_key("default", "read", &["team-a/"]);
    let reader = sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
    assert_eq!(
        reader
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("read")
            .secret_string(),
        Some("scoped")
    );
    let e = reader
        .put_secret_value()
        .secret_id(&name)
        .secret_string("no")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let e = reader
        .create_secret()
        .name("team-a/new")
        .secret_string("no")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let outside = unique("team-b/secret");
    root.create_secret()
        .name(&outside)
        .secret_string("hidden")
        .send()
        .await
        .expect("create");
    let e = reader
        .get_secret_value()
        .secret_id(&outside)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let listed = reader.list_secrets().send().await.expect("list");
    assert!(
        listed
            .secret_list()
            .iter()
            .all(|s| s.name().unwrap_or("").starts_with("team-a/"))
    );
    let (wakid, wsecret, _) = server.new_key("default", "write", &[]);
    let writer = sdk_client(&server.endpoint, &wakid, &wsecret, "us-east-1");
    writer
        .put_secret_value()
        .secret_id(&name)
        .secret_string("w")
        .send()
        .await
        .expect("write can put");
    let e = writer
        .delete_secret()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
}
both_backends!(roles_and_scopes);

/// Assert a secret's current value and how many versions it has (deprecated included).
async fn assert_durable(
    c: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
    versions: usize,
) {
    let v = c
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .expect("get after kill");
    assert_eq!(v.secret_string(), Some(value));
    let listed = c
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .expect("versions");
    assert_eq!(listed.versions().len(), versions);
}

/// Acknowledged writes survive SIGKILL: write, kill -9, restart, read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).expect("server");
    let c = root_client(&server);
    let name = unique("durable");
    c.create_secret()
        .name(&name)
        .secret_string("v0")
        .send()
        .await
        .expect("create");
    for i in 1..=50 {
        c.put_secret_value()
            .secret_id(&name)
            .secret_string(format!("v{i}"))
            .send()
            .await
            .expect("put");
    }
    let server = server.restart();
    assert_durable(&root_client(&server), &name, "v50", 51).await;
}

/// Writers racing on one secret all succeed: sixteen put their own versions, four replay
/// one shared token with one value. A lost race is retried (on PostgreSQL a write's
/// statements are pipelined, so a race also shows up as a key taken first), never a 5xx.
async fn racing_puts_on_one_secret(server: &TestServer) {
    let c = root_client(server);
    let name = unique("raced");
    c.create_secret()
        .name(&name)
        .secret_string("v0")
        .send()
        .await
        .expect("create");
    let shared = "0123456789abcdef0123456789abcdef";
    let mut racers = Vec::new();
    for r in 0..20 {
        let c = c.clone();
        let name = name.clone();
        racers.push(tokio::spawn(async move {
            let put = c.put_secret_value().secret_id(&name);
            let put = if r < 16 {
                put.secret_string(format!("racer-{r}"))
            } else {
                put.secret_string("shared").client_request_token(shared)
            };
            put.send().await.map_err(|e| code(&e))
        }));
    }
    for r in racers {
        let out = r.await.expect("racer").expect("every racing put succeeds");
        assert!(out.version_id().is_some());
    }
    let versions = c
        .list_secret_version_ids()
        .secret_id(&name)
        .include_deprecated(true)
        .send()
        .await
        .expect("versions");
    let all = versions.versions();
    assert_eq!(all.len(), 18, "v0, sixteen racers and one shared version");
    let with = |label: &str| {
        all.iter()
            .filter(|v| v.version_stages().iter().any(|s| s == label))
            .count()
    };
    assert_eq!(with("AWSCURRENT"), 1);
    assert_eq!(with("AWSPREVIOUS"), 1);
    let current = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("get");
    let value = current.secret_string().expect("string");
    assert!(value.starts_with("racer-") || value == "shared", "{value}");
}
both_backends!(racing_puts_on_one_secret);

/// Concurrent writes, which SQLite commits in groups, are each durable once acknowledged:
/// 16 writers put to their own secrets while 16 others race to create one name (one wins,
/// the rest fail inside the same groups); then kill -9, restart, and read everything back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_acknowledged_writes_survive_kill() {
    let server = TestServer::start(crate::harness::Backend::Sqlite).expect("server");
    let c = root_client(&server);
    let base = unique("group");
    let mut writers = Vec::new();
    for w in 0..16 {
        let c = c.clone();
        let name = format!("{base}-{w}");
        writers.push(tokio::spawn(async move {
            c.create_secret()
                .name(&name)
                .secret_string("v0")
                .send()
                .await
                .expect("create");
            let mut last = "v0".to_string();
            for i in 1..=10 {
                let value = format!("w{w}-v{i}");
                c.put_secret_value()
                    .secret_id(&name)
                    .secret_string(&value)
                    .send()
                    .await
                    .expect("put");
                last = value;
            }
            (name, last)
        }));
    }
    let contested = format!("{base}-contested");
    let mut racers = Vec::new();
    for r in 0..16 {
        let c = c.clone();
        let name = contested.clone();
        racers.push(tokio::spawn(async move {
            c.create_secret()
                .name(&name)
                .secret_string(format!("racer-{r}"))
                .send()
                .await
                .map(|_| format!("racer-{r}"))
                .map_err(|e| code(&e).to_string())
        }));
    }
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.push(w.await.expect("writer"));
    }
    let mut winners = Vec::new();
    for r in racers {
        match r.await.expect("racer") {
            Ok(value) => winners.push(value),
            Err(code) => assert_eq!(
                code,
                "ResourceExistsException",
                "server log:\n{}",
                server.logs()
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create of a name wins");
    let server = server.restart();
    let c = root_client(&server);
    for (name, last) in acknowledged {
        assert_durable(&c, &name, &last, 11).await;
    }
    assert_durable(&c, &contested, &winners[0], 1).await;
}

/// PostgreSQL connections that the database closed are replaced, never handed to a request.
/// A pool checkout looks at the connection instead of sending `SELECT 1`, so this holds only
/// because a closed connection is seen as closed: here every one of the server's backends is
/// terminated (as a PostgreSQL restart or an idle timeout would), three times, and every
/// write and read after each round succeeds, audit rows included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_closed_by_the_database_are_replaced() {
    use crate::harness::{Backend, pg_admin_url, psql_value};
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let database = server
        .database_url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_string();
    let c = root_client(&server);
    let name = unique("reconnect");
    c.create_secret()
        .name(&name)
        .secret_string("v0")
        .send()
        .await
        .expect("create");
    for round in 1..=3 {
        let killed = psql_value(
            &pg_admin_url(),
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ),
        );
        assert!(killed.parse::<u32>().expect("count") > 0, "round {round}");
        // The driver learns of the close from its socket, asynchronously.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for i in 0..5 {
            let value = format!("v{round}-{i}");
            c.put_secret_value()
                .secret_id(&name)
                .secret_string(&value)
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}, put {i}: {e:?}\n{}", server.logs()));
            let got = c
                .get_secret_value()
                .secret_id(&name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("round {round}, get {i}: {e:?}\n{}", server.logs()));
            assert_eq!(got.secret_string(), Some(value.as_str()));
        }
    }
}

/// Refused puts give their connection back. On PostgreSQL a put reads the secret in a
/// transaction that stays open for its write; a put refused after that read (a deleted
/// secret, a token already used with another value) rolls it back and returns the
/// connection. Forty of each, 16 at a time, against a pool of 8, and the server still writes.
async fn refused_puts_return_their_connections(server: &TestServer) {
    let c = root_client(server);
    let (deleted, kept) = (unique("refused/deleted"), unique("refused/kept"));
    for name in [&deleted, &kept] {
        c.create_secret()
            .name(name)
            .secret_string("v0")
            .send()
            .await
            .expect("create");
    }
    let token = "refused-token-0123456789abcdef0123456789";
    c.put_secret_value()
        .secret_id(&kept)
        .secret_string("v1")
        .client_request_token(token)
        .send()
        .await
        .expect("put v1");
    c.delete_secret()
        .secret_id(&deleted)
        .send()
        .await
        .expect("delete");
    for wave in 0..5 {
        let mut puts = Vec::new();
        for i in 0..16 {
            let c = c.clone();
            let (deleted, kept) = (deleted.clone(), kept.clone());
            puts.push(tokio::spawn(async move {
                let put = if i % 2 == 0 {
                    c.put_secret_value().secret_id(&deleted).secret_string("x")
                } else {
                    c.put_secret_value()
                        .secret_id(&kept)
                        .secret_string(format!("other-{wave}-{i}"))
                        .client_request_token(token)
                };
                put.send().await.map_err(|e| code(&e))
            }));
        }
        for (i, p) in puts.into_iter().enumerate() {
            let err = p.await.expect("put task").expect_err("refused");
            let want = if i % 2 == 0 {
                "InvalidRequestException"
            } else {
                "ResourceExistsException"
            };
            assert_eq!(err, want, "wave {wave}, put {i}");
        }
    }
    for i in 0..10 {
        c.put_secret_value()
            .secret_id(&kept)
            .secret_string(format!("after-{i}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put after the refusals: {e:?}\n{}", server.logs()));
    }
    let got = c
        .get_secret_value()
        .secret_id(&kept)
        .send()
        .await
        .expect("get");
    assert_eq!(got.secret_string(), Some("after-9"));
}
both_backends!(refused_puts_return_their_connections);
