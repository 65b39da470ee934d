//! Resource-policy documents for PutResourcePolicy and ValidateResourcePolicy.
//!
//! We check the IAM policy grammar (strictly, like IAM: unknown elements are
//! errors) and look for statements that grant access to everyone. Enforcement
//! of the policy is a later issue; this module only parses and judges it.
//! AWS runs the broad-access check through Zelkova; ours is a conservative
//! syntactic approximation: an Allow to `*` counts as public unless a condition
//! pins the caller to fixed accounts, organisations, ARNs, networks or users.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

/// The model's limit on ResourcePolicy (characters).
pub const MAX_POLICY_CHARS: usize = 20_480;
/// CheckName reported by [`validate_for_api`] when the policy grants broad access.
pub const CHECK_BROAD_ACCESS: &str = "BROAD_ACCESS";
/// CheckName reported by [`validate_for_api`] when the policy does not parse.
pub const CHECK_SYNTAX: &str = "SYNTAX";

const BROAD_ACCESS_MESSAGE: &str = "This resource policy grants access to all principals (\"*\") without a condition that restricts who can use it.";

/// A rejected policy; the caller maps it to the AWS exception of the same name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// MalformedPolicyDocumentException: not valid JSON or not a valid IAM policy.
    #[error("{0}")]
    Malformed(String),
    /// PublicPolicyException: BlockPublicPolicy is set and the policy grants broad access.
    #[error("{0}")]
    Public(String),
}

/// A policy that passed [`validate_policy`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPolicy {
    /// `Version`, when given ("2012-10-17" or "2008-10-17").
    pub version: Option<String>,
    /// `Id`, when given.
    pub id: Option<String>,
    /// The statements, in document order (a single object becomes one entry).
    pub statements: Vec<Statement>,
}

/// One policy statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`, unique within the policy when present.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` (Only) or `NotPrincipal` (Except); a resource policy must name one.
    pub principal: Clause<Principal>,
    /// `Action` (Only) or `NotAction` (Except).
    pub action: Clause<Vec<String>>,
    /// `Resource` (Only) or `NotResource` (Except), when present.
    pub resource: Option<Clause<Vec<String>>>,
    /// `Condition`: operator → { condition key → value(s) }, as written.
    pub condition: Option<Map<String, Value>>,
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// "Allow".
    Allow,
    /// "Deny".
    Deny,
}

/// An element in its plain form (`Action`) or its negated form (`NotAction`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause<T> {
    /// The plain element: applies to what it lists.
    Only(T),
    /// The `Not…` element: applies to everything except what it lists.
    Except(T),
}

/// A `Principal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The bare string "*": everyone, including anonymous callers.
    Everyone,
    /// `{"AWS" | "Service" | "Federated" | "CanonicalUser": id or [ids]}`.
    Ids(BTreeMap<String, Vec<String>>),
}

/// Parse and check an IAM policy document: JSON object; "Version" if present is "2012-10-17" or "2008-10-17"; "Statement" is an object or non-empty array; each statement has Effect Allow|Deny, Action or NotAction (string or array), Principal or NotPrincipal ("*" or an object of AWS/Service/Federated/CanonicalUser → string|array), Resource/NotResource optional string|array, optional Sid string, optional Condition object. Size ≤ 20480 chars (model limit).
pub fn validate_policy(doc: &str) -> Result<ParsedPolicy, PolicyError> {
    parse_policy(doc).map_err(|detail| {
        PolicyError::Malformed(format!(
            "This resource policy contains a syntax error: {detail}"
        ))
    })
}

/// True if any Allow statement grants access to everyone: Principal "*" or {"AWS":"*"} (or array containing "*"), or Allow with NotPrincipal, with no Condition restricting the caller.
pub fn grants_public_access(p: &ParsedPolicy) -> bool {
    p.statements.iter().any(|s| {
        s.effect == Effect::Allow
            && principal_is_broad(&s.principal)
            && !condition_restricts(s.condition.as_ref())
    })
}

/// PutResourcePolicy's check: validate, then refuse a broad policy when BlockPublicPolicy is set.
pub fn validate_for_put(doc: &str, block_public_policy: bool) -> Result<ParsedPolicy, PolicyError> {
    let policy = validate_policy(doc)?;
    if block_public_policy && grants_public_access(&policy) {
        return Err(PolicyError::Public(
            "BlockPublicPolicy is set and this resource policy grants broad access to the secret."
                .into(),
        ));
    }
    Ok(policy)
}

/// ValidateResourcePolicy output: (PolicyValidationPassed, ValidationErrors as (CheckName, ErrorMessage)).
///
/// A malformed document is reported as a [`CHECK_SYNTAX`] entry; a caller that wants
/// AWS's MalformedPolicyDocumentException instead calls [`validate_policy`] first.
pub fn validate_for_api(doc: &str) -> (bool, Vec<(String, String)>) {
    match validate_policy(doc) {
        Err(e) => (false, vec![(CHECK_SYNTAX.to_owned(), e.to_string())]),
        Ok(p) if grants_public_access(&p) => (
            false,
            vec![(
                CHECK_BROAD_ACCESS.to_owned(),
                BROAD_ACCESS_MESSAGE.to_owned(),
            )],
        ),
        Ok(_) => (true, Vec::new()),
    }
}

fn parse_policy(doc: &str) -> Result<ParsedPolicy, String> {
    // The model bounds the string in characters; check before parsing anything.
    let chars = doc.chars().count();
    if chars == 0 || chars > MAX_POLICY_CHARS {
        return Err(format!(
            "the policy must be 1 to {MAX_POLICY_CHARS} characters long"
        ));
    }
    let value: Value = serde_json::from_str(doc).map_err(|e| format!("invalid JSON ({e})"))?;
    let Value::Object(top) = value else {
        return Err("the policy must be a JSON object".into());
    };
    only_known_keys(&top, &["Version", "Id", "Statement"], "the policy")?;
    let version = optional_string(&top, "Version")?;
    if let Some(v) = &version
        && v != "2012-10-17"
        && v != "2008-10-17"
    {
        return Err("Version must be \"2012-10-17\" or \"2008-10-17\"".into());
    }
    let id = optional_string(&top, "Id")?;
    let statements = match top.get("Statement") {
        Some(Value::Object(one)) => vec![parse_statement(one, 0)?],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Value::Object(s) => parse_statement(s, i),
                _ => Err(format!("Statement[{i}] must be an object")),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) => return Err("Statement must not be empty".into()),
        Some(_) => return Err("Statement must be an object or an array of objects".into()),
        None => return Err("the policy has no Statement".into()),
    };
    let mut sids = HashSet::new();
    for sid in statements
        .iter()
        .filter_map(|s: &Statement| s.sid.as_deref())
    {
        if !sids.insert(sid) {
            return Err("Statement IDs (Sid) in a policy must be unique".into());
        }
    }
    Ok(ParsedPolicy {
        version,
        id,
        statements,
    })
}

fn parse_statement(s: &Map<String, Value>, i: usize) -> Result<Statement, String> {
    let at = format!("Statement[{i}]");
    only_known_keys(
        s,
        &[
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ],
        &at,
    )?;
    let sid = optional_string(s, "Sid").map_err(|e| format!("{at}: {e}"))?;
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(_) => return Err(format!("{at}: Effect must be \"Allow\" or \"Deny\"")),
        None => return Err(format!("{at}: Effect is required")),
    };
    // Resource policies must say whom they apply to (IAM rejects them otherwise).
    let principal = match either(s, "Principal", "NotPrincipal", &at)? {
        Some(Clause::Only(v)) => Clause::Only(parse_principal(v, &at)?),
        Some(Clause::Except(v)) => Clause::Except(parse_principal(v, &at)?),
        None => {
            return Err(format!(
                "{at}: Principal or NotPrincipal is required in a resource policy"
            ));
        }
    };
    let action = match either(s, "Action", "NotAction", &at)? {
        Some(clause) => map_clause(clause, |v| checked_list(v, &at, "Action", check_action))?,
        None => return Err(format!("{at}: Action or NotAction is required")),
    };
    let resource = either(s, "Resource", "NotResource", &at)?
        .map(|clause| map_clause(clause, |v| checked_list(v, &at, "Resource", check_resource)))
        .transpose()?;
    let condition = match s.get("Condition") {
        None => None,
        Some(Value::Object(c)) => Some(check_condition(c, &at)?.clone()),
        Some(_) => return Err(format!("{at}: Condition must be an object")),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        condition,
    })
}

/// The value of `plain` or `negated` (at most one may be present).
fn either<'a>(
    s: &'a Map<String, Value>,
    plain: &str,
    negated: &str,
    at: &str,
) -> Result<Option<Clause<&'a Value>>, String> {
    match (s.get(plain), s.get(negated)) {
        (Some(_), Some(_)) => Err(format!(
            "{at}: {plain} and {negated} cannot both be present"
        )),
        (Some(v), None) => Ok(Some(Clause::Only(v))),
        (None, Some(v)) => Ok(Some(Clause::Except(v))),
        (None, None) => Ok(None),
    }
}

fn map_clause<A, B>(
    c: Clause<A>,
    f: impl FnOnce(A) -> Result<B, String>,
) -> Result<Clause<B>, String> {
    Ok(match c {
        Clause::Only(v) => Clause::Only(f(v)?),
        Clause::Except(v) => Clause::Except(f(v)?),
    })
}

fn parse_principal(v: &Value, at: &str) -> Result<Principal, String> {
    match v {
        Value::String(s) if s == "*" => Ok(Principal::Everyone),
        Value::Object(m) if !m.is_empty() => {
            let mut ids = BTreeMap::new();
            for (kind, value) in m {
                if !["AWS", "Service", "Federated", "CanonicalUser"].contains(&kind.as_str()) {
                    return Err(format!("{at}: unsupported principal type {}", quoted(kind)));
                }
                // IAM allows "*" alone but no partial wildcards inside principal ids.
                let list = checked_list(value, at, "Principal", |p| {
                    !p.is_empty() && (p == "*" || !p.contains('*'))
                })?;
                ids.insert(kind.clone(), list);
            }
            Ok(Principal::Ids(ids))
        }
        _ => Err(format!(
            "{at}: Principal must be \"*\" or a non-empty object"
        )),
    }
}

/// A string or non-empty array of strings, each accepted by `valid`.
fn checked_list(
    v: &Value,
    at: &str,
    what: &str,
    valid: fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let items: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(a) if !a.is_empty() => a.iter().collect(),
        _ => {
            return Err(format!(
                "{at}: {what} must be a string or a non-empty array of strings"
            ));
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) if valid(s) => Ok(s.clone()),
            Value::String(s) => Err(format!("{at}: invalid {what} value {}", quoted(s))),
            _ => Err(format!(
                "{at}: {what} must be a string or a non-empty array of strings"
            )),
        })
        .collect()
}

/// "*" or "service:Pattern" (IAM: actions must be prefixed by a service).
fn check_action(a: &str) -> bool {
    a == "*"
        || a.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && !name.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// "*" or an ARN (IAM: "Resource must be in ARN format or \"*\"").
fn check_resource(r: &str) -> bool {
    r == "*" || r.starts_with("arn:")
}

fn check_condition<'a>(
    c: &'a Map<String, Value>,
    at: &str,
) -> Result<&'a Map<String, Value>, String> {
    for (operator, block) in c {
        if !known_operator(operator) {
            return Err(format!(
                "{at}: unknown Condition operator {}",
                quoted(operator)
            ));
        }
        let Value::Object(keys) = block else {
            return Err(format!(
                "{at}: Condition {} must map condition keys to values",
                quoted(operator)
            ));
        };
        if keys.is_empty() {
            return Err(format!(
                "{at}: Condition {} has no condition keys",
                quoted(operator)
            ));
        }
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
        for value in keys.values() {
            let ok = match value {
                Value::Array(a) => !a.is_empty() && a.iter().all(scalar),
                v => scalar(v),
            };
            if !ok {
                return Err(format!(
                    "{at}: Condition values must be strings, numbers, booleans or non-empty arrays of them"
                ));
            }
        }
    }
    Ok(c)
}

/// IAM condition operators, with an optional `ForAnyValue:`/`ForAllValues:` prefix and `IfExists` suffix.
fn known_operator(op: &str) -> bool {
    const BASE: &[&str] = &[
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Null",
    ];
    let (_, base) = split_operator(op);
    let base = base.strip_suffix("IfExists").unwrap_or(base);
    BASE.iter().any(|b| b.eq_ignore_ascii_case(base))
}

/// Split `ForAnyValue:StringEquals` into its set qualifier and operator.
fn split_operator(op: &str) -> (Option<&str>, &str) {
    match op.split_once(':') {
        Some((set, base))
            if set.eq_ignore_ascii_case("ForAnyValue")
                || set.eq_ignore_ascii_case("ForAllValues") =>
        {
            (Some(set), base)
        }
        _ => (None, op),
    }
}

fn principal_is_broad(p: &Clause<Principal>) -> bool {
    match p {
        Clause::Only(Principal::Everyone) => true,
        Clause::Only(Principal::Ids(ids)) => ids.values().flatten().any(|id| id == "*"),
        // Allow + NotPrincipal grants everyone except the few it lists.
        Clause::Except(_) => true,
    }
}

/// Whether a condition pins the caller down: a positive match of an identity or
/// network key against fixed values. Negations, IfExists (true when the key is
/// absent), ForAllValues (true on an empty set) and wildcards do not count.
fn condition_restricts(condition: Option<&Map<String, Value>>) -> bool {
    const PINNING_KEYS: &[&str] = &[
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalservicename",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:userid",
        "aws:username",
    ];
    let Some(condition) = condition else {
        return false;
    };
    condition.iter().any(|(operator, block)| {
        let (set, base) = split_operator(operator);
        let positive = !base.contains("Not")
            && !base.ends_with("IfExists")
            && !base.eq_ignore_ascii_case("Null")
            && !set.is_some_and(|s| s.eq_ignore_ascii_case("ForAllValues"));
        let Value::Object(keys) = block else {
            return false;
        };
        positive
            && keys.iter().any(|(key, value)| {
                let fixed = |v: &Value| match v {
                    Value::String(s) => {
                        !s.is_empty() && !s.contains(['*', '?']) && !s.ends_with("/0")
                    }
                    _ => false,
                };
                let all_fixed = match value {
                    Value::Array(a) => !a.is_empty() && a.iter().all(fixed),
                    v => fixed(v),
                };
                PINNING_KEYS.contains(&key.to_ascii_lowercase().as_str()) && all_fixed
            })
    })
}

fn only_known_keys(m: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("{at} has an unknown element {}", quoted(k))),
        None => Ok(()),
    }
}

fn optional_string(m: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// Quote user text in a message, cut short so a 20 KB policy cannot flood an error.
fn quoted(s: &str) -> String {
    let short: String = crate::engine::validate::char_prefix(s, 64).to_string();
    let ellipsis = if short.len() < s.len() { "…" } else { "" };
    format!("{short:?}{ellipsis}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn statement(body: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#)
    }

    const READ_ONE_ROLE: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/MyRole"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;

    fn malformed(doc: &str) -> String {
        match validate_policy(doc) {
            Err(PolicyError::Malformed(m)) => m,
            other => format!("NOT REJECTED: {other:?}"),
        }
    }

    #[test]
    fn accepts_the_aws_cli_example() {
        let p = validate_policy(&statement(READ_ONE_ROLE)).unwrap();
        assert_eq!(p.version.as_deref(), Some("2012-10-17"));
        let s = &p.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.action,
            Clause::Only(vec!["secretsmanager:GetSecretValue".into()])
        );
        assert_eq!(s.resource, Some(Clause::Only(vec!["*".into()])));
        assert!(!grants_public_access(&p));
        assert_eq!(validate_for_api(&statement(READ_ONE_ROLE)), (true, vec![]));
    }

    #[test]
    fn accepts_the_full_grammar() {
        let doc = r#"{"Version":"2008-10-17","Id":"p1","Statement":{"Sid":"a","Effect":"Deny",
            "NotPrincipal":{"AWS":["123456789012","arn:aws:iam::123456789012:root"],"Service":"lambda.amazonaws.com",
              "Federated":"cognito-identity.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbaced"},
            "NotAction":["secretsmanager:Describe*","kms:*"],"NotResource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:x-*",
            "Condition":{"StringEquals":{"aws:PrincipalTag/team":["a","b"]},"NumericLessThan":{"aws:MultiFactorAuthAge":3600},
              "Bool":{"aws:SecureTransport":false},"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":"x*"}}}}"#;
        let p = validate_policy(doc).unwrap();
        assert_eq!(p.id.as_deref(), Some("p1"));
        let s = &p.statements[0];
        assert!(
            matches!(&s.principal, Clause::Except(Principal::Ids(ids)) if ids.len() == 4 && ids["AWS"].len() == 2)
        );
        assert!(matches!(&s.action, Clause::Except(a) if a.len() == 2));
        assert!(s.condition.as_ref().is_some_and(|c| c.len() == 4));
        // No Version at all is accepted too.
        assert!(validate_policy(&format!(r#"{{"Statement":{READ_ONE_ROLE}}}"#)).is_ok());
    }

    #[test]
    fn rejects_bad_documents() {
        let cases: &[(&str, &str)] = &[
            ("", "1 to 20480"),
            ("not json", "invalid JSON"),
            ("[1]", "JSON object"),
            (r#"{"Version":"2012-10-17"}"#, "no Statement"),
            (r#"{"Version":"2012-10-18","Statement":[]}"#, "Version"),
            (
                r#"{"Version":1,"Statement":{}}"#,
                "Version must be a string",
            ),
            (r#"{"Statement":[]}"#, "must not be empty"),
            (r#"{"Statement":"x"}"#, "object or an array"),
            (r#"{"Statement":["x"]}"#, "Statement[0] must be an object"),
            (r#"{"Statement":[],"Extra":1}"#, "unknown element \"Extra\""),
        ];
        for (doc, expected) in cases {
            let m = malformed(doc);
            assert!(m.contains(expected), "{doc}: {m}");
        }
        let too_big = format!(
            r#"{{"Statement":{READ_ONE_ROLE},"Id":"{}"}}"#,
            "x".repeat(MAX_POLICY_CHARS)
        );
        assert!(malformed(&too_big).contains("20480"));
    }

    #[test]
    fn rejects_bad_statements() {
        let p = r#""Principal":"*""#;
        let a = r#""Action":"secretsmanager:*""#;
        let cases: Vec<(String, &str)> = vec![
            (format!(r#"{{{p},{a}}}"#), "Effect is required"),
            (format!(r#"{{"Effect":"allow",{p},{a}}}"#), "Effect must be"),
            (
                format!(r#"{{"Effect":"Allow",{p}}}"#),
                "Action or NotAction is required",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"NotAction":"x:y"}}"#),
                "cannot both",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},"Action":[]}}"#),
                "non-empty array",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},"Action":[1]}}"#),
                "Action must be a string",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},"Action":"GetSecretValue"}}"#),
                "invalid Action",
            ),
            (
                format!(r#"{{"Effect":"Allow",{a}}}"#),
                "Principal or NotPrincipal is required",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},"NotPrincipal":"*",{a}}}"#),
                "cannot both",
            ),
            (
                format!(r#"{{"Effect":"Allow","Principal":"alice",{a}}}"#),
                "Principal must be",
            ),
            (
                format!(r#"{{"Effect":"Allow","Principal":{{}},{a}}}"#),
                "Principal must be",
            ),
            (
                format!(r#"{{"Effect":"Allow","Principal":{{"Users":"x"}},{a}}}"#),
                "unsupported principal type",
            ),
            (
                format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::*:root"}},{a}}}"#),
                "invalid Principal",
            ),
            (
                format!(r#"{{"Effect":"Allow","Principal":{{"AWS":[]}},{a}}}"#),
                "non-empty array",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Resource":"my-secret"}}"#),
                "invalid Resource",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Resource":"*","NotResource":"*"}}"#),
                "cannot both",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Sid":5}}"#),
                "Sid must be a string",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Condition":"x"}}"#),
                "Condition must be an object",
            ),
            (
                format!(
                    r#"{{"Effect":"Allow",{p},{a},"Condition":{{"StringSortOf":{{"k":"v"}}}}}}"#
                ),
                "unknown Condition operator",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Condition":{{"StringEquals":"v"}}}}"#),
                "must map condition keys",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Condition":{{"StringEquals":{{}}}}}}"#),
                "no condition keys",
            ),
            (
                format!(
                    r#"{{"Effect":"Allow",{p},{a},"Condition":{{"StringEquals":{{"k":{{"x":1}}}}}}}}"#
                ),
                "Condition values",
            ),
            (
                format!(r#"{{"Effect":"Allow",{p},{a},"Principle":"*"}}"#),
                "unknown element \"Principle\"",
            ),
        ];
        for (body, expected) in &cases {
            let m = malformed(&statement(body));
            assert!(m.contains(expected), "{body}: {m}");
        }
        let dup = statement(&format!(
            r#"{{"Sid":"s",{}}},{{"Sid":"s",{}}}"#,
            &READ_ONE_ROLE[1..READ_ONE_ROLE.len() - 1],
            &READ_ONE_ROLE[1..READ_ONE_ROLE.len() - 1]
        ));
        assert!(malformed(&dup).contains("unique"));
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let m = malformed(&statement(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"{}"}}"#,
            "x".repeat(5000)
        )));
        assert!(m.len() < 300, "{m}");
    }

    #[test]
    fn detects_public_access() {
        let public = [
            r#"{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:*"}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":["123456789012","*"]},"Action":"*"}"#,
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"*"}"#,
            // Conditions that do not pin the caller down.
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"123456789012"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringEqualsIfExists":{"aws:PrincipalAccount":"123456789012"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"ForAllValues:StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
        ];
        for body in public {
            let doc = statement(body);
            assert!(
                grants_public_access(&validate_policy(&doc).unwrap()),
                "{body}"
            );
            let (passed, errors) = validate_for_api(&doc);
            assert!(!passed);
            assert_eq!(errors[0].0, CHECK_BROAD_ACCESS);
            assert!(matches!(
                validate_for_put(&doc, true),
                Err(PolicyError::Public(_))
            ));
            assert!(validate_for_put(&doc, false).is_ok());
        }
    }

    #[test]
    fn restricted_or_denying_policies_are_not_public() {
        let private = [
            READ_ONE_ROLE,
            r#"{"Effect":"Deny","Principal":"*","Action":"*"}"#,
            r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*"}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}}"#,
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Condition":{"StringEquals":{"AWS:SourceAccount":["111122223333","444455556666"]}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/R"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringEquals":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}"#,
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
        ];
        for body in private {
            let doc = statement(body);
            assert!(
                !grants_public_access(&validate_policy(&doc).unwrap()),
                "{body}"
            );
            assert_eq!(validate_for_api(&doc), (true, vec![]));
            assert!(validate_for_put(&doc, true).is_ok());
        }
        // One public statement among private ones makes the policy public.
        let mixed = statement(&format!(
            r#"{READ_ONE_ROLE},{{"Effect":"Allow","Principal":"*","Action":"*"}}"#
        ));
        assert!(grants_public_access(&validate_policy(&mixed).unwrap()));
    }

    #[test]
    fn api_reports_syntax_errors_as_a_check() {
        let (passed, errors) = validate_for_api("{");
        assert!(!passed);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, CHECK_SYNTAX);
        assert!(errors[0].1.contains("invalid JSON"));
        assert!(matches!(
            validate_for_put("{", false),
            Err(PolicyError::Malformed(_))
        ));
    }
}
