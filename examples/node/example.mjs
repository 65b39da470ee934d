// RAGnos Vault with the unmodified AWS SDK for JavaScript v3 (@aws-sdk/client-secrets-manager).
// The only change from code that talks to AWS is `endpoint`.
//
// Environment:
//   VAULT_ENDPOINT         default http://127.0.0.1:4000
//   AWS_ACCESS_KEY_ID      an admin access key of a RAGnos Vault workspace (a `write` key cannot delete)
//   AWS_SECRET_ACCESS_KEY  its secret
//   AWS_DEFAULT_REGION     default us-east-1
//
// Creates a uniquely named secret, reads it, updates it, reads the new value and AWSPREVIOUS,
// then force-deletes it. Exits non-zero on any mismatch.
//
//   cd examples/node && npm ci && node example.mjs

import { randomUUID } from "node:crypto";
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

const endpoint = process.env.VAULT_ENDPOINT || "http://127.0.0.1:4000";
const region = process.env.AWS_DEFAULT_REGION || process.env.AWS_REGION || "us-east-1";
for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) {
  if (!process.env[name]) {
    console.error(`error: ${name} is not set`);
    process.exit(2);
  }
}

const client = new SecretsManagerClient({
  endpoint,
  region,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
});

class Mismatch extends Error {}

function check(what, got, want) {
  const same = JSON.stringify(got) === JSON.stringify(want);
  if (!same) {
    throw new Mismatch(`FAIL ${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
  console.log(`ok   ${what}`);
}

const name = `examples/node/sdk-v3-${randomUUID().replaceAll("-", "").slice(0, 12)}`;
const first = JSON.stringify({ username: "app", password: "first-value" });
const second = JSON.stringify({ username: "app", password: "second-value" });

async function run() {
  const created = await client.send(
    new CreateSecretCommand({ Name: name, SecretString: first, Description: "node example" }),
  );
  console.log(`created ${created.ARN}`);
  try {
    check("CreateSecret Name", created.Name, name);
    const v1 = created.VersionId;

    let got = await client.send(new GetSecretValueCommand({ SecretId: name }));
    check("GetSecretValue SecretString", got.SecretString, first);
    check("GetSecretValue VersionId", got.VersionId, v1);
    check("GetSecretValue has AWSCURRENT", got.VersionStages.includes("AWSCURRENT"), true);

    const put = await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: second }));
    const v2 = put.VersionId;
    check("PutSecretValue new version", v2 !== v1, true);
    check("PutSecretValue VersionStages", put.VersionStages, ["AWSCURRENT"]);

    got = await client.send(new GetSecretValueCommand({ SecretId: name }));
    check("GetSecretValue (AWSCURRENT) after update", got.SecretString, second);
    check("GetSecretValue (AWSCURRENT) VersionId", got.VersionId, v2);

    const prev = await client.send(
      new GetSecretValueCommand({ SecretId: name, VersionStage: "AWSPREVIOUS" }),
    );
    check("GetSecretValue (AWSPREVIOUS)", prev.SecretString, first);
    check("GetSecretValue (AWSPREVIOUS) VersionId", prev.VersionId, v1);

    const byArn = await client.send(new GetSecretValueCommand({ SecretId: created.ARN }));
    check("GetSecretValue by ARN", byArn.SecretString, second);
  } finally {
    await client.send(new DeleteSecretCommand({ SecretId: name, ForceDeleteWithoutRecovery: true }));
    console.log(`deleted ${name}`);
  }

  try {
    await client.send(new GetSecretValueCommand({ SecretId: name }));
    check("GetSecretValue after force delete", "found", "ResourceNotFoundException");
  } catch (err) {
    if (err instanceof Mismatch) throw err;
    check("GetSecretValue after force delete", err.name, "ResourceNotFoundException");
  }
  console.log("node example: all checks passed");
}

run().catch((err) => {
  console.error(err instanceof Mismatch ? err.message : err);
  process.exit(1);
});
