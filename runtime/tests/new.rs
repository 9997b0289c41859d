//! `relay new` and `relay build` as a user runs them, on what they refuse
//! before any cargo build: bad names, folders that are not empty, an SDK
//! that is not there, folders that hold no transform crate. Building a
//! scaffolded crate is `scripts/test-scaffold`'s job (it compiles for
//! wasm32, which takes a minute).

use std::path::{Path, PathBuf};

#[path = "support/run.rs"]
mod run;
use run::{relay, s, text};

/// A fresh, missing folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-new-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The files under `dir`, relative and sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn new_rejects_an_invalid_name_showing_a_valid_one() {
    let dir = scratch("bad-name");
    for name in ["Order Events", "1orders", "fn", "relay-sdk"] {
        let out = relay(&["new", name, "--path", s(&dir)]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid transform name {name:?}")),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("\"order-events\""), "{name}: {stderr}");
        assert!(!dir.exists(), "{name}: wrote {}", dir.display());
    }
}

#[test]
fn new_refuses_a_folder_that_is_not_empty_and_leaves_it_alone() {
    let dir = scratch("not-empty");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Cargo.toml"), "# mine\n").unwrap();
    let out = relay(&["new", "order-events", "--path", s(&dir)]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert!(stderr.contains("--path"), "{stderr}");
    assert_eq!(files(&dir), ["Cargo.toml"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.toml")).unwrap(),
        "# mine\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_writes_a_standalone_crate_that_uses_this_checkouts_sdk() {
    let dir = scratch("crate");
    std::fs::create_dir_all(&dir).unwrap(); // an empty folder is fine
    let out = relay(&["new", "order-events", "--path", s(&dir)]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        files(&dir),
        [
            ".gitignore",
            "Cargo.toml",
            "README.md",
            "fixtures/records.expected.jsonl",
            "fixtures/records.json",
            "fixtures/settings.json",
            "rust-toolchain.toml",
            "src/lib.rs",
        ]
    );
    assert!(
        stdout.contains("target/wasm32-wasip2/release/order_events.wasm"),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("guest-sdk");
    assert!(
        manifest.contains(&format!("relay-sdk = {{ path = {:?} }}", s(&sdk))),
        "{manifest}"
    );
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_takes_the_sdk_from_git_or_a_checkout_and_explains_a_bad_one() {
    let dir = scratch("git");
    let out = relay(&[
        "new",
        "order-events",
        "--path",
        s(&dir),
        "--sdk",
        "git=https://git.example.com/platform/relay.git",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"relay-sdk = { git = "https://git.example.com/platform/relay.git" }"#),
        "{manifest}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = relay(&[
        "new",
        "order-events",
        "--path",
        s(&dir),
        "--sdk",
        &format!("path={}", s(checkout)),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("guest-sdk\" }"), "{manifest}");
    std::fs::remove_dir_all(&dir).unwrap();

    for (sdk, says) in [
        ("path=/nonexistent/relay", "holds no relay-sdk crate"),
        ("/src/relay", "--sdk takes path=DIR"),
        ("version=0.1", "--sdk takes path=DIR"),
    ] {
        let out = relay(&["new", "order-events", "--path", s(&dir), "--sdk", sdk]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{sdk}: {stderr}");
        assert!(stderr.contains(says), "{sdk}: {stderr}");
        assert!(!dir.exists(), "{sdk}: wrote {}", dir.display());
    }
}

#[test]
fn build_explains_a_folder_without_a_transform_crate() {
    let dir = scratch("no-crate");
    std::fs::create_dir_all(&dir).unwrap();
    let out = relay(&["build", "--path", s(&dir)]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("has no Cargo.toml"), "{stderr}");
    assert!(stderr.contains("relay new"), "{stderr}");

    // A library that is no cdylib: `cargo metadata` tells, nothing is built.
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    let out = relay(&["build", "--path", s(&dir)]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("plain is not a transform crate") && stderr.contains("cdylib"),
        "{stderr}"
    );
    assert!(!dir.join("target").exists(), "built something");
    std::fs::remove_dir_all(&dir).unwrap();
}
