//! What a transform author sees when `export_transform!` is misused, and one
//! transform that compiles and runs (trybuild, natively: off wasm32 the macro
//! expands to its type check only).
//!
//! The `.stderr` files are the compiler's output with paths normalized by
//! trybuild. Most of it is the SDK's own wording (the macro's
//! `compile_error!`s, `Transform`'s `on_unimplemented`), but rustc's layout
//! and, in `settings_not_deserialize.stderr`, serde's notes are quoted too: a
//! new stable rustc or serde can change them. After such an upgrade, or a
//! deliberate change to the messages, refresh the files with
//! `TRYBUILD=overwrite cargo test -p relay-sdk --test ui` and review the diff.

#[test]
fn export_transform() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/*.rs");
}
