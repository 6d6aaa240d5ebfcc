//! The alert sinks: where the delivery thread sends what the outbox holds.
//!
//! Each sink has a stable name (the `sink` column of `alert_outbox`), so
//! that alerts queued before a restart are delivered by the next run with
//! the same configuration. A webhook's name keeps only the scheme and host
//! of its URL plus a hash of the whole URL: webhook URLs often carry a
//! secret in their path (Slack, Teams), and sink names appear in logs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use orbwatch_store::OutboxItem;
use orbwatch_subscribe::{FetchConfig, FetchError, HttpClient};

use crate::AlertError;
use crate::cef::{Framing, SyslogHeader, frame, syslog_message};
use crate::document::AlertDocument;

/// Where JSON lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlTarget {
    Stdout,
    File(PathBuf),
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    pub url: String,
    /// Extra headers (`Authorization: Bearer …`), sent with every POST.
    pub headers: Vec<(String, String)>,
    /// Extra trusted CA certificates (PEM) for an https URL.
    pub ca_file: Option<PathBuf>,
    /// Connect and read timeout of one POST.
    pub timeout: Duration,
}

impl WebhookSpec {
    pub fn new(url: impl Into<String>) -> WebhookSpec {
        WebhookSpec {
            url: url.into(),
            headers: Vec::new(),
            ca_file: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A syslog/CEF receiver (a SIEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSpec {
    pub transport: Transport,
    /// `host:port`.
    pub addr: String,
    pub framing: Framing,
    pub header: SyslogHeader,
    /// Connect and write timeout (TCP).
    pub timeout: Duration,
}

impl FromStr for SyslogSpec {
    type Err = AlertError;

    /// `udp://HOST:PORT`, `tcp://HOST:PORT` (octet counting) or
    /// `tcp+lf://HOST:PORT` (newline framing).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            AlertError::Config(format!(
                "syslog target `{s}`: {why}; write udp://HOST:PORT, tcp://HOST:PORT or tcp+lf://HOST:PORT"
            ))
        };
        let (scheme, addr) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let (transport, framing) = match scheme.to_ascii_lowercase().as_str() {
            "udp" => (Transport::Udp, Framing::OctetCounting),
            "tcp" => (Transport::Tcp, Framing::OctetCounting),
            "tcp+lf" => (Transport::Tcp, Framing::Newline),
            _ => return Err(bad("unknown scheme")),
        };
        let port_ok = addr
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(bad("HOST:PORT expected"));
        }
        Ok(SyslogSpec {
            transport,
            addr: addr.to_string(),
            framing,
            header: SyslogHeader::default(),
            timeout: Duration::from_secs(10),
        })
    }
}

/// One configured sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    Jsonl(JsonlTarget),
    Webhook(WebhookSpec),
    Syslog(SyslogSpec),
}

impl SinkSpec {
    /// The name under which its alerts wait in the outbox.
    pub fn name(&self) -> String {
        match self {
            SinkSpec::Jsonl(JsonlTarget::Stdout) => "jsonl -".into(),
            SinkSpec::Jsonl(JsonlTarget::File(p)) => format!("jsonl {}", p.display()),
            SinkSpec::Webhook(w) => {
                let origin = w
                    .url
                    .split_once("://")
                    .map(|(scheme, rest)| {
                        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                        // Drop user:password@.
                        let host = host.rsplit('@').next().unwrap_or(host);
                        format!("{scheme}://{host}")
                    })
                    .unwrap_or_else(|| "?".into());
                format!(
                    "webhook {origin}#{}",
                    &orbwatch_detect::finding::fnv1a(&[&w.url])[..8]
                )
            }
            SinkSpec::Syslog(s) => format!(
                "syslog {} {}",
                match (s.transport, s.framing) {
                    (Transport::Udp, _) => "udp",
                    (Transport::Tcp, Framing::OctetCounting) => "tcp",
                    (Transport::Tcp, Framing::Newline) => "tcp+lf",
                },
                s.addr
            ),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// The sink refuses this alert for good (a webhook's 400): retrying
    /// cannot help, and it must not hold back the alerts behind it.
    pub permanent: bool,
}

impl SendError {
    fn transient(message: impl Into<String>) -> SendError {
        SendError {
            message: message.into(),
            permanent: false,
        }
    }
}

/// What one delivery round did: the first `delivered` items were accepted;
/// `error` says why the next one was not.
#[derive(Debug)]
pub struct SendOutcome {
    pub delivered: usize,
    pub error: Option<SendError>,
}

/// A connected sink.
pub(crate) trait Deliver: Send {
    /// Send `items` in order; stop at the first failure.
    fn send(&mut self, items: &[OutboxItem]) -> SendOutcome;
}

/// Open the sink (files are opened now, so that a bad path fails at
/// startup rather than in the delivery thread).
pub(crate) fn connect(spec: &SinkSpec) -> Result<Box<dyn Deliver>, AlertError> {
    Ok(match spec {
        SinkSpec::Jsonl(JsonlTarget::Stdout) => Box::new(JsonlSink { file: None }),
        SinkSpec::Jsonl(JsonlTarget::File(p)) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    AlertError::Config(format!(
                        "cannot open the alert file {} for appending: {e}; check that its folder exists and is writable",
                        p.display()
                    ))
                })?;
            Box::new(JsonlSink { file: Some(file) })
        }
        SinkSpec::Webhook(w) => {
            // A URL that can never work would otherwise be retried forever.
            let lower = w.url.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/'))
                || w.url.contains(char::is_whitespace)
            {
                return Err(AlertError::Config(format!(
                    "webhook URL `{}` is not an http:// or https:// URL with a host",
                    w.url
                )));
            }
            let cfg = FetchConfig {
                timeout: w.timeout,
                retries: 0,
                max_bytes: 1024 * 1024,
                ca_file: w.ca_file.clone(),
                headers: w.headers.clone(),
                ..FetchConfig::default()
            };
            let client = HttpClient::new(cfg)
                .map_err(|e| AlertError::Config(format!("webhook {}: {e}", spec.name())))?;
            Box::new(WebhookSink {
                client,
                url: w.url.clone(),
            })
        }
        SinkSpec::Syslog(s) => Box::new(SyslogSink {
            spec: s.clone(),
            udp: None,
            tcp: None,
        }),
    })
}

struct JsonlSink {
    /// `None`: stdout.
    file: Option<File>,
}

impl Deliver for JsonlSink {
    /// The whole batch is written, then flushed (and synced for a file)
    /// before any of it counts as delivered.
    fn send(&mut self, items: &[OutboxItem]) -> SendOutcome {
        let mut buf = Vec::new();
        for it in items {
            // The body is compact JSON without newlines (serde_json).
            buf.extend_from_slice(it.body.trim_end().as_bytes());
            buf.push(b'\n');
        }
        let res = match &mut self.file {
            Some(f) => f
                .write_all(&buf)
                .and_then(|()| f.flush())
                .and_then(|()| f.sync_data()),
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(&buf).and_then(|()| out.flush())
            }
        };
        match res {
            Ok(()) => SendOutcome {
                delivered: items.len(),
                error: None,
            },
            Err(e) => SendOutcome {
                delivered: 0,
                error: Some(SendError::transient(format!("writing failed: {e}"))),
            },
        }
    }
}

struct WebhookSink {
    client: HttpClient,
    url: String,
}

/// Statuses that say "this body will never be accepted": retrying would
/// block every alert behind it forever.
fn permanent_status(status: u16) -> bool {
    matches!(status, 400 | 413 | 415 | 422)
}

impl Deliver for WebhookSink {
    /// One POST per alert, in order; the first failure stops the round.
    fn send(&mut self, items: &[OutboxItem]) -> SendOutcome {
        for (i, it) in items.iter().enumerate() {
            let headers = [
                ("Idempotency-Key", it.alert_id.as_str()),
                ("X-Orbwatch-Alert-Id", it.alert_id.as_str()),
            ];
            if let Err(e) = self
                .client
                .post_json(&self.url, it.body.as_bytes(), &headers)
            {
                let permanent =
                    matches!(&e, FetchError::Status { status, .. } if permanent_status(*status));
                return SendOutcome {
                    delivered: i,
                    error: Some(SendError {
                        message: e.to_string(),
                        permanent,
                    }),
                };
            }
        }
        SendOutcome {
            delivered: items.len(),
            error: None,
        }
    }
}

struct SyslogSink {
    spec: SyslogSpec,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
}

impl SyslogSink {
    fn resolve(&self) -> Result<std::net::SocketAddr, SendError> {
        self.spec
            .addr
            .to_socket_addrs()
            .map_err(|e| SendError::transient(format!("cannot resolve {}: {e}", self.spec.addr)))?
            .next()
            .ok_or_else(|| SendError::transient(format!("{} has no address", self.spec.addr)))
    }

    fn send_one(&mut self, msg: &str) -> Result<(), SendError> {
        match self.spec.transport {
            Transport::Udp => {
                if self.udp.is_none() {
                    let to = self.resolve()?;
                    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let s = UdpSocket::bind(bind)
                        .and_then(|s| s.connect(to).map(|()| s))
                        .map_err(|e| SendError::transient(format!("UDP socket: {e}")))?;
                    self.udp = Some(s);
                }
                let Some(s) = &self.udp else {
                    return Err(SendError::transient("no UDP socket"));
                };
                s.send(msg.as_bytes()).map(|_| ()).map_err(|e| {
                    self.udp = None;
                    SendError::transient(format!("UDP send to {}: {e}", self.spec.addr))
                })
            }
            Transport::Tcp => {
                if self.tcp.is_none() {
                    let to = self.resolve()?;
                    let s = TcpStream::connect_timeout(&to, self.spec.timeout)
                        .and_then(|s| s.set_write_timeout(Some(self.spec.timeout)).map(|()| s))
                        .map_err(|e| {
                            SendError::transient(format!("connecting to {}: {e}", self.spec.addr))
                        })?;
                    self.tcp = Some(s);
                }
                let Some(s) = &mut self.tcp else {
                    return Err(SendError::transient("no TCP connection"));
                };
                let framed = frame(msg, self.spec.framing);
                s.write_all(&framed).and_then(|()| s.flush()).map_err(|e| {
                    // Reconnect next time: part of a frame may have gone.
                    self.tcp = None;
                    SendError::transient(format!("sending to {}: {e}", self.spec.addr))
                })
            }
        }
    }
}

impl Deliver for SyslogSink {
    fn send(&mut self, items: &[OutboxItem]) -> SendOutcome {
        for (i, it) in items.iter().enumerate() {
            let doc: AlertDocument = match serde_json::from_str(&it.body) {
                Ok(d) => d,
                Err(e) => {
                    return SendOutcome {
                        delivered: i,
                        error: Some(SendError {
                            message: format!("the queued alert is not an alert document ({e})"),
                            permanent: true,
                        }),
                    };
                }
            };
            let msg = syslog_message(&self.spec.header, &doc);
            if let Err(e) = self.send_one(&msg) {
                return SendOutcome {
                    delivered: i,
                    error: Some(e),
                };
            }
        }
        SendOutcome {
            delivered: items.len(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_names_hide_the_path() {
        let s = SinkSpec::Webhook(WebhookSpec::new(
            "https://user:pw@hooks.example.com/services/T000/SECRET?x=1",
        ));
        let n = s.name();
        assert!(n.starts_with("webhook https://hooks.example.com#"), "{n}");
        assert!(!n.contains("SECRET") && !n.contains("pw"), "{n}");
    }

    #[test]
    fn syslog_targets_parse() {
        let s: SyslogSpec = "tcp://siem.example:6514".parse().unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!(s.framing, Framing::OctetCounting);
        let s: SyslogSpec = "tcp+lf://[::1]:514".parse().unwrap();
        assert_eq!(s.framing, Framing::Newline);
        for bad in [
            "siem:514",
            "udp://siem",
            "udp://:514",
            "ftp://a:1",
            "udp://a:0",
        ] {
            assert!(bad.parse::<SyslogSpec>().is_err(), "{bad}");
        }
    }
}
