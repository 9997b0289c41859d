//! `relay build`: a transform crate to its WebAssembly component, in release
//! mode for [`TARGET`], and the module's sha256 (the relay config's pin).
//!
//! In the order `relay build` calls them: [`TransformCrate::locate`] (with
//! `cargo metadata`), [`target_installed`] and [`add_target`] (with
//! `rustup`), [`TransformCrate::build`] (`cargo build`, its artifact from
//! cargo's JSON messages) and [`Module::read`].

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde_json::Value;

use crate::modules::Sha256Digest;

/// The Rust target transforms are built for; it produces a component.
pub const TARGET: &str = "wasm32-wasip2";

/// Why a transform could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `cargo` or `rustup` could not be started.
    #[error("cannot run {program}: {source} (is Rust installed? see https://rustup.rs)")]
    Spawn {
        /// The program.
        program: &'static str,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The folder holds no `Cargo.toml`.
    #[error(
        "{} has no Cargo.toml: pass the transform crate's folder with --path \
         (`relay new NAME` makes one)",
        .0.display()
    )]
    NoManifest(PathBuf),
    /// `cargo metadata` failed or said something unexpected.
    #[error("cargo metadata failed for {}: {message}", manifest.display())]
    Metadata {
        /// The manifest it read.
        manifest: PathBuf,
        /// Cargo's error, or what was missing from its answer.
        message: String,
    },
    /// The manifest is a workspace, not a package.
    #[error(
        "{} is a workspace, not a transform crate: pass the crate's folder with --path \
         (e.g. --path transforms/my-transform)",
        .0.display()
    )]
    NoPackage(PathBuf),
    /// The package has no `cdylib` library to build a component from.
    #[error(
        "{0} is not a transform crate: its Cargo.toml needs \
         [lib] crate-type = [\"cdylib\", \"rlib\"]"
    )]
    NotATransform(String),
    /// `rustup target add` failed.
    #[error("`rustup target add {TARGET}` failed ({0}); add the target yourself and build again")]
    AddTarget(ExitStatus),
    /// `cargo build` failed; it printed why.
    #[error("cargo build failed ({0}); its messages above say why")]
    Cargo(ExitStatus),
    /// `cargo build` succeeded without naming a `.wasm` for the package.
    #[error("cargo built {0} but reported no .wasm file for it")]
    NoArtifact(String),
    /// The built module could not be read.
    #[error("cannot read the module {}: {source}", path.display())]
    Read {
        /// The module.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A transform crate, as `cargo metadata` describes it.
#[derive(Debug, Clone)]
pub struct TransformCrate {
    /// The package's name, e.g. `order-events`.
    pub name: String,
    /// Cargo's id of the package, which its build messages carry.
    pub id: String,
    /// Its `Cargo.toml`.
    pub manifest: PathBuf,
}

impl TransformCrate {
    /// The package whose `Cargo.toml` is in `dir`, checked to build a
    /// `cdylib`.
    pub fn locate(dir: &Path) -> Result<TransformCrate, BuildError> {
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(BuildError::NoManifest(dir.to_owned()));
        }
        let output = Command::new("cargo")
            .args([
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--manifest-path",
            ])
            .arg(&manifest)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BuildError::Spawn {
                program: "cargo",
                source,
            })?;
        let metadata_error = |message: String| BuildError::Metadata {
            manifest: manifest.clone(),
            message,
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(metadata_error(stderr.trim().to_owned()));
        }
        let metadata: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| metadata_error(format!("its output is not JSON: {e}")))?;
        let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_owned());
        let wanted = canonical(&manifest);
        let package = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|package| {
                package["manifest_path"]
                    .as_str()
                    .is_some_and(|path| canonical(Path::new(path)) == wanted)
            })
            .ok_or_else(|| BuildError::NoPackage(manifest.clone()))?;
        let text = |field: &str| {
            package[field]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| metadata_error(format!("the package has no {field}")))
        };
        let (name, id) = (text("name")?, text("id")?);
        if !package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|target| has_kind(target, "cdylib"))
        {
            return Err(BuildError::NotATransform(name));
        }
        Ok(TransformCrate { name, id, manifest })
    }

    /// Runs `cargo build --release --target wasm32-wasip2 --lib` for the
    /// crate, cargo's progress and diagnostics going to stderr, and returns
    /// the component it built.
    pub fn build(&self) -> Result<PathBuf, BuildError> {
        let mut child = Command::new("cargo")
            .args(self.build_args())
            .current_dir(self.manifest.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| BuildError::Spawn {
                program: "cargo",
                source,
            })?;
        let mut module = None;
        if let Some(stdout) = child.stdout.take() {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(path) = self.artifact(&line) {
                    module = Some(path);
                }
            }
        }
        let status = child.wait().map_err(|source| BuildError::Spawn {
            program: "cargo",
            source,
        })?;
        if !status.success() {
            return Err(BuildError::Cargo(status));
        }
        module.ok_or_else(|| BuildError::NoArtifact(self.name.clone()))
    }

    /// The arguments of the `cargo` command [`TransformCrate::build`] runs.
    pub fn build_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "build",
            "--release",
            "--target",
            TARGET,
            "--lib",
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ]
        .map(str::to_owned)
        .into();
        args.push(self.manifest.to_string_lossy().into_owned());
        args.extend(["--package".to_owned(), self.name.clone()]);
        args
    }

    /// The `.wasm` a cargo JSON message reports for this crate's `cdylib`,
    /// if it is such a message.
    fn artifact(&self, line: &str) -> Option<PathBuf> {
        let message: Value = serde_json::from_str(line).ok()?;
        let ours = message["reason"] == "compiler-artifact"
            && message["package_id"] == self.id.as_str()
            && has_kind(&message["target"], "cdylib");
        if !ours {
            return None;
        }
        message["filenames"]
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .find(|file| file.ends_with(".wasm"))
            .map(PathBuf::from)
    }
}

fn has_kind(target: &Value, kind: &str) -> bool {
    target["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k == kind))
}

/// Whether the toolchain that builds in `dir` has [`TARGET`] (rustup picks
/// the toolchain from `dir`'s `rust-toolchain.toml`); `None` without rustup,
/// when only cargo can tell.
pub fn target_installed(dir: &Path) -> Option<bool> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == TARGET),
    )
}

/// `rustup target add wasm32-wasip2` for the toolchain that builds in `dir`,
/// its output going to stderr.
pub fn add_target(dir: &Path) -> Result<(), BuildError> {
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .status()
        .map_err(|source| BuildError::Spawn {
            program: "rustup",
            source,
        })?;
    match status.success() {
        true => Ok(()),
        false => Err(BuildError::AddTarget(status)),
    }
}

/// A built module and the digest the relay config pins it with.
#[derive(Debug, Clone)]
pub struct Module {
    /// The component.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// Its SHA-256, the value of `sha256 =` in the relay config.
    pub sha256: Sha256Digest,
}

impl Module {
    /// Reads the module at `path` and digests it.
    pub fn read(path: &Path) -> Result<Module, BuildError> {
        let bytes = std::fs::read(path).map_err(|source| BuildError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Module {
            path: path.to_owned(),
            bytes: bytes.len(),
            sha256: Sha256Digest::of(&bytes),
        })
    }

    /// The two lines of a relay config table entry that name this module:
    /// `module = "..."` and `sha256 = "..."`.
    pub fn config_lines(&self) -> String {
        let path = toml::Value::String(self.path.to_string_lossy().into_owned());
        format!("module = {path}\nsha256 = \"{}\"", self.sha256)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> TransformCrate {
        TransformCrate {
            name: "order-events".into(),
            id: "path+file:///src/order-events#0.1.0".into(),
            manifest: "/src/order-events/Cargo.toml".into(),
        }
    }

    #[test]
    fn the_build_is_a_release_build_of_the_library_for_wasm32_wasip2() {
        let args = orders().build_args().join(" ");
        assert!(
            args.starts_with("build --release --target wasm32-wasip2 --lib "),
            "{args}"
        );
        assert!(
            args.ends_with("--manifest-path /src/order-events/Cargo.toml --package order-events"),
            "{args}"
        );
    }

    #[test]
    fn the_artifact_is_the_wasm_of_this_packages_cdylib() {
        let message = |id: &str, kinds: &[&str], files: &[&str]| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "package_id": id,
                "target": {"kind": kinds, "name": "order_events"},
                "filenames": files,
            })
            .to_string()
        };
        let krate = orders();
        let wasm = "/t/wasm32-wasip2/release/order_events.wasm";
        let rlib = "/t/wasm32-wasip2/release/liborder_events.rlib";
        assert_eq!(
            krate.artifact(&message(&krate.id, &["cdylib", "rlib"], &[rlib, wasm])),
            Some(PathBuf::from(wasm))
        );
        assert_eq!(
            krate.artifact(&message("registry+serde#1.0.0", &["cdylib"], &[wasm])),
            None
        );
        assert_eq!(
            krate.artifact(&message(&krate.id, &["rlib"], &[rlib])),
            None
        );
        assert_eq!(krate.artifact(r#"{"reason": "build-finished"}"#), None);
        assert_eq!(krate.artifact("not json"), None);
    }

    #[test]
    fn the_config_lines_are_toml_with_the_modules_digest() {
        let dir = std::env::temp_dir().join(format!("relay-build-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.wasm");
        std::fs::write(&path, b"").unwrap();
        let module = Module::read(&path).unwrap();
        assert_eq!(module.bytes, 0);
        let lines: toml::Table = module.config_lines().parse().unwrap();
        assert_eq!(lines["module"].as_str(), path.to_str());
        assert_eq!(
            lines["sha256"].as_str(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locate_explains_a_folder_without_a_crate() {
        let err = TransformCrate::locate(Path::new("/nonexistent/transform")).unwrap_err();
        assert!(matches!(err, BuildError::NoManifest(_)), "{err}");
        assert!(err.to_string().contains("relay new"), "{err}");
    }
}
