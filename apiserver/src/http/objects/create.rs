//! POST: creating an object (`generateName`, name validation).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;

use super::{Body, Call, Operation, Target};
use crate::error::{Cause, Error};
use crate::store::Precondition;

pub(super) fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name or generateName is required".into());
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('%') {
        return Err(format!("Invalid value: {name:?}: may not be '.' or '..' and may not contain '/' or '%'"));
    }
    if name.len() > 253 {
        return Err(format!("Invalid value: {name:?}: must be no more than 253 characters"));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

impl Call<'_> {
    pub(super) fn create(&self, body: Bytes) -> Result<Response<Body>, Error> {
        self.query.check_write_options("CreateOptions")?;
        let mut obj = self.parse_write_body(&body)?;
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = match obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match obj["metadata"]["generateName"].as_str().filter(|n| !n.is_empty()) {
                // As kube-apiserver: the prefix cut to 58 characters, so that the name fits a DNS label.
                Some(prefix) => format!("{}{}", truncate(prefix, 58), random_suffix()),
                None => {
                    return Err(Error::from(self.invalid(
                        "",
                        Cause {
                            reason: "FieldValueRequired",
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        },
                    )));
                }
            },
        };
        // kube-apiserver checks a generateName prefix whenever it is set.
        if let Some(prefix) = obj["metadata"]["generateName"].as_str().filter(|p| !p.is_empty()) {
            // Room for the 5 random characters within a name's 253.
            let fits = || match prefix.len() {
                0..=248 => Ok(()),
                _ => Err(format!("Invalid value: {prefix:?}: must be no more than 248 characters")),
            };
            valid_name(prefix).and_then(|()| fits()).map_err(|message| {
                self.invalid(
                    &name,
                    Cause { reason: "FieldValueInvalid", message, field: "metadata.generateName".into() },
                )
            })?;
        }
        let mut warnings = Vec::new();
        let written =
            self.write(&name, None, obj, Target::Main, Operation::Create, Precondition::Absent, &mut warnings)?;
        self.respond(StatusCode::CREATED, written, &warnings)
    }
}
