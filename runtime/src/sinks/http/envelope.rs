//! The CloudEvents 1.0 envelope of an event, JSON format (structured mode):
//! `id` is the event's eid, `type` its event type, `data` its body, `time`
//! its `metadata.occurred_at`, `partitionkey` (the partitioning extension)
//! its key.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::sinks::eid::identity;
use crate::sinks::Outbound;

/// The media type of a batch of CloudEvents in JSON.
pub const BATCH_CONTENT_TYPE: &str = "application/cloudevents-batch+json";

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partitionkey: Option<&'a str>,
    data: &'a RawValue,
}

/// `event` as one CloudEvent in JSON, from `source`.
pub fn envelope(event: &Outbound<'_>, source: &str) -> String {
    let identity = identity(event.body);
    let cloud_event = CloudEvent {
        specversion: "1.0",
        id: &identity.id,
        source,
        event_type: event.event_type,
        datacontenttype: "application/json",
        time: identity.occurred_at.as_deref(),
        partitionkey: event.key,
        data: event.body,
    };
    serde_json::to_string(&cloud_event).expect("a CloudEvent of strings and JSON serializes")
}

/// A JSON array of the given envelopes: the body of one request.
pub fn batch<'a>(envelopes: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut payload = vec![b'['];
    for (i, envelope) in envelopes.into_iter().enumerate() {
        if i > 0 {
            payload.push(b',');
        }
        payload.extend_from_slice(envelope.as_bytes());
    }
    payload.push(b']');
    payload
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::sinks::eid::sha256_hex;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn envelope_carries_eid_source_type_time_key_and_data() {
        let body =
            raw(r#"{"metadata":{"eid":"e-1","occurred_at":"2024-05-01T10:00:00Z"},"order":"o-1"}"#);
        let event = Outbound {
            event_type: "order.status-changed",
            body: &body,
            key: Some("o-1"),
        };
        let value: Value = serde_json::from_str(&envelope(&event, "/relay/orders")).unwrap();
        assert_eq!(
            value,
            json!({
                "specversion": "1.0",
                "id": "e-1",
                "source": "/relay/orders",
                "type": "order.status-changed",
                "datacontenttype": "application/json",
                "time": "2024-05-01T10:00:00Z",
                "partitionkey": "o-1",
                "data": {"metadata":{"eid":"e-1","occurred_at":"2024-05-01T10:00:00Z"},"order":"o-1"},
            })
        );
    }

    #[test]
    fn without_eid_time_or_key_the_envelope_still_has_an_id() {
        let body = raw(r#"{"x":1}"#);
        let event = Outbound {
            event_type: "t",
            body: &body,
            key: None,
        };
        let value: Value = serde_json::from_str(&envelope(&event, "urn:relay")).unwrap();
        assert_eq!(value["id"], json!(sha256_hex(br#"{"x":1}"#)));
        assert!(value.get("time").is_none());
        assert!(value.get("partitionkey").is_none());
        assert_eq!(value["data"], json!({"x": 1}));
    }

    #[test]
    fn batch_is_a_json_array() {
        let payload = batch(["{\"a\":1}", "{\"b\":2}"]);
        let value: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(value, json!([{"a":1},{"b":2}]));
        assert_eq!(batch([]), b"[]");
    }
}
