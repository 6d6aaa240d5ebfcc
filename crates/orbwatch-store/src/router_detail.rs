//! What a router step found (`router_history.detail_json`), as one type
//! that the writer (`orbwatch routers audit` and `reboot`) and every
//! reader (the report, the API, `routers history`) share.
//!
//! Why a type: the writer used to build the JSON by hand and the report
//! picked fields out of it by name, so a key renamed on one side made the
//! report silently show less. Now a renamed field is a compile error on
//! both sides, or, for rows already written, a step shown as its raw JSON.
//!
//! The JSON is unchanged: no tag (the `step` column says which kind of
//! step it is), the keys in the order the writer always wrote them (the
//! workspace's `serde_json` keeps insertion order), `null` where it wrote
//! `null`. A stored detail is typed only when its typed form writes back
//! to exactly the same JSON; anything else (a step kind this build does
//! not know, a shape an older or newer writer left) stays
//! [`RouterStepDetail::Other`], shown and passed on as it is, never an
//! error.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What one router step found, by kind of step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RouterStepDetail {
    /// `audited` or `error` of `routers audit`.
    Audit(AuditDetail),
    /// `precheck` passed: the audit before the reboot, and the health
    /// checks that must pass before it too.
    PrecheckPassed(PrecheckPassed),
    /// `precheck` failed on a health check: the router answered, but
    /// was not rebooted blind.
    PrecheckUnhealthy(PrecheckUnhealthy),
    /// `sent`: the reboot command.
    Sent(SentDetail),
    /// `dry_run`: the command a real run would have sent.
    DryRun(DryRunDetail),
    /// `returned`: back after this long.
    Returned(ReturnedDetail),
    /// `proof`: the uptimes and boot ids that show the reboot happened.
    Proof(ProofDetail),
    /// `health`: each check after the reboot.
    Health(Vec<HealthCheck>),
    /// `reaudit`: the pre-check's findings sorted by the re-audit.
    Reaudit(ReauditDetail),
    /// `refused`, `skipped`, `not_started`, `never_returned`: why.
    Reason(ReasonDetail),
    /// A step that stopped on an error (`precheck`, `sent`, `returned`).
    Failed(FailedDetail),
    /// Any other detail, kept as it was written.
    Other(serde_json::Value),
}

/// `routers audit`'s step for one router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditDetail {
    /// Findings of the audit.
    pub findings: usize,
    pub uptime_secs: Option<f64>,
    /// Why the audit was not done (an `error` step).
    pub error: Option<String>,
    /// The router's SSH host key was not the one known.
    pub host_key_changed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecheckPassed {
    pub uptime_secs: f64,
    pub boot_id: Option<String>,
    /// Findings of the pre-check's audit.
    pub findings: usize,
    pub health: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrecheckUnhealthy {
    pub uptime_secs: f64,
    pub health: Vec<HealthCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentDetail {
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunDetail {
    pub would_run: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnedDetail {
    /// Seconds from the reboot command to SSH answering again.
    pub after_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofDetail {
    pub uptime_before: f64,
    pub uptime_after: f64,
    /// `None` when the router gives no boot id.
    pub boot_id_changed: Option<bool>,
}

/// One health check: `ssh`, `listening <port>`, `wan_ping <address>`,
/// `dns <name> @<server>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// The check names of the pre-check's findings, sorted by the re-audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReauditDetail {
    /// Gone after the reboot.
    pub cleared: Vec<String>,
    /// Still there (the device must be re-flashed or replaced).
    pub persistent: Vec<String>,
    /// Not seen by the pre-check.
    pub new: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonDetail {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedDetail {
    pub error: String,
}

impl RouterStepDetail {
    /// A refusal's, a skip's or a halt's reason.
    pub fn reason(reason: impl Into<String>) -> RouterStepDetail {
        RouterStepDetail::Reason(ReasonDetail {
            reason: reason.into(),
        })
    }

    /// The error a step stopped on.
    pub fn failed(error: impl Into<String>) -> RouterStepDetail {
        RouterStepDetail::Failed(FailedDetail {
            error: error.into(),
        })
    }

    /// The detail of a stored `step`, typed when its JSON is exactly what
    /// a known kind writes, else [`RouterStepDetail::Other`].
    pub fn read(step: &str, json: serde_json::Value) -> RouterStepDetail {
        let text = json.to_string();
        let typed = match step {
            "audited" | "error" => exactly(&json, &text).map(Self::Audit),
            "precheck" => exactly(&json, &text)
                .map(Self::PrecheckPassed)
                .or_else(|| exactly(&json, &text).map(Self::PrecheckUnhealthy))
                .or_else(|| exactly(&json, &text).map(Self::Failed)),
            "sent" => exactly(&json, &text)
                .map(Self::Sent)
                .or_else(|| exactly(&json, &text).map(Self::Failed)),
            "returned" => exactly(&json, &text)
                .map(Self::Returned)
                .or_else(|| exactly(&json, &text).map(Self::Failed)),
            "dry_run" => exactly(&json, &text).map(Self::DryRun),
            "proof" => exactly(&json, &text).map(Self::Proof),
            "health" => exactly(&json, &text).map(Self::Health),
            "reaudit" => exactly(&json, &text).map(Self::Reaudit),
            "refused" | "skipped" | "not_started" | "never_returned" => {
                exactly(&json, &text).map(Self::Reason)
            }
            _ => None,
        };
        typed.unwrap_or(RouterStepDetail::Other(json))
    }

    /// The detail as JSON, as it is stored.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            RouterStepDetail::Other(v) => v.clone(),
            typed => serde_json::to_value(typed).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// `json` as a `T` when `T` writes it back to exactly `text` (the same
/// keys in the same order, nothing left out, nothing added as `null`).
fn exactly<T: DeserializeOwned + Serialize>(json: &serde_json::Value, text: &str) -> Option<T> {
    let typed = T::deserialize(json).ok()?;
    (serde_json::to_string(&typed).ok()? == text).then_some(typed)
}

/// The detail's JSON on one line, as stored (`routers history`, the
/// progress of `routers reboot`).
impl fmt::Display for RouterStepDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_string(self) {
            Ok(s) => f.write_str(&s),
            Err(_) => f.write_str("null"),
        }
    }
}
