//! The `shlex` module: `shlex.quote()` and `shlex.split()`, with Python's `shlex` semantics (POSIX mode), so
//! that Tiltfiles can build `local()` commands from untrusted strings safely.

use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::values::Value;

use super::string_arg;

/// Registers the `shlex` namespace.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    builder.namespace("shlex", shlex_members);
}

#[starlark_module]
fn shlex_members(builder: &mut GlobalsBuilder) {
    /// `s` quoted for a POSIX shell: unchanged when it has only safe characters, else in single quotes.
    fn quote<'v>(s: Value<'v>) -> anyhow::Result<String> {
        Ok(quote_str(&string_arg(s, "s")?))
    }

    /// `s` split into words the way a POSIX shell would (quotes and backslashes; no expansion).
    fn split<'v>(s: Value<'v>) -> anyhow::Result<Vec<String>> {
        split_str(&string_arg(s, "s")?)
    }
}

/// Python's `shlex.quote`.
pub(crate) fn quote_str(s: &str) -> String {
    if s.is_empty() {
        return "''".to_owned();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// Python's `shlex.split` (POSIX mode, no comments).
pub(crate) fn split_str(s: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => anyhow::bail!("No closing quotation"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('\\' | '"' | '$' | '`' | '\n')) => w.push(e),
                            Some(other) => {
                                w.push('\\');
                                w.push(other);
                            }
                            None => anyhow::bail!("No closing quotation"),
                        },
                        Some(c) => w.push(c),
                        None => anyhow::bail!("No closing quotation"),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(e) => word.get_or_insert_with(String::new).push(e),
                None => anyhow::bail!("No escaped character"),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_python() {
        assert_eq!(quote_str(""), "''");
        assert_eq!(quote_str("abc-1.2/x=y:z,@%+_"), "abc-1.2/x=y:z,@%+_");
        assert_eq!(quote_str("a b"), "'a b'");
        assert_eq!(quote_str("it's"), r#"'it'"'"'s'"#);
        assert_eq!(quote_str("é"), "'é'");
    }

    #[test]
    fn split_like_python() {
        assert_eq!(split_str(r#"a 'b c' "d \"e\" \x" f\ g ''"#).unwrap(), vec!["a", "b c", r#"d "e" \x"#, "f g", ""]);
        assert_eq!(split_str("  ").unwrap(), Vec::<String>::new());
        assert!(split_str("'open").is_err());
        assert!(split_str("trailing\\").is_err());
    }
}
