//! Where a module is ([`ModuleSource`]: a file or `s3://bucket/key`) and
//! the digest that pins it ([`Sha256Digest`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::Digest as _;

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
}
