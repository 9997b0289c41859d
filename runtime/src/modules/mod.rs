//! Module sources: where each table's transform module comes from (a local
//! file or `s3://bucket/key`), checked against its pinned sha256, and how it
//! becomes native code.
//!
//! [`ModuleStore`] runs before the transform stage: it turns every table's
//! [`ModuleSource`] into verified bytes and loads them into the
//! [`TransformEngine`], once per distinct module.
//!
//! # What runs as native code
//!
//! A precompiled artifact (`relay compile`, `.cwasm`) is native machine code
//! that wasmtime loads without verifying it: whoever wrote its bytes runs
//! code with the relay's credentials, and a pinned sha256 only proves they
//! are the bytes somebody chose. So:
//!
//! - a module a team can replace without a redeploy (any S3 object) must be
//!   WebAssembly; an artifact there is refused ([`ModuleError::Untrusted`]);
//! - a local artifact loads only from a folder listed in the configuration's
//!   `[modules] trusted_artifact_dirs` (what the deployment ships, e.g. the
//!   Lambda layer, read-only at run time), and never from a folder anybody
//!   can write;
//! - every `.wasm` is compiled by the relay itself, and the artifact it made
//!   is kept in its module cache (below), which only the relay writes.
//!
//! # The module cache
//!
//! `RELAY_MODULE_CACHE` (default `/tmp/relay-modules`, which survives warm
//! starts of a Lambda execution environment) holds one artifact per `.wasm`
//! digest and engine, `<sha256>-<engine>.cwasm`. The relay creates the folder
//! with mode 0700 and uses it only while it is the relay's own (owned by its
//! user, writable by nobody else); otherwise it compiles every time and says
//! so. Each file starts with the sha256 of the artifact after it, so a
//! damaged file is recompiled, never run; files are written through a
//! temporary file and a rename, so a reader never sees half of one. For an
//! S3 module the pin is the key: a cached artifact means no S3 call at all.
//! Otherwise the object is fetched with GetObject, checked against the pin,
//! compiled and cached; bytes that do not match the pin are refused and
//! never cached.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transform::{LoadError, TransformEngine, TransformModule};

mod cache;
mod config;
mod s3;
mod source;

pub use cache::DEFAULT_CACHE_DIR;
use cache::{writable_by_others, ArtifactCache};
pub use config::{validate_tables, ModulesConfig, RawModules, RawTable, TableConfig};
use s3::get_object;
pub use source::{ModuleSource, NotADigest, Sha256Digest};

/// The file name under which a deployment ships the artifact of the `.wasm`
/// with digest `sha256` for machines of `arch` (`x86_64`, `aarch64`), in one
/// of its trusted artifact folders: `relay compile --artifact-dir` writes
/// it, and loading that `.wasm` then takes it instead of compiling.
pub fn shipped_artifact_name(sha256: Sha256Digest, arch: &str) -> String {
    format!("{sha256}-{arch}.cwasm")
}

/// How a loaded module became native code, and where its bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The relay compiled the `.wasm` now.
    Compiled {
        /// Whether the `.wasm` was fetched from S3 (else read from a file).
        fetched: bool,
        /// The cache file the artifact was written to, `None` if it could
        /// not be.
        cached: Option<PathBuf>,
    },
    /// The artifact the relay compiled earlier from a `.wasm` with this
    /// digest, from its cache file (for S3: S3 was not asked).
    Cached(PathBuf),
    /// A precompiled artifact, loaded from this trusted folder.
    TrustedArtifact(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Compiled { fetched, cached } => {
                if *fetched {
                    f.write_str("fetched from S3, ")?;
                }
                f.write_str("compiled by the relay, ")?;
                match cached {
                    Some(path) => write!(f, "cached at {}", path.display()),
                    None => f.write_str("not cached"),
                }
            }
            Origin::Cached(path) => write!(
                f,
                "compiled by the relay earlier, loaded from its cache {}",
                path.display()
            ),
            Origin::TrustedArtifact(dir) => write!(
                f,
                "precompiled artifact from the trusted folder {}",
                dir.display()
            ),
        }
    }
}

/// A table's module, verified and loaded.
#[derive(Clone)]
pub struct LoadedModule {
    /// The compiled module, shared by every table that uses the same bytes.
    pub module: Arc<TransformModule>,
    /// The digest of its bytes (of the `.wasm`, or of the trusted artifact).
    pub sha256: Sha256Digest,
    /// Whether the digest was checked against a pin (always for S3).
    pub pinned: bool,
    /// How it became native code.
    pub origin: Origin,
    /// How long making it ready took (fetching, compiling or loading).
    pub took: Duration,
}

/// A table's module could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// A local module file could not be read.
    #[error("table {table}: cannot read transform module {path}: {error}")]
    Read {
        /// The table.
        table: String,
        /// The file.
        path: PathBuf,
        /// The I/O error (in the message, not chained, so it is shown once).
        error: std::io::Error,
    },
    /// The module's bytes do not hash to the pinned sha256; they were not
    /// loaded (nor cached).
    #[error(
        "table {table}: transform module {location} does not match its pinned sha256, \
         refusing to load it: expected {expected}, got {actual} (upload the intended module \
         or set `sha256` to the digest of the new one)"
    )]
    Mismatch {
        /// The table.
        table: String,
        /// The path or `s3://` URL.
        location: String,
        /// The pin from the config.
        expected: Sha256Digest,
        /// The digest of the bytes found.
        actual: Sha256Digest,
    },
    /// The module is a precompiled artifact (native code) from somewhere it
    /// may not come from: S3, or a folder the deployment does not ship.
    #[error(
        "table {table}: transform module {location} is a precompiled artifact, which is native \
         code that runs unchecked with the relay's credentials, and {reason}; configure the \
         .wasm it was compiled from instead (the relay compiles it and caches the result)"
    )]
    Untrusted {
        /// The table.
        table: String,
        /// The path or `s3://` URL.
        location: String,
        /// Why it is not trusted.
        reason: String,
    },
    /// GetObject failed.
    #[error("table {table}: cannot fetch transform module {url}: {reason}")]
    S3 {
        /// The table.
        table: String,
        /// The `s3://` URL.
        url: String,
        /// What S3 (or the connection) said.
        reason: String,
        /// Whether trying again later may work (connection, timeout, 5xx).
        retriable: bool,
    },
    /// The store was made without an S3 client.
    #[error("table {table}: transform module {url} is in S3, but no S3 client is configured")]
    NoS3Client {
        /// The table.
        table: String,
        /// The `s3://` URL.
        url: String,
    },
    /// The verified bytes are not a usable transform module.
    #[error("table {table}: {error}")]
    Load {
        /// The table.
        table: String,
        /// Why the engine refused it (in the message, not chained).
        error: LoadError,
    },
}

impl ModuleError {
    /// Whether the same load may succeed later without a change (S3 was
    /// unreachable or overloaded); a mismatch or a missing object is not.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ModuleError::S3 {
                retriable: true,
                ..
            }
        )
    }
}

/// Resolves every table's module to verified bytes and loads each distinct
/// module once. Lives for the set-up phase only.
pub struct ModuleStore {
    s3: Option<aws_sdk_s3::Client>,
    cache: ArtifactCache,
    /// Folders whose artifacts are loaded, canonical.
    trusted: Vec<PathBuf>,
    /// Per source and pin: the digest and origin of what was loaded.
    resolved: HashMap<(ModuleSource, Option<Sha256Digest>), (Sha256Digest, Origin)>,
    /// Per digest: the compiled module.
    compiled: HashMap<Sha256Digest, Arc<TransformModule>>,
}

impl ModuleStore {
    /// A store using `s3` for `s3://` modules and `cache_dir` as the module
    /// cache, trusting no folder's artifacts.
    pub fn new(s3: Option<aws_sdk_s3::Client>, cache_dir: PathBuf) -> Self {
        ModuleStore {
            s3,
            cache: ArtifactCache::new(cache_dir),
            trusted: Vec::new(),
            resolved: HashMap::new(),
            compiled: HashMap::new(),
        }
    }

    /// Trusts the precompiled artifacts in these folders (and below them):
    /// folders that the deployment ships and nothing changes at run time.
    /// Folders that do not exist are ignored.
    pub fn trust_artifacts_in(mut self, dirs: &[PathBuf]) -> Self {
        self.trusted = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
        self
    }

    /// The cache folder.
    pub fn cache_dir(&self) -> &Path {
        &self.cache.dir
    }

    /// Loads `route`'s module for `table`: verified against its pin, from
    /// the cache or S3 for `s3://` sources, compiled once per distinct module.
    pub async fn load(
        &mut self,
        engine: &TransformEngine,
        table: &str,
        route: &TableConfig,
    ) -> Result<LoadedModule, ModuleError> {
        let started = Instant::now();
        let identity = (route.module.clone(), route.sha256);
        if let Some((sha256, origin)) = self.resolved.get(&identity) {
            if let Some(module) = self.compiled.get(sha256) {
                return Ok(LoadedModule {
                    module: module.clone(),
                    sha256: *sha256,
                    pinned: route.sha256.is_some(),
                    origin: origin.clone(),
                    took: started.elapsed(),
                });
            }
        }
        let (module, sha256, origin) = match &route.module {
            ModuleSource::File(path) => self.load_file(engine, table, route, path)?,
            ModuleSource::S3 { bucket, key } => {
                // Config validation makes the pin mandatory for S3.
                let expected = route.sha256.ok_or_else(|| ModuleError::S3 {
                    table: table.to_owned(),
                    url: route.module.to_string(),
                    reason: "no sha256 is pinned for it".into(),
                    retriable: false,
                })?;
                self.load_s3(engine, table, &route.module, bucket, key, expected)
                    .await?
            }
        };
        self.compiled.insert(sha256, module.clone());
        self.resolved.insert(identity, (sha256, origin.clone()));
        Ok(LoadedModule {
            module,
            sha256,
            pinned: route.sha256.is_some(),
            origin,
            took: started.elapsed(),
        })
    }

    fn load_file(
        &self,
        engine: &TransformEngine,
        table: &str,
        route: &TableConfig,
        path: &Path,
    ) -> Result<(Arc<TransformModule>, Sha256Digest, Origin), ModuleError> {
        let bytes = std::fs::read(path).map_err(|error| ModuleError::Read {
            table: table.to_owned(),
            path: path.to_path_buf(),
            error,
        })?;
        let sha256 = Sha256Digest::of(&bytes);
        if let Some(expected) = route.sha256 {
            check(table, &route.module, expected, sha256)?;
        }
        let name = route.module.module_name();
        let load = |error| ModuleError::Load {
            table: table.to_owned(),
            error,
        };
        if !TransformEngine::is_artifact(&bytes) {
            let (module, origin) = self
                .compile(engine, &name, sha256, &bytes, false)
                .map_err(load)?;
            return Ok((module, sha256, origin));
        }
        let dir = self
            .trusted_folder(path)
            .map_err(|reason| ModuleError::Untrusted {
                table: table.to_owned(),
                location: path.display().to_string(),
                reason,
            })?;
        // SAFETY: the artifact lies in a folder the configuration trusts (the
        // deployment ships it), which nobody but its owner can write.
        let module = unsafe { engine.load_artifact(&name, &bytes) }.map_err(load)?;
        Ok((Arc::new(module), sha256, Origin::TrustedArtifact(dir)))
    }

    /// The trusted folder holding `path`, or why there is none.
    fn trusted_folder(&self, path: &Path) -> Result<PathBuf, String> {
        let listed = || match self.trusted.is_empty() {
            true => "the configuration trusts no folder's artifacts (`[modules] \
                     trusted_artifact_dirs`)"
                .to_owned(),
            false => format!(
                "it is not in a trusted artifact folder ({})",
                self.trusted
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let real = path
            .canonicalize()
            .map_err(|e| format!("its path cannot be resolved: {e}"))?;
        let dir = self
            .trusted
            .iter()
            .find(|dir| real.starts_with(dir))
            .ok_or_else(listed)?;
        // Nothing a deployment ships is writable by anybody: a trusted folder
        // that is refuses its artifacts.
        for place in real.ancestors().take_while(|p| p.starts_with(dir)) {
            if let Some(why) = writable_by_others(place) {
                return Err(format!("{} {why}", place.display()));
            }
        }
        Ok(dir.clone())
    }

    async fn load_s3(
        &self,
        engine: &TransformEngine,
        table: &str,
        source: &ModuleSource,
        bucket: &str,
        key: &str,
        expected: Sha256Digest,
    ) -> Result<(Arc<TransformModule>, Sha256Digest, Origin), ModuleError> {
        let name = source.module_name();
        if let Some((module, dir)) = self.shipped(engine, &name, expected) {
            return Ok((module, expected, Origin::TrustedArtifact(dir)));
        }
        if let Some((module, path)) = self.cache.load(engine, &name, expected) {
            tracing::debug!(table, module = %source, cache = %path.display(), "module found in the cache");
            return Ok((module, expected, Origin::Cached(path)));
        }
        let client = self.s3.as_ref().ok_or_else(|| ModuleError::NoS3Client {
            table: table.to_owned(),
            url: source.to_string(),
        })?;
        let bytes = get_object(client, bucket, key)
            .await
            .map_err(|(reason, retriable)| ModuleError::S3 {
                table: table.to_owned(),
                url: source.to_string(),
                reason,
                retriable,
            })?;
        let actual = Sha256Digest::of(&bytes);
        check(table, source, expected, actual)?;
        tracing::info!(table, module = %source, bytes = bytes.len(), "module fetched from S3");
        if TransformEngine::is_artifact(&bytes) {
            return Err(ModuleError::Untrusted {
                table: table.to_owned(),
                location: source.to_string(),
                reason: "a module in S3 can be replaced without a redeploy, so it must be \
                         WebAssembly"
                    .into(),
            });
        }
        let (module, origin) =
            self.compile(engine, &name, actual, &bytes, true)
                .map_err(|error| ModuleError::Load {
                    table: table.to_owned(),
                    error,
                })?;
        Ok((module, actual, origin))
    }

    /// The module for the `.wasm` `bytes` with digest `sha256`: the relay's
    /// cached artifact if there is one, else compiled now and cached.
    /// A `.wasm` component file, compiled through the module cache (once
    /// per digest and engine), as `relay test` loads it. Anything else gets
    /// the engine's own error (a precompiled artifact is refused: its
    /// caller must vouch for it).
    pub fn load_component_file(
        &self,
        engine: &TransformEngine,
        path: &Path,
    ) -> Result<(Arc<TransformModule>, Origin), LoadError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) if !TransformEngine::is_artifact(&bytes) => bytes,
            _ => {
                let module = engine.load(path)?;
                let origin = Origin::Compiled {
                    fetched: false,
                    cached: None,
                };
                return Ok((module, origin));
            }
        };
        let name = ModuleSource::File(path.to_path_buf()).module_name();
        self.compile(engine, &name, Sha256Digest::of(&bytes), &bytes, false)
    }

    /// The artifact the deployment ships for the `.wasm` with this digest
    /// (`relay compile --artifact-dir`: `<sha256>-<arch>.cwasm` in a trusted
    /// folder), if there is one and it loads. One that does not load (made
    /// by another relay build) is passed over with a warning: the `.wasm` is
    /// compiled instead.
    fn shipped(
        &self,
        engine: &TransformEngine,
        name: &str,
        sha256: Sha256Digest,
    ) -> Option<(Arc<TransformModule>, PathBuf)> {
        let file = shipped_artifact_name(sha256, std::env::consts::ARCH);
        for dir in &self.trusted {
            let candidate = dir.join(&file);
            if !candidate.is_file() {
                continue;
            }
            if let Err(why) = self.trusted_folder(&candidate) {
                tracing::warn!(artifact = %candidate.display(), "shipped artifact not used: {why}");
                continue;
            }
            let loaded = std::fs::read(&candidate)
                .map_err(|e| e.to_string())
                // SAFETY: the file lies in a folder the configuration trusts
                // (the deployment ships it), which nobody but its owner can
                // write; wasmtime checks that this engine can run it.
                .and_then(|bytes| {
                    unsafe { engine.load_artifact(name, &bytes) }.map_err(|e| e.to_string())
                });
            match loaded {
                Ok(module) => return Some((Arc::new(module), dir.clone())),
                Err(why) => tracing::warn!(
                    artifact = %candidate.display(),
                    "the shipped artifact does not load into this relay (made by another build?); \
                     compiling the .wasm instead: {why}"
                ),
            }
        }
        None
    }

    fn compile(
        &self,
        engine: &TransformEngine,
        name: &str,
        sha256: Sha256Digest,
        bytes: &[u8],
        fetched: bool,
    ) -> Result<(Arc<TransformModule>, Origin), LoadError> {
        if let Some((module, dir)) = self.shipped(engine, name, sha256) {
            return Ok((module, Origin::TrustedArtifact(dir)));
        }
        if let Some((module, path)) = self.cache.load(engine, name, sha256) {
            return Ok((module, Origin::Cached(path)));
        }
        let (module, artifact) = engine.compile(name, bytes)?;
        let cached = self.cache.store(engine, sha256, &artifact);
        Ok((Arc::new(module), Origin::Compiled { fetched, cached }))
    }
}

fn check(
    table: &str,
    source: &ModuleSource,
    expected: Sha256Digest,
    actual: Sha256Digest,
) -> Result<(), ModuleError> {
    if expected == actual {
        return Ok(());
    }
    Err(ModuleError::Mismatch {
        table: table.to_owned(),
        location: source.to_string(),
        expected,
        actual,
    })
}

#[cfg(test)]
mod store_tests {
    use super::cache::{own_folder, CACHE_MAGIC};
    use super::*;
    use crate::transform::Limits;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relay-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn route(module: ModuleSource, sha256: Option<Sha256Digest>) -> TableConfig {
        TableConfig {
            module,
            sha256,
            settings: "{}".into(),
            limits: Limits::default(),
            sinks: vec!["nakadi".into()],
        }
    }

    fn s3() -> ModuleSource {
        ModuleSource::parse_s3("s3://modules/data_change.wasm")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_file_that_does_not_match_its_pin_is_refused() {
        let dir = scratch("file-pin");
        let path = dir.join("data_change.wasm");
        std::fs::write(&path, b"not the pinned bytes").unwrap();
        let expected = Sha256Digest::of(b"the pinned bytes");
        let mut store = ModuleStore::new(None, dir.join("cache"));
        let err = load_with(
            &mut store,
            &route(ModuleSource::File(path.clone()), Some(expected)),
        )
        .err()
        .expect("a mismatch is refused");
        let message = err.to_string();
        assert!(matches!(err, ModuleError::Mismatch { .. }), "{message}");
        assert!(
            message.starts_with("table orders: transform module "),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(&expected.to_string()), "{message}");
        assert!(
            message.contains(&Sha256Digest::of(b"not the pinned bytes").to_string()),
            "{message}"
        );
        assert!(!err.is_retriable());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn engine() -> &'static TransformEngine {
        static ENGINE: std::sync::OnceLock<TransformEngine> = std::sync::OnceLock::new();
        ENGINE.get_or_init(|| TransformEngine::new().unwrap())
    }

    fn load_with(
        store: &mut ModuleStore,
        route: &TableConfig,
    ) -> Result<LoadedModule, ModuleError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.load(engine(), "orders", route))
    }

    /// An artifact (of an empty component, from a default engine): native
    /// code as far as the trust rule is concerned.
    fn artifact() -> Vec<u8> {
        let empty = wat::parse_str("(component)").unwrap();
        let bytes = wasmtime::Engine::default()
            .precompile_component(&empty)
            .unwrap();
        assert!(TransformEngine::is_artifact(&bytes));
        bytes
    }

    #[test]
    fn a_damaged_cache_file_is_dropped_and_fetched_again() {
        let dir = scratch("cache-damaged");
        let cache = dir.join("cache");
        let digest = Sha256Digest::of(b"the real module");
        let mut store = ModuleStore::new(None, cache.clone());
        assert!(store.cache.usable());
        let cached = store.cache.path(engine(), digest);
        // Bit rot: the recorded digest no longer matches the artifact.
        let mut bytes = CACHE_MAGIC.to_vec();
        bytes.extend_from_slice(&[0u8; 32]);
        bytes.extend_from_slice(&artifact());
        std::fs::write(&cached, &bytes).unwrap();
        let err = load_with(&mut store, &route(s3(), Some(digest)))
            .err()
            .expect("without S3 it cannot be fetched");
        assert!(matches!(err, ModuleError::NoS3Client { .. }), "{err}");
        assert!(!cached.exists(), "the damaged copy is removed, never run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_intact_cache_file_is_used_without_asking_s3() {
        let dir = scratch("cache-hit");
        let digest = Sha256Digest::of(b"the real module");
        let mut store = ModuleStore::new(None, dir.join("cache"));
        // An intact entry of an artifact from another engine: loading it
        // fails cleanly, which shows that the cache, not S3, was asked.
        assert!(store.cache.usable());
        let cached = store.cache.store(engine(), digest, &artifact()).unwrap();
        assert_eq!(
            cached.file_name().unwrap().to_string_lossy(),
            format!("{digest}-{}.cwasm", engine().compatibility_key())
        );
        let err = load_with(&mut store, &route(s3(), Some(digest)))
            .err()
            .expect("no S3, and the cached artifact is another engine's");
        assert!(matches!(err, ModuleError::NoS3Client { .. }), "{err}");
        assert!(!cached.exists(), "an entry that does not load is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_cache_folder_is_made_private_and_must_stay_the_relays_own() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("cache-own");
        let cache = dir.join("a/b/cache");
        own_folder(&cache).unwrap();
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A folder others can write is not used: anything could be in it.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = own_folder(&cache).unwrap_err();
        assert!(why.contains("others can write it (mode 777)"), "{why}");
        let store = ModuleStore::new(None, cache.clone());
        assert!(!store.cache.usable());
        assert_eq!(
            store
                .cache
                .store(engine(), Sha256Digest::of(b"x"), b"artifact"),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn artifacts_load_only_from_trusted_folders() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("trusted");
        let shipped = dir.join("shipped");
        std::fs::create_dir_all(&shipped).unwrap();
        let path = shipped.join("order_status.cwasm");
        std::fs::write(&path, artifact()).unwrap();
        let file = route(ModuleSource::File(path.clone()), None);

        // No trusted folder: refused before anything is loaded.
        let mut store = ModuleStore::new(None, dir.join("cache"));
        let err = load_with(&mut store, &file).err().expect("untrusted");
        let message = err.to_string();
        assert!(matches!(err, ModuleError::Untrusted { .. }), "{message}");
        assert!(
            message.contains("is a precompiled artifact")
                && message.contains("the configuration trusts no folder's artifacts")
                && message.contains("configure the .wasm"),
            "{message}"
        );

        // Another folder is trusted: still refused.
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let mut store = ModuleStore::new(None, dir.join("cache")).trust_artifacts_in(&[other]);
        let err = load_with(&mut store, &file).err().expect("untrusted");
        assert!(
            err.to_string()
                .contains("it is not in a trusted artifact folder"),
            "{err}"
        );

        // Its folder is trusted: it gets to the engine (which refuses this
        // artifact of another engine, cleanly).
        let mut store = ModuleStore::new(None, dir.join("cache"))
            .trust_artifacts_in(std::slice::from_ref(&shipped));
        let err = load_with(&mut store, &file)
            .err()
            .expect("another engine's");
        assert!(matches!(err, ModuleError::Load { .. }), "{err}");

        // A trusted folder anybody can write is no such thing.
        std::fs::set_permissions(&shipped, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = load_with(&mut store, &file).err().expect("untrusted");
        assert!(err.to_string().contains("is writable by anybody"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
