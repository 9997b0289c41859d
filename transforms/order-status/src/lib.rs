//! Publishes a business event when a payment order's `status` changes.
//!
//! For an INSERT, or a MODIFY whose `status` differs from the old image, it
//! emits one `order.status-changed` event (the type can be overridden):
//!
//! ```json
//! {"metadata": {"eid": "<uuid>", "occurred_at": "<RFC 3339>"},
//!  "order_number": "A-1", "previous_status": "NEW", "status": "PAID",
//!  "changed_at": "<RFC 3339>", "total_amount": 12.50, "currency": "EUR"}
//! ```
//!
//! REMOVEs and changes that leave `status` alone emit nothing. The payload is
//! an allow-list: customer-identifying attributes (`customer_id`,
//! `shipping_address`, `billing_address`, `email`, names, phone numbers…)
//! are never read, so they cannot leak. The partition key is the order
//! number. The table's stream must carry new and old images.

use relay_sdk::{occurred_at, BusinessEvent, Event, Operation, Record, Transform, TransformError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event type used when the settings name none.
pub const DEFAULT_EVENT_TYPE: &str = "order.status-changed";

/// Per-table settings, e.g. `{"event_type": "payments.order-status-changed"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The event type to publish to; defaults to [`DEFAULT_EVENT_TYPE`].
    #[serde(default = "default_event_type")]
    pub event_type: String,
}

fn default_event_type() -> String {
    DEFAULT_EVENT_TYPE.to_string()
}

/// The attributes of an order item this transform reads (an allow-list).
#[derive(Debug, Deserialize)]
struct Order {
    order_number: String,
    status: Option<String>,
    /// Carried as JSON to keep the amount's exact digits.
    total_amount: Option<Value>,
    currency: Option<String>,
}

/// The only attribute read from the old image.
#[derive(Debug, Deserialize)]
struct Previous {
    status: Option<String>,
}

/// The event payload; `metadata` is added by [`BusinessEvent`].
#[derive(Debug, Serialize)]
struct StatusChanged<'a> {
    order_number: &'a str,
    previous_status: Option<&'a str>,
    status: &'a str,
    changed_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_amount: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
}

/// Emits `order.status-changed` when an order's status is set or changes.
#[derive(Debug, Clone)]
pub struct OrderStatus {
    event_type: String,
}

impl Transform for OrderStatus {
    type Settings = Settings;

    fn new(settings: Settings) -> Result<Self, TransformError> {
        if settings.event_type.trim().is_empty() {
            return Err(TransformError::invalid_settings(format!(
                r#"`event_type` must not be empty; leave it out for the default, e.g. {{"event_type": "{DEFAULT_EVENT_TYPE}"}}"#
            )));
        }
        Ok(OrderStatus {
            event_type: settings.event_type,
        })
    }

    fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
        let previous_status = match record.operation {
            Operation::Remove => return Ok(vec![]),
            Operation::Insert => None,
            Operation::Modify => {
                let previous = record.old::<Previous>()?.ok_or_else(|| {
                    TransformError::invalid_record(
                        "MODIFY without an old image: the stream must carry NEW_AND_OLD_IMAGES",
                    )
                })?;
                previous.status
            }
        };
        let order = record.new::<Order>()?.ok_or_else(|| {
            TransformError::invalid_record(format!(
                "{} without a new image: the stream must carry NEW_AND_OLD_IMAGES",
                record.operation.as_event_name()
            ))
        })?;
        let Some(status) = order.status.as_deref() else {
            return Ok(vec![]); // no status to announce
        };
        if previous_status.as_deref() == Some(status) {
            return Ok(vec![]);
        }
        let payload = StatusChanged {
            order_number: &order.order_number,
            previous_status: previous_status.as_deref(),
            status,
            changed_at: occurred_at(record)?,
            total_amount: order.total_amount.as_ref(),
            currency: order.currency.as_deref(),
        };
        let event = BusinessEvent::new(&self.event_type, &payload)
            .key(&order.order_number)
            .build(record, 0)?;
        Ok(vec![event])
    }
}

relay_sdk::export_transform!(OrderStatus);

#[cfg(test)]
mod tests {
    use relay_sdk::testing::{self, body};
    use serde_json::json;

    use super::*;

    const ARN: &str =
        "arn:aws:dynamodb:eu-central-1:123456789012:table/payment-orders/stream/2024-01-01T00:00:00.000";

    fn transform() -> OrderStatus {
        OrderStatus::new(serde_json::from_str("{}").unwrap()).unwrap()
    }

    /// An order item with every kind of customer-identifying attribute.
    fn order(status: &str) -> Value {
        let mut item: Value = serde_json::from_str(
            r#"{
                "order_number": "ORD-1001",
                "customer_id": "CUST-42",
                "email": "jane@example.com",
                "customer_name": "Jane Doe",
                "name": "Jane Doe",
                "phone": "+49 30 1234567",
                "shipping_address": {"street": "Hauptstr. 1", "city": "Berlin"},
                "billing_address": {"street": "Nebenstr. 2", "city": "Potsdam"},
                "total_amount": 1234567890123456789012345678.90,
                "currency": "EUR",
                "items": [{"sku": "X", "qty": 1}]
            }"#,
        )
        .unwrap();
        item["status"] = json!(status);
        item
    }

    fn record(operation: Operation, old: Option<Value>, new: Option<Value>) -> Record {
        Record {
            table: "payment-orders".into(),
            event_source_arn: ARN.into(),
            sequence_number: "5000000000000000000001".into(),
            ..testing::record(operation, json!({"order_number": "ORD-1001"}), old, new)
        }
    }

    #[test]
    fn insert_announces_the_first_status() {
        let r = record(Operation::Insert, None, Some(order("NEW")));
        let events = transform().transform(&r).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "order.status-changed");
        assert_eq!(events[0].key.as_deref(), Some("ORD-1001"));
        let b = body(&events[0]);
        assert_eq!(b["previous_status"], Value::Null);
        assert_eq!(b["status"], "NEW");
        assert_eq!(b["order_number"], "ORD-1001");
        assert_eq!(b["changed_at"], "2024-03-01T12:34:56.789Z");
        assert_eq!(b["metadata"]["occurred_at"], "2024-03-01T12:34:56.789Z");
        assert_eq!(b["metadata"]["eid"], relay_sdk::eid(&r, 0));
    }

    #[test]
    fn modify_of_status_announces_old_and_new() {
        let r = record(Operation::Modify, Some(order("NEW")), Some(order("PAID")));
        let events = transform().transform(&r).unwrap();
        assert_eq!(events.len(), 1);
        let b = body(&events[0]);
        assert_eq!(b["previous_status"], "NEW");
        assert_eq!(b["status"], "PAID");
        assert_eq!(b["currency"], "EUR");
    }

    #[test]
    fn total_amount_keeps_its_exact_digits() {
        let r = record(Operation::Insert, None, Some(order("NEW")));
        let events = transform().transform(&r).unwrap();
        assert!(
            events[0]
                .body
                .contains(r#""total_amount":1234567890123456789012345678.90"#),
            "{}",
            events[0].body
        );
    }

    #[test]
    fn other_changes_emit_nothing() {
        let mut new = order("PAID");
        new["items"] = json!([]);
        let r = record(Operation::Modify, Some(order("PAID")), Some(new));
        assert_eq!(transform().transform(&r).unwrap(), vec![]);
    }

    #[test]
    fn remove_emits_nothing() {
        let r = record(Operation::Remove, Some(order("PAID")), None);
        assert_eq!(transform().transform(&r).unwrap(), vec![]);
        let mut ttl = r.clone();
        ttl.ttl_delete = true;
        assert_eq!(transform().transform(&ttl).unwrap(), vec![]);
    }

    #[test]
    fn no_customer_identifying_data_in_the_event() {
        let r = record(Operation::Modify, Some(order("NEW")), Some(order("PAID")));
        let events = transform().transform(&r).unwrap();
        let text = &events[0].body;
        for needle in [
            "customer_id",
            "CUST-42",
            "email",
            "jane@example.com",
            "Jane",
            "phone",
            "1234567\"",
            "shipping_address",
            "billing_address",
            "Berlin",
            "Potsdam",
            "Hauptstr",
            "name\"",
        ] {
            assert!(!text.contains(needle), "{needle} leaked into {text}");
        }
        let keys: Vec<String> = body(&events[0])
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "changed_at",
                "currency",
                "metadata",
                "order_number",
                "previous_status",
                "status",
                "total_amount"
            ]
        );
    }

    #[test]
    fn eid_is_deterministic() {
        let r = record(Operation::Modify, Some(order("NEW")), Some(order("PAID")));
        let t = transform();
        assert_eq!(t.transform(&r).unwrap(), t.transform(&r.clone()).unwrap());
        let mut other = r.clone();
        other.sequence_number = "5000000000000000000002".into();
        assert_ne!(
            body(&t.transform(&r).unwrap()[0])["metadata"]["eid"],
            body(&t.transform(&other).unwrap()[0])["metadata"]["eid"]
        );
    }

    #[test]
    fn event_type_is_configurable() {
        let t = OrderStatus::new(
            serde_json::from_str(r#"{"event_type": "payments.order-status"}"#).unwrap(),
        )
        .unwrap();
        let r = record(Operation::Insert, None, Some(order("NEW")));
        assert_eq!(
            t.transform(&r).unwrap()[0].event_type,
            "payments.order-status"
        );
    }

    #[test]
    fn validate_rejects_unknown_and_empty_settings() {
        let err = serde_json::from_str::<Settings>(r#"{"eventtype": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("eventtype"), "{err}");
        let empty = serde_json::from_str(r#"{"event_type": ""}"#).unwrap();
        assert!(matches!(
            OrderStatus::new(empty),
            Err(TransformError::InvalidSettings(_))
        ));
    }

    #[test]
    fn modify_without_old_image_is_an_invalid_record() {
        let r = record(Operation::Modify, None, Some(order("PAID")));
        assert!(matches!(
            transform().transform(&r),
            Err(TransformError::InvalidRecord(_))
        ));
    }

    #[test]
    fn item_without_order_number_is_an_invalid_record() {
        let r = record(Operation::Insert, None, Some(json!({"status": "NEW"})));
        assert!(matches!(
            transform().transform(&r),
            Err(TransformError::InvalidRecord(_))
        ));
    }

    #[test]
    fn status_removed_emits_nothing() {
        let mut new = order("PAID");
        new.as_object_mut().unwrap().remove("status");
        let r = record(Operation::Modify, Some(order("PAID")), Some(new));
        assert_eq!(transform().transform(&r).unwrap(), vec![]);
    }
}
