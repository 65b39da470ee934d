//! SQLite's audit journal: where a read's audit row is durable before the read is answered.
//!
//! A read must not answer until its audit row is durable (fail-closed). Committing each
//! group of rows into SQLite before answering made every hot read wait for the one writer
//! connection: the server sat 16–19% idle with 64 reads in flight, and a throwaway build
//! that did not wait ran SQLite's hot reads 25–27% faster. So on SQLite a group of rows is
//! first appended to this journal, one `write` per group (and an `fdatasync` under
//! `RAGNOS_SQLITE_SYNC=full`), and answered; a background task then copies the groups into
//! the log, many at a time, with the writer's other work.
//!
//! The journal is as durable as the database beside it: `write` puts the bytes in the
//! kernel, which keeps them through a `kill -9` of the server, exactly as a WAL commit under
//! `synchronous=NORMAL` does; under `FULL` both wait for the disk. Each group is one record:
//! its length, a CRC-32 of its bytes, a sequence number and the rows. The log records the
//! last sequence number it holds (`audit_journal_applied`, updated in the transaction that
//! inserts the group), so a server that starts over replays exactly the groups the log
//! lacks, once each, and a record cut short by a crash (never acknowledged) ends the replay
//! of its file.
//!
//! Records go to files ("segments") of about [`SEGMENT_MAX`] bytes, in a directory beside
//! the database (`<database>-audit/`), named by their first sequence number; a segment is
//! deleted once the log holds all of it. One process at a time owns the journal, through a
//! lock on `<database>-audit/lock`; a second process on the same database (a CLI command, a
//! test's reader) writes its audit rows straight into the log instead. Audit rows never
//! hold secret values, and the files are created `0600`.

use super::{AuditRow, Db, StoreError, StoreResult};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A segment that reached this size is closed, and the next group starts a new one.
const SEGMENT_MAX: u64 = 8 << 20;
/// Most rows one transaction of the replay inserts.
const REPLAY_ROWS: usize = 8192;
/// Bytes before a record's payload: its length and its CRC-32.
const HEADER: usize = 8;

/// The journal of one SQLite database, owned by this process (see the module docs).
pub struct Journal {
    dir: PathBuf,
    /// Held for the journal's life: the lock that makes this process the journal's owner.
    _lock: File,
    /// The segment records are appended to, opened at the first append.
    segment: Option<Segment>,
    next_seq: u64,
    fsync: bool,
    retired: Retired,
    buf: Vec<u8>,
}

/// The open segment.
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    /// The last sequence number written whole to it; 0 for none.
    last: u64,
}

/// Closed segments, each with the last sequence number it holds, waiting for the log to
/// hold all of it.
#[derive(Clone, Default)]
pub struct Retired(Arc<Mutex<VecDeque<(u64, PathBuf)>>>);

impl Retired {
    /// The log now holds every group up to `seq`: delete the segments it covers.
    pub fn applied(&self, seq: u64) {
        let done: Vec<PathBuf> = {
            let Ok(mut queue) = self.0.lock() else { return };
            let mut done = Vec::new();
            while queue.front().is_some_and(|(last, _)| *last <= seq) {
                if let Some((_, path)) = queue.pop_front() {
                    done.push(path);
                }
            }
            done
        };
        for path in done {
            remove_segment(&path);
        }
    }

    fn push(&self, last: u64, path: PathBuf) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push_back((last, path));
        }
    }
}

impl Journal {
    /// Open the journal of `db` and replay into the log whatever an earlier run left in it.
    /// `None` on PostgreSQL, for an in-memory database, or when another process owns it.
    pub async fn open(db: &Db) -> StoreResult<Option<Journal>> {
        let Some(path) = db.sqlite_path() else {
            return Ok(None);
        };
        if path == ":memory:" || path.starts_with("file::memory:") {
            return Ok(None);
        }
        let dir = journal_dir(path);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("lock"))
            .map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    dir = %dir.display(),
                    "another process owns this database's audit journal; audit rows go straight to the log"
                );
                return Ok(None);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(e)),
        }
        let last = replay(db, &dir).await?;
        Ok(Some(Journal {
            dir,
            _lock: lock,
            segment: None,
            next_seq: last + 1,
            fsync: super::sqlite_full_sync(),
            retired: Retired::default(),
            buf: Vec::new(),
        }))
    }

    /// The segments waiting to be deleted, shared with whoever applies the groups.
    pub fn retired(&self) -> Retired {
        self.retired.clone()
    }

    /// Append one group of rows; once this returns its sequence number, the group is
    /// durable. A failed append closes its segment, so no record follows a partial one. (A
    /// record written whole whose `fdatasync` failed may still be replayed: the log then
    /// holds a row for a request that was refused, never the other way round.)
    pub fn append(&mut self, rows: &[AuditRow]) -> std::io::Result<u64> {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.segment.as_ref().is_none_or(|s| s.len >= SEGMENT_MAX) {
            self.rotate(seq)?;
        }
        self.buf.clear();
        encode_record(seq, rows, &mut self.buf);
        let Some(segment) = self.segment.as_mut() else {
            return Err(std::io::Error::other("no journal segment"));
        };
        let written = segment.file.write_all(&self.buf).and_then(|()| {
            if self.fsync {
                super::block_where_allowed(|| segment.file.sync_data())
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                segment.len += self.buf.len() as u64;
                segment.last = seq;
                Ok(seq)
            }
            Err(e) => {
                // Part of the record may be in the file; nothing may follow it there.
                self.close();
                Err(e)
            }
        }
    }

    /// Close the open segment, if any, and start one whose first record is `first`.
    fn rotate(&mut self, first: u64) -> std::io::Result<()> {
        self.close();
        let path = self.dir.join(format!("{first:020}.log"));
        // A file of that name can only be one the replay applied but failed to delete.
        remove_segment(&path);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        if self.fsync {
            // The new file's name must be on disk before a record in it is acknowledged.
            super::block_where_allowed(|| File::open(&self.dir)?.sync_all())?;
        }
        self.segment = Some(Segment {
            path,
            file,
            len: 0,
            last: 0,
        });
        Ok(())
    }

    fn close(&mut self) {
        if let Some(s) = self.segment.take() {
            self.retired.push(s.last, s.path);
        }
    }
}

/// Apply every group of the journal in `dir` the log lacks, then delete the segments;
/// returns the highest sequence number seen or applied.
async fn replay(db: &Db, dir: &Path) -> StoreResult<u64> {
    let applied = db.audit_journal_applied().await?;
    let segments = segment_paths(dir).map_err(io_error)?;
    let (mut last, mut rows, mut replayed) = (applied, Vec::new(), 0usize);
    for segment in &segments {
        let bytes = std::fs::read(segment).map_err(io_error)?;
        let mut at = 0;
        while let Some((seq, group, next)) = read_record(&bytes, at) {
            at = next;
            last = last.max(seq);
            if seq <= applied {
                continue;
            }
            replayed += group.len();
            rows.extend(group);
            if rows.len() >= REPLAY_ROWS {
                db.apply_audit_journal(Arc::new(std::mem::take(&mut rows)), seq)
                    .await?;
            }
        }
        if at < bytes.len() {
            tracing::warn!(
                segment = %segment.display(),
                bytes = bytes.len() - at,
                "audit journal segment ends in a record cut short, never acknowledged; ignored"
            );
        }
    }
    if !rows.is_empty() {
        db.apply_audit_journal(Arc::new(rows), last).await?;
    }
    if replayed > 0 {
        tracing::info!(rows = replayed, "audit journal replayed into the log");
    }
    for segment in &segments {
        remove_segment(segment);
    }
    Ok(last)
}

/// Wait, up to `within`, until the log holds every group written so far to the journal of
/// `db`, by whichever process owns it: for a reader in another process, such as the
/// integration tests' view of a server's database. Immediate on PostgreSQL.
pub async fn caught_up(db: &Db, within: std::time::Duration) -> StoreResult<()> {
    let Some(path) = db.sqlite_path() else {
        return Ok(());
    };
    let Ok(segments) = segment_paths(&journal_dir(path)) else {
        return Ok(());
    };
    let mut target = 0;
    for path in segments {
        // A segment deleted meanwhile was applied whole.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let mut at = 0;
        while let Some((seq, _, next)) = read_record(&bytes, at) {
            target = target.max(seq);
            at = next;
        }
    }
    let deadline = std::time::Instant::now() + within;
    while db.audit_journal_applied().await? < target {
        if std::time::Instant::now() >= deadline {
            return Err(StoreError::Database(format!(
                "audit journal: group {target} not in the log after {within:?}"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The journal directory of the SQLite database at `path`.
fn journal_dir(path: &str) -> PathBuf {
    PathBuf::from(format!("{path}-audit"))
}

/// The segments in `dir`, in record order (their names are zero-padded first sequence
/// numbers).
fn segment_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    Ok(segments)
}

fn remove_segment(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(segment = %path.display(), error = %e, "could not delete an applied audit journal segment");
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Database(format!("audit journal: {e}"))
}

/// Append the record of group `seq` to `out`.
fn encode_record(seq: u64, rows: &[AuditRow], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for r in rows {
        out.extend_from_slice(&r.at.to_le_bytes());
        out.extend_from_slice(&r.status.to_le_bytes());
        for s in [
            &r.id,
            &r.workspace_id,
            &r.api,
            &r.action,
            &r.resource_type,
            &r.principal,
            &r.outcome,
            &r.request_id,
        ] {
            put_str(out, Some(s));
        }
        for s in [
            &r.resource_id,
            &r.access_key_id,
            &r.source_ip,
            &r.user_agent,
        ] {
            put_str(out, s.as_deref());
        }
    }
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// A string as its length and bytes; `None` as length `u32::MAX`.
fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// The record at `at` in `bytes`: its sequence number, its rows and where the next record
/// starts. `None` at the end, or at a record cut short or damaged.
fn read_record(bytes: &[u8], at: usize) -> Option<(u64, Vec<AuditRow>, usize)> {
    let mut header = Reader {
        bytes: bytes.get(at..at.checked_add(HEADER)?)?,
    };
    let len = header.u32()? as usize;
    let crc = header.u32()?;
    let end = at.checked_add(HEADER)?.checked_add(len)?;
    let payload = bytes.get(at + HEADER..end)?;
    if crc32(payload) != crc {
        return None;
    }
    let mut r = Reader { bytes: payload };
    let seq = r.u64()?;
    let count = r.u32()? as usize;
    // Each row takes at least 60 bytes: a count beyond that is damage, not an allocation.
    let mut rows = Vec::with_capacity(count.min(payload.len() / 60));
    for _ in 0..count {
        let at = r.i64()?;
        let status = r.i32()?;
        let mut required = [(); 8].map(|()| String::new());
        for s in &mut required {
            *s = r.string()??;
        }
        let [
            id,
            workspace_id,
            api,
            action,
            resource_type,
            principal,
            outcome,
            request_id,
        ] = required;
        rows.push(AuditRow {
            at,
            id,
            workspace_id,
            api,
            action,
            resource_type,
            resource_id: r.string()?,
            principal,
            access_key_id: r.string()?,
            outcome,
            status,
            source_ip: r.string()?,
            user_agent: r.string()?,
            request_id,
        });
    }
    r.bytes.is_empty().then_some((seq, rows, end))
}

/// Reads little-endian fields off the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_le_bytes)
    }

    /// `Some(None)` for an absent string; `None` when the bytes are not a string.
    fn string(&mut self) -> Option<Option<String>> {
        let len = self.u32()?;
        if len == u32::MAX {
            return Some(None);
        }
        let len = len as usize;
        if self.bytes.len() < len {
            return None;
        }
        let (s, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(s.to_vec()).ok().map(Some)
    }
}

/// CRC-32 (IEEE 802.3) lookup tables for slicing by 8: `CRC_TABLES[0]` is the classic
/// byte-at-a-time table, and `CRC_TABLES[k][b]` is byte `b`'s remainder followed by `k`
/// zero bytes.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        tables[0][i] = c;
        i += 1;
    }
    let mut t = 1;
    while t < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[t - 1][i];
            tables[t][i] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            i += 1;
        }
        t += 1;
    }
    tables
};

/// CRC-32 (IEEE 802.3), as zlib computes it, eight bytes a step: byte at a time it was
/// 3% of the server's CPU on hot SQLite reads (2026-12-03 profile), every audit row
/// passing through it once on the way into the journal.
fn crc32(bytes: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !0u32;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let (lo, hi) = chunk.split_at(4);
        let lo = c ^ u32::from_le_bytes([lo[0], lo[1], lo[2], lo[3]]);
        let hi = u32::from_le_bytes([hi[0], hi[1], hi[2], hi[3]]);
        c = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::audit_inbox::tests::row;
    use super::super::{AuditFilter, Db};
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Zlib's value for the 1,000 bytes 0, 1, ..., 231, 0, 1, ...: every table and a
        // remainder in play.
        let long: Vec<u8> = (0..1000u32).map(|i| (i % 232) as u8).collect();
        assert_eq!(crc32(&long), 0x24D0_4C69);
        // Against the bit-at-a-time definition, at every length and alignment up to 40.
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in bytes {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        for start in 0..8 {
            for end in start..40 {
                assert_eq!(
                    crc32(&long[start..end]),
                    bitwise(&long[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn records_read_back_and_damage_ends_them() {
        let mut rows = vec![row(1, 1), row(2, 2)];
        rows[1].resource_id = None;
        rows[1].user_agent = Some("aws-cli/1.0 ünïcode".into());
        let mut bytes = Vec::new();
        encode_record(7, &rows, &mut bytes);
        let first = bytes.len();
        encode_record(8, &rows[..1], &mut bytes);
        let (seq, got, next) = read_record(&bytes, 0).unwrap();
        assert_eq!((seq, &got, next), (7, &rows, first));
        let (seq, got, next) = read_record(&bytes, first).unwrap();
        assert_eq!((seq, &got[..], next), (8, &rows[..1], bytes.len()));
        assert!(read_record(&bytes, bytes.len()).is_none(), "the end");
        // Cut short anywhere, the second record is not read; the first still is.
        for cut in first..bytes.len() {
            assert!(read_record(&bytes[..cut], first).is_none(), "cut at {cut}");
            assert!(read_record(&bytes[..cut], 0).is_some());
        }
        // Any flipped bit is caught.
        for i in 0..first {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(read_record(&damaged, 0).is_none(), "bit flipped at {i}");
        }
    }

    async fn log_rows(db: &Db, workspace: usize) -> Vec<AuditRow> {
        db.audit_page(
            &format!("ws-{workspace}"),
            &AuditFilter::default(),
            None,
            10_000,
        )
        .await
        .unwrap()
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        segment_paths(dir).unwrap()
    }

    /// Groups appended but never applied (the server was killed) reach the log when the
    /// journal is opened again, once each, while a group cut short is ignored; a second
    /// process cannot own the journal while the first does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_owner_replays_what_the_log_lacks_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let url = format!("sqlite://{}", path.display());
        let db = Db::connect(&url, 2).await.unwrap();
        let journal_dir = journal_dir(&path.display().to_string());
        let mut journal = Journal::open(&db).await.unwrap().expect("owner");
        assert!(
            Journal::open(&db).await.unwrap().is_none(),
            "a second owner while the first holds the lock"
        );
        let groups: Vec<Vec<AuditRow>> = (0..3)
            .map(|g| (0..5).map(|i| row(1, g * 10 + i)).collect())
            .collect();
        let mut seqs = Vec::new();
        for g in &groups {
            seqs.push(journal.append(g).unwrap());
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        // The first group reached the log before the "crash"; the other two did not.
        assert!(
            db.apply_audit_journal(Arc::new(groups[0].clone()), seqs[0])
                .await
                .unwrap()
        );
        assert!(
            !db.apply_audit_journal(Arc::new(groups[0].clone()), seqs[0])
                .await
                .unwrap(),
            "a group already applied is skipped"
        );
        // A torn record at the end, as a crash mid-write would leave it.
        let seg = segments(&journal_dir).pop().unwrap();
        let mut torn = Vec::new();
        encode_record(seqs[2] + 1, &[row(1, 99)], &mut torn);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&torn[..torn.len() - 3]).unwrap();
        drop(journal);
        assert_eq!(log_rows(&db, 1).await.len(), 5);

        let mut journal = Journal::open(&db).await.unwrap().expect("owner again");
        let mut want: Vec<AuditRow> = groups.concat();
        want.sort_by(|a, b| (&b.at, &b.id).cmp(&(&a.at, &a.id)));
        assert_eq!(
            log_rows(&db, 1).await,
            want,
            "every group once, the torn one not"
        );
        assert!(
            segments(&journal_dir).is_empty(),
            "replayed segments deleted"
        );
        let next = journal.append(&[row(1, 50)]).unwrap();
        assert!(
            next > seqs[2],
            "sequence numbers go on past every group replayed"
        );
        drop(journal);
        // Opened once more: the group appended after the replay arrives too, nothing twice.
        let _journal = Journal::open(&db).await.unwrap().expect("owner");
        assert_eq!(log_rows(&db, 1).await.len(), 16);
    }

    /// Full segments are closed, and deleted once the log holds every group in them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applied_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.db");
        let db = Db::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        let journal_dir = journal_dir(&path.display().to_string());
        let mut journal = Journal::open(&db).await.unwrap().unwrap();
        let retired = journal.retired();
        let group: Vec<AuditRow> = (0..1000).map(|i| row(2, i)).collect();
        let mut last = 0;
        while segments(&journal_dir).len() < 3 {
            last = journal.append(&group).unwrap();
        }
        retired.applied(last - 1);
        assert_eq!(
            segments(&journal_dir).len(),
            1,
            "closed segments go once applied, the open one stays"
        );
        retired.applied(last);
        assert_eq!(segments(&journal_dir).len(), 1, "never the open one");
    }
}
