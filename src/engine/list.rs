//! ListSecrets filtering, sorting and pagination.
//!
//! Rows come from the store in keyset order, a batch at a time, and are filtered here;
//! the NextToken is the keyset cursor of the last row returned, so a page never repeats
//! or skips a row that existed for the whole listing.

use super::types::{Filter, Tag};
use super::{EngineError, EngineResult, Scope};
use crate::store::{Db, ListCursor, SecretRow, SortKey};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A parsed listing request.
pub struct Query {
    filters: Vec<(String, Vec<String>)>,
    sort: SortKey,
    descending: bool,
    include_deleted: bool,
}

/// What the NextToken carries: the cursor plus the ordering it belongs to.
#[derive(Serialize, Deserialize)]
struct Token {
    c: ListCursor,
    s: String,
    d: bool,
}

fn sort_name(s: SortKey) -> &'static str {
    match s {
        SortKey::Created => "created-date",
        SortKey::Name => "name",
        SortKey::LastChanged => "last-changed-date",
        SortKey::LastAccessed => "last-accessed-date",
    }
}

fn invalid_token() -> EngineError {
    EngineError::InvalidNextToken("The NextToken value is invalid.".into())
}

/// An opaque token for offset-paginated lists (versions, policies).
pub fn encode_offset_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// Decode [`encode_offset_token`].
pub fn decode_offset_token(token: &str) -> EngineResult<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid_token())?;
    let text = String::from_utf8(raw).map_err(|_| invalid_token())?;
    text.strip_prefix("o:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(invalid_token)
}

impl Query {
    /// Build from the request members.
    pub fn new(
        filters: &[Filter],
        sort_by: Option<&str>,
        sort_order: Option<&str>,
        include_deleted: bool,
    ) -> EngineResult<Query> {
        let sort = match sort_by {
            None | Some("created-date") => SortKey::Created,
            Some("name") => SortKey::Name,
            Some("last-changed-date") => SortKey::LastChanged,
            Some("last-accessed-date") => SortKey::LastAccessed,
            Some(other) => {
                return Err(EngineError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]"
                )));
            }
        };
        let descending = match sort_order {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(EngineError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]"
                )));
            }
        };
        Ok(Query {
            filters: filters
                .iter()
                .map(|f| (f.key.clone().unwrap_or_default(), f.values.clone()))
                .collect(),
            sort,
            descending,
            include_deleted,
        })
    }

    /// Does one secret pass every filter?
    pub fn matches(&self, row: &SecretRow, tags: &[Tag]) -> bool {
        self.filters
            .iter()
            .all(|(key, values)| filter_matches(key, values, row, tags))
    }

    /// What a page of this listing depends on besides the secrets themselves, as the key
    /// of the page cache: the workspace and Region, the query, the page asked for, and the
    /// caller's name prefixes (two callers may see different pages of one workspace).
    pub fn cache_key(&self, scope: &Scope, next_token: Option<&str>, limit: usize) -> String {
        format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
            scope.tenant.id,
            scope.region,
            sort_name(self.sort),
            self.descending,
            self.include_deleted,
            limit,
            next_token,
            self.filters,
            scope.access.scopes,
        )
    }

    fn cursor_of(&self, row: &SecretRow) -> ListCursor {
        let key = match self.sort {
            SortKey::Created => row.created_at.to_string(),
            SortKey::Name => row.name.clone(),
            SortKey::LastChanged => row.last_changed_at.to_string(),
            SortKey::LastAccessed => row.last_accessed_at.unwrap_or(0).to_string(),
        };
        ListCursor {
            key,
            id: row.id.clone(),
        }
    }
}

fn starts_with_ci(haystack: &str, prefix: &str) -> bool {
    haystack.len() >= prefix.len()
        && haystack.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// One filter: positive values are OR'ed, `!` values must all fail to match.
fn filter_matches(key: &str, values: &[String], row: &SecretRow, tags: &[Tag]) -> bool {
    let test = |prefix: &str| -> bool {
        match key {
            "name" => row.name.starts_with(prefix),
            "description" => row
                .description
                .as_deref()
                .is_some_and(|d| starts_with_ci(d, prefix)),
            "tag-key" => tags.iter().any(|t| t.key.starts_with(prefix)),
            "tag-value" => tags.iter().any(|t| t.value.starts_with(prefix)),
            "primary-region" => super::replication::origin_region(row).starts_with(prefix),
            "owning-service" => false,
            // `all`: every word of the value must prefix-match a word of some attribute
            // (attributes are split on anything that is not a letter or digit).
            "all" => prefix.split_whitespace().all(|word| {
                let hit = |attr: &str| {
                    starts_with_ci(attr, word)
                        || attr
                            .split(|c: char| !c.is_alphanumeric())
                            .any(|w| starts_with_ci(w, word))
                };
                hit(&row.name)
                    || row.description.as_deref().is_some_and(hit)
                    || tags.iter().any(|t| hit(&t.key) || hit(&t.value))
            }),
            _ => false,
        }
    };
    let (negated, positive): (Vec<&String>, Vec<&String>) =
        values.iter().partition(|v| v.starts_with('!'));
    let positive_ok = positive.is_empty() || positive.iter().any(|v| test(v));
    let negative_ok = negated.iter().all(|v| !test(&v[1..]));
    positive_ok && negative_ok
}

/// One listing page as read at one instant.
pub struct Page {
    /// The matching secrets, in order.
    pub rows: Vec<SecretRow>,
    /// The token for the next page, if one is due.
    pub next_token: Option<String>,
    /// The earliest end of a recovery window among the secrets read: from then on the same
    /// query gives another page.
    pub until: Option<i64>,
}

/// One page of matching secrets plus the token for the next page.
pub async fn page(
    db: &Db,
    scope: &Scope,
    query: &Query,
    next_token: Option<&str>,
    limit: usize,
    now: i64,
) -> EngineResult<Page> {
    let mut cursor = match next_token {
        Some(t) => {
            if t.is_empty() || t.len() > 4096 {
                return Err(invalid_token());
            }
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .map_err(|_| invalid_token())?;
            let token: Token = serde_json::from_slice(&raw).map_err(|_| invalid_token())?;
            if token.s != sort_name(query.sort) || token.d != query.descending {
                return Err(invalid_token());
            }
            Some(token.c)
        }
        None => None,
    };
    let batch = if query.filters.is_empty() {
        limit as i64 + 1
    } else {
        500
    };
    let mut out: Vec<SecretRow> = Vec::with_capacity(limit);
    let mut until: Option<i64> = None;
    loop {
        let rows = db
            .list_secrets(
                &scope.tenant.id,
                &scope.region,
                query.include_deleted,
                query.sort,
                query.descending,
                cursor.as_ref(),
                batch,
            )
            .await?;
        let exhausted = (rows.len() as i64) < batch;
        for row in rows {
            cursor = Some(query.cursor_of(&row));
            // Expired-but-not-yet-purged secrets are already gone as far as AWS is concerned.
            if super::recovery_ended(&row, now) {
                continue;
            }
            if let Some(d) = row.deletion_date {
                until = Some(until.map_or(d, |u| u.min(d)));
            }
            if !scope.access.can_see(&row.name) {
                continue;
            }
            let tags: Vec<Tag> = serde_json::from_str(&row.tags).unwrap_or_default();
            if !query.matches(&row, &tags) {
                continue;
            }
            if out.len() == limit {
                // One more match exists: the page is full and a next page is due.
                let last = out.last().map(|r| query.cursor_of(r));
                let token = last.map(|c| {
                    let t = Token {
                        c,
                        s: sort_name(query.sort).into(),
                        d: query.descending,
                    };
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(serde_json::to_vec(&t).unwrap_or_default())
                });
                return Ok(Page {
                    rows: out,
                    next_token: token,
                    until,
                });
            }
            out.push(row);
        }
        if exhausted {
            return Ok(Page {
                rows: out,
                next_token: None,
                until,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, desc: Option<&str>) -> SecretRow {
        SecretRow {
            id: "i".into(),
            workspace_id: "w".into(),
            region: "us-east-1".into(),
            name: name.into(),
            arn: String::new(),
            description: desc.map(String::from),
            kms_key_id: None,
            secret_type: None,
            tags: "[]".into(),
            resource_policy: None,
            rotation: None,
            created_at: 0,
            last_changed_at: 0,
            last_accessed_at: None,
            deleted_at: None,
            deletion_date: None,
            revision: 0,
            primary_region: None,
            replication: None,
        }
    }

    fn q(key: &str, values: &[&str]) -> Query {
        let f = Filter {
            key: Some(key.into()),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        Query::new(&[f], None, None, false).unwrap()
    }

    #[test]
    fn name_prefix_is_case_sensitive() {
        assert!(q("name", &["prod/"]).matches(&row("prod/db", None), &[]));
        assert!(!q("name", &["Prod/"]).matches(&row("prod/db", None), &[]));
    }

    #[test]
    fn negation_excludes() {
        assert!(!q("name", &["!prod"]).matches(&row("prod/db", None), &[]));
        assert!(q("name", &["!prod"]).matches(&row("dev/db", None), &[]));
    }

    #[test]
    fn description_is_case_insensitive() {
        assert!(q("description", &["HELLO"]).matches(&row("x", Some("hello world")), &[]));
    }

    #[test]
    fn tags_and_all() {
        let tags = vec![Tag {
            key: "team".into(),
            value: "Payments".into(),
        }];
        assert!(q("tag-key", &["te"]).matches(&row("x", None), &tags));
        assert!(q("tag-value", &["Pay"]).matches(&row("x", None), &tags));
        assert!(!q("tag-value", &["pay"]).matches(&row("x", None), &tags));
        assert!(q("all", &["payments"]).matches(&row("x", None), &tags));
        assert!(q("all", &["CACHE"]).matches(&row("app/Gamma-cache", None), &[]));
        assert!(q("all", &["token"]).matches(&row("x", Some("gamma cache token")), &[]));
        assert!(!q("all", &["oken"]).matches(&row("x", Some("gamma cache token")), &[]));
    }

    #[test]
    fn offset_tokens_round_trip() {
        assert_eq!(decode_offset_token(&encode_offset_token(42)).unwrap(), 42);
        assert!(decode_offset_token("garbage!").is_err());
    }
}
