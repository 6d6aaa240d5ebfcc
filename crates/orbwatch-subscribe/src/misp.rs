//! MISP: the REST search (`/events/restSearch`) and its cursor.
//! (The static feed layout is read by `orbwatch-intel`'s MISP reader; only
//! the fetching of its files is here, in [`crate::update()`].)

use serde_json::{Value, json};

/// The body of a restSearch for events changed since `timestamp` (Unix
/// seconds), or, on the first fetch, in the `last` period (`30d`).
pub fn rest_search_body(timestamp: Option<i64>, last: &str) -> Vec<u8> {
    let mut q = json!({
        "returnFormat": "json",
        "includeEventTags": true,
    });
    if let Some(obj) = q.as_object_mut() {
        match timestamp {
            Some(t) => obj.insert("timestamp".into(), json!(t)),
            None => obj.insert("last".into(), json!(last)),
        };
    }
    q.to_string().into_bytes()
}

/// The newest `Event.timestamp` in a restSearch response (`{"response":
/// [{"Event": {...}}]}`), or `None` when it lists no event. Errors when the
/// response is not a MISP search result.
pub fn newest_timestamp(bytes: &[u8]) -> Result<Option<i64>, String> {
    let doc: Value = serde_json::from_slice(bytes.trim_ascii())
        .map_err(|e| format!("the MISP response is not JSON ({e})"))?;
    let list = match &doc {
        Value::Object(m) => match m.get("response") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err("`response` in the MISP answer is not a list".into()),
            None => {
                if let Some(msg) = m.get("message").and_then(Value::as_str) {
                    return Err(format!("MISP answered: {msg}"));
                }
                return Err("the MISP answer has no `response` list of events".into());
            }
        },
        Value::Array(a) => a,
        _ => return Err("the MISP answer is not a JSON object".into()),
    };
    let mut newest: Option<i64> = None;
    for item in list {
        let ev = item.get("Event").unwrap_or(item);
        let ts = match ev.get("timestamp") {
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        if let Some(t) = ts {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    Ok(newest)
}

/// How many events a restSearch response lists.
pub fn event_count(bytes: &[u8]) -> usize {
    serde_json::from_slice::<Value>(bytes.trim_ascii())
        .ok()
        .and_then(|d| d.get("response").and_then(Value::as_array).map(Vec::len))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let r = br#"{"response":[{"Event":{"timestamp":"1700000000"}},{"Event":{"timestamp":1700000500}}]}"#;
        assert_eq!(newest_timestamp(r).unwrap(), Some(1_700_000_500));
        assert_eq!(newest_timestamp(br#"{"response":[]}"#).unwrap(), None);
        assert!(
            newest_timestamp(br#"{"message":"Authentication failed"}"#)
                .unwrap_err()
                .contains("Authentication failed")
        );
        assert!(newest_timestamp(b"nope").is_err());
        assert!(newest_timestamp(b"{\"response\":1}").is_err());
    }

    #[test]
    fn bodies() {
        let b: Value = serde_json::from_slice(&rest_search_body(None, "30d")).unwrap();
        assert_eq!(b["last"], "30d");
        let b: Value = serde_json::from_slice(&rest_search_body(Some(5), "30d")).unwrap();
        assert_eq!(b["timestamp"], 5);
        assert!(b.get("last").is_none());
    }
}
