//! Secrets are encrypted at rest: the database holds no plaintext, and the logs neither.

use crate::harness::{Backend, TestServer, root_client, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_holds_no_plaintext() {
    let server = TestServer::start(Backend::Sqlite).expect("server");
    let c = root_client(&server);
    let marker = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4().simple());
    let name = unique("at-rest");
    c.create_secret()
        .name(&name)
        .secret_string(&marker)
        .send()
        .await
        .expect("create");
    c.put_secret_value()
        .secret_id(&name)
        .secret_string(format!("{marker}-v2"))
        .send()
        .await
        .expect("put");
    let got = c
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.secret_string(), Some(format!("{marker}-v2").as_str()));
    // A second read records no LastAccessedDate, so its audit row goes through the journal.
    c.get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect("get again");
    // Read every file of the data dir (database, WAL, shared memory, the audit journal)
    // while the server runs.
    let mut scanned = 0;
    let mut dirs = vec![server.data_dir.path().to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "log")),
        "the audit journal was scanned: {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).expect("read");
        scanned += bytes.len();
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
            "plaintext found in {}",
            path.display()
        );
    }
    assert!(scanned > 0);
    assert!(
        !server.logs().contains(&marker),
        "plaintext found in the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_hold_no_plaintext() {
    let Some(server) = TestServer::start(Backend::Postgres) else {
        return;
    };
    let c = root_client(&server);
    let marker = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4().simple());
    c.create_secret()
        .name(unique("pg-at-rest"))
        .secret_string(&marker)
        .send()
        .await
        .expect("create");
    let out = std::process::Command::new("pg_dump")
        .args(["--data-only", &server.database_url])
        .output()
        .expect("pg_dump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("secret_versions"),
        "dump has the versions table"
    );
    assert!(!dump.contains(&marker), "plaintext in PostgreSQL");
    let hex_marker = hex::encode(marker.as_bytes());
    assert!(
        !dump.contains(&hex_marker),
        "plaintext (bytea hex) in PostgreSQL"
    );
}
