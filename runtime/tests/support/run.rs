//! Running the `relay` binary as a user does, for the CLI tests (`cli.rs`,
//! `new.rs`); included by path, apart from the stack in `support/`.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `relay` with `args` (WARN logs and above) and waits for it.
pub fn relay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relay"))
        .args(args)
        .env("RELAY_LOG", "warn")
        .output()
        .expect("run relay")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as an argument.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}
