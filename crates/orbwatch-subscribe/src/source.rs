//! The SOURCE of a subscription: which protocol, and where.

use std::fmt;

/// Where a subscribed feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file over HTTP(S), in any format `feed add` reads.
    Http { url: String },
    /// A TAXII 2.1 collection: `…/API-ROOT/collections/ID/` (with the
    /// trailing slash TAXII requires); objects are at `objects/` below it.
    Taxii { collection_url: String },
    /// MISP's static feed layout: the URL of `manifest.json`; event files
    /// are `<uuid>.json` beside it.
    MispFeed { manifest_url: String },
    /// A MISP instance's REST API (`/events/restSearch`).
    MispRest { base_url: String },
}

/// A SOURCE that is not one of the accepted forms.
#[derive(Debug, thiserror::Error)]
#[error("`{source_text}` is not a feed source: {reason}")]
pub struct SourceError {
    pub source_text: String,
    pub reason: String,
}

fn err(s: &str, reason: impl Into<String>) -> SourceError {
    SourceError {
        source_text: s.to_string(),
        reason: reason.into(),
    }
}

/// `http://` or `https://` with a host.
fn check_http_url(whole: &str, url: &str) -> Result<(), SourceError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            err(
                whole,
                "write https://HOST/PATH, taxii2+https://HOST/API-ROOT/collections/ID/, \
                 misp-feed+https://HOST/PATH/manifest.json or misp+https://HOST",
            )
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(err(whole, "the URL has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(whole, "the URL contains spaces or control characters"));
    }
    Ok(())
}

impl Source {
    /// Parse a SOURCE as the user writes it.
    pub fn parse(s: &str) -> Result<Source, SourceError> {
        let t = s.trim();
        if let Some(url) = t.strip_prefix("taxii2+") {
            check_http_url(t, url)?;
            let mut url = url.to_string();
            if !url.ends_with('/') {
                url.push('/');
            }
            let path_segments: Vec<&str> = url.split('/').collect();
            // …/collections/ID/ → the segment before ID is "collections".
            let n = path_segments.len();
            if n < 3 || path_segments[n - 3] != "collections" || path_segments[n - 2].is_empty() {
                return Err(err(
                    t,
                    "a TAXII 2.1 source is a collection URL: taxii2+https://HOST/API-ROOT/collections/ID/ \
                     (or a discovery URL with --collection ID)",
                ));
            }
            return Ok(Source::Taxii {
                collection_url: url,
            });
        }
        if let Some(url) = t.strip_prefix("misp-feed+") {
            check_http_url(t, url)?;
            let url = if url.ends_with("/manifest.json") {
                url.to_string()
            } else if url.ends_with('/') {
                format!("{url}manifest.json")
            } else {
                format!("{url}/manifest.json")
            };
            return Ok(Source::MispFeed { manifest_url: url });
        }
        if let Some(url) = t.strip_prefix("misp+") {
            check_http_url(t, url)?;
            return Ok(Source::MispRest {
                base_url: url.trim_end_matches('/').to_string(),
            });
        }
        if t.contains("://") {
            check_http_url(t, t)?;
            return Ok(Source::Http { url: t.to_string() });
        }
        Err(err(
            t,
            "a subscription fetches over the network; for a local file use `orbwatch feed add FILE`",
        ))
    }

    /// The URL requested first, for messages and for the host check of
    /// credentials.
    pub fn url(&self) -> &str {
        match self {
            Source::Http { url } => url,
            Source::Taxii { collection_url } => collection_url,
            Source::MispFeed { manifest_url } => manifest_url,
            Source::MispRest { base_url } => base_url,
        }
    }

    /// Short protocol name for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Http { .. } => "http",
            Source::Taxii { .. } => "taxii2",
            Source::MispFeed { .. } => "misp-feed",
            Source::MispRest { .. } => "misp",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http { url } => f.write_str(url),
            Source::Taxii { collection_url } => write!(f, "taxii2+{collection_url}"),
            Source::MispFeed { manifest_url } => write!(f, "misp-feed+{manifest_url}"),
            Source::MispRest { base_url } => write!(f, "misp+{base_url}"),
        }
    }
}

/// Is the URL's host the loopback (where plain HTTP is acceptable for
/// credentials: tests and local proxies)?
pub fn is_loopback(url: &str) -> bool {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    let host = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            Source::parse("taxii2+https://h.example/api1/collections/abc").unwrap(),
            Source::Taxii {
                collection_url: "https://h.example/api1/collections/abc/".into()
            }
        );
        assert_eq!(
            Source::parse("misp-feed+https://h.example/feed/").unwrap(),
            Source::MispFeed {
                manifest_url: "https://h.example/feed/manifest.json".into()
            }
        );
        assert_eq!(
            Source::parse("misp+https://misp.example/").unwrap(),
            Source::MispRest {
                base_url: "https://misp.example".into()
            }
        );
        assert!(matches!(
            Source::parse("https://h.example/list.txt").unwrap(),
            Source::Http { .. }
        ));
    }

    #[test]
    fn refuses_bad_sources() {
        for s in [
            "",
            "/tmp/list.txt",
            "ftp://h/x",
            "https://",
            "taxii2+https://h.example/api1/",
            "taxii2+https://h.example/collections//",
            "https://h.example/a b",
        ] {
            assert!(Source::parse(s).is_err(), "{s:?} was accepted");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/x"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:9/x"));
        assert!(!is_loopback("http://127.0.0.1.example/x"));
        assert!(!is_loopback("https://example.org/"));
    }
}
