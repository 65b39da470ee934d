//! Use RAGnos Vault from the official Rust SDK: only the endpoint changes.
//!
//! `VAULT_ENDPOINT=http://127.0.0.1:4000 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… cargo run --example rust_sdk`

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("VAULT_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4000".into());
    let region = std::env::var("AWS_DEFAULT_REGION").unwrap_or_else(|_| "us-east-1".into());
    let creds = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID")?,
        std::env::var("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "env",
    );
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);

    let name = format!("examples/rust-{}", uuid::Uuid::new_v4().simple());
    client
        .create_secret()
        .name(&name)
        .secret_string("first")
        .send()
        .await?;
    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string("second")
        .send()
        .await?;
    let current = client.get_secret_value().secret_id(&name).send().await?;
    let previous = client
        .get_secret_value()
        .secret_id(&name)
        .version_stage("AWSPREVIOUS")
        .send()
        .await?;
    if current.secret_string() != Some("second") || previous.secret_string() != Some("first") {
        return Err("unexpected values".into());
    }
    client
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await?;
    println!("rust example: ok ({name})");
    Ok(())
}
