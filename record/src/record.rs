//! The stream record a transform receives, with typed access to its images.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
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
    pub old_image: Option<Image>,
    /// The item after the change, when the stream carries it.
    pub new_image: Option<Image>,
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
    pub fn item(&self) -> Option<&Image> {
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

    /// The primary key as compact JSON text, attribute names sorted (e.g.
    /// `{"pk":"a","sk":1}`), as the host hands it to a transform.
    pub fn keys_json(&self) -> String {
        let mut out = String::with_capacity(64);
        crate::patch::push_json(&mut out, &self.keys);
        out
    }

    /// The RFC 6902 JSON Patch that turns the old image into the new one
    /// (a missing image counts as `{}`).
    pub fn patch(&self) -> Value {
        let mut text = String::new();
        self.write_patch(&mut text);
        serde_json::from_str(&text).expect("a patch is JSON")
    }

    /// Appends [`Record::patch`] as compact JSON text to `out`, straight from
    /// the images' texts.
    pub(crate) fn write_patch(&self, out: &mut String) {
        match crate::host_patch::patch_of(self) {
            Some(patch) => out.push_str(&patch),
            None => self.write_diff(out),
        }
    }

    /// Appends the patch as the SDK's own text diff computes it.
    pub(crate) fn write_diff(&self, out: &mut String) {
        crate::patch::write_patch(
            self.old_image.as_ref().map_or("{}", Image::json),
            self.new_image.as_ref().map_or("{}", Image::json),
            out,
        );
    }
}

/// The RFC 6902 JSON Patch from `old` to `new` (a missing image counts as
/// `{}`) as compact JSON text: [`Record::patch`] of a record with these
/// images, unparsed. The host answers the contract's `record-patch` with it.
pub fn image_patch(old: Option<&Image>, new: Option<&Image>) -> String {
    // Room for the usual patch: a few operations, or an insert's values.
    let mut out = String::with_capacity(new.map_or(64, |image| image.json().len() + 256));
    crate::patch::write_patch(
        old.map_or("{}", Image::json),
        new.map_or("{}", Image::json),
        &mut out,
    );
    out
}

fn lookup<'a>(value: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        value.pointer(field)
    } else {
        value.get(field)
    }
}

fn image_as<T: DeserializeOwned>(
    image: Option<&Image>,
    which: &str,
) -> Result<Option<T>, TransformError> {
    image
        .map(|image| {
            serde_json::from_str(image.json()).map_err(|e| {
                TransformError::invalid_record(format!("{which} image does not fit: {e}"))
            })
        })
        .transpose()
}

/// An item image: a JSON object kept as its exact text, parsed into a
/// [`Value`] only when first asked for one.
///
/// The host hands images over as compact JSON text (object keys sorted,
/// numbers with their exact digits), and the SDK works on that text where it
/// can: [`Record::new`] / [`Record::old`] deserialize straight from it,
/// [`DataChangeEvent`](crate::DataChangeEvent) copies it verbatim and diffs
/// texts. [`Image::value`] (or `*image`, through `Deref`) parses it once,
/// on first use. (A `OnceLock` holds it, so a [`Record`] stays `Send` and
/// `Sync` for host code.)
///
/// ```
/// use relay_record::Image;
/// use serde_json::json;
///
/// let image = Image::from_json(r#"{"id":"a","total":12.50}"#.into()).unwrap();
/// assert_eq!(image.json(), r#"{"id":"a","total":12.50}"#);
/// assert_eq!(image["id"], "a"); // parsed here, once
/// assert_eq!(image, Image::from_value(json!({"id": "a", "total": image["total"]})));
/// assert!(Image::from_json("[1]".into()).is_err());
/// ```
pub struct Image {
    json: String,
    value: OnceLock<Value>,
}

/// Why a text is not an [`Image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// The text is not JSON.
    NotJson(String),
    /// The text is JSON, but not an object.
    NotAnObject,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(reason) => write!(f, "the image is not valid JSON: {reason}"),
            Self::NotAnObject => f.write_str("the image is not a JSON object"),
        }
    }
}

impl std::error::Error for ImageError {}

impl Image {
    /// An image of `value`, which should be a JSON object; its text is
    /// `value` serialized compactly.
    pub fn from_value(value: Value) -> Image {
        let json = value.to_string();
        Image {
            json,
            value: OnceLock::from(value),
        }
    }

    /// An image of a JSON object text, kept as it is. The text is checked to
    /// be JSON and an object; no [`Value`] is built.
    ///
    /// The text is used verbatim (in a data change event's `data`, for
    /// one): give compact text with sorted keys, as the host does, for the
    /// same bytes as [`Image::from_value`] would give.
    pub fn from_json(json: String) -> Result<Image, ImageError> {
        let raw: &RawValue =
            serde_json::from_str(&json).map_err(|e| ImageError::NotJson(e.to_string()))?;
        if !raw.get().starts_with('{') {
            return Err(ImageError::NotAnObject);
        }
        Ok(Image {
            json,
            value: OnceLock::new(),
        })
    }

    /// An image from text that the relay's decoder wrote (a JSON object by
    /// construction), as the host hands it to a guest: not checked again.
    /// For the SDK's glue only. Were it not JSON after all, the event bodies
    /// built from it would be refused by the host, and [`Image::value`]
    /// would panic (a trap, reported as the record's transform error).
    #[doc(hidden)]
    pub fn from_host(json: String) -> Image {
        Image::from_decoded(json)
    }

    /// An image of the decoder's output, which is a JSON object by
    /// construction: not checked again.
    pub(crate) fn from_decoded(json: String) -> Image {
        Image {
            json,
            value: OnceLock::new(),
        }
    }

    /// The image as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The image as a JSON value, parsed from the text on first use.
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            // `from_json` checked the text and `from_value` serialized a value.
            serde_json::from_str(&self.json).expect("an image's text is JSON")
        })
    }

    /// The image's text, giving up the value.
    pub fn into_json(self) -> String {
        self.json
    }
}

impl Deref for Image {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl Clone for Image {
    fn clone(&self) -> Self {
        Image {
            json: self.json.clone(),
            value: self.value.clone(),
        }
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Image").field(&self.json).finish()
    }
}

/// Images are equal when their values are (texts may differ in layout).
impl PartialEq for Image {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json || self.value() == other.value()
    }
}

impl From<Value> for Image {
    fn from(value: Value) -> Self {
        Image::from_value(value)
    }
}

// Host code may share records across threads.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Record>();
};
