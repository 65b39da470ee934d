//! RotateSecret and CancelRotateSecret: the rotation configuration and schedule.
//!
//! # What this server does, and does not do
//! In AWS, RotateSecret stores the configuration and then invokes the rotation Lambda, whose
//! four steps (createSecret, setSecret, testSecret, finishSecret) create the AWSPENDING
//! version and move AWSCURRENT to it. This server runs no Lambda. RotateSecret therefore
//! validates and stores the configuration (RotationEnabled, RotationLambdaARN, RotationRules,
//! ExternalSecretRotation*) and the schedule, records the ClientRequestToken as the VersionId
//! the requested rotation will create, and returns it, exactly as AWS answers before its
//! asynchronous rotation starts. No version is created, AWSPENDING is not attached and
//! LastRotatedDate does not move: the rotation itself waits for the HTTP rotation hook
//! (brief §2.13, "rotation without Lambda"), which will run the same four steps.
//!
//! The schedule is reported honestly. With RotateImmediately (the default) the rotation is
//! due at once, so NextRotationDate is the time of the call; it stays in the past until a
//! rotation runs, which is how AWS reports a rotation that did not succeed. Otherwise it is
//! the end of the rotation window the rules give after the last rotation (or now, if the
//! secret never rotated). `cron()` schedules are stored and reported but get no
//! NextRotationDate (no cron evaluator here).

use super::labels::AWSCURRENT;
use super::types::{RotateSecretInput, RotationRules, SecretIdInput, VersionOutput};
use super::{Engine, EngineError, EngineResult, Scope, SecretState, validate};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// The label of the version a rotation is creating.
pub const AWSPENDING: &str = "AWSPENDING";

/// How often rules rotate a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interval {
    /// AutomaticallyAfterDays, or `rate(N days)`.
    Days(i64),
    /// `rate(N hours)`.
    Hours(i64),
    /// `cron(...)`.
    Cron,
}

/// Check RotationRules against the model and AWS's rules; returns the interval, if any.
fn check_rules(rules: &RotationRules) -> EngineResult<Option<Interval>> {
    if let Some(days) = rules.automatically_after_days {
        validate::range("rotationRules.automaticallyAfterDays", days, 1, 1000)?;
    }
    let window = match &rules.duration {
        Some(d) => {
            validate::length("rotationRules.duration", d, 2, 3, false)?;
            let hours = d
                .strip_suffix('h')
                .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    validate::pattern_violation("rotationRules.duration", d, "[0-9]+h")
                })?;
            let hours: i64 = hours.parse().unwrap_or(0);
            // The window must fit in the UTC day (RotationRulesType.Duration).
            if !(1..=24).contains(&hours) {
                return Err(EngineError::InvalidParameter(format!(
                    "The rotation window duration {d} must be between 1h and 24h."
                )));
            }
            Some(hours)
        }
        None => None,
    };
    let interval = match (&rules.schedule_expression, rules.automatically_after_days) {
        (Some(_), Some(_)) => {
            // The message real AWS returns (hashicorp/terraform-provider-aws#33329, #30540).
            return Err(EngineError::InvalidParameter(
                "You cannot specify both rotation frequency and schedule expression together."
                    .into(),
            ));
        }
        (Some(expr), None) => Some(schedule_expression(expr)?),
        (None, Some(days)) => Some(Interval::Days(days)),
        (None, None) => None,
    };
    if let (Some(Interval::Hours(every)), Some(w)) = (interval, window)
        && w > every
    {
        return Err(EngineError::InvalidParameter(format!(
            "The rotation window duration {w}h must be shorter than the rotation interval of {every} hours."
        )));
    }
    Ok(interval)
}

/// A ScheduleExpression: `rate(N hours|days)` (at least four hours) or `cron(...)` with six
/// fields, within the model's length and character set.
fn schedule_expression(expr: &str) -> EngineResult<Interval> {
    let member = "rotationRules.scheduleExpression";
    validate::length(member, expr, 1, 256, false)?;
    if !expr
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"()#?*-/, ".contains(&b))
    {
        return Err(validate::pattern_violation(
            member,
            expr,
            "[0-9A-Za-z\\(\\)#\\?\\*\\-\\/, ]+",
        ));
    }
    let invalid = || {
        EngineError::InvalidParameter(format!(
            "Invalid ScheduleExpression {expr}: use rate(N hours), rate(N days) or a cron() expression with six fields."
        ))
    };
    let expr = expr.trim();
    if let Some(body) = expr.strip_prefix("rate(").and_then(|b| b.strip_suffix(')')) {
        let mut parts = body.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let n: i64 = n.parse().map_err(|_| invalid())?;
        return match unit {
            "hour" | "hours" if n >= 4 => Ok(Interval::Hours(n)),
            "hour" | "hours" => Err(EngineError::InvalidParameter(
                "You can rotate a secret at most every four hours: use rate(4 hours) or more."
                    .into(),
            )),
            "day" | "days" if (1..=1000).contains(&n) => Ok(Interval::Days(n)),
            _ => Err(invalid()),
        };
    }
    if let Some(body) = expr.strip_prefix("cron(").and_then(|b| b.strip_suffix(')'))
        && body.split_whitespace().count() == 6
    {
        return Ok(Interval::Cron);
    }
    Err(invalid())
}

/// The end of the rotation window `interval` after `base`: the latest time the next rotation
/// is due. `None` for cron schedules.
fn next_rotation(interval: Interval, duration: Option<&str>, base: i64) -> Option<i64> {
    let window_hours = duration
        .and_then(|d| d.strip_suffix('h'))
        .and_then(|n| n.parse::<i64>().ok());
    match interval {
        Interval::Days(n) => {
            // A day-based window opens at midnight UTC and closes after Duration, or at the
            // end of the day.
            let day = base + n * DAY_MS;
            let midnight = day - day.rem_euclid(DAY_MS);
            Some(midnight + window_hours.map_or(DAY_MS, |h| h * HOUR_MS) - 1000)
        }
        Interval::Hours(n) => Some(base + n * HOUR_MS + window_hours.unwrap_or(1) * HOUR_MS - 1000),
        Interval::Cron => None,
    }
}

impl SecretState {
    /// The version a rotation left AWSPENDING on, if that is not the AWSCURRENT one: AWS then
    /// considers a rotation still in progress.
    fn pending_rotation(&self) -> Option<&String> {
        let pending = self.labels.get(AWSPENDING)?;
        (self.labels.get(AWSCURRENT) != Some(pending)).then_some(pending)
    }
}

impl Engine {
    /// RotateSecret: store the rotation configuration and schedule, and record the rotation
    /// it starts. No rotation function runs on this server (see the module documentation):
    /// the answer is AWS's — ARN, Name and the VersionId the rotation's new version will
    /// carry — but that version is created only once a rotation hook runs.
    pub async fn rotate_secret(
        &self,
        scope: &Scope,
        input: &RotateSecretInput,
        now: i64,
    ) -> EngineResult<VersionOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        // Raw callers must send the token; AWS answers InvalidParameterException here (real
        // AWS, recorded: localstack test_no_client_request_token[RotateSecret]).
        let token = input.client_request_token.as_deref().ok_or_else(|| {
            EngineError::InvalidParameter(
                "You must provide a ClientRequestToken value. We recommend a UUID-type value."
                    .into(),
            )
        })?;
        validate::version_token("clientRequestToken", token)?;
        if let Some(arn) = &input.rotation_lambda_arn {
            validate::length("rotationLambdaARN", arn, 0, 2048, false)?;
        }
        let interval = match &input.rotation_rules {
            Some(rules) => check_rules(rules)?,
            None => None,
        };
        if let Some(items) = &input.external_secret_rotation_metadata {
            for item in items {
                let key =
                    validate::required("externalSecretRotationMetadata.member.key", &item.key)?;
                validate::length(
                    "externalSecretRotationMetadata.member.key",
                    key,
                    1,
                    256,
                    false,
                )?;
                let value =
                    validate::required("externalSecretRotationMetadata.member.value", &item.value)?;
                validate::length(
                    "externalSecretRotationMetadata.member.value",
                    value,
                    1,
                    2048,
                    false,
                )?;
            }
        }
        if let Some(role) = &input.external_secret_rotation_role_arn {
            validate::length("externalSecretRotationRoleArn", role, 20, 2048, false)?;
        }
        let immediately = input.rotate_immediately.unwrap_or(true);
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            let mut rotation = state.rotation().unwrap_or_default();
            if let Some(arn) = input.rotation_lambda_arn.as_ref().filter(|a| !a.is_empty()) {
                rotation.lambda_arn = Some(arn.clone());
            }
            if let Some(items) = &input.external_secret_rotation_metadata {
                rotation.external_metadata = Some(items.clone());
            }
            if let Some(role) = &input.external_secret_rotation_role_arn {
                rotation.external_role_arn = Some(role.clone());
            }
            // Managed external secrets rotate without a Lambda; everything else needs one.
            if rotation.lambda_arn.is_none()
                && rotation.external_metadata.is_none()
                && rotation.external_role_arn.is_none()
            {
                return Err(EngineError::InvalidRequest(
                    "No Lambda rotation function ARN is associated with this secret.".into(),
                ));
            }
            if state.pending_rotation().is_some() {
                return Err(EngineError::InvalidRequest(
                    "A previous rotation isn't complete. That rotation will be reattempted.".into(),
                ));
            }
            if let Some(rules) = &input.rotation_rules {
                rotation.rules = Some(rules.clone());
            }
            let interval = match (&input.rotation_rules, &rotation.rules) {
                (Some(_), _) => interval,
                (None, Some(stored)) => check_rules(stored).ok().flatten(),
                (None, None) => None,
            };
            rotation.enabled = true;
            if immediately {
                rotation.requested_version_id = Some(token.to_string());
                rotation.next_rotation = Some(now);
            } else {
                let base = rotation.last_rotated.unwrap_or(now);
                rotation.next_rotation = interval.and_then(|i| {
                    next_rotation(
                        i,
                        rotation.rules.as_ref().and_then(|r| r.duration.as_deref()),
                        base,
                    )
                });
            }
            let mut next = state.next_row(now);
            next.rotation = serde_json::to_string(&rotation).ok();
            self.commit(scope, state.row.revision, &next, None, None)
                .await?;
            Ok(VersionOutput {
                arn: state.row.arn.clone(),
                name: state.row.name.clone(),
                version_id: Some(token.to_string()),
                version_stages: None,
                replication_status: None,
            })
        })
        .await
    }

    /// CancelRotateSecret: turn automatic rotation off. The function and rules stay (AWS
    /// keeps showing them); NextRotationDate goes. Labels are not touched: if a rotation left
    /// AWSPENDING on a version other than AWSCURRENT's, that version is returned for the
    /// caller to clean up, as AWS does.
    pub async fn cancel_rotate_secret(
        &self,
        scope: &Scope,
        input: &SecretIdInput,
        now: i64,
    ) -> EngineResult<VersionOutput> {
        let secret_id = validate::secret_id(&input.secret_id)?;
        self.retrying(|| async {
            let state = self.state(scope, secret_id, now).await?;
            state.refuse_if_replica()?;
            state.refuse_if_deleted()?;
            if let Some(mut rotation) = state.rotation() {
                let before = rotation.clone();
                rotation.enabled = false;
                rotation.next_rotation = None;
                rotation.requested_version_id = None;
                if rotation != before {
                    let mut next = state.next_row(now);
                    next.rotation = serde_json::to_string(&rotation).ok();
                    self.commit(scope, state.row.revision, &next, None, None)
                        .await?;
                }
            }
            Ok(VersionOutput {
                arn: state.row.arn.clone(),
                name: state.row.name.clone(),
                version_id: state.pending_rotation().cloned(),
                version_stages: None,
                replication_status: None,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(days: Option<i64>, expr: Option<&str>, duration: Option<&str>) -> RotationRules {
        RotationRules {
            automatically_after_days: days,
            duration: duration.map(str::to_string),
            schedule_expression: expr.map(str::to_string),
        }
    }

    #[test]
    fn rules_follow_the_model_and_aws() {
        assert_eq!(
            check_rules(&rules(Some(30), None, None)).unwrap(),
            Some(Interval::Days(30))
        );
        assert!(matches!(
            check_rules(&rules(Some(0), None, None)),
            Err(EngineError::Validation(_))
        ));
        assert!(matches!(
            check_rules(&rules(Some(1001), None, None)),
            Err(EngineError::Validation(_))
        ));
        assert!(matches!(
            check_rules(&rules(Some(1), Some("rate(1 days)"), None)),
            Err(EngineError::InvalidParameter(m)) if m.contains("both rotation frequency")
        ));
        assert_eq!(
            check_rules(&rules(None, Some("rate(10 days)"), Some("3h"))).unwrap(),
            Some(Interval::Days(10))
        );
        assert_eq!(
            check_rules(&rules(None, Some("rate(4 hours)"), None)).unwrap(),
            Some(Interval::Hours(4))
        );
        assert!(check_rules(&rules(None, Some("rate(3 hours)"), None)).is_err());
        assert_eq!(
            check_rules(&rules(None, Some("cron(0 16 1,15 * ? *)"), Some("2h"))).unwrap(),
            Some(Interval::Cron)
        );
        assert!(matches!(
            check_rules(&rules(None, Some("cron(0 16 * *)"), None)),
            Err(EngineError::InvalidParameter(_))
        ));
        assert!(matches!(
            check_rules(&rules(None, Some("every day!"), None)),
            Err(EngineError::Validation(_))
        ));
        assert!(matches!(
            check_rules(&rules(None, None, Some("3d"))),
            Err(EngineError::Validation(_))
        ));
        assert!(matches!(
            check_rules(&rules(None, None, Some("1000h"))),
            Err(EngineError::Validation(_))
        ));
        assert!(matches!(
            check_rules(&rules(None, None, Some("25h"))),
            Err(EngineError::InvalidParameter(_))
        ));
        assert!(check_rules(&rules(None, Some("rate(4 hours)"), Some("5h"))).is_err());
    }

    #[test]
    fn next_rotation_is_the_end_of_the_window() {
        // 2026-11-29T21:27:37Z
        let base: i64 = 1_796_160_457_000;
        let midnight_after_30_days = base - base.rem_euclid(DAY_MS) + 30 * DAY_MS;
        assert_eq!(
            next_rotation(Interval::Days(30), None, base),
            Some(midnight_after_30_days + DAY_MS - 1000)
        );
        assert_eq!(
            next_rotation(Interval::Days(30), Some("3h"), base),
            Some(midnight_after_30_days + 3 * HOUR_MS - 1000)
        );
        assert_eq!(
            next_rotation(Interval::Hours(6), None, base),
            Some(base + 7 * HOUR_MS - 1000)
        );
        assert_eq!(next_rotation(Interval::Cron, None, base), None);
    }
}
