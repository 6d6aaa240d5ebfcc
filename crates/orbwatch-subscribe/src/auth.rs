//! Request headers, and the credentials in them.
//!
//! A header is kept as a template: `${VAR}` is replaced by the environment
//! variable `VAR` and `${file:PATH}` by the contents of `PATH` (which must
//! have mode 0600) each time a request is made. Only the template is
//! stored, so a secret never lands in the store, in `ps` output of a stored
//! command line, or in shell history. A header whose name says it carries a
//! credential (`Authorization`, `Cookie`, `…Key`, `…Token`) is refused when
//! its value is literal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A header of every request of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSpec {
    pub name: String,
    /// The value, with `${VAR}` and `${file:PATH}` references.
    pub template: String,
}

/// A credential reference given with `--token-env` or `--token-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Env(String),
    File(PathBuf),
}

/// Why a header cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--header `{0}`: write NAME: VALUE, e.g. 'Authorization: Bearer ${{FEED_TOKEN}}'")]
    Syntax(String),
    #[error(
        "--header `{name}: …` carries a credential as a literal value, which would be stored in \
         clear; put it in an environment variable or a 0600 file and write \
         '{name}: Bearer ${{FEED_TOKEN}}' or '{name}: ${{file:/path/to/token}}' (or use --token-env / --token-file)"
    )]
    LiteralSecret { name: String },
    #[error(
        "header `{header}` needs the environment variable {var}, which is not set; export it before the update"
    )]
    MissingEnv { header: String, var: String },
    #[error("header `{header}`: cannot read the credentials file {path}: {reason}")]
    File {
        header: String,
        path: PathBuf,
        reason: String,
    },
    #[error("header `{header}`: unclosed `${{` in its value; write ${{VAR}} or ${{file:PATH}}")]
    Unclosed { header: String },
    #[error(
        "header `{header}` would send a credential over plain http to {url}; use https (plain http is allowed to the loopback only)"
    )]
    PlainHttp { header: String, url: String },
}

fn is_sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || n.contains("token")
        || n.contains("key")
        || n.contains("secret")
        || n.contains("password")
}

impl HeaderSpec {
    /// Parse `NAME: VALUE` from the command line, refusing literal secrets.
    pub fn parse(s: &str) -> Result<HeaderSpec, AuthError> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| AuthError::Syntax(s.into()))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name || value.contains(['\r', '\n']) {
            return Err(AuthError::Syntax(s.into()));
        }
        let spec = HeaderSpec {
            name: name.to_string(),
            template: value.trim().to_string(),
        };
        if is_sensitive(name) && !spec.template.contains("${") {
            return Err(AuthError::LiteralSecret { name: name.into() });
        }
        Ok(spec)
    }

    /// The `Authorization` header for a credential reference. MISP takes
    /// the bare key; other servers a bearer token.
    pub fn authorization(cred: &Credential, bearer: bool) -> HeaderSpec {
        let reference = match cred {
            Credential::Env(v) => format!("${{{v}}}"),
            Credential::File(p) => format!("${{file:{}}}", p.display()),
        };
        HeaderSpec {
            name: "Authorization".into(),
            template: if bearer {
                format!("Bearer {reference}")
            } else {
                reference
            },
        }
    }

    /// Does the value come from the environment or a file?
    pub fn has_reference(&self) -> bool {
        self.template.contains("${")
    }

    /// The value to send, with references replaced.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, AuthError> {
        let mut out = String::new();
        let mut rest = self.template.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| AuthError::Unclosed {
                header: self.name.clone(),
            })?;
            let reference = &after[..end];
            if let Some(path) = reference.strip_prefix("file:") {
                out.push_str(&read_secret_file(&self.name, Path::new(path))?);
            } else {
                let v = env(reference).filter(|v| !v.is_empty()).ok_or_else(|| {
                    AuthError::MissingEnv {
                        header: self.name.clone(),
                        var: reference.to_string(),
                    }
                })?;
                out.push_str(v.trim());
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        if out.contains(['\r', '\n']) {
            return Err(AuthError::Syntax(format!(
                "{}: <value with a line break>",
                self.name
            )));
        }
        Ok(out)
    }
}

/// Read a credential from a file that only its owner can read.
fn read_secret_file(header: &str, path: &Path) -> Result<String, AuthError> {
    let fail = |reason: String| AuthError::File {
        header: header.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "it has mode {mode:04o}, so others can read it; run `chmod 600 {}`",
                path.display()
            )));
        }
    }
    if meta.len() > 64 * 1024 {
        return Err(fail(
            "it is over 64 KiB; it should hold one credential".into(),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let v = text.trim();
    if v.is_empty() {
        return Err(fail("it is empty".into()));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "TOK").then(|| "s3cret".to_string())
    }

    #[test]
    fn literal_secrets_are_refused() {
        assert!(matches!(
            HeaderSpec::parse("Authorization: Bearer abc"),
            Err(AuthError::LiteralSecret { .. })
        ));
        assert!(matches!(
            HeaderSpec::parse("X-Api-Key: abc"),
            Err(AuthError::LiteralSecret { .. })
        ));
        assert!(HeaderSpec::parse("Accept: text/plain").is_ok());
        assert!(HeaderSpec::parse("no colon").is_err());
        assert!(HeaderSpec::parse(": x").is_err());
    }

    #[test]
    fn references_resolve() {
        let h = HeaderSpec::parse("Authorization: Bearer ${TOK}").unwrap();
        assert_eq!(h.resolve(&env).unwrap(), "Bearer s3cret");
        let h = HeaderSpec::parse("Authorization: ${NOPE}").unwrap();
        assert!(matches!(h.resolve(&env), Err(AuthError::MissingEnv { .. })));
        let h = HeaderSpec::parse("Authorization: ${TOK").unwrap();
        assert!(matches!(h.resolve(&env), Err(AuthError::Unclosed { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "abc\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let h = HeaderSpec::authorization(&Credential::File(p.clone()), false);
        let e = h.resolve(&env).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(h.resolve(&env).unwrap(), "abc");
    }
}
