//! The query parameters of object and collection requests (`watch`, selectors, paging, `dryRun`,
//! `fieldManager`, `fieldValidation`, …).

use crate::error::{ApiError, Cause};
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
    /// `sendInitialEvents`, when given (kube-apiserver checks whether it is set, not only its value).
    pub send_initial_events: Option<bool>,
    pub resource_version_match: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub dry_run: bool,
    /// A `dryRun` value other than `All`, refused by the writes ([`Query::check_write_options`]).
    pub bad_dry_run: Option<String>,
    /// A `fieldValidation` value it does not know, refused likewise.
    pub bad_field_validation: Option<String>,
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
            send_initial_events: None,
            resource_version_match: None,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
            limit: 0,
            continue_token: None,
            dry_run: false,
            bad_dry_run: None,
            bad_field_validation: None,
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
                "sendInitialEvents" => q.send_initial_events = Some(parse_bool(&k, &v)?),
                "resourceVersionMatch" if !v.is_empty() => q.resource_version_match = Some(v.into_owned()),
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
                    other => q.bad_dry_run = Some(other.to_string()),
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
                            q.bad_field_validation = Some(other.to_string());
                            FieldValidation::Warn
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

    /// A write's `dryRun` must be `All` and its `fieldValidation` one it knows: else 422 naming the write's
    /// options kind (`CreateOptions`, …), as kube-apiserver answers.
    pub fn check_write_options(&self, options: &str) -> Result<(), ApiError> {
        let mut causes = Vec::new();
        if let Some(v) = &self.bad_dry_run {
            causes.push(Cause {
                reason: "FieldValueNotSupported",
                message: format!("Unsupported value: [{v:?}]: supported values: \"All\""),
                field: "dryRun".into(),
            });
        }
        if let Some(v) = &self.bad_field_validation {
            causes.push(Cause {
                reason: "FieldValueNotSupported",
                message: format!("Unsupported value: {v:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""),
                field: "fieldValidation".into(),
            });
        }
        if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("meta.k8s.io", options, "", causes)) }
    }

    /// kube-apiserver's checks of a list's or watch's options: `resourceVersionMatch` and `sendInitialEvents`.
    pub fn validate_list_options(&self) -> Result<(), ApiError> {
        let forbidden = |field: &str, message: String| Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {message}"),
            field: field.into(),
        };
        let not_supported = |v: &str, supported: &str| Cause {
            reason: "FieldValueNotSupported",
            message: format!("Unsupported value: {v:?}: supported values: {supported}"),
            field: "resourceVersionMatch".into(),
        };
        let mut causes = Vec::new();
        let rv_match = self.resource_version_match.as_deref();
        if self.watch {
            if self.send_initial_events.is_some() && rv_match != Some("NotOlderThan") {
                causes.push(forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan".into(),
                ));
            }
            if let Some(m) = rv_match {
                if self.send_initial_events.is_none() {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".into(),
                    ));
                }
                if m != "NotOlderThan" {
                    causes.push(not_supported(m, "\"NotOlderThan\""));
                }
            }
        } else {
            if let Some(m) = rv_match {
                if self.resource_version.is_none() {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
                    ));
                }
                if self.continue_token.is_some() {
                    causes.push(forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided".into(),
                    ));
                }
                if m != "Exact" && m != "NotOlderThan" {
                    causes.push(not_supported(m, "\"Exact\", \"NotOlderThan\", \"\""));
                }
            }
            if self.send_initial_events.is_some() {
                causes.push(forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list".into()));
            }
        }
        if causes.is_empty() { Ok(()) } else { Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", causes)) }
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
        let bad = Query::parse(Some("dryRun=Some&fieldValidation=Loose")).unwrap();
        let err = bad.check_write_options("CreateOptions").unwrap_err().to_status();
        assert_eq!((err["code"].as_u64(), err["details"]["causes"].as_array().map(Vec::len)), (Some(422), Some(2)));
        assert!(Query::parse(Some("dryRun=All")).unwrap().check_write_options("PatchOptions").is_ok());
    }
}
