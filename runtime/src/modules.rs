//! Module sources: where each table's transform module comes from (a local
//! file or `s3://bucket/key`), checked against its pinned sha256 and, for S3,
//! cached in a local folder across warm starts.
//!
//! [`ModuleStore`] runs before the transform stage: it turns every table's
//! [`ModuleSource`] into verified bytes and loads them into the
//! [`TransformEngine`], once per distinct module.
//!
//! For S3 the cache (`RELAY_MODULE_CACHE`, default `/tmp/relay-modules`)
//! holds one file per module, named by its sha256. A cached file is used only
//! if its bytes still hash to the pin; otherwise, or when it is missing, the
//! object is fetched with GetObject, verified, and written to the cache with
//! a temporary file and a rename, so a reader never sees half a module.
//! Bytes that do not match the pin are refused and never cached.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// key, `_` written as `-` (`data_change.cwasm` → `data-change`).
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

/// Where the bytes of a loaded module came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Read from a local file.
    File,
    /// Found in the module cache, with a matching digest: S3 was not asked.
    Cache(PathBuf),
    /// Fetched from S3 (and written to this cache file, if that worked).
    S3 {
        /// The cache file, `None` if it could not be written.
        cached: Option<PathBuf>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File => f.write_str("file"),
            Origin::Cache(path) => write!(f, "cached at {}", path.display()),
            Origin::S3 { cached: Some(path) } => {
                write!(f, "fetched from S3, cached at {}", path.display())
            }
            Origin::S3 { cached: None } => f.write_str("fetched from S3, not cached"),
        }
    }
}

/// A table's module, verified and loaded.
#[derive(Clone)]
pub struct LoadedModule {
    /// The compiled module, shared by every table that uses the same bytes.
    pub module: Arc<TransformModule>,
    /// The digest of its bytes.
    pub sha256: Sha256Digest,
    /// Whether the digest was checked against a pin (always for S3).
    pub pinned: bool,
    /// Where the bytes came from.
    pub origin: Origin,
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

/// Verified module bytes, before compiling.
struct Verified {
    bytes: Vec<u8>,
    sha256: Sha256Digest,
    origin: Origin,
}

/// Resolves every table's module to verified bytes and loads each distinct
/// module once. Lives for the set-up phase only.
pub struct ModuleStore {
    s3: Option<aws_sdk_s3::Client>,
    cache_dir: PathBuf,
    /// Per source and pin: the digest and origin of what was loaded.
    resolved: HashMap<(ModuleSource, Option<Sha256Digest>), (Sha256Digest, Origin)>,
    /// Per digest: the compiled module.
    compiled: HashMap<Sha256Digest, Arc<TransformModule>>,
}

impl ModuleStore {
    /// A store using `s3` for `s3://` modules and `cache_dir` as the cache.
    pub fn new(s3: Option<aws_sdk_s3::Client>, cache_dir: PathBuf) -> Self {
        ModuleStore {
            s3,
            cache_dir,
            resolved: HashMap::new(),
            compiled: HashMap::new(),
        }
    }

    /// A store for `config`: the cache folder from [`CACHE_ENV`] (else
    /// [`DEFAULT_CACHE_DIR`]), and an S3 client from the standard AWS
    /// environment only if some table's module is in S3.
    pub async fn from_env(config: &Config) -> Self {
        let uses_s3 = config
            .tables
            .values()
            .any(|t| matches!(t.module, ModuleSource::S3 { .. }));
        let s3 = match uses_s3 {
            true => Some(crate::lambda::s3_client().await),
            false => None,
        };
        ModuleStore::new(s3, cache_dir_from_env())
    }

    /// The cache folder.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Loads `route`'s module for `table`: verified against its pin, from
    /// the cache or S3 for `s3://` sources, compiled once per distinct module.
    pub async fn load(
        &mut self,
        engine: &TransformEngine,
        table: &str,
        route: &TableConfig,
    ) -> Result<LoadedModule, ModuleError> {
        let identity = (route.module.clone(), route.sha256);
        if let Some((sha256, origin)) = self.resolved.get(&identity) {
            if let Some(module) = self.compiled.get(sha256) {
                return Ok(LoadedModule {
                    module: module.clone(),
                    sha256: *sha256,
                    pinned: route.sha256.is_some(),
                    origin: origin.clone(),
                });
            }
        }
        let verified = self.resolve(table, route).await?;
        let module = match self.compiled.get(&verified.sha256) {
            Some(module) => module.clone(),
            None => {
                let module = engine
                    .load_bytes(&route.module.module_name(), &verified.bytes)
                    .map_err(|error| ModuleError::Load {
                        table: table.to_owned(),
                        error,
                    })?;
                let module = Arc::new(module);
                self.compiled.insert(verified.sha256, module.clone());
                module
            }
        };
        self.resolved
            .insert(identity, (verified.sha256, verified.origin.clone()));
        Ok(LoadedModule {
            module,
            sha256: verified.sha256,
            pinned: route.sha256.is_some(),
            origin: verified.origin,
        })
    }

    /// The module's bytes, checked against the pin.
    async fn resolve(&self, table: &str, route: &TableConfig) -> Result<Verified, ModuleError> {
        match &route.module {
            ModuleSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|error| ModuleError::Read {
                    table: table.to_owned(),
                    path: path.clone(),
                    error,
                })?;
                let sha256 = Sha256Digest::of(&bytes);
                if let Some(expected) = route.sha256 {
                    check(table, &route.module, expected, sha256)?;
                }
                Ok(Verified {
                    bytes,
                    sha256,
                    origin: Origin::File,
                })
            }
            ModuleSource::S3 { bucket, key } => {
                // Config validation makes the pin mandatory for S3.
                let expected = route.sha256.ok_or_else(|| ModuleError::S3 {
                    table: table.to_owned(),
                    url: route.module.to_string(),
                    reason: "no sha256 is pinned for it".into(),
                    retriable: false,
                })?;
                self.resolve_s3(table, &route.module, bucket, key, expected)
                    .await
            }
        }
    }

    async fn resolve_s3(
        &self,
        table: &str,
        source: &ModuleSource,
        bucket: &str,
        key: &str,
        expected: Sha256Digest,
    ) -> Result<Verified, ModuleError> {
        let cached = self.cache_dir.join(expected.to_string());
        match std::fs::read(&cached) {
            Ok(bytes) if Sha256Digest::of(&bytes) == expected => {
                tracing::debug!(table, module = %source, cache = %cached.display(), "module found in the cache");
                return Ok(Verified {
                    bytes,
                    sha256: expected,
                    origin: Origin::Cache(cached),
                });
            }
            Ok(_) => {
                tracing::warn!(
                    table,
                    module = %source,
                    cache = %cached.display(),
                    "the cached module does not match its sha256; fetching it again"
                );
                let _ = std::fs::remove_file(&cached);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(table, cache = %cached.display(), "cannot read the cached module, fetching it: {e}");
            }
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
        let cached = match write_atomically(&self.cache_dir, &cached, &bytes) {
            Ok(()) => Some(cached),
            Err(e) => {
                tracing::warn!(
                    table,
                    cache = %self.cache_dir.display(),
                    "cannot cache the module, it will be fetched again on the next cold start: {e}"
                );
                None
            }
        };
        tracing::info!(table, module = %source, bytes = bytes.len(), "module fetched from S3");
        Ok(Verified {
            bytes,
            sha256: actual,
            origin: Origin::S3 { cached },
        })
    }
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
        ModuleSource::parse_s3("s3://modules/data_change.cwasm")
            .unwrap()
            .unwrap()
    }

    fn load(store: &mut ModuleStore, route: &TableConfig) -> Result<LoadedModule, ModuleError> {
        let engine = TransformEngine::new().unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(store.load(&engine, "orders", route))
    }

    #[test]
    fn a_file_that_does_not_match_its_pin_is_refused() {
        let dir = scratch("file-pin");
        let path = dir.join("data_change.wasm");
        std::fs::write(&path, b"not the pinned bytes").unwrap();
        let expected = Sha256Digest::of(b"the pinned bytes");
        let mut store = ModuleStore::new(None, dir.join("cache"));
        let err = load(
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

    #[test]
    fn a_matching_cache_file_is_used_without_asking_s3() {
        let dir = scratch("cache-hit");
        let bytes = b"cached module bytes";
        let digest = Sha256Digest::of(bytes);
        std::fs::write(dir.join(digest.to_string()), bytes).unwrap();
        // No S3 client: only the cache can serve it. The bytes are no
        // component, so the engine refusing them proves they were read.
        let mut store = ModuleStore::new(None, dir.clone());
        let err = load(&mut store, &route(s3(), Some(digest)))
            .err()
            .expect("junk bytes do not compile");
        assert!(matches!(err, ModuleError::Load { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_cache_file_is_dropped_and_fetched_again() {
        let dir = scratch("cache-corrupt");
        let digest = Sha256Digest::of(b"the real module");
        let cached = dir.join(digest.to_string());
        std::fs::write(&cached, b"bit rot").unwrap();
        let mut store = ModuleStore::new(None, dir.clone());
        let err = load(&mut store, &route(s3(), Some(digest)))
            .err()
            .expect("without S3 it cannot be fetched");
        assert!(matches!(err, ModuleError::NoS3Client { .. }), "{err}");
        assert!(!cached.exists(), "the corrupt copy is removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
