//! The stream record a transform receives, with typed access to its images.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::TransformError;

/// What happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A new item was written (`INSERT`).
    Insert,
    /// An existing item was changed (`MODIFY`).
    Modify,
    /// The item was deleted (`REMOVE`).
    Remove,
}

impl Operation {
    /// The DynamoDB Streams `eventName`: `INSERT`, `MODIFY` or `REMOVE`.
    pub fn as_event_name(self) -> &'static str {
        match self {
            Operation::Insert => "INSERT",
            Operation::Modify => "MODIFY",
            Operation::Remove => "REMOVE",
        }
    }

    /// Parses a DynamoDB Streams `eventName`.
    pub fn from_event_name(name: &str) -> Option<Self> {
        match name {
            "INSERT" => Some(Operation::Insert),
            "MODIFY" => Some(Operation::Modify),
            "REMOVE" => Some(Operation::Remove),
            _ => None,
        }
    }

    /// The Nakadi data change `data_op`: `C`, `U` or `D`.
    pub fn data_op(self) -> &'static str {
        match self {
            Operation::Insert => "C",
            Operation::Modify => "U",
            Operation::Remove => "D",
        }
    }
}

/// One DynamoDB Streams record with its images decoded to plain JSON.
///
/// Numbers keep exactly the digits DynamoDB sent, sets are arrays and
/// binary values stay base64 strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Table name, from the record's `eventSourceARN`.
    pub table: String,
    /// The stream ARN the record came from.
    pub event_source_arn: String,
    /// INSERT, MODIFY or REMOVE.
    pub operation: Operation,
    /// The item's primary key as a JSON object.
    pub keys: Value,
    /// The item before the change, when the stream carries it.
    pub old_image: Option<Value>,
    /// The item after the change, when the stream carries it.
    pub new_image: Option<Value>,
    /// The stream sequence number.
    pub sequence_number: String,
    /// The stream record's `eventID`.
    pub event_id: String,
    /// `ApproximateCreationDateTime` in milliseconds since the Unix epoch.
    pub approximate_creation_time_ms: Option<u64>,
    /// True when DynamoDB's TTL process deleted the item.
    pub ttl_delete: bool,
}

impl Record {
    /// The item before the change, deserialized into `T`; `None` when absent.
    pub fn old<T: DeserializeOwned>(&self) -> Result<Option<T>, TransformError> {
        image_as(self.old_image.as_ref(), "old")
    }

    /// The item after the change, deserialized into `T`; `None` when absent.
    // `new` pairs with `old`: it reads the new image, it builds nothing.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: DeserializeOwned>(&self) -> Result<Option<T>, TransformError> {
        image_as(self.new_image.as_ref(), "new")
    }

    /// The item as it stands after the change; for a remove, the item before it.
    pub fn item(&self) -> Option<&Value> {
        self.new_image.as_ref().or(self.old_image.as_ref())
    }

    /// Whether `field` differs between the old and the new image.
    ///
    /// `field` is a top-level attribute name, or a JSON Pointer such as
    /// `/shipping_address/city` for nested values. A value that is present
    /// on one side only counts as changed.
    pub fn changed(&self, field: &str) -> bool {
        let old = self.old_image.as_ref().and_then(|v| lookup(v, field));
        let new = self.new_image.as_ref().and_then(|v| lookup(v, field));
        old != new
    }

    /// The RFC 6902 JSON Patch that turns the old image into the new one
    /// (a missing image counts as `{}`).
    pub fn patch(&self) -> Value {
        let empty = Value::Object(Default::default());
        crate::patch::diff(
            self.old_image.as_ref().unwrap_or(&empty),
            self.new_image.as_ref().unwrap_or(&empty),
        )
    }
}

fn lookup<'a>(value: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        value.pointer(field)
    } else {
        value.get(field)
    }
}

fn image_as<T: DeserializeOwned>(
    image: Option<&Value>,
    which: &str,
) -> Result<Option<T>, TransformError> {
    image
        .map(|v| {
            T::deserialize(v).map_err(|e| {
                TransformError::invalid_record(format!("{which} image does not fit: {e}"))
            })
        })
        .transpose()
}
