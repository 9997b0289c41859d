//! Glue between the WIT world and a [`Transform`]: used by
//! [`export_transform!`](crate::export_transform), not by transform authors.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde_json::Value;

use crate::{Transform, TransformError};

/// Implements the generated `Guest` trait for `T` (on wasm32).
pub struct Adapter<T>(PhantomData<T>);

thread_local! {
    /// The instance built by `init`; WebAssembly guests are single-threaded.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Parses the settings text, builds `T` and keeps it for [`with_instance`].
pub fn init<T: Transform>(settings: &str) -> Result<(), TransformError> {
    #[cfg(target_arch = "wasm32")]
    install_panic_hook();
    let settings = parse_settings::<T::Settings>(settings)?;
    let instance = T::new(settings)?;
    INSTANCE.with(|cell| *cell.borrow_mut() = Some(Box::new(instance)));
    Ok(())
}

/// Runs `f` on the instance built by [`init`].
pub fn with_instance<T: Transform, R>(
    f: impl FnOnce(&T) -> Result<R, TransformError>,
) -> Result<R, TransformError> {
    INSTANCE.with(|cell| {
        let guard = cell.borrow();
        let instance = guard
            .as_ref()
            .and_then(|any| any.downcast_ref::<T>())
            .ok_or_else(|| TransformError::failed("transform called before init"))?;
        f(instance)
    })
}

/// Settings from the JSON text handed to `init`; blank text counts as `{}`.
pub fn parse_settings<S: serde::de::DeserializeOwned>(text: &str) -> Result<S, TransformError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(TransformError::invalid_settings)
}

/// A JSON object text from the host (keys or an image) as a value.
pub fn parse_object(text: &str, what: &str) -> Result<Value, TransformError> {
    match serde_json::from_str(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(TransformError::invalid_record(format!(
            "{what} is not a JSON object"
        ))),
        Err(e) => Err(TransformError::invalid_record(format!(
            "{what} is not valid JSON: {e}"
        ))),
    }
}

/// Sends panic messages with their location to the host's log: WASI stderr
/// is not available to guests, so a panic would otherwise be silent.
#[cfg(target_arch = "wasm32")]
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            crate::log::error(&format!("transform {info}"));
        }))
    });
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::*;
    use crate::__bindings::relay::transform::types as wit;
    use crate::{Event, Image, Operation, Record};

    impl<T: Transform> crate::__bindings::Guest for Adapter<T> {
        fn init(settings: String) -> Result<(), wit::TransformError> {
            super::init::<T>(&settings).map_err(to_wit_error)
        }

        fn transform(record: wit::StreamRecord) -> Result<Vec<wit::Event>, wit::TransformError> {
            let record = from_wit_record(record).map_err(to_wit_error)?;
            // `Record::patch` of this record asks the host (`record-patch`).
            let fetch = crate::__bindings::record_patch;
            relay_record::host_patch::with(&record, fetch, || {
                with_instance::<T, _>(|t| t.transform(&record))
            })
            .map(|events| events.into_iter().map(to_wit_event).collect())
            .map_err(to_wit_error)
        }
    }

    fn from_wit_record(r: wit::StreamRecord) -> Result<Record, TransformError> {
        // The images are the host decoder's output, JSON objects by
        // construction: scanning them again costs a tenth of a record's
        // mapping, and what the guest builds from them the host checks.
        let image = |text: Option<String>| text.map(Image::from_host);
        Ok(Record {
            keys: parse_object(&r.keys, "keys")?,
            old_image: image(r.old_image),
            new_image: image(r.new_image),
            table: r.table,
            event_source_arn: r.event_source_arn,
            operation: match r.operation {
                wit::Operation::Insert => Operation::Insert,
                wit::Operation::Modify => Operation::Modify,
                wit::Operation::Remove => Operation::Remove,
            },
            sequence_number: r.sequence_number,
            event_id: r.event_id,
            approximate_creation_time_ms: r.approximate_creation_time_ms,
            ttl_delete: r.ttl_delete,
        })
    }

    fn to_wit_event(e: Event) -> wit::Event {
        wit::Event {
            event_type: e.event_type,
            body: e.body,
            key: e.key,
        }
    }

    fn to_wit_error(e: TransformError) -> wit::TransformError {
        match e {
            TransformError::InvalidRecord(m) => wit::TransformError::InvalidRecord(m),
            TransformError::InvalidSettings(m) => wit::TransformError::InvalidSettings(m),
            TransformError::Failed(m) => wit::TransformError::Failed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Record};

    #[derive(Debug)]
    struct Echo {
        prefix: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EchoSettings {
        prefix: String,
    }

    impl Transform for Echo {
        type Settings = EchoSettings;
        fn new(s: EchoSettings) -> Result<Self, TransformError> {
            Ok(Echo { prefix: s.prefix })
        }
        fn transform(&self, record: &Record) -> Result<Vec<Event>, TransformError> {
            Ok(vec![Event::new(
                format!("{}{}", self.prefix, record.table),
                &1,
            )?])
        }
    }

    struct NeverInit;
    impl Transform for NeverInit {
        type Settings = ();
        fn new(_: ()) -> Result<Self, TransformError> {
            Ok(NeverInit)
        }
        fn transform(&self, _: &Record) -> Result<Vec<Event>, TransformError> {
            Ok(vec![])
        }
    }

    #[test]
    fn init_then_call() {
        init::<Echo>(r#"{"prefix": "p."}"#).unwrap();
        let prefix = with_instance::<Echo, _>(|t| Ok(t.prefix.clone())).unwrap();
        assert_eq!(prefix, "p.");
    }

    #[test]
    fn bad_settings_are_invalid_settings() {
        let err = init::<Echo>(r#"{"prefix": "p.", "extra": 1}"#).unwrap_err();
        assert!(
            matches!(&err, TransformError::InvalidSettings(m) if m.contains("extra")),
            "{err:?}"
        );
        assert!(matches!(
            init::<Echo>("{"),
            Err(TransformError::InvalidSettings(_))
        ));
        assert!(matches!(
            init::<Echo>(""),
            Err(TransformError::InvalidSettings(m)) if m.contains("prefix")
        ));
    }

    #[test]
    fn call_before_init_fails() {
        let err = with_instance::<NeverInit, ()>(|_| Ok(())).unwrap_err();
        assert_eq!(err, TransformError::failed("transform called before init"));
    }

    #[test]
    fn objects_are_parsed_exactly() {
        let v = parse_object(r#"{"n": 1.10}"#, "keys").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"n":1.10}"#);
        assert!(matches!(
            parse_object("[1]", "keys"),
            Err(TransformError::InvalidRecord(m)) if m == "keys is not a JSON object"
        ));
        assert!(matches!(
            parse_object("{", "new image"),
            Err(TransformError::InvalidRecord(_))
        ));
    }
}
