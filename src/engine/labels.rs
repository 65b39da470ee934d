//! Staging-label moves, as pure functions over a secret's label map (label → VersionId).
//!
//! One label is on at most one version. AWSCURRENT can be moved but never removed, and
//! wherever it moves from, AWSPREVIOUS follows to the version it left.

use super::EngineError;
use std::collections::BTreeMap;

/// The label of the version clients read by default.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label AWS puts on the version AWSCURRENT moved away from.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// A secret's labels: label → VersionId.
pub type Labels = BTreeMap<String, String>;

/// Move AWSCURRENT to `to`, dragging AWSPREVIOUS onto the version it left.
fn move_current(labels: &mut Labels, to: &str) {
    if let Some(old) = labels.get(AWSCURRENT).cloned()
        && old != to
    {
        labels.insert(AWSPREVIOUS.to_string(), old);
    }
    labels.insert(AWSCURRENT.to_string(), to.to_string());
}

/// Labels after a new version `new_version` is stored with `requested` labels
/// (PutSecretValue's VersionStages; `None` means AWSCURRENT).
pub fn attach_new_version(labels: &mut Labels, new_version: &str, requested: Option<&[String]>) {
    let default = [AWSCURRENT.to_string()];
    let requested = requested.unwrap_or(&default);
    // AWSCURRENT first, so that an explicitly requested AWSPREVIOUS still wins.
    if requested.iter().any(|l| l == AWSCURRENT) {
        move_current(labels, new_version);
    }
    for l in requested.iter().filter(|l| *l != AWSCURRENT) {
        labels.insert(l.clone(), new_version.to_string());
    }
    // The very first version of a secret is always current.
    if !labels.contains_key(AWSCURRENT) {
        labels.insert(AWSCURRENT.to_string(), new_version.to_string());
    }
}

/// UpdateSecretVersionStage: move, attach or remove one label.
pub fn update_stage(
    labels: &mut Labels,
    label: &str,
    remove_from: Option<&str>,
    move_to: Option<&str>,
) -> Result<(), EngineError> {
    let holder = labels.get(label).cloned();
    if let Some(from) = remove_from
        && holder.as_deref() != Some(from)
    {
        return Err(EngineError::InvalidParameter(format!(
            "The staging label {label} is not currently attached to version {from}."
        )));
    }
    match move_to {
        Some(to) => {
            if let Some(h) = &holder
                && h != to
                && remove_from.is_none()
            {
                return Err(EngineError::InvalidParameter(format!(
                    "The parameter RemoveFromVersionId can't be empty. Staging label {label} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                )));
            }
            if label == AWSCURRENT {
                move_current(labels, to);
            } else {
                labels.insert(label.to_string(), to.to_string());
            }
            Ok(())
        }
        None => {
            if remove_from.is_none() {
                return Err(EngineError::InvalidParameter(
                    "You must specify either MoveToVersionId or RemoveFromVersionId.".into(),
                ));
            }
            if label == AWSCURRENT {
                return Err(EngineError::InvalidParameter(
                    "You can only move staging label AWSCURRENT to a different secret version. It can't be completely removed."
                        .into(),
                ));
            }
            labels.remove(label);
            Ok(())
        }
    }
}

/// Labels of one version, sorted.
pub fn of_version(labels: &Labels, version_id: &str) -> Vec<String> {
    labels
        .iter()
        .filter(|(_, v)| *v == version_id)
        .map(|(l, _)| l.clone())
        .collect()
}

/// VersionId → labels for every version that has one.
pub fn by_version(labels: &Labels) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (l, v) in labels {
        map.entry(v.clone()).or_default().push(l.clone());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(l, v)| (l.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn first_version_is_current() {
        let mut l = Labels::new();
        attach_new_version(&mut l, "v1", None);
        assert_eq!(l, labels(&[("AWSCURRENT", "v1")]));
    }

    #[test]
    fn new_current_moves_previous() {
        let mut l = labels(&[("AWSCURRENT", "v2"), ("AWSPREVIOUS", "v1")]);
        attach_new_version(&mut l, "v3", None);
        assert_eq!(l, labels(&[("AWSCURRENT", "v3"), ("AWSPREVIOUS", "v2")]));
    }

    #[test]
    fn custom_labels_leave_current_alone() {
        let mut l = labels(&[("AWSCURRENT", "v1")]);
        attach_new_version(&mut l, "v2", Some(&["S0".into(), "S1".into()]));
        assert_eq!(
            l,
            labels(&[("AWSCURRENT", "v1"), ("S0", "v2"), ("S1", "v2")])
        );
    }

    #[test]
    fn move_requires_remove_from_when_attached_elsewhere() {
        let mut l = labels(&[("AWSCURRENT", "v1"), ("X", "v1")]);
        assert!(update_stage(&mut l, "X", None, Some("v2")).is_err());
        update_stage(&mut l, "X", Some("v1"), Some("v2")).unwrap();
        assert_eq!(l.get("X").map(String::as_str), Some("v2"));
    }

    #[test]
    fn moving_current_moves_previous() {
        let mut l = labels(&[("AWSCURRENT", "v2"), ("AWSPREVIOUS", "v1")]);
        update_stage(&mut l, "AWSCURRENT", Some("v2"), Some("v1")).unwrap();
        assert_eq!(l, labels(&[("AWSCURRENT", "v1"), ("AWSPREVIOUS", "v2")]));
    }

    #[test]
    fn current_cannot_be_removed() {
        let mut l = labels(&[("AWSCURRENT", "v1")]);
        assert!(update_stage(&mut l, "AWSCURRENT", Some("v1"), None).is_err());
        assert!(update_stage(&mut l, "AWSCURRENT", Some("v9"), None).is_err());
    }

    #[test]
    fn remove_custom_label() {
        let mut l = labels(&[("AWSCURRENT", "v1"), ("X", "v2")]);
        update_stage(&mut l, "X", Some("v2"), None).unwrap();
        assert_eq!(l, labels(&[("AWSCURRENT", "v1")]));
        assert!(update_stage(&mut l, "X", Some("v2"), None).is_err());
    }

    #[test]
    fn attach_to_unlabelled_version() {
        let mut l = labels(&[("AWSCURRENT", "v1")]);
        update_stage(&mut l, "NEW", None, Some("v2")).unwrap();
        assert_eq!(of_version(&l, "v2"), vec!["NEW".to_string()]);
        assert_eq!(by_version(&l).len(), 2);
    }
}
