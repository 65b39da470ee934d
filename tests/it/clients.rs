//! AWS's own caching client for Rust (`aws_secretsmanager_caching`), which resolves
//! AWSCURRENT through DescribeSecret's VersionIdsToStages when its TTL expires.

use crate::both_backends;
use crate::harness::{ROOT_AKID, ROOT_SECRET, TestServer, root_client, unique};
use aws_secretsmanager_caching::SecretsManagerCachingClient;
use std::num::NonZeroUsize;
use std::time::Duration;

async fn rust_caching_client(server: &TestServer) {
    let creds = aws_credential_types::Credentials::new(ROOT_AKID, ROOT_SECRET, None, None, "test");
    let builder = aws_sdk_secretsmanager::config::Builder::new()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(&server.endpoint);
    let ttl = Duration::from_millis(300);
    let size = NonZeroUsize::new(100).expect("non-zero");
    let cache = SecretsManagerCachingClient::from_builder(builder, size, ttl, false)
        .await
        .expect("caching client");
    let admin = root_client(server);
    let name = unique("cached");
    admin
        .create_secret()
        .name(&name)
        .secret_string("first")
        .send()
        .await
        .expect("create");

    let v = cache
        .get_secret_value(&name, None, None, false)
        .await
        .expect("get");
    assert_eq!(v.secret_string.as_deref(), Some("first"));
    let first_version = v.version_id.clone();

    admin
        .put_secret_value()
        .secret_id(&name)
        .secret_string("second")
        .send()
        .await
        .expect("put");
    // Within its TTL the cache serves its copy; after it, DescribeSecret tells it AWSCURRENT moved.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let v = cache
        .get_secret_value(&name, None, None, false)
        .await
        .expect("get after ttl");
    assert_eq!(v.secret_string.as_deref(), Some("second"));
    assert_ne!(v.version_id, first_version);

    let prev = cache
        .get_secret_value(&name, None, Some("AWSPREVIOUS"), false)
        .await
        .expect("previous");
    assert_eq!(prev.secret_string.as_deref(), Some("first"));
    let by_id = cache
        .get_secret_value(&name, first_version.as_deref(), None, true)
        .await
        .expect("by version id");
    assert_eq!(by_id.secret_string.as_deref(), Some("first"));
}
both_backends!(rust_caching_client);
