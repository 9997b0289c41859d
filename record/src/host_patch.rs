//! For the guest SDK (not a public API): the host's patch of the record
//! being transformed.
//!
//! Since `relay:transform@0.2.0` the host computes the RFC 6902 patch of the
//! record it hands over (the contract's `record-patch`), natively. The SDK
//! runs the author's `transform` inside [`with`], and [`Record::patch`] (and
//! so [`DataChangeEvent`](crate::DataChangeEvent)) asks the host for the
//! patch of that record, and of no other: it is recognised by the very image
//! texts the SDK made from what the host sent (their addresses and lengths),
//! which nothing else shares while the call lasts. Any other record, a clone
//! included, is diffed in the guest as before; both give the same text.

use std::cell::Cell;

use crate::{Image, Record};

/// Asks the host for the patch; `None` when it cannot give one.
pub type Fetch = fn() -> Option<String>;

/// A record's image texts, by address and length.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Identity {
    old: Option<(usize, usize)>,
    new: Option<(usize, usize)>,
}

impl Identity {
    fn of(record: &Record) -> Self {
        let text = |image: &Option<Image>| {
            image
                .as_ref()
                .map(|image| (image.json().as_ptr() as usize, image.json().len()))
        };
        Identity {
            old: text(&record.old_image),
            new: text(&record.new_image),
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<(Identity, Fetch)>> = const { Cell::new(None) };
}

/// Runs `f` with `record` as the record the host holds: its patch is asked
/// of `fetch` while `f` runs.
pub fn with<R>(record: &Record, fetch: Fetch, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(None));
        }
    }
    CURRENT.with(|current| current.set(Some((Identity::of(record), fetch))));
    let _reset = Reset;
    f()
}

/// The host's patch of `record`, when `record` is the one [`with`] runs for.
pub(crate) fn patch_of(record: &Record) -> Option<String> {
    let (identity, fetch) = CURRENT.with(Cell::get)?;
    if identity != Identity::of(record) {
        return None;
    }
    fetch()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing;
    use crate::Operation;

    fn host() -> Option<String> {
        Some(r#"[{"op":"from the host"}]"#.into())
    }

    #[test]
    fn only_the_record_held_gets_the_hosts_patch() {
        let record = testing::record(
            Operation::Modify,
            json!({"id": 1}),
            Some(json!({"id": 1, "n": 1})),
            Some(json!({"id": 1, "n": 2})),
        );
        let own = r#"[{"op":"replace","path":"/n","value":2}]"#;
        let patch = |r: &Record| {
            let mut text = String::new();
            r.write_patch(&mut text);
            text
        };
        assert_eq!(patch(&record), own);
        with(&record, host, || {
            assert_eq!(patch(&record), r#"[{"op":"from the host"}]"#);
            // A clone has the same texts at other addresses: its own diff.
            assert_eq!(patch(&record.clone()), own);
        });
        assert_eq!(patch(&record), own, "after the call the guest diffs again");
        with(&record, || None, || assert_eq!(patch(&record), own));
    }
}
