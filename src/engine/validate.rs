//! Model constraints from botocore's service model, checked on the server as AWS does.
//!
//! AWS reports a broken constraint as `ValidationException` with a fixed sentence shape;
//! values of sensitive members (SecretString, SecretBinary) are never echoed.

use super::EngineError;

/// `1 validation error detected: Value 'v' at 'member' failed to satisfy constraint: why`.
fn violation(member: &str, shown: Option<&str>, why: &str) -> EngineError {
    let value = match shown {
        Some(v) => format!("Value '{}' at '{member}'", truncate(v, 64)),
        None => format!("Value at '{member}'"),
    };
    EngineError::Validation(format!(
        "1 validation error detected: {value} failed to satisfy constraint: {why}"
    ))
}

fn truncate(s: &str, max: usize) -> String {
    char_prefix(s, max).to_string()
}

/// The first `max` characters of `s` (all of it if shorter), without copying.
pub fn char_prefix(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// A required member is missing.
pub fn required<'a, T>(member: &str, v: &'a Option<T>) -> Result<&'a T, EngineError> {
    v.as_ref().ok_or_else(|| {
        EngineError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// Length (in characters, as the model counts) between `min` and `max`.
pub fn length(
    member: &str,
    v: &str,
    min: usize,
    max: usize,
    sensitive: bool,
) -> Result<(), EngineError> {
    let n = v.chars().count();
    let shown = if sensitive { None } else { Some(v) };
    if n < min {
        return Err(violation(
            member,
            shown,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(violation(
            member,
            shown,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Optional member with a length range.
pub fn opt_length(
    member: &str,
    v: &Option<String>,
    min: usize,
    max: usize,
) -> Result<(), EngineError> {
    match v {
        Some(v) => length(member, v, min, max, false),
        None => Ok(()),
    }
}

/// Integer range.
pub fn range(member: &str, v: i64, min: i64, max: i64) -> Result<(), EngineError> {
    let text = v.to_string();
    if v < min {
        return Err(violation(
            member,
            Some(&text),
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if v > max {
        return Err(violation(
            member,
            Some(&text),
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A secret name: 1–512 characters of ASCII letters, digits and `/_+=.@-` (and `!`).
pub fn secret_name(name: &str) -> Result<(), EngineError> {
    length("name", name, 1, 512, false)?;
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-!".contains(&b));
    if !ok {
        return Err(EngineError::Validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
                .into(),
        ));
    }
    Ok(())
}

/// A ClientRequestToken / VersionId: 32–64 characters, any content.
pub fn version_token(member: &str, v: &str) -> Result<(), EngineError> {
    length(member, v, 32, 64, false)
}

/// SecretId: a name, full ARN or partial ARN, 1–2048 characters.
pub fn secret_id(v: &Option<String>) -> Result<&str, EngineError> {
    let id = required("secretId", v)?;
    length("secretId", id, 1, 2048, false)?;
    Ok(id)
}

/// Tags: keys 1–128, values 0–256, at most 50.
pub fn tags(tags: &[super::types::Tag]) -> Result<(), EngineError> {
    if tags.len() > 50 {
        return Err(violation(
            "tags",
            None,
            "Member must have length less than or equal to 50",
        ));
    }
    for t in tags {
        length("tags.member.key", &t.key, 1, 128, false)?;
        length("tags.member.value", &t.value, 0, 256, false)?;
    }
    Ok(())
}

/// A list of staging labels: 1–20 items, each 1–256.
pub fn version_stages(stages: &[String]) -> Result<(), EngineError> {
    if stages.is_empty() || stages.len() > 20 {
        let why = if stages.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 20"
        };
        return Err(violation("versionStages", None, why));
    }
    for s in stages {
        length("versionStages.member", s, 1, 256, false)?;
    }
    Ok(())
}

/// MaxResults with its model range.
pub fn max_results(v: Option<i64>, max: i64, default: i64) -> Result<i64, EngineError> {
    match v {
        Some(v) => {
            range("maxResults", v, 1, max)?;
            Ok(v)
        }
        None => Ok(default),
    }
}

/// Filters: at most 10, keys from the model's enum, 1–10 values of ≤512 matching the pattern.
pub fn filters(filters: &[super::types::Filter]) -> Result<(), EngineError> {
    if filters.len() > 10 {
        return Err(violation(
            "filters",
            None,
            "Member must have length less than or equal to 10",
        ));
    }
    for f in filters {
        let key = f.key.as_deref().unwrap_or("");
        if ![
            "description",
            "name",
            "tag-key",
            "tag-value",
            "primary-region",
            "owning-service",
            "all",
        ]
        .contains(&key)
        {
            return Err(violation(
                "filters.member.key",
                Some(key),
                "Member must satisfy enum value set: [all, name, tag-key, description, tag-value, primary-region, owning-service]",
            ));
        }
        if f.values.is_empty() || f.values.len() > 10 {
            return Err(violation(
                "filters.member.values",
                None,
                "Member must have length between 1 and 10",
            ));
        }
        for v in &f.values {
            length("filters.member.values.member", v, 0, 512, false)?;
            let ok = v
                .strip_prefix('!')
                .unwrap_or(v)
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" :_@/+=.-!".contains(&b));
            if !ok {
                return Err(violation(
                    "filters.member.values.member",
                    Some(v),
                    "Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$",
                ));
            }
        }
    }
    Ok(())
}

/// A value that breaks the model's regular expression `pattern`.
pub fn pattern_violation(member: &str, v: &str, pattern: &str) -> EngineError {
    violation(
        member,
        Some(v),
        &format!("Member must satisfy regular expression pattern: {pattern}"),
    )
}

/// A Region code: 1–128 characters matching `^([a-z]+-)+\d+$` (`RegionType`).
pub fn region(member: &str, v: &str) -> Result<(), EngineError> {
    length(member, v, 1, 128, false)?;
    // One or more lower-case words each followed by '-', then digits.
    let ok = match v.rfind('-') {
        Some(i) => {
            let (words, digits) = (&v[..i], &v[i + 1..]);
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && words
                    .split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        }
        None => false,
    };
    if !ok {
        return Err(pattern_violation(member, v, "^([a-z]+-)+\\d+$"));
    }
    Ok(())
}

/// A list's item count between `min` and `max`.
pub fn list_len(member: &str, len: usize, min: usize, max: usize) -> Result<(), EngineError> {
    if len < min {
        return Err(violation(
            member,
            None,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(violation(
            member,
            None,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// A member whose model type is an enum.
pub fn one_of(member: &str, v: &str, allowed: &[&str]) -> Result<(), EngineError> {
    if allowed.contains(&v) {
        return Ok(());
    }
    Err(violation(
        member,
        Some(v),
        &format!(
            "Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::char_prefix;

    #[test]
    fn char_prefix_counts_characters_not_bytes() {
        assert_eq!(char_prefix("abc", 5), "abc");
        assert_eq!(char_prefix("abc", 3), "abc");
        assert_eq!(char_prefix("abc", 2), "ab");
        assert_eq!(char_prefix("", 2), "");
        // Two-, three- and four-byte characters are never cut in half.
        assert_eq!(char_prefix("é✓🔑x", 3), "é✓🔑");
        assert_eq!(char_prefix("é✓🔑x", 0), "");
    }
}
