//! The module cache: artifacts the relay compiled itself, kept where only
//! the relay writes, one per `.wasm` digest and engine.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::Digest as _;

use super::Sha256Digest;
use crate::transform::{TransformEngine, TransformModule};

/// The module cache folder when none is given (`/tmp` is the only writable
/// place in Lambda, and it survives warm starts).
pub const DEFAULT_CACHE_DIR: &str = "/tmp/relay-modules";

/// Why a folder cannot be trusted to hold native code, if it cannot.
pub(super) fn writable_by_others(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o002 != 0).then_some("is writable by anybody")
}

/// The relay's own artifacts, one file per `.wasm` digest and engine (see
/// the module docs).
pub(super) struct ArtifactCache {
    pub(super) dir: PathBuf,
    /// Whether the folder is the relay's own, checked once.
    usable: std::sync::OnceLock<bool>,
}

/// What starts every cache file, before the artifact's sha256.
pub(super) const CACHE_MAGIC: &[u8] = b"relay artifact 1\n";

impl ArtifactCache {
    pub(super) fn new(dir: PathBuf) -> Self {
        ArtifactCache {
            dir,
            usable: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn path(&self, engine: &TransformEngine, sha256: Sha256Digest) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", engine.compatibility_key()))
    }

    /// Creates the folder (mode 0700) if needed; true if it is the relay's
    /// own: owned by this user and writable by nobody else.
    pub(super) fn usable(&self) -> bool {
        *self.usable.get_or_init(|| match own_folder(&self.dir) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(
                    cache = %self.dir.display(),
                    "the module cache is not used, modules are compiled at every start: {why}"
                );
                false
            }
        })
    }

    /// The cached artifact of the `.wasm` with this digest, if there is an
    /// intact one.
    pub(super) fn load(
        &self,
        engine: &TransformEngine,
        name: &str,
        sha256: Sha256Digest,
    ) -> Option<(Arc<TransformModule>, PathBuf)> {
        if !self.usable() {
            return None;
        }
        let path = self.path(engine, sha256);
        let file = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => std::fs::read(&path),
            Ok(_) => Err(std::io::Error::other("it is not a regular file")),
            Err(e) => Err(e),
        };
        let bytes = match file {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(cache = %path.display(), "cannot read the cached module, compiling it: {e}");
                return None;
            }
        };
        let artifact = bytes
            .strip_prefix(CACHE_MAGIC)
            .and_then(|rest| rest.split_at_checked(32))
            .filter(|(digest, artifact)| sha2::Sha256::digest(artifact).as_slice() == *digest)
            .map(|(_, artifact)| artifact);
        let Some(artifact) = artifact else {
            tracing::warn!(
                cache = %path.display(),
                "the cached module is damaged (its digest does not match); compiling it again"
            );
            let _ = std::fs::remove_file(&path);
            return None;
        };
        // SAFETY: the relay wrote this file itself (the folder is its own
        // and nobody else can write it), and the digest shows it is intact.
        match unsafe { engine.load_artifact(name, artifact) } {
            Ok(module) => Some((Arc::new(module), path)),
            Err(e) => {
                tracing::warn!(cache = %path.display(), "cannot load the cached module, compiling it: {e}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Writes the artifact compiled from the `.wasm` with this digest;
    /// returns the file, or `None` (and says why) if it could not.
    pub(super) fn store(
        &self,
        engine: &TransformEngine,
        sha256: Sha256Digest,
        artifact: &[u8],
    ) -> Option<PathBuf> {
        if !self.usable() {
            return None;
        }
        let path = self.path(engine, sha256);
        let mut bytes = Vec::with_capacity(CACHE_MAGIC.len() + 32 + artifact.len());
        bytes.extend_from_slice(CACHE_MAGIC);
        bytes.extend_from_slice(&sha2::Sha256::digest(artifact));
        bytes.extend_from_slice(artifact);
        match write_atomically(&self.dir, &path, &bytes) {
            Ok(()) => Some(path),
            Err(e) => {
                tracing::warn!(
                    cache = %self.dir.display(),
                    "cannot cache the compiled module, it will be compiled again on the next \
                     cold start: {e}"
                );
                None
            }
        }
    }
}

/// Makes `dir` (mode 0700) unless it exists; then checks that it is a folder
/// of this user that nobody else can write.
pub(super) fn own_folder(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("cannot create it: {e}")),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a folder".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "it belongs to user {}, not to the relay's user {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "others can write it (mode {:o}); the relay creates it with mode 700",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` in `dir` through a temporary file in the same
/// folder and a rename, so `path` is either absent or complete.
pub(super) fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".incoming-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_leaves_only_the_target() {
        let dir = std::env::temp_dir().join(format!("relay-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("target");
        write_atomically(&dir, &path, b"module").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"module");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("target")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
