//! Object names in request paths. Tilt allows names such as `bootstrap (secrets)`; kube-rs puts the name into
//! the URL as it is, so every client call that takes a name passes it through [`path_name`] first. The API
//! server percent-decodes each path segment.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters that cannot appear as they are in a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `name` percent-encoded for use as one path segment (unchanged for ordinary names).
pub fn path_name(name: impl AsRef<str>) -> String {
    utf8_percent_encode(name.as_ref(), SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::path_name;

    #[test]
    fn encodes_what_a_path_cannot_hold() {
        assert_eq!(path_name("web:update"), "web:update");
        assert_eq!(path_name("bootstrap (secrets)"), "bootstrap%20(secrets)");
        assert_eq!(path_name("a/b%c?d#é"), "a%2Fb%25c%3Fd%23%C3%A9");
    }
}
