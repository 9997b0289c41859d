//! A bearer token kept in a file and re-read when the file changes, shared
//! by the HTTP sinks (Nakadi, CloudEvents over HTTP). The token is never
//! logged: errors name the file, never its content.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// A bearer token kept in a file, re-read when the file's modification time
/// changes or after [`TokenFile::forget`].
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<(SystemTime, String)>>,
}

impl TokenFile {
    /// A token read from `path` on first use.
    pub fn new(path: PathBuf) -> Self {
        TokenFile {
            path,
            cached: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token (trimmed), from the cache while the file is unchanged.
    /// The error is a sentence naming the file.
    pub fn read(&self) -> Result<String, String> {
        let cannot =
            |e: std::io::Error| format!("cannot read the token file {}: {e}", self.path.display());
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(cannot)?;
        let mut cached = self.cached.lock().expect("token cache");
        if let Some((at, token)) = cached.as_ref() {
            if *at == modified {
                return Ok(token.clone());
            }
        }
        let token = std::fs::read_to_string(&self.path)
            .map_err(cannot)?
            .trim()
            .to_owned();
        *cached = Some((modified, token.clone()));
        Ok(token)
    }

    /// Forgets the cached token: the next [`TokenFile::read`] reads the file
    /// again (after the peer refused the token).
    pub fn forget(&self) {
        *self.cached.lock().expect("token cache") = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_trimmed_cached_and_read_again_once_forgotten() {
        let dir = std::env::temp_dir().join(format!("relay-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "first\n").unwrap();
        let token = TokenFile::new(path.clone());
        assert_eq!(token.read().unwrap(), "first");
        // Same modification time (coarse clocks): the cache answers...
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, "second\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(modified).unwrap();
        assert_eq!(token.read().unwrap(), "first");
        // ...until it is forgotten.
        token.forget();
        assert_eq!(token.read().unwrap(), "second");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_names_the_path() {
        let token = TokenFile::new(PathBuf::from("/nonexistent/relay-token"));
        let error = token.read().unwrap_err();
        assert!(error.contains("/nonexistent/relay-token"), "{error}");
    }
}
