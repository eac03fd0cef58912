//! LIST: one page of a kind's objects (`limit` + `continue`, selectors), in the negotiated format.

use base64::Engine;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Body, Call, partial_metadata, yaml_response};
use crate::error::{ApiError, Error};
use crate::http::{Format, bytes_response, table};
use crate::store::{ListPage, StoredObject};

impl Call<'_> {
    pub(super) fn list(&self) -> Result<Response<Body>, Error> {
        self.query.validate_list_options()?;
        let (start, token_rv) = match &self.query.continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)?;
                (Some(start), Some(rv))
            }
            None => (None, None),
        };
        let filter = |o: &StoredObject| self.selected(o);
        let page = match self.query.fields.exact_name() {
            // One namespace (or none) and one name pin a single key.
            Some(name) if !self.kind.namespaced || self.namespace.is_some() => {
                let rv = self.state.store.current_rv();
                let items = self.store.get(self.ns(), name).filter(|o| filter(o)).into_iter().collect();
                ListPage { rv, items, more: false }
            }
            _ => self.store.list(self.namespace.as_deref(), start.as_deref(), self.query.limit, filter),
        };
        // All pages of one list report the first page's version; a watch from it replays what changed since.
        let rv = token_rv.unwrap_or(page.rv);
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if page.more
            && let Some(last) = page.items.last()
        {
            meta["continue"] = json!(encode_continue(rv, &last.key()));
        }
        let list_kind = &self.kind.list_kind;
        match self.format {
            Format::Json => {
                let mut out = Vec::with_capacity(page.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
                out.extend_from_slice(
                    format!(
                        r#"{{"apiVersion":"{}","kind":"{}","metadata":{},"items":["#,
                        self.kind.api_version(),
                        list_kind,
                        meta
                    )
                    .as_bytes(),
                );
                for (i, o) in page.items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&o.json);
                }
                out.extend_from_slice(b"]}");
                Ok(bytes_response(StatusCode::OK, "application/json", Bytes::from(out)))
            }
            Format::Yaml => {
                let items: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
                Ok(yaml_response(
                    StatusCode::OK,
                    &json!({"apiVersion": self.kind.api_version(), "kind": list_kind, "metadata": meta, "items": items}),
                )?)
            }
            Format::Table => {
                let values: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
                let t = table::table(self.kind, values.iter(), meta, &self.query.include_object);
                Ok(crate::http::json_response(StatusCode::OK, &t))
            }
            Format::PartialMetadata => {
                let items: Vec<Value> = page.items.iter().map(|o| partial_metadata(&o.value())).collect();
                Ok(crate::http::json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": meta, "items": items}),
                ))
            }
        }
    }
}

fn encode_continue(rv: u64, last: &str) -> String {
    let token = json!({"rv": rv, "start": last});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((v["rv"].as_u64().ok_or_else(bad)?, v["start"].as_str().ok_or_else(bad)?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "abc");
        assert_eq!(decode_continue(&t).unwrap(), (42, "abc".to_string()));
        assert!(decode_continue("!!").is_err());
    }
}
