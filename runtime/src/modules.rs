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
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use sha2::Digest as _;

use crate::config::{Config, TableConfig};
use crate::transform::{LoadError, TransformEngine, TransformModule};

/// The environment variable naming the module cache folder.
pub const CACHE_ENV: &str = "RELAY_MODULE_CACHE";

/// The module cache folder when [`CACHE_ENV`] is not set (`/tmp` is the only
/// writable place in Lambda, and it survives warm starts).
pub const DEFAULT_CACHE_DIR: &str = "/tmp/relay-modules";

/// A SHA-256 digest, written as 64 hex digits (as `sha256sum` prints it).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// Why a text is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sha256 digest (64 hex digits)")]
pub struct NotADigest(pub String);

impl FromStr for Sha256Digest {
    type Err = NotADigest;

    /// Parses 64 hex digits, upper or lower case.
    fn from_str(text: &str) -> Result<Self, NotADigest> {
        let bad = || NotADigest(text.to_owned());
        let hex = text.as_bytes();
        if hex.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16).ok_or_else(bad);
            *byte = ((digit(pair[0])? << 4) | digit(pair[1])?) as u8;
        }
        Ok(Sha256Digest(out))
    }
}

/// Where a table's transform module is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleSource {
    /// A local file (relative paths are resolved against the config file's
    /// folder when the config is validated).
    File(PathBuf),
    /// An S3 object, `s3://bucket/key`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
    },
}

impl ModuleSource {
    /// Parses `s3://bucket/key`; `None` if `text` is not an `s3://` URL,
    /// `Some(Err(problem))` if it is one without a bucket or key.
    pub fn parse_s3(text: &str) -> Option<Result<ModuleSource, &'static str>> {
        let rest = text.strip_prefix("s3://")?;
        Some(match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') => {
                Ok(ModuleSource::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })
            }
            _ => Err("an s3:// module needs a bucket and an object key"),
        })
    }

    /// The module's name for logs and errors: the file stem of the path or
    /// key, `_` written as `-` (`data_change.wasm` → `data-change`).
    pub fn module_name(&self) -> String {
        match self {
            ModuleSource::File(path) => crate::transform::module_name(path),
            ModuleSource::S3 { key, .. } => crate::transform::module_name(Path::new(key)),
        }
    }
}

impl fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleSource::File(path) => write!(f, "{}", path.display()),
            ModuleSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
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

    /// A store for `config`: the cache folder from [`CACHE_ENV`] (else
    /// [`DEFAULT_CACHE_DIR`]), the configured trusted artifact folders, and
    /// an S3 client from the standard AWS environment only if some table's
    /// module is in S3.
    pub async fn from_env(config: &Config) -> Self {
        let uses_s3 = config
            .tables
            .values()
            .any(|t| matches!(t.module, ModuleSource::S3 { .. }));
        let s3 = match uses_s3 {
            true => Some(crate::lambda::s3_client().await),
            false => None,
        };
        ModuleStore::new(s3, cache_dir_from_env()).trust_artifacts_in(&config.trusted_artifact_dirs)
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
    fn compile(
        &self,
        engine: &TransformEngine,
        name: &str,
        sha256: Sha256Digest,
        bytes: &[u8],
        fetched: bool,
    ) -> Result<(Arc<TransformModule>, Origin), LoadError> {
        if let Some((module, path)) = self.cache.load(engine, name, sha256) {
            return Ok((module, Origin::Cached(path)));
        }
        let (module, artifact) = engine.compile(name, bytes)?;
        let cached = self.cache.store(engine, sha256, &artifact);
        Ok((Arc::new(module), Origin::Compiled { fetched, cached }))
    }
}

/// Why a folder cannot be trusted to hold native code, if it cannot.
fn writable_by_others(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o002 != 0).then_some("is writable by anybody")
}

/// The relay's own artifacts, one file per `.wasm` digest and engine (see
/// the module docs).
struct ArtifactCache {
    dir: PathBuf,
    /// Whether the folder is the relay's own, checked once.
    usable: std::sync::OnceLock<bool>,
}

/// What starts every cache file, before the artifact's sha256.
const CACHE_MAGIC: &[u8] = b"relay artifact 1\n";

impl ArtifactCache {
    fn new(dir: PathBuf) -> Self {
        ArtifactCache {
            dir,
            usable: std::sync::OnceLock::new(),
        }
    }

    fn path(&self, engine: &TransformEngine, sha256: Sha256Digest) -> PathBuf {
        self.dir
            .join(format!("{sha256}-{}.cwasm", engine.compatibility_key()))
    }

    /// Creates the folder (mode 0700) if needed; true if it is the relay's
    /// own: owned by this user and writable by nobody else.
    fn usable(&self) -> bool {
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
    fn load(
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
    fn store(
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
fn own_folder(dir: &Path) -> Result<(), String> {
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

/// The cache folder: [`CACHE_ENV`] if set and not empty, else
/// [`DEFAULT_CACHE_DIR`].
pub fn cache_dir_from_env() -> PathBuf {
    std::env::var_os(CACHE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
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

/// GetObject, the whole body; on failure a readable reason and whether it
/// may pass by itself.
async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, (String, bool)> {
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(describe)?;
    let body = output.body.collect().await.map_err(|e| {
        (
            format!("the download broke off: {}", DisplayErrorContext(&e)),
            true,
        )
    })?;
    Ok(body.into_bytes().to_vec())
}

fn describe(error: SdkError<GetObjectError>) -> (String, bool) {
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let err = service.err();
            let reason = match err {
                GetObjectError::NoSuchKey(_) => "the object does not exist (NoSuchKey)".to_owned(),
                _ => match (err.code(), err.message()) {
                    (Some("NoSuchBucket"), _) => "the bucket does not exist (NoSuchBucket)".into(),
                    (Some("AccessDenied"), _) => {
                        "access denied: the relay's role needs s3:GetObject on it (AccessDenied)"
                            .into()
                    }
                    (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                    (Some(code), None) => format!("{code} (HTTP {status})"),
                    _ => format!("HTTP {status}: {}", DisplayErrorContext(&error)),
                },
            };
            let retriable = status >= 500 || status == 429 || err.code() == Some("SlowDown");
            (reason, retriable)
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (
            format!("S3 did not answer: {}", DisplayErrorContext(&error)),
            true,
        ),
        _ => (DisplayErrorContext(&error).to_string(), false),
    }
}

/// Writes `bytes` to `path` in `dir` through a temporary file in the same
/// folder and a rename, so `path` is either absent or complete.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_prints_as_sha256sum_does() {
        assert_eq!(Sha256Digest::of(b"").to_string(), EMPTY);
        assert_eq!(
            EMPTY.parse::<Sha256Digest>().unwrap(),
            Sha256Digest::of(b"")
        );
        assert_eq!(
            EMPTY.to_uppercase().parse::<Sha256Digest>().unwrap(),
            Sha256Digest::of(b"")
        );
    }

    #[test]
    fn digest_rejects_wrong_length_and_non_hex() {
        for bad in [
            &EMPTY[1..],
            &format!("{EMPTY}0"),
            &EMPTY.replace('e', "g"),
            "",
        ] {
            assert!(bad.parse::<Sha256Digest>().is_err(), "{bad:?}");
        }
        // Multi-byte characters never count as digits (nor panic).
        let odd = format!("é{}", &EMPTY[2..]);
        assert!(odd.parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn s3_urls_need_bucket_and_key() {
        assert_eq!(
            ModuleSource::parse_s3("s3://modules/orders/v2/data_change.cwasm"),
            Some(Ok(ModuleSource::S3 {
                bucket: "modules".into(),
                key: "orders/v2/data_change.cwasm".into()
            }))
        );
        for bad in [
            "s3://",
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "s3://b/dir/",
        ] {
            assert!(matches!(ModuleSource::parse_s3(bad), Some(Err(_))), "{bad}");
        }
        assert_eq!(ModuleSource::parse_s3("modules/x.wasm"), None);
    }

    #[test]
    fn module_names_come_from_the_key() {
        let source = ModuleSource::parse_s3("s3://b/orders/data_change.cwasm")
            .unwrap()
            .unwrap();
        assert_eq!(source.module_name(), "data-change");
        assert_eq!(source.to_string(), "s3://b/orders/data_change.cwasm");
    }

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

#[cfg(test)]
mod store_tests {
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
