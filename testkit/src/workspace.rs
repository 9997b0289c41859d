//! The workspace the tests run in: its root, its fixtures, and the guest
//! components, built on first use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's guest packages: [`guest`] builds them all at once.
const GUESTS: [&str; 3] = ["data-change", "order-status", "hostile"];

/// The workspace root: the folder above this crate's `testkit/`.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ has a parent")
        .to_path_buf()
}

/// A file of the workspace, by its path relative to the root.
pub fn fixture(relative: &str) -> PathBuf {
    workspace().join(relative)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// The guest component built from the workspace crate `package`
/// (`data-change`, `order-status` or `hostile`), built on first use with the
/// same command the README gives.
pub fn guest(package: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--profile", "guest", "--target", "wasm32-wasip2"])
            .args(GUESTS.iter().flat_map(|name| ["-p", name]))
            .status()
            .expect("run cargo to build the guest components");
        assert!(status.success(), "building the guest components failed");
    });
    let path = target_dir()
        .join("wasm32-wasip2/guest")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
