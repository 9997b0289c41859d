//! An event's identity for sinks that need one (CloudEvents `id`, SNS FIFO
//! deduplication): `metadata.eid` of the body, as the SDK's event builders
//! set it (deterministic per record and event), else a SHA-256 of the body.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    eid: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    occurred_at: Option<std::borrow::Cow<'a, str>>,
}

/// What sinks read from an event body's `metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `metadata.eid`, else the SHA-256 of the body in lowercase hex
    /// (64 characters).
    pub id: String,
    /// `metadata.occurred_at`, if the body has one.
    pub occurred_at: Option<String>,
}

/// Reads `metadata.eid` and `metadata.occurred_at` from `body`.
pub fn identity(body: &RawValue) -> Identity {
    let metadata = serde_json::from_str::<Body<'_>>(body.get())
        .ok()
        .and_then(|b| b.metadata);
    let (eid, occurred_at) = match metadata {
        Some(m) => (m.eid, m.occurred_at),
        None => (None, None),
    };
    Identity {
        id: eid
            .filter(|e| !e.is_empty())
            .map(|e| e.into_owned())
            .unwrap_or_else(|| sha256_hex(body.get().as_bytes())),
        occurred_at: occurred_at.map(|t| t.into_owned()),
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn eid_and_occurred_at_come_from_metadata() {
        let body = raw(
            r#"{"metadata":{"eid":"6b2c1f7e-0000-5000-8000-000000000001","occurred_at":"2024-05-01T10:00:00Z"},"x":1}"#,
        );
        assert_eq!(
            identity(&body),
            Identity {
                id: "6b2c1f7e-0000-5000-8000-000000000001".into(),
                occurred_at: Some("2024-05-01T10:00:00Z".into()),
            }
        );
    }

    #[test]
    fn without_eid_the_id_is_a_digest_of_the_body() {
        let body = raw(r#"{"x":1}"#);
        let id = identity(&body);
        assert_eq!(id.id, sha256_hex(br#"{"x":1}"#));
        assert_eq!(id.id.len(), 64);
        assert_eq!(id.occurred_at, None);
        // Not an object, or metadata of another shape: still a digest.
        assert_eq!(identity(&raw("[1]")).id, sha256_hex(b"[1]"));
        assert_eq!(
            identity(&raw(r#"{"metadata":{"eid":7}}"#)).id,
            sha256_hex(br#"{"metadata":{"eid":7}}"#)
        );
    }
}
