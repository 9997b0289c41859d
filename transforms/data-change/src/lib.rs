//! The default Relay transform: one Nakadi data change event per record.
//!
//! ```json
//! {"metadata": {"eid": "<uuid>", "occurred_at": "<RFC 3339>"},
//!  "data_op": "C|U|D", "data_type": "<configured, else the table name>",
//!  "data": <item after the change; for D the item before>,
//!  "patch": <RFC 6902 JSON Patch from old image to new image>}
//! ```
//!
//! The partition key is the item's primary key as compact JSON text, so all
//! changes of an item keep their order.

use relay_sdk::{DataChangeEvent, Event, Record, TransformError};
use serde::Deserialize;

/// The trait [`DataChange`] implements, for native callers that do not
/// depend on the SDK (the host's `relay bench` runs this crate natively).
pub use relay_sdk::Transform;

/// Per-table settings, e.g. `{"data_type": "order", "event_type": "shop.order-changed"}`;
/// both optional (`{}` works).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The `data_type` written into every event; defaults to the record's
    /// table name.
    #[serde(default)]
    pub data_type: Option<String>,
    /// The event type to publish to; defaults to `data_type`.
    #[serde(default)]
    pub event_type: Option<String>,
}

/// Emits exactly one [`DataChangeEvent`] per record.
#[derive(Debug, Clone)]
pub struct DataChange {
    /// Set when `data_type` is configured; otherwise each record's table
    /// names it.
    builder: Option<DataChangeEvent>,
    event_type: Option<String>,
}

impl Transform for DataChange {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, TransformError> {
        if settings
            .data_type
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(TransformError::invalid_settings(
                r#"`data_type` must not be empty; leave it out to use the table name, e.g. {"data_type": "order"}"#,
            ));
        }
        if settings
            .event_type
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(TransformError::invalid_settings(
                r#"`event_type` must not be empty; leave it out to use `data_type`, e.g. {"data_type": "order"}"#,
            ));
        }
        let builder = settings.data_type.map(|data_type| {
            let event_type = settings
                .event_type
                .clone()
                .unwrap_or_else(|| data_type.clone());
            DataChangeEvent::new(event_type, data_type)
        });
        Ok(DataChange {
            builder,
            event_type: settings.event_type,
        })
    }

    fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
        let event = match &self.builder {
            Some(builder) => builder.build(record, 0)?,
            None => {
                let event_type = self
                    .event_type
                    .clone()
                    .unwrap_or_else(|| record.table.clone());
                DataChangeEvent::new(event_type, record.table.clone()).build(record, 0)?
            }
        };
        Ok(vec![event])
    }
}

relay_sdk::export_transform!(DataChange);

#[cfg(test)]
mod tests {
    use relay_sdk::testing::{self, body};
    use relay_sdk::Operation;
    use serde_json::{json, Value};

    use super::*;

    fn transform(settings: Value) -> DataChange {
        DataChange::new(serde_json::from_value(settings).unwrap()).unwrap()
    }

    fn record(operation: Operation, old: Option<Value>, new: Option<Value>) -> Record {
        Record {
            sequence_number: "4000000000000000000001".into(),
            ..testing::record(operation, json!({"order_number": "A-1"}), old, new)
        }
    }

    #[test]
    fn without_settings_the_table_names_the_data_type_and_event_type() {
        let t = transform(json!({}));
        let events = t
            .transform(&record(
                Operation::Insert,
                None,
                Some(json!({"order_number": "A-1"})),
            ))
            .unwrap();
        assert_eq!(events[0].event_type, "orders");
        assert_eq!(body(&events[0])["data_type"], "orders");
        let t = transform(json!({"event_type": "shop.changed"}));
        let events = t
            .transform(&record(
                Operation::Insert,
                None,
                Some(json!({"order_number": "A-1"})),
            ))
            .unwrap();
        assert_eq!(events[0].event_type, "shop.changed");
        assert_eq!(body(&events[0])["data_type"], "orders");
    }

    #[test]
    fn insert_is_a_create_with_adds() {
        let t = transform(json!({"data_type": "order"}));
        // Parsed from text: `json!` would route 12.50 through f64.
        let new: Value =
            serde_json::from_str(r#"{"order_number": "A-1", "total": 12.50}"#).unwrap();
        let total = new["total"].clone();
        let r = record(Operation::Insert, None, Some(new));
        let events = t.transform(&r).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "order");
        assert_eq!(events[0].key.as_deref(), Some(r#"{"order_number":"A-1"}"#));
        assert_eq!(
            body(&events[0]),
            json!({
                "metadata": {"eid": relay_sdk::eid(&r, 0), "occurred_at": "2024-03-01T12:34:56.789Z"},
                "data_op": "C",
                "data_type": "order",
                "data": {"order_number": "A-1", "total": total},
                "patch": [
                    {"op": "add", "path": "/order_number", "value": "A-1"},
                    {"op": "add", "path": "/total", "value": total},
                ],
            })
        );
        // Exact digits survive: 12.50 stays 12.50.
        assert!(
            events[0].body.contains(r#""total":12.50"#),
            "{}",
            events[0].body
        );
    }

    #[test]
    fn modify_is_an_update_with_a_patch() {
        let t = transform(json!({"data_type": "order", "event_type": "shop.order-changed"}));
        let r = record(
            Operation::Modify,
            Some(json!({"order_number": "A-1", "status": "NEW", "items": [1, 2]})),
            Some(json!({"order_number": "A-1", "status": "PAID", "items": [1]})),
        );
        let events = t.transform(&r).unwrap();
        assert_eq!(events[0].event_type, "shop.order-changed");
        let b = body(&events[0]);
        assert_eq!(b["data_op"], "U");
        assert_eq!(b["data"]["status"], "PAID");
        assert_eq!(
            b["patch"],
            json!([
                {"op": "remove", "path": "/items/1"},
                {"op": "replace", "path": "/status", "value": "PAID"},
            ])
        );
    }

    #[test]
    fn remove_is_a_delete_carrying_the_old_item() {
        let t = transform(json!({"data_type": "order"}));
        let r = record(
            Operation::Remove,
            Some(json!({"order_number": "A-1", "status": "PAID"})),
            None,
        );
        let b = body(&t.transform(&r).unwrap()[0]);
        assert_eq!(b["data_op"], "D");
        assert_eq!(b["data"], json!({"order_number": "A-1", "status": "PAID"}));
        assert_eq!(
            b["patch"],
            json!([
                {"op": "remove", "path": "/order_number"},
                {"op": "remove", "path": "/status"},
            ])
        );
    }

    #[test]
    fn eid_is_deterministic() {
        let t = transform(json!({"data_type": "order"}));
        let r = record(
            Operation::Insert,
            None,
            Some(json!({"order_number": "A-1"})),
        );
        let first = t.transform(&r).unwrap();
        let again = t.transform(&r.clone()).unwrap();
        assert_eq!(first, again);
        let mut next = r.clone();
        next.sequence_number = "4000000000000000000002".into();
        assert_ne!(
            body(&t.transform(&next).unwrap()[0])["metadata"]["eid"],
            body(&first[0])["metadata"]["eid"]
        );
    }

    #[test]
    fn missing_creation_time_is_an_invalid_record() {
        let t = transform(json!({"data_type": "order"}));
        let mut r = record(
            Operation::Insert,
            None,
            Some(json!({"order_number": "A-1"})),
        );
        r.approximate_creation_time_ms = None;
        assert!(matches!(
            t.transform(&r),
            Err(TransformError::InvalidRecord(_))
        ));
    }

    #[test]
    fn empty_settings_are_valid() {
        // Issue 14: without settings the table names the data type, so a
        // settings error never hides an input error in `relay test`.
        let settings = serde_json::from_str::<Settings>("{}").unwrap();
        assert!(settings.data_type.is_none() && settings.event_type.is_none());
        assert!(DataChange::new(settings).is_ok());
    }

    #[test]
    fn validate_rejects_unknown_fields() {
        let err = serde_json::from_str::<Settings>(r#"{"data_type": "order", "datatype": "x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("datatype"), "{err}");
    }

    #[test]
    fn validate_rejects_empty_names() {
        for settings in [
            json!({"data_type": ""}),
            json!({"data_type": "order", "event_type": " "}),
        ] {
            let settings = serde_json::from_value(settings).unwrap();
            assert!(matches!(
                DataChange::new(settings),
                Err(TransformError::InvalidSettings(_))
            ));
        }
    }
}
