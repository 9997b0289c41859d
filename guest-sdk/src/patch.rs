//! RFC 6902 JSON Patch on [`serde_json::Value`]s, for transforms that build
//! or read patches of their own (a patch of a sub-document, a patch applied
//! to a projection). This is the [`json_patch`] crate, re-exported so a
//! transform needs no dependency of its own.
//!
//! For a record's whole images, prefer [`Record::patch`](crate::Record::patch):
//! it diffs the images' exact text without building value trees, and the
//! test `record_patches_agree_with_json_patch` checks that applying it
//! with [`apply`] turns the old image into the new one.
//!
//! ```
//! use relay_sdk::patch::{apply, diff, Patch};
//! use serde_json::json;
//!
//! let old = json!({"status": "NEW", "lines": [1, 2]});
//! let new = json!({"status": "PAID", "lines": [1]});
//! let patch: Patch = diff(&old, &new);
//! let mut doc = old.clone();
//! apply(&mut doc, &patch).unwrap();
//! assert_eq!(doc, new);
//! ```

pub use json_patch::{
    diff, merge, patch as apply, Patch, PatchError, PatchErrorKind, PatchOperation,
};
