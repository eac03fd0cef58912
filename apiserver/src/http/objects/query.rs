//! The query parameters of object and collection requests (`watch`, selectors, paging, `dryRun`,
//! `fieldManager`, `fieldValidation`, …).

use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};

/// `fieldValidation`: what to do with fields the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Reject with 400.
    Strict,
    /// Drop them, with a `Warning` header.
    Warn,
    /// Drop them silently.
    Ignore,
}

/// The query parameters the API understands.
pub(crate) struct Query {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
    pub field_validation: FieldValidation,
    pub include_object: String,
    /// DELETE's `propagationPolicy`, as given (checked with the rest of the DeleteOptions).
    pub propagation_policy: Option<String>,
    /// DELETE's deprecated `orphanDependents`.
    pub orphan_dependents: Option<bool>,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!("invalid value {v:?} for {key}: expected true or false"))),
    }
}

impl Query {
    /// Parses a query string; empty pairs (kube-rs sends `?&…`) are skipped.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut q = Query {
            watch: false,
            resource_version: None,
            timeout_seconds: None,
            allow_bookmarks: false,
            send_initial_events: false,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
            limit: 0,
            continue_token: None,
            dry_run: false,
            field_manager: None,
            force: false,
            field_validation: FieldValidation::Warn,
            include_object: "Metadata".into(),
            propagation_policy: None,
            orphan_dependents: None,
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "watch" => q.watch = parse_bool(&k, &v)?,
                "resourceVersion" if !v.is_empty() => q.resource_version = Some(v.into_owned()),
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid value {v:?} for timeoutSeconds: expected a number"))
                    })?)
                }
                "allowWatchBookmarks" => q.allow_bookmarks = parse_bool(&k, &v)?,
                "sendInitialEvents" => q.send_initial_events = parse_bool(&k, &v)?,
                "labelSelector" => {
                    q.labels = LabelSelector::parse(&v)
                        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?
                }
                "fieldSelector" => q.fields = FieldSelector::parse(&v).map_err(ApiError::bad_request)?,
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid value {v:?} for limit: expected a number"))
                    })?;
                    q.limit = n.max(0) as usize;
                }
                "continue" if !v.is_empty() => q.continue_token = Some(v.into_owned()),
                "dryRun" => match v.as_ref() {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Unsupported value: {other:?}: supported values: \"All\""
                        )));
                    }
                },
                "fieldManager" if !v.is_empty() => {
                    if v.len() > 128 {
                        return Err(ApiError::bad_request("fieldManager: Too long: may not be longer than 128"));
                    }
                    q.field_manager = Some(v.into_owned())
                }
                "force" => q.force = parse_bool(&k, &v)?,
                "fieldValidation" => {
                    q.field_validation = match v.as_ref() {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "includeObject" => q.include_object = v.into_owned(),
                "propagationPolicy" if !v.is_empty() => q.propagation_policy = Some(v.into_owned()),
                "orphanDependents" => q.orphan_dependents = Some(parse_bool(&k, &v)?),
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_skips_empty_pairs_and_rejects_bad_values() {
        let q = Query::parse(Some("&watch=true&&resourceVersion=5&labelSelector=a%3Db")).unwrap();
        assert!(q.watch);
        assert_eq!(q.resource_version.as_deref(), Some("5"));
        assert!(Query::parse(Some("limit=x")).is_err());
        assert!(Query::parse(Some("labelSelector=a%20in%20x")).is_err());
        assert!(Query::parse(Some("dryRun=Some")).is_err());
    }
}
