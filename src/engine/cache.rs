//! The hot-path cache: secret states (labels, versions, metadata), sealed version rows and
//! ListSecrets pages.
//!
//! Nothing here is plaintext: values stay sealed and are decrypted per request (one HKDF
//! and one AES-GCM open, a few microseconds), so a heap dump of the cache reveals nothing
//! the database would not.
//!
//! Versions never change once written, so they are cached by (secret id, version id) and
//! need no invalidation. A secret's state does change; each state entry remembers the
//! *generation* of its invalidation slot when it was loaded, and a write bumps the slot
//! before its response leaves. A slot is a hash of (workspace, region, name) into a fixed
//! table, so memory stays constant; a collision only costs an extra reload.
//!
//! A write made outside every server (an import without Redis) bumps no generation, so no
//! state is trusted longer than [`MAX_AGE`] after it was last found to match the database.
//! A state read often is rechecked in the background before that (`engine::recheck`):
//! its rows are compared with the database's, many secrets of a workspace per query, and
//! a match restarts the clock. A hot secret then never waits on the database, while one changed from
//! outside is still dropped within [`MAX_AGE`].
//!
//! A ListSecrets page depends on every secret of its workspace and Region, so it hangs on
//! one more slot, the *listing slot* of (workspace, Region), which every write there bumps
//! too. A page is trusted like a state (same generations, same [`MAX_AGE`]) but never
//! rechecked: it is simply read again, and never past the moment a listed secret's recovery
//! window ends.
//!
//! With Redis (several nodes on one database) a write also `INCR`s the slot's shared
//! generation and publishes it. A read trusts its cached state only if the shared
//! generation still matches — one Redis round trip instead of several database ones — so a
//! read that starts after a write returned is never served stale by any node. If Redis
//! cannot be reached the read bypasses the cache instead of risking staleness.

use super::types::ListSecretsOutput;
use crate::crypto::VersionKey;
use crate::store::VersionRow;
use bb8_redis::RedisConnectionManager;
use bb8_redis::redis::AsyncCommands;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const SLOTS: usize = 1 << 16;
/// Longest a cached state is trusted after it was last found to match the database (ms).
pub const MAX_AGE: u64 = 5_000;
/// Age (ms since the last match) from which a read asks for a background recheck. The
/// recheck itself runs at [`RECHECK_AT`], so any read between one and four seconds into
/// an entry's life keeps it: a secret read every few seconds is never reloaded on a read's
/// path. The floor keeps a secret read only once (the cold reads of a large database) from
/// costing a recheck as well as its load.
const CLAIM_AFTER: u64 = 1_000;
/// Age at which a claimed entry is rechecked: early enough that the recheck lands before
/// [`MAX_AGE`], even after sharing a read with entries that come due a little later.
pub(super) const RECHECK_AT: u64 = 4_000;
const CHANNEL: &str = "ragnos:invalidate";
/// The channel on which nodes announce revoked access keys ([`SecretCache::announce_revocation`]).
const REVOKED: &str = "ragnos:revoked";
/// The name hashed with (workspace, Region) into the listing slot. No secret can be called
/// this (names never hold a NUL); a collision with a real name only costs a reload.
const LISTING: &str = "\u{0}listing";
/// Most secrets held across all cached ListSecrets pages (a page of 100 is about 50 KB).
const LISTED_SECRETS: u64 = 20_000;

/// A cached secret state with the generations it was loaded under.
pub(super) struct CachedState {
    /// The secret's row, versions (metadata only) and labels, shared with the readers.
    pub(super) state: Arc<super::SecretState>,
    local_gen: u64,
    shared_gen: Option<i64>,
    /// When the state last matched the database, on the cache's [`SecretCache::clock`].
    checked: AtomicU64,
    /// The store's change count (`Db::known_changes`) read before the rows that last
    /// matched this state, or [`NO_CHANGES`]. While the count stays this same even number,
    /// a recheck needs no read.
    changes: AtomicU64,
    /// A recheck of this entry is queued or running.
    rechecking: AtomicBool,
    /// The version AWSCURRENT names in `state`, once a read has opened it.
    current: OnceLock<CurrentVersion>,
}

impl CachedState {
    /// An entry for `state`, loaded under the generations `local_gen` and `shared_gen` and
    /// found to match the database at `checked` (under the change count `changes`), with no
    /// recheck running and no current version opened yet.
    fn new(
        state: Arc<super::SecretState>,
        local_gen: u64,
        shared_gen: Option<i64>,
        checked: u64,
        changes: Option<u64>,
    ) -> CachedState {
        CachedState {
            state,
            local_gen,
            shared_gen,
            checked: AtomicU64::new(checked),
            changes: AtomicU64::new(changes.unwrap_or(NO_CHANGES)),
            rechecking: AtomicBool::new(false),
            current: OnceLock::new(),
        }
    }
}

/// What a read of a state's AWSCURRENT version needs beyond the state: the version's row
/// and data key and the labels it carries, found with the state in one cache lookup. Kept
/// only for values of at most [`CURRENT_MAX_SEALED`] bytes.
///
/// Looking each up in its own cache, by its own freshly built key, was a tenth of a hot
/// read's CPU over 10,000 secrets (2026-12-02 profile), most of it waiting on memory. The
/// entry is replaced whenever the secret changes, and with it this, so the labels cannot
/// go stale; the row and key never change.
pub(super) struct CurrentVersion {
    /// The version's row, with its sealed value.
    pub(super) row: Arc<VersionRow>,
    /// Its data key.
    pub(super) key: Arc<VersionKey>,
    /// Every label on it (AWSCURRENT among them).
    pub(super) stages: Vec<String>,
    /// The day (epoch ms at midnight) for which this node last saw the version's read
    /// recorded as LastAccessedDate; 0 before.
    touched: AtomicI64,
}

impl CurrentVersion {
    /// The entry for `row`, opened with `key` and carrying `stages`.
    pub(super) fn new(row: Arc<VersionRow>, key: Arc<VersionKey>, stages: Vec<String>) -> Self {
        CurrentVersion {
            row,
            key,
            stages,
            touched: AtomicI64::new(0),
        }
    }

    /// Has this node seen the read recorded for `day` already?
    pub(super) fn touched_on(&self, day: i64) -> bool {
        self.touched.load(Ordering::Relaxed) == day
    }

    /// The read is recorded for `day`.
    pub(super) fn mark_touched(&self, day: i64) {
        self.touched.store(day, Ordering::Relaxed);
    }
}

impl CachedState {
    /// The AWSCURRENT version, if a read opened it already.
    pub(super) fn current(&self) -> Option<&CurrentVersion> {
        self.current.get()
    }

    /// Keep `version`, which must be the one AWSCURRENT names in this entry's state.
    pub(super) fn set_current(&self, version: CurrentVersion) {
        debug_assert_eq!(
            self.state.labels.get(super::labels::AWSCURRENT),
            Some(&version.row.version_id)
        );
        let _ = self.current.set(version);
    }
}

/// No change count: a recheck must read the rows.
const NO_CHANGES: u64 = u64::MAX;

/// How a background recheck of a cached state ended.
pub(super) enum RecheckOutcome {
    /// The state equals the database as read at `read_at` (on [`SecretCache::clock`]),
    /// under the change count `changes`.
    Current {
        /// When the database was read (or found unchanged).
        read_at: u64,
        /// The change count read before the rows.
        changes: Option<u64>,
    },
    /// The database differs only in LastAccessedDate, which a read records without a
    /// write's invalidation: `state` is the database's, read at `read_at`, to hold under
    /// `key` (the entry's cache key) in place of the entry.
    Touched {
        /// When the database was read.
        read_at: u64,
        /// The change count read before the rows.
        changes: Option<u64>,
        /// The entry's key in the state cache.
        key: String,
        /// The state as the database holds it.
        state: Box<super::SecretState>,
    },
    /// The database holds something else now.
    Stale,
    /// The recheck could not run (the queue was full or the read failed).
    Failed,
}

/// What a node does when another announces a revocation: `Some(what)` is the announcement,
/// `None` means everything (the subscription was opened anew, so some may have been missed).
pub type RevocationHook = Box<dyn Fn(Option<&str>) + Send + Sync>;

/// A cached ListSecrets page with the generations of its listing slot.
#[derive(Clone)]
pub(super) struct CachedList {
    output: Arc<ListSecretsOutput>,
    local_gen: u64,
    shared_gen: Option<i64>,
    /// When it was read, on the cache's [`SecretCache::clock`].
    loaded: u64,
    /// When a listed secret's recovery window ends (epoch ms), which changes the page.
    until: Option<i64>,
    /// A reader has asked for this page to be read again ahead of its expiry.
    refreshing: Arc<AtomicBool>,
}

/// A cached ListSecrets page that may be served.
pub(super) struct ListHit {
    /// The page.
    pub(super) output: Arc<ListSecretsOutput>,
    /// This reader should have the page read again in the background: it is
    /// [`RECHECK_AT`] old, and no other reader was asked.
    pub(super) refresh: bool,
}

/// Weighs a cached page by the secrets it lists, so memory, not page count, is bounded.
#[derive(Clone)]
struct ListWeight;

impl quick_cache::Weighter<String, CachedList> for ListWeight {
    fn weight(&self, _key: &String, page: &CachedList) -> u64 {
        page.output.secret_list.len() as u64 + 1
    }
}

/// Most bytes the version cache holds, sealed values and row overhead together. By count
/// alone (200,000 rows), values of up to 64 KiB could have held 12 GiB.
const VERSION_BYTES: u64 = 64 << 20;

/// Weighs a cached version row by its size, so memory, not the number of rows, is bounded.
#[derive(Clone)]
struct VersionWeight;

impl quick_cache::Weighter<String, Arc<VersionRow>> for VersionWeight {
    fn weight(&self, key: &String, row: &Arc<VersionRow>) -> u64 {
        // The key, the row's three ids and its fixed fields, and the allocations' headers.
        let ids = row.secret_id.len() + row.version_id.len() + row.workspace_id.len();
        (key.len() + ids + row.sealed_value.len() + 128) as u64
    }
}

/// Largest sealed value a state's entry keeps with its [`CurrentVersion`] (a 2 KiB value
/// with its key, about 2.7 KiB, for each of up to 100,000 entries: at most 270 MiB). Larger
/// values are read through the byte-bounded version cache instead.
pub(super) const CURRENT_MAX_SEALED: usize = 2048;

/// Generations observed before a load; store them with the loaded state.
#[derive(Clone)]
pub struct Snapshot {
    name: String,
    local: u64,
    shared: Option<i64>,
    /// False when Redis was unreachable: the result must not be cached.
    cacheable: bool,
}

/// Cross-node invalidation through Redis.
struct Shared {
    pool: bb8::Pool<RedisConnectionManager>,
    /// After a failure Redis is not asked again until this instant (epoch ms), so an
    /// outage costs one timeout, not one per request.
    down_until: std::sync::atomic::AtomicI64,
}

/// How long to stop asking Redis after a failure.
const REDIS_BACKOFF_MS: i64 = 1000;

fn now_ms() -> i64 {
    crate::protocol::now_ms(std::time::SystemTime::now())
}

impl Shared {
    fn is_down(&self) -> bool {
        now_ms() < self.down_until.load(Ordering::Acquire)
    }

    fn mark_down(&self) {
        self.down_until
            .store(now_ms() + REDIS_BACKOFF_MS, Ordering::Release);
    }

    /// Send `pipe` in one round trip; a failure marks Redis down and is logged as `what`.
    async fn send(&self, pipe: &bb8_redis::redis::Pipeline, what: &str) {
        let result = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            pipe.query_async::<()>(&mut *conn)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = result {
            self.mark_down();
            tracing::warn!(error = %e, "redis {what} failed");
        }
    }
}

/// The cache.
pub struct SecretCache {
    states: quick_cache::sync::Cache<String, Arc<CachedState>>,
    versions: quick_cache::sync::Cache<String, Arc<VersionRow>, VersionWeight>,
    version_keys: quick_cache::sync::Cache<String, Arc<VersionKey>>,
    touched: quick_cache::sync::Cache<String, i64>,
    lists: quick_cache::sync::Cache<String, CachedList, ListWeight>,
    slots: Box<[AtomicU64]>,
    shared: Option<Shared>,
    epoch: std::time::Instant,
    state_metrics: crate::telemetry::CacheMetrics,
    version_metrics: crate::telemetry::CacheMetrics,
    list_metrics: crate::telemetry::CacheMetrics,
    /// Runs for each revocation another node announces (the keyring's).
    revocation_hook: std::sync::OnceLock<RevocationHook>,
    /// Subscribed to the Redis channels now, so every announcement is heard.
    listening: AtomicBool,
}

fn slot_of(workspace_id: &str, region: &str, name: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (workspace_id, region, name).hash(&mut h);
    (h.finish() as usize) % SLOTS
}

/// The key of a state in the cache: (workspace, Region, the SecretId it was asked by).
pub(super) fn state_key(workspace_id: &str, region: &str, secret_id: &str) -> String {
    joined(&[workspace_id, region, secret_id])
}

fn version_key(secret_id: &str, version_id: &str) -> String {
    joined(&[secret_id, version_id])
}

/// `parts` joined by NULs (which no id or name holds), in one allocation. A read builds
/// four such keys; through `format!` they were 4% of a hot read's CPU (2026-12-01 profile).
fn joined(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('\u{0}');
        }
        key.push_str(part);
    }
    key
}

fn shared_key(slot: usize) -> String {
    format!("ragnos:gen:{slot}")
}

impl SecretCache {
    /// A node-local cache.
    pub fn new() -> SecretCache {
        SecretCache {
            states: quick_cache::sync::Cache::new(100_000),
            versions: quick_cache::sync::Cache::with_weighter(
                200_000,
                VERSION_BYTES,
                VersionWeight,
            ),
            // About 0.6 KB each (AES round keys and the GHASH key): 30 MB when full.
            version_keys: quick_cache::sync::Cache::new(50_000),
            touched: quick_cache::sync::Cache::new(100_000),
            lists: quick_cache::sync::Cache::with_weighter(1_000, LISTED_SECRETS, ListWeight),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            shared: None,
            epoch: std::time::Instant::now(),
            state_metrics: crate::telemetry::CacheMetrics::new("state"),
            version_metrics: crate::telemetry::CacheMetrics::new("version"),
            list_metrics: crate::telemetry::CacheMetrics::new("list"),
            revocation_hook: std::sync::OnceLock::new(),
            listening: AtomicBool::new(false),
        }
    }

    /// A cache that shares invalidations through Redis at `url`, and listens for other
    /// nodes' invalidations to drop entries early.
    pub async fn with_redis(url: &str) -> Result<Arc<SecretCache>, String> {
        let manager = RedisConnectionManager::new(url).map_err(|e| e.to_string())?;
        let pool = bb8::Pool::builder()
            .max_size(32)
            .connection_timeout(std::time::Duration::from_millis(200))
            .build_unchecked(manager);
        let mut cache = SecretCache::new();
        cache.shared = Some(Shared {
            pool,
            down_until: std::sync::atomic::AtomicI64::new(0),
        });
        let cache = Arc::new(cache);
        let client = bb8_redis::redis::Client::open(url).map_err(|e| e.to_string())?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            // Keep a subscription open, reconnecting with a pause after failures.
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&[CHANNEL, REVOKED]).await.is_ok() {
                            let Some(cache) = weak.upgrade() else { return };
                            // Announcements made while no subscription was open are lost.
                            cache.revoked(None);
                            cache.listening.store(true, Ordering::Release);
                            drop(cache);
                            let mut stream = pubsub.on_message();
                            use futures_util::StreamExt;
                            while let Some(msg) = stream.next().await {
                                let Some(cache) = weak.upgrade() else { return };
                                if msg.get_channel_name() == REVOKED {
                                    if let Ok(what) = msg.get_payload::<String>() {
                                        cache.revoked(Some(&what));
                                    }
                                } else if let Ok(slot) = msg.get_payload::<usize>()
                                    && slot < SLOTS
                                {
                                    cache.slots[slot].fetch_add(1, Ordering::AcqRel);
                                }
                            }
                            if let Some(cache) = weak.upgrade() {
                                cache.listening.store(false, Ordering::Release);
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "redis subscription failed"),
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        Ok(cache)
    }

    /// Run `hook` for every revocation another node announces.
    pub fn on_revocation(&self, hook: RevocationHook) {
        let _ = self.revocation_hook.set(hook);
    }

    fn revoked(&self, what: Option<&str>) {
        if let Some(hook) = self.revocation_hook.get() {
            hook(what);
        }
    }

    /// Does this node hear every revocation as it is announced? Always without Redis (there
    /// is no other node); with Redis only while subscribed and while Redis answers.
    pub fn hears_revocations(&self) -> bool {
        match &self.shared {
            None => true,
            Some(shared) => self.listening.load(Ordering::Acquire) && !shared.is_down(),
        }
    }

    /// Tell every other node of a revocation (`what` is the keyring's wording). Best effort:
    /// nodes that cannot reach Redis stop trusting their cached keys; one that can but
    /// missed this announcement (it was never sent) re-reads the key within the keyring's TTL.
    pub async fn announce_revocation(&self, what: &str) {
        let Some(shared) = &self.shared else { return };
        let mut pipe = bb8_redis::redis::pipe();
        pipe.publish(REVOKED, what).ignore();
        shared.send(&pipe, "revocation announcement").await;
    }

    async fn shared_generation(&self, slot: usize) -> Result<Option<i64>, ()> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        if shared.is_down() {
            return Err(());
        }
        let result = async {
            let mut conn = shared.pool.get().await.map_err(|_| ())?;
            let v: Option<i64> = conn.get(shared_key(slot)).await.map_err(|_| ())?;
            Ok(Some(v.unwrap_or(0)))
        }
        .await;
        if result.is_err() {
            shared.mark_down();
        }
        result
    }

    /// A cached state for `secret_id` (as the client named it), if still current.
    pub(super) async fn state(
        &self,
        workspace_id: &str,
        region: &str,
        secret_id: &str,
    ) -> Option<Arc<CachedState>> {
        let entry = self.states.get(&state_key(workspace_id, region, secret_id));
        let Some(entry) = entry else {
            self.state_metrics.count(false);
            return None;
        };
        // A safety net for writers outside every server (an import without Redis).
        if self.age(&entry) > MAX_AGE {
            self.state_metrics.count(false);
            return None;
        }
        let slot = slot_of(workspace_id, region, &entry.state.row.name);
        let fresh = self
            .unchanged(slot, entry.local_gen, entry.shared_gen)
            .await;
        self.state_metrics.count(fresh);
        fresh.then_some(entry)
    }

    /// A cached ListSecrets page under `key` (see `list::Query::cache_key`) of (workspace,
    /// Region), if no write there came since it was read and it is still right at `now`.
    pub(super) async fn list(
        &self,
        key: &str,
        workspace_id: &str,
        region: &str,
        now: i64,
    ) -> Option<ListHit> {
        let age = |p: &CachedList| self.clock().saturating_sub(p.loaded);
        let page = self
            .lists
            .get(key)
            .filter(|p| age(p) <= MAX_AGE && p.until.is_none_or(|t| now < t));
        let fresh = match &page {
            Some(p) => {
                let slot = slot_of(workspace_id, region, LISTING);
                self.unchanged(slot, p.local_gen, p.shared_gen).await
            }
            None => false,
        };
        self.list_metrics.count(fresh);
        let page = page.filter(|_| fresh)?;
        let refresh = age(&page) > RECHECK_AT && !page.refreshing.swap(true, Ordering::AcqRel);
        Some(ListHit {
            output: page.output,
            refresh,
        })
    }

    /// Generations to remember before reading a ListSecrets page of (workspace, Region).
    pub(super) async fn listing_snapshot(&self, workspace_id: &str, region: &str) -> Snapshot {
        self.snapshot(workspace_id, region, LISTING.to_string())
            .await
    }

    /// Remember a ListSecrets page read after `snapshot` was taken; `until` is when one of
    /// its secrets' recovery window ends.
    pub(super) fn put_list(
        &self,
        key: String,
        snapshot: &Snapshot,
        output: Arc<ListSecretsOutput>,
        until: Option<i64>,
    ) {
        if !snapshot.cacheable {
            return;
        }
        let page = CachedList {
            output,
            local_gen: snapshot.local,
            shared_gen: snapshot.shared,
            loaded: self.clock(),
            until,
            refreshing: Arc::new(AtomicBool::new(false)),
        };
        self.lists.insert(key, page);
    }

    /// Generations to remember before loading `secret_id` from the database: one per name
    /// the id could denote (a full ARN's tail is the name plus `-XXXXXX`).
    pub async fn snapshots(
        &self,
        workspace_id: &str,
        region: &str,
        secret_id: &str,
    ) -> Vec<Snapshot> {
        let mut names = Vec::with_capacity(2);
        match super::parse_arn(secret_id) {
            Some(arn) => {
                names.push(arn.tail.to_string());
                let t = arn.tail;
                if t.len() > 7 && t.as_bytes()[t.len() - 7] == b'-' {
                    names.push(t[..t.len() - 7].to_string());
                }
            }
            None => names.push(secret_id.to_string()),
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.snapshot(workspace_id, region, name).await);
        }
        out
    }

    /// The generations of the slot of `name` in (workspace, Region), read now.
    async fn snapshot(&self, workspace_id: &str, region: &str, name: String) -> Snapshot {
        let slot = slot_of(workspace_id, region, &name);
        let local = self.slots[slot].load(Ordering::Acquire);
        match self.shared_generation(slot).await {
            Ok(shared) => Snapshot {
                name,
                local,
                shared,
                cacheable: true,
            },
            Err(()) => Snapshot {
                name,
                local,
                shared: None,
                cacheable: false,
            },
        }
    }

    /// Do the generations of `slot` still equal those an entry was loaded under?
    async fn unchanged(&self, slot: usize, local_gen: u64, shared_gen: Option<i64>) -> bool {
        self.slots[slot].load(Ordering::Acquire) == local_gen
            && self.shared_generation(slot).await == Ok(shared_gen)
    }

    /// Remember a state loaded after `snapshots` were taken (if one of them names it), and
    /// return its entry.
    pub(super) fn put_state(
        &self,
        secret_id: &str,
        snapshots: &[Snapshot],
        changes: Option<u64>,
        state: Arc<super::SecretState>,
    ) -> Option<Arc<CachedState>> {
        let row = &state.row;
        let snapshot = snapshots.iter().find(|s| s.name == row.name)?;
        if !snapshot.cacheable {
            return None;
        }
        let key = state_key(&row.workspace_id, &row.region, secret_id);
        let entry = Arc::new(CachedState::new(
            state,
            snapshot.local,
            snapshot.shared,
            self.clock(),
            changes,
        ));
        self.states.insert(key, entry.clone());
        Some(entry)
    }

    /// Milliseconds since this cache was made: the clock of [`CachedState`]'s checks.
    pub(super) fn clock(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn age(&self, entry: &CachedState) -> u64 {
        self.clock()
            .saturating_sub(entry.checked.load(Ordering::Acquire))
    }

    /// Should `entry`, just served, be rechecked? True for one caller at a time, once the
    /// entry is [`CLAIM_AFTER`] old; that caller must later report [`Self::rechecked`].
    pub(super) fn claim_recheck(&self, entry: &CachedState) -> bool {
        self.age(entry) > CLAIM_AFTER && !entry.rechecking.swap(true, Ordering::AcqRel)
    }

    /// Can a recheck of `entry` skip the read? Yes when `changes`, the change count now, is
    /// even and the one its state was last matched under: nothing was written since.
    pub(super) fn unchanged_since_check(entry: &CachedState, changes: Option<u64>) -> bool {
        changes.is_some_and(|now| now % 2 == 0 && entry.changes.load(Ordering::Acquire) == now)
    }

    /// When a claimed `entry` should be rechecked, on [`Self::clock`].
    pub(super) fn recheck_due(&self, entry: &CachedState) -> u64 {
        entry.checked.load(Ordering::Acquire) + RECHECK_AT
    }

    /// A recheck of `entry` ended. On [`RecheckOutcome::Current`] the entry is trusted for
    /// [`MAX_AGE`] from the moment the database was read, and on
    /// [`RecheckOutcome::Touched`] a new entry with the database's state takes its place;
    /// a recheck that found any other change, or could not run, leaves the entry to expire.
    pub(super) fn rechecked(&self, entry: &CachedState, outcome: RecheckOutcome) {
        let kind = match outcome {
            RecheckOutcome::Current { read_at, changes } => {
                // Only the recheck, which holds the entry alone, reads the count.
                entry
                    .changes
                    .store(changes.unwrap_or(NO_CHANGES), Ordering::Release);
                entry.checked.fetch_max(read_at, Ordering::AcqRel);
                "current"
            }
            RecheckOutcome::Touched {
                read_at,
                changes,
                key,
                state,
            } => {
                // The generations are the entry's, taken before its own load, so a write
                // since then still shows as a changed generation on the next read. A new
                // entry and not the state swapped in place: readers hold the old one.
                let fresh = Arc::new(CachedState::new(
                    Arc::from(state),
                    entry.local_gen,
                    entry.shared_gen,
                    read_at,
                    changes,
                ));
                // Only in place of the entry rechecked. A reload may slip in between the
                // two calls; replacing it costs nothing in correctness, as both states
                // were read under the same generations or older ones.
                if self
                    .states
                    .get(&key)
                    .is_some_and(|held| std::ptr::eq(&*held, entry))
                {
                    self.states.insert(key, fresh);
                }
                "touched"
            }
            RecheckOutcome::Stale => "stale",
            RecheckOutcome::Failed => "failed",
        };
        metrics::counter!("vault_cache_rechecks_total", "result" => kind).increment(1);
        entry.rechecking.store(false, Ordering::Release);
    }

    /// A cached version row.
    pub fn version(&self, secret_id: &str, version_id: &str) -> Option<Arc<VersionRow>> {
        let v = self.versions.get(&version_key(secret_id, version_id));
        self.version_metrics.count(v.is_some());
        v
    }

    /// Remember a version row (immutable once written).
    pub fn put_version(&self, row: Arc<VersionRow>) {
        self.versions
            .insert(version_key(&row.secret_id, &row.version_id), row);
    }

    /// The data key of a version, derived by `derive` on a miss. Keys never change (they
    /// follow from the workspace key and the ids), so nothing invalidates them.
    pub fn version_key(
        &self,
        secret_id: &str,
        version_id: &str,
        derive: impl FnOnce() -> VersionKey,
    ) -> Arc<VersionKey> {
        let key = version_key(secret_id, version_id);
        if let Some(k) = self.version_keys.get(&key) {
            return k;
        }
        let k = Arc::new(derive());
        self.version_keys.insert(key, k.clone());
        k
    }

    /// Has this node recorded a read of the version today already?
    pub fn touched_today(&self, secret_id: &str, version_id: &str, day: i64) -> bool {
        self.touched.get(&version_key(secret_id, version_id)) == Some(day)
    }

    /// Note that the version's read was recorded for `day`.
    pub fn mark_touched(&self, secret_id: &str, version_id: &str, day: i64) {
        self.touched.insert(version_key(secret_id, version_id), day);
    }

    /// A write to `name` committed: drop cached states here and, with Redis, everywhere.
    /// Returns once the shared generation moved (or Redis failed, which is logged; other
    /// nodes then bypass their caches because they cannot reach Redis either).
    pub async fn invalidate(&self, workspace_id: &str, region: &str, name: &str) {
        let slots = [
            slot_of(workspace_id, region, name),
            slot_of(workspace_id, region, LISTING),
        ];
        for slot in slots {
            self.slots[slot].fetch_add(1, Ordering::AcqRel);
        }
        let Some(shared) = &self.shared else { return };
        if shared.is_down() {
            return;
        }
        // One round trip: both generations move, then both are announced.
        let mut pipe = bb8_redis::redis::pipe();
        for slot in slots {
            pipe.incr(shared_key(slot), 1).ignore();
        }
        for slot in slots {
            pipe.publish(CHANNEL, slot).ignore();
        }
        shared.send(&pipe, "invalidation").await;
    }
}

impl Default for SecretCache {
    fn default() -> Self {
        SecretCache::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::SecretState;
    use super::*;

    /// A recheck that finds only LastAccessedDate changed puts a new entry, with the
    /// database's state and the old entry's generations, in place of the one it rechecked,
    /// and only in its place.
    #[tokio::test]
    async fn a_touched_entry_is_replaced_in_place() {
        let cache = SecretCache::new();
        let (ws, region, name) = ("ws", "us-east-1", "db");
        let key = state_key(ws, region, name);
        let cached = Arc::new(SecretState::sample(ws, name, None));
        let snapshots = cache.snapshots(ws, region, name).await;
        let old = cache
            .put_state(name, &snapshots, None, cached.clone())
            .unwrap();
        // As claim_recheck leaves it, a second or more after the load.
        old.rechecking.store(true, Ordering::Release);
        let read = SecretState::sample(ws, name, Some(86_400_000));
        cache.rechecked(
            &old,
            RecheckOutcome::Touched {
                read_at: 7,
                changes: None,
                key: key.clone(),
                state: Box::new(read.clone()),
            },
        );
        let held = cache.state(ws, region, name).await.expect("still cached");
        assert!(!Arc::ptr_eq(&held, &old));
        assert_eq!(*held.state, read);
        assert_eq!(held.checked.load(Ordering::Acquire), 7);
        assert!(!held.rechecking.load(Ordering::Acquire));
        assert_eq!(
            *old.state, *cached,
            "readers holding the old entry keep its state"
        );

        // A write after the entry's load still shows on the replacement.
        cache.invalidate(ws, region, name).await;
        assert!(cache.state(ws, region, name).await.is_none());

        // A recheck of an entry no longer held replaces nothing.
        let snapshots = cache.snapshots(ws, region, name).await;
        let current = cache
            .put_state(name, &snapshots, None, cached.clone())
            .unwrap();
        cache.rechecked(
            &old,
            RecheckOutcome::Touched {
                read_at: 9,
                changes: None,
                key,
                state: Box::new(read),
            },
        );
        let held = cache.state(ws, region, name).await.expect("cached");
        assert!(Arc::ptr_eq(&held, &current));
    }

    /// Values of up to 64 KiB each cannot grow the version cache past its byte budget.
    #[test]
    fn version_cache_is_bounded_by_bytes() {
        let cache = SecretCache::new();
        let rows = 2 * (VERSION_BYTES as usize) / super::super::MAX_SECRET_BYTES;
        for i in 0..rows {
            cache.put_version(Arc::new(VersionRow {
                secret_id: format!("secret-{i}"),
                version_id: "v".into(),
                workspace_id: "ws".into(),
                sealed_value: vec![0; super::super::MAX_SECRET_BYTES],
                is_binary: false,
                created_at: 0,
                last_accessed_at: None,
            }));
        }
        assert!(cache.versions.weight() <= VERSION_BYTES);
        assert!(cache.versions.len() < rows);
        // Small rows still fit by the hundred thousand.
        let small = SecretCache::new();
        for i in 0..100_000 {
            small.put_version(Arc::new(VersionRow {
                secret_id: format!("{i:036}"),
                version_id: format!("{i:036}"),
                workspace_id: format!("{:036}", 0),
                sealed_value: vec![0; 100],
                is_binary: false,
                created_at: 0,
                last_accessed_at: None,
            }));
        }
        assert_eq!(small.versions.len(), 100_000);
    }
}
