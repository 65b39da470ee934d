//! RotateSecret / CancelRotateSecret, Multi-Region replication inside a workspace, and the
//! cross-account replica operations, through `aws-sdk-secretsmanager`.

use crate::both_backends;
use crate::harness::{
    ACCOUNT_ID, ROOT_AKID, ROOT_SECRET, TestServer, root_client, sdk_client, unique,
};
use crate::raw::Raw;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{
    ExternalSecretRotationMetadataItem, Filter, FilterNameStringType, ReplicaRegionType,
    RotationRulesType, StatusType, Tag,
};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

const REPLICA_ONLY: &str =
    "Operation not permitted on a replica secret. Call must be made in primary secret's region.";
const NO_LAMBDA: &str = "No Lambda rotation function ARN is associated with this secret.";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:111122223333:function:rotate-db";

/// (code, message) of an SDK error.
fn err<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: aws_sdk_secretsmanager::error::SdkError<E, R>,
) -> (String, String) {
    match e.as_service_error() {
        Some(s) => (
            s.code().unwrap_or("").to_string(),
            s.message().unwrap_or("").to_string(),
        ),
        None => (format!("not a service error: {e:?}"), String::new()),
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn rules_days(days: i64) -> RotationRulesType {
    RotationRulesType::builder()
        .automatically_after_days(days)
        .build()
}

async fn value(c: &Client, id: &str) -> (String, String) {
    let v = c
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .expect("get value");
    (
        v.secret_string().expect("string").to_string(),
        v.version_id().expect("version").to_string(),
    )
}

async fn rotation_lifecycle(server: &TestServer) {
    let c = root_client(server);
    let name = unique("rot/db");
    let v1 = c
        .create_secret()
        .name(&name)
        .secret_string("s1")
        .send()
        .await
        .expect("create")
        .version_id()
        .expect("v1")
        .to_string();

    // No function given and none stored: AWS's InvalidRequestException, nothing stored.
    let (code, msg) = err(c.rotate_secret().secret_id(&name).send().await.unwrap_err());
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidRequestException", NO_LAMBDA)
    );
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.rotation_enabled(),
        None,
        "never configured: RotationEnabled is null"
    );

    // Rules are checked against the model and AWS's rules before anything is stored.
    for (rules, want) in [
        (rules_days(0), "ValidationException"),
        (rules_days(1001), "ValidationException"),
        (
            RotationRulesType::builder()
                .automatically_after_days(7)
                .schedule_expression("rate(7 days)")
                .build(),
            "InvalidParameterException",
        ),
        (
            RotationRulesType::builder()
                .schedule_expression("rate(2 hours)")
                .build(),
            "InvalidParameterException",
        ),
        (
            RotationRulesType::builder()
                .schedule_expression("rate(1 days)")
                .duration("3d")
                .build(),
            "ValidationException",
        ),
        (
            RotationRulesType::builder()
                .schedule_expression("every tuesday!")
                .build(),
            "ValidationException",
        ),
    ] {
        let (code, msg) = err(c
            .rotate_secret()
            .secret_id(&name)
            .rotation_lambda_arn(LAMBDA)
            .rotation_rules(rules.clone())
            .send()
            .await
            .unwrap_err());
        assert_eq!(code, want, "{rules:?}: {msg}");
        if rules.automatically_after_days().is_some() && rules.schedule_expression().is_some() {
            assert_eq!(
                msg,
                "You cannot specify both rotation frequency and schedule expression together."
            );
        }
    }
    let (code, _) = err(c
        .rotate_secret()
        .secret_id(&name)
        .client_request_token("too-short")
        .rotation_lambda_arn(LAMBDA)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ValidationException");

    // Scheduled rotation without an immediate one.
    let token = "terraform-20261129212737000000000042";
    let before = now_secs();
    let r = c
        .rotate_secret()
        .secret_id(&name)
        .client_request_token(token)
        .rotation_lambda_arn(LAMBDA)
        .rotation_rules(rules_days(30))
        .rotate_immediately(false)
        .send()
        .await
        .expect("rotate");
    assert_eq!(r.name(), Some(name.as_str()));
    assert_eq!(r.version_id(), Some(token));
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.rotation_enabled(), Some(true));
    assert_eq!(d.rotation_lambda_arn(), Some(LAMBDA));
    assert_eq!(
        d.rotation_rules()
            .and_then(|r| r.automatically_after_days()),
        Some(30)
    );
    let next = d.next_rotation_date().expect("NextRotationDate").secs();
    assert!(
        next >= before + 29 * 86_400 && next <= before + 31 * 86_400,
        "NextRotationDate {next} is about 30 days after {before}"
    );
    assert_eq!(
        next % 86_400,
        86_399,
        "the window closes at the end of the UTC day"
    );
    assert!(d.last_rotated_date().is_none(), "nothing rotated");
    // No Lambda runs here: no AWSPENDING version appears, AWSCURRENT stays.
    let map = d.version_ids_to_stages().expect("stages");
    assert_eq!(map.len(), 1);
    assert_eq!(map[&v1], ["AWSCURRENT"]);

    // Again with the stored function, new rules (replacing the old ones), immediately.
    let r = c
        .rotate_secret()
        .secret_id(&name)
        .rotation_rules(
            RotationRulesType::builder()
                .schedule_expression("rate(10 days)")
                .duration("2h")
                .build(),
        )
        .send()
        .await
        .expect("rotate with stored function");
    assert!(r.version_id().is_some_and(|v| v.len() == 36), "SDK token");
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    let rules = d.rotation_rules().expect("rules");
    assert_eq!(rules.automatically_after_days(), None);
    assert_eq!(rules.schedule_expression(), Some("rate(10 days)"));
    assert_eq!(rules.duration(), Some("2h"));
    assert_eq!(d.rotation_lambda_arn(), Some(LAMBDA));
    // The immediate rotation is due now and stays due (no rotation function runs here).
    let next = d.next_rotation_date().expect("NextRotationDate").secs();
    assert!((before..=now_secs() + 1).contains(&next), "{next}");

    // ListSecrets carries the same configuration.
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
    assert_eq!(listed.secret_list()[0].rotation_enabled(), Some(true));

    // CancelRotateSecret: off, function and rules kept, no NextRotationDate, no version.
    let cancelled = c
        .cancel_rotate_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.name(), Some(name.as_str()));
    assert_eq!(cancelled.version_id(), None);
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.rotation_enabled(), Some(false));
    assert_eq!(d.rotation_lambda_arn(), Some(LAMBDA));
    assert!(d.rotation_rules().is_some());
    assert!(d.next_rotation_date().is_none());
    // Cancelling again is harmless.
    c.cancel_rotate_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("cancel again");

    // A rotation left AWSPENDING on a new version: RotateSecret refuses to start another,
    // CancelRotateSecret names that version and leaves the labels alone.
    let pending = c
        .put_secret_value()
        .secret_id(&name)
        .secret_string("s2-pending")
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("pending version")
        .version_id()
        .expect("id")
        .to_string();
    let (code, msg) = err(c.rotate_secret().secret_id(&name).send().await.unwrap_err());
    assert_eq!(code, "InvalidRequestException");
    assert!(msg.contains("previous rotation"), "{msg}");
    let cancelled = c
        .cancel_rotate_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.version_id(), Some(pending.as_str()));
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.version_ids_to_stages().expect("stages")[&pending],
        ["AWSPENDING"]
    );

    // Managed external secrets rotate without a Lambda function.
    let ext = unique("rot/ext");
    c.create_secret()
        .name(&ext)
        .secret_string("e1")
        .send()
        .await
        .expect("create");
    c.rotate_secret()
        .secret_id(&ext)
        .external_secret_rotation_role_arn("arn:aws:iam::111122223333:role/partner-rotation")
        .external_secret_rotation_metadata(
            ExternalSecretRotationMetadataItem::builder()
                .key("environment")
                .value("prod")
                .build(),
        )
        .rotation_rules(rules_days(7))
        .send()
        .await
        .expect("external rotation");
    let d = c
        .describe_secret()
        .secret_id(&ext)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.rotation_enabled(), Some(true));
    assert_eq!(d.rotation_lambda_arn(), None);
    assert_eq!(
        d.external_secret_rotation_role_arn(),
        Some("arn:aws:iam::111122223333:role/partner-rotation")
    );
    assert_eq!(
        d.external_secret_rotation_metadata()[0].value(),
        Some("prod")
    );

    // A secret scheduled for deletion refuses both.
    c.delete_secret()
        .secret_id(&ext)
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("delete");
    for e in [
        err(c.rotate_secret().secret_id(&ext).send().await.unwrap_err()),
        err(c
            .cancel_rotate_secret()
            .secret_id(&ext)
            .send()
            .await
            .unwrap_err()),
    ] {
        assert_eq!(e.0, "InvalidRequestException");
        assert!(e.1.contains("marked for deletion"), "{}", e.1);
    }

    // A raw request without ClientRequestToken: InvalidParameterException (not
    // InvalidRequestException as for the other token-taking operations), as AWS answers.
    let raw = Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET);
    let r = raw
        .call_json(
            "RotateSecret",
            json!({"SecretId": name, "RotationLambdaARN": LAMBDA}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "InvalidParameterException");
    assert_eq!(
        r.message(),
        "You must provide a ClientRequestToken value. We recommend a UUID-type value."
    );
    // Unknown secret.
    let (code, _) = err(c
        .cancel_rotate_secret()
        .secret_id(unique("rot/missing"))
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ResourceNotFoundException");
}
both_backends!(rotation_lifecycle);

async fn replication_lifecycle(server: &TestServer) {
    let c = root_client(server);
    let eu = sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "eu-west-1");
    let ap = sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "ap-southeast-2");
    let name = unique("rep/db");
    let created = c
        .create_secret()
        .name(&name)
        .description("replicated")
        .secret_string("v1")
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .expect("create");
    let arn = created.arn().expect("arn").to_string();
    let v1 = created.version_id().expect("v1").to_string();
    let eu_arn = arn.replace(":us-east-1:", ":eu-west-1:");
    let ap_arn = arn.replace(":us-east-1:", ":ap-southeast-2:");

    // Before replication: no PrimaryRegion, no ReplicationStatus (AWS omits both).
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.primary_region(), None);
    assert!(d.replication_status().is_empty());

    let out = c
        .replicate_secret_to_regions()
        .secret_id(&arn)
        .add_replica_regions(
            ReplicaRegionType::builder()
                .region("eu-west-1")
                .kms_key_id("alias/eu-key")
                .build(),
        )
        .add_replica_regions(
            ReplicaRegionType::builder()
                .region("ap-southeast-2")
                .build(),
        )
        .send()
        .await
        .expect("replicate");
    assert_eq!(out.arn(), Some(arn.as_str()));
    let statuses: Vec<(&str, Option<&StatusType>)> = out
        .replication_status()
        .iter()
        .map(|s| (s.region().unwrap_or(""), s.status()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("eu-west-1", Some(&StatusType::InSync)),
            ("ap-southeast-2", Some(&StatusType::InSync))
        ]
    );
    assert_eq!(
        out.replication_status()[0].kms_key_id(),
        Some("alias/eu-key")
    );

    // The replica: same name, ARN with the Region swapped, same versions and labels.
    for (client, replica_arn) in [(&eu, &eu_arn), (&ap, &ap_arn)] {
        let v = client
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("replica value");
        assert_eq!(v.arn(), Some(replica_arn.as_str()));
        assert_eq!(v.secret_string(), Some("v1"));
        assert_eq!(v.version_id(), Some(v1.as_str()));
        assert_eq!(v.version_stages(), ["AWSCURRENT"]);
        assert_eq!(value(client, replica_arn).await.0, "v1", "by replica ARN");
    }
    let d = eu
        .describe_secret()
        .secret_id(&eu_arn)
        .send()
        .await
        .expect("describe replica");
    assert_eq!(d.primary_region(), Some("us-east-1"));
    assert!(d.replication_status().is_empty());
    assert_eq!(d.description(), Some("replicated"));
    assert_eq!(d.kms_key_id(), Some("alias/eu-key"));
    assert_eq!(d.tags()[0].value(), Some("payments"));
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe primary");
    assert_eq!(d.primary_region(), Some("us-east-1"));
    let regions: Vec<&str> = d
        .replication_status()
        .iter()
        .map(|s| s.region().unwrap_or(""))
        .collect();
    assert_eq!(regions, ["eu-west-1", "ap-southeast-2"]);
    // The primary ARN of another Region names nothing here.
    let (code, _) = err(eu
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ResourceNotFoundException");
    // The replica's read shows up in the primary's ReplicationStatus.
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    let eu_status = &d.replication_status()[0];
    assert!(eu_status.last_accessed_date().is_some(), "{eu_status:?}");

    // A write to the primary is on every replica when it returns (the eu state is cached).
    let v2 = c
        .put_secret_value()
        .secret_id(&name)
        .secret_string("v2")
        .send()
        .await
        .expect("put")
        .version_id()
        .expect("v2")
        .to_string();
    for client in [&eu, &ap] {
        assert_eq!(value(client, &name).await, ("v2".to_string(), v2.clone()));
        let prev = client
            .get_secret_value()
            .secret_id(&name)
            .version_stage("AWSPREVIOUS")
            .send()
            .await
            .expect("previous");
        assert_eq!(prev.secret_string(), Some("v1"));
    }
    c.update_secret()
        .secret_id(&name)
        .description("moved")
        .send()
        .await
        .expect("update");
    c.tag_resource()
        .secret_id(&name)
        .tags(Tag::builder().key("tier").value("1").build())
        .send()
        .await
        .expect("tag");
    c.update_secret_version_stage()
        .secret_id(&name)
        .version_stage("CUSTOM")
        .move_to_version_id(&v1)
        .send()
        .await
        .expect("label");
    let d = eu
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.description(), Some("moved"));
    assert_eq!(d.tags().len(), 2);
    assert_eq!(
        d.version_ids_to_stages().expect("stages")[&v1],
        ["AWSPREVIOUS", "CUSTOM"]
    );

    // Replicas are read-only.
    let refusals = [
        err(eu
            .put_secret_value()
            .secret_id(&name)
            .secret_string("x")
            .send()
            .await
            .unwrap_err()),
        err(eu
            .update_secret()
            .secret_id(&name)
            .description("x")
            .send()
            .await
            .unwrap_err()),
        err(eu
            .tag_resource()
            .secret_id(&name)
            .tags(Tag::builder().key("k").value("v").build())
            .send()
            .await
            .unwrap_err()),
        err(eu
            .untag_resource()
            .secret_id(&name)
            .tag_keys("team")
            .send()
            .await
            .unwrap_err()),
        err(eu
            .update_secret_version_stage()
            .secret_id(&name)
            .version_stage("X")
            .move_to_version_id(&v1)
            .send()
            .await
            .unwrap_err()),
        err(eu.delete_secret().secret_id(&name).send().await.unwrap_err()),
        err(eu
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .unwrap_err()),
        err(eu
            .rotate_secret()
            .secret_id(&name)
            .rotation_lambda_arn(LAMBDA)
            .send()
            .await
            .unwrap_err()),
        err(eu.cancel_rotate_secret().secret_id(&name).send().await.unwrap_err()),
        err(eu
            .replicate_secret_to_regions()
            .secret_id(&name)
            .add_replica_regions(ReplicaRegionType::builder().region("us-west-2").build())
            .send()
            .await
            .unwrap_err()),
        err(eu
            .remove_regions_from_replication()
            .secret_id(&name)
            .remove_replica_regions("ap-southeast-2")
            .send()
            .await
            .unwrap_err()),
        err(eu
            .put_resource_policy()
            .secret_id(&name)
            .resource_policy(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap_err()),
    ];
    for (code, msg) in refusals {
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("InvalidParameterException", REPLICA_ONLY)
        );
    }
    // Reads of the replica still work.
    eu.list_secret_version_ids()
        .secret_id(&name)
        .send()
        .await
        .expect("versions");

    // A primary with replicas cannot be deleted (AWS names the Regions).
    let (code, msg) = err(c
        .delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        msg,
        format!(
            "You can't delete secret {arn} that still has replica regions [eu-west-1, ap-southeast-2]."
        )
    );

    // ListSecrets: PrimaryRegion on entries, and the primary-region filter.
    let in_eu = |region: &str| {
        Filter::builder()
            .key(FilterNameStringType::PrimaryRegion)
            .values(region)
            .build()
    };
    let by_name = Filter::builder()
        .key(FilterNameStringType::Name)
        .values(&name)
        .build();
    let l = eu
        .list_secrets()
        .filters(by_name.clone())
        .filters(in_eu("us-east-1"))
        .send()
        .await
        .expect("list");
    assert_eq!(l.secret_list().len(), 1);
    assert_eq!(l.secret_list()[0].primary_region(), Some("us-east-1"));
    assert_eq!(l.secret_list()[0].arn(), Some(eu_arn.as_str()));
    let l = eu
        .list_secrets()
        .filters(by_name.clone())
        .filters(in_eu("eu-west-1"))
        .send()
        .await
        .expect("list");
    assert!(
        l.secret_list().is_empty(),
        "a replica originated in us-east-1"
    );

    // RemoveRegionsFromReplication deletes the replica; removing it again is harmless.
    for _ in 0..2 {
        let out = c
            .remove_regions_from_replication()
            .secret_id(&name)
            .remove_replica_regions("ap-southeast-2")
            .send()
            .await
            .expect("remove");
        let regions: Vec<&str> = out
            .replication_status()
            .iter()
            .map(|s| s.region().unwrap_or(""))
            .collect();
        assert_eq!(regions, ["eu-west-1"]);
    }
    let (code, _) = err(ap
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ResourceNotFoundException");
    // The name is free again in that Region.
    ap.create_secret()
        .name(&name)
        .secret_string("ap-own")
        .send()
        .await
        .expect("create in ap");

    // StopReplicationToReplica (in the replica's Region) promotes it.
    let (code, _) = err(c
        .stop_replication_to_replica()
        .secret_id(&name)
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "InvalidRequestException", "the primary is no replica");
    let stopped = eu
        .stop_replication_to_replica()
        .secret_id(&eu_arn)
        .send()
        .await
        .expect("stop");
    assert_eq!(stopped.arn(), Some(eu_arn.as_str()));
    let d = eu
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(d.primary_region(), None);
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert!(d.replication_status().is_empty());
    eu.put_secret_value()
        .secret_id(&name)
        .secret_string("eu-own")
        .send()
        .await
        .expect("a standalone secret takes writes");
    c.put_secret_value()
        .secret_id(&name)
        .secret_string("v3")
        .send()
        .await
        .expect("put");
    assert_eq!(value(&eu, &name).await.0, "eu-own", "no longer replicated");
    c.delete_secret()
        .secret_id(&name)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("the primary can be deleted now");
    assert_eq!(value(&eu, &eu_arn).await.0, "eu-own");
}
both_backends!(replication_lifecycle);

async fn replication_conflicts(server: &TestServer) {
    let c = root_client(server);
    let eu = sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "eu-west-1");
    let name = unique("rep/taken");
    let arn = c
        .create_secret()
        .name(&name)
        .secret_string("primary")
        .send()
        .await
        .expect("create")
        .arn()
        .expect("arn")
        .to_string();
    let old_eu_arn = eu
        .create_secret()
        .name(&name)
        .secret_string("eu-standalone")
        .send()
        .await
        .expect("create eu")
        .arn()
        .expect("arn")
        .to_string();

    // Without ForceOverwriteReplicaSecret a taken name fails that Region only.
    let out = c
        .replicate_secret_to_regions()
        .secret_id(&name)
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .send()
        .await
        .expect("replicate");
    let s = &out.replication_status()[0];
    assert_eq!(s.status(), Some(&StatusType::Failed));
    assert_eq!(
        s.status_message(),
        Some("Secret with this name already exists in this region")
    );
    assert_eq!(value(&eu, &name).await.0, "eu-standalone");
    let d = c
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        d.replication_status()[0].status(),
        Some(&StatusType::Failed)
    );

    // With it, the standalone secret is replaced by the replica.
    let out = c
        .replicate_secret_to_regions()
        .secret_id(&name)
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .force_overwrite_replica_secret(true)
        .send()
        .await
        .expect("replicate");
    assert_eq!(
        out.replication_status()[0].status(),
        Some(&StatusType::InSync)
    );
    let v = eu
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("replica");
    assert_eq!(v.secret_string(), Some("primary"));
    assert_eq!(
        v.arn(),
        Some(arn.replace(":us-east-1:", ":eu-west-1:").as_str())
    );
    let (code, _) = err(eu
        .get_secret_value()
        .secret_id(&old_eu_arn)
        .send()
        .await
        .unwrap_err());
    assert_eq!(
        code, "ResourceNotFoundException",
        "the overwritten secret is gone"
    );

    // A replica is never overwritten, even with force: another primary of the same name in
    // a third Region cannot take it.
    let usw = sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "us-west-2");
    usw.create_secret()
        .name(&name)
        .secret_string("west")
        .send()
        .await
        .expect("create west");
    let out = usw
        .replicate_secret_to_regions()
        .secret_id(&name)
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .force_overwrite_replica_secret(true)
        .send()
        .await
        .expect("replicate west");
    assert_eq!(
        out.replication_status()[0].status(),
        Some(&StatusType::Failed)
    );
    assert_eq!(value(&eu, &name).await.0, "primary");

    // Replicating to one's own Region, or to a malformed Region.
    let (code, msg) = err(c
        .replicate_secret_to_regions()
        .secret_id(&name)
        .add_replica_regions(ReplicaRegionType::builder().region("us-east-1").build())
        .send()
        .await
        .unwrap_err());
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidParameterException", "Invalid replica region.")
    );
    let (code, _) = err(c
        .replicate_secret_to_regions()
        .secret_id(&name)
        .add_replica_regions(ReplicaRegionType::builder().region("EU_WEST").build())
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ValidationException");
    let (code, _) = err(c
        .remove_regions_from_replication()
        .secret_id(&name)
        .remove_replica_regions("eu west 1")
        .send()
        .await
        .unwrap_err());
    assert_eq!(code, "ValidationException");

    // CreateSecret with AddReplicaRegions uses the same machinery, binary values included.
    let bin = unique("rep/bin");
    let created = c
        .create_secret()
        .name(&bin)
        .secret_binary(Blob::new(vec![0u8, 159, 146, 150]))
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .send()
        .await
        .expect("create replicated");
    assert_eq!(
        created.replication_status()[0].status(),
        Some(&StatusType::InSync)
    );
    let v = eu
        .get_secret_value()
        .secret_id(&bin)
        .send()
        .await
        .expect("replica");
    assert_eq!(
        v.secret_binary().map(|b| b.as_ref()),
        Some(&[0u8, 159, 146, 150][..])
    );
    assert_eq!(v.version_id(), created.version_id());
    let (code, msg) = err(c
        .create_secret()
        .name(unique("rep/self"))
        .secret_string("x")
        .add_replica_regions(ReplicaRegionType::builder().region("us-east-1").build())
        .send()
        .await
        .unwrap_err());
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidParameterException", "Invalid replica region.")
    );
}
both_backends!(replication_conflicts);

async fn replication_isolation(server: &TestServer) {
    let c = root_client(server);
    let name = unique("rep/iso");
    let arn = c
        .create_secret()
        .name(&name)
        .secret_string("mine")
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .send()
        .await
        .expect("create")
        .arn()
        .expect("arn")
        .to_string();
    let eu_arn = arn.replace(":us-east-1:", ":eu-west-1:");
    let (akid, secret, other_account) = server.new_workspace_key("admin", &[]);
    assert_ne!(other_account, ACCOUNT_ID);
    let other = sdk_client(&server.endpoint, &akid, &secret, "us-east-1");
    let other_eu = sdk_client(&server.endpoint, &akid, &secret, "eu-west-1");
    let missing = unique("rep/missing");

    // Another workspace sees neither the primary nor the replica, exactly like a missing name.
    for (client, id) in [
        (&other, name.clone()),
        (&other, arn.clone()),
        (&other_eu, name.clone()),
        (&other_eu, eu_arn.clone()),
        (&other, missing.clone()),
    ] {
        let answers = [
            err(client
                .describe_secret()
                .secret_id(&id)
                .send()
                .await
                .unwrap_err()),
            err(client
                .replicate_secret_to_regions()
                .secret_id(&id)
                .add_replica_regions(ReplicaRegionType::builder().region("ap-south-1").build())
                .send()
                .await
                .unwrap_err()),
            err(client
                .remove_regions_from_replication()
                .secret_id(&id)
                .remove_replica_regions("eu-west-1")
                .send()
                .await
                .unwrap_err()),
            err(client
                .stop_replication_to_replica()
                .secret_id(&id)
                .send()
                .await
                .unwrap_err()),
            err(client
                .rotate_secret()
                .secret_id(&id)
                .rotation_lambda_arn(LAMBDA)
                .send()
                .await
                .unwrap_err()),
            err(client
                .cancel_rotate_secret()
                .secret_id(&id)
                .send()
                .await
                .unwrap_err()),
        ];
        for (code, msg) in answers {
            assert_eq!(code, "ResourceNotFoundException", "{id}");
            assert_eq!(msg, "Secrets Manager can't find the specified secret.");
        }
    }
    // The same name in the other workspace is its own, unrelated secret.
    other_eu
        .create_secret()
        .name(&name)
        .secret_string("theirs")
        .send()
        .await
        .expect("their own secret");
    let eu = sdk_client(&server.endpoint, ROOT_AKID, ROOT_SECRET, "eu-west-1");
    assert_eq!(value(&eu, &name).await.0, "mine");

    // Cross-account replication into another workspace is refused after validation: no
    // workspace can grant AcceptCrossAccountReplication yet. The answer does not depend on
    // whether the named replica exists. (aws-sdk-secretsmanager has no client for these two
    // operations yet, so they go out as raw signed requests.)
    let raw = Raw::new(&server.endpoint, ROOT_AKID, ROOT_SECRET);
    let their_arn = other_eu
        .describe_secret()
        .secret_id(&name)
        .send()
        .await
        .expect("theirs")
        .arn()
        .expect("arn")
        .replace(":eu-west-1:", ":us-east-1:");
    let invented =
        format!("arn:aws:secretsmanager:us-east-1:{other_account}:secret:nothing-abcdef");
    let mut messages = Vec::new();
    for replica in [&their_arn, &invented] {
        let body = json!({"SecretId": name, "CrossAccountReplicaARN": replica});
        let r = raw
            .call_json("AssociateCrossAccountReplica", body.clone())
            .await;
        assert_eq!((r.status, r.code()), (400, "AccessDeniedException"));
        assert!(
            r.message()
                .contains("secretsmanager:AcceptCrossAccountReplication"),
            "{}",
            r.message()
        );
        messages.push(r.message().replace(replica.as_str(), "<ARN>"));
        let r = raw.call_json("DisassociateCrossAccountReplica", body).await;
        assert_eq!(r.code(), "InvalidRequestException", "{}", r.message());
    }
    assert_eq!(messages[0], messages[1]);
    for (replica, want) in [
        (
            "not-an-arn-of-any-kind".to_string(),
            "InvalidParameterException",
        ),
        (
            arn.replace(&name, "same-account"),
            "InvalidParameterException",
        ),
        (
            invented.replace(":us-east-1:", ":eu-west-1:"),
            "InvalidParameterException",
        ),
        ("short".to_string(), "ValidationException"),
    ] {
        let r = raw
            .call_json(
                "AssociateCrossAccountReplica",
                json!({"SecretId": name, "CrossAccountReplicaARN": replica}),
            )
            .await;
        assert_eq!(r.code(), want, "{replica}: {}", r.message());
    }
    let r = raw
        .call_json("AssociateCrossAccountReplica", json!({"SecretId": name}))
        .await;
    assert_eq!(
        r.code(),
        "ValidationException",
        "CrossAccountReplicaARN is required"
    );
    // The other workspace naming our primary learns nothing either.
    let theirs = Raw::new(&server.endpoint, &akid, &secret);
    for op in [
        "AssociateCrossAccountReplica",
        "DisassociateCrossAccountReplica",
    ] {
        let r = theirs
            .call_json(
                op,
                json!({"SecretId": arn, "CrossAccountReplicaARN": format!(
                    "arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:x-abcdef"
                )}),
            )
            .await;
        assert_eq!(r.code(), "ResourceNotFoundException", "{op}");
    }
}
both_backends!(replication_isolation);
