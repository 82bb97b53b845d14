//! [`StateFile`]: the JSON file a persistent in-memory backend keeps its state in, written
//! atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A JSON file holding one value, replaced atomically on every save.
///
/// [`save`](StateFile::save) writes `<path>.tmp` in the same directory, `fsync`s it, renames it
/// over `path` and `fsync`s the directory: after a crash (a `kill -9` or a power loss) the file
/// holds either the previous value or the new one, never a mix. A stale `<path>.tmp` left by a
/// crash is ignored and overwritten by the next save.
///
/// Async callers [`store`](StateFile::store) on the blocking pool; [`load`](StateFile::load) and
/// [`save`](StateFile::save) block, for the backends' synchronous constructors and test knobs.
#[derive(Debug)]
pub(super) struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
    /// Which backend the file belongs to, for errors (`"memory"`).
    backend: &'static str,
}

impl StateFile {
    /// The file at `path`; nothing is read or written yet.
    pub(super) fn new(path: PathBuf, backend: &'static str) -> StateFile {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        StateFile {
            path,
            tmp: PathBuf::from(tmp),
            backend,
        }
    }

    /// The value in the file: `None` if there is no file yet.
    ///
    /// Blocking (one small read): for the backends' synchronous constructors.
    ///
    /// # Errors
    /// [`Error::Backend`] (permanent) when the file cannot be read, or is not a value of this
    /// shape (corrupt, truncated, or written by something else): starting from a fresh state
    /// instead would silently forget what the file was meant to remember.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
    pub(super) fn load<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("read", e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| Error::Backend {
            backend: self.backend.to_string(),
            message: format!("state file {} is corrupt", self.path.display()),
            temporary: false,
            source: Some(Box::new(e)),
        })
    }

    /// Replaces the file's value with `value`, durably and atomically; creates the directory if
    /// needed.
    ///
    /// Blocking I/O (a few small writes and `fsync`s): for the backends' synchronous test knobs;
    /// async code uses [`encode`](Self::encode) and [`store`](Self::store).
    ///
    /// # Errors
    /// [`Error::Backend`] (permanent) with the OS error; the file then still holds the previous
    /// value.
    pub(super) fn save<T: Serialize>(&self, value: &T) -> Result<()> {
        self.write(&self.encode(value)?)
    }

    /// What [`save`](Self::save) writes for `value`.
    ///
    /// # Errors
    /// [`Error::Backend`] (permanent) if `value` cannot be serialised.
    pub(super) fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        let mut json = serde_json::to_vec_pretty(value).map_err(|e| self.error("serialise", io::Error::other(e)))?;
        json.push(b'\n');
        Ok(json)
    }

    /// Replaces the file with `json` (from [`encode`](Self::encode)) as [`save`](Self::save)
    /// does, on the blocking pool.
    ///
    /// # Errors
    /// As [`save`](Self::save).
    ///
    /// # Cancellation
    /// The write finishes even if this future is dropped.
    pub(super) async fn store(self: Arc<Self>, json: Vec<u8>) -> Result<()> {
        let file = Arc::clone(&self);
        tokio::task::spawn_blocking(move || file.write(&json))
            .await
            .map_err(|e| self.error("write on the blocking pool", io::Error::other(e)))?
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "blocking by contract: runs on the blocking pool (store) or in save, documented as blocking"
    )]
    fn write(&self, json: &[u8]) -> Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(|e| self.error("create directory", e))?;
        let mut tmp = File::create(&self.tmp).map_err(|e| self.error("create temporary file", e))?;
        tmp.write_all(json)
            .and_then(|()| tmp.sync_all())
            .map_err(|e| self.error("write temporary file", e))?;
        drop(tmp);
        fs::rename(&self.tmp, &self.path).map_err(|e| self.error("rename temporary file", e))?;
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error("sync directory", e))
    }

    fn error(&self, what: &str, e: io::Error) -> Error {
        Error::Backend {
            backend: self.backend.to_string(),
            message: format!("state file {}: cannot {what}", self.path.display()),
            temporary: false,
            source: Some(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_none_and_a_saved_value_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("sub/state.json"), "memory");
        assert_eq!(file.load::<Vec<u32>>().unwrap(), None);
        file.save(&vec![1_u32, 2]).unwrap();
        file.save(&vec![3_u32]).unwrap();
        assert_eq!(file.load::<Vec<u32>>().unwrap(), Some(vec![3]));
        assert!(!dir.path().join("sub/state.json.tmp").exists());
    }

    #[test]
    fn a_torn_file_is_a_clear_error_and_a_stale_temporary_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(dir.path().join("state.json.tmp"), b"[1, 2").unwrap();
        let file = StateFile::new(path.clone(), "memory");
        assert_eq!(file.load::<Vec<u32>>().unwrap(), None);
        fs::write(&path, b"[1, 2").unwrap();
        let err = file.load::<Vec<u32>>().unwrap_err();
        assert!(
            matches!(&err, Error::Backend { backend, message, temporary: false, .. }
                if backend == "memory" && message.contains("state.json is corrupt")),
            "{err:?}"
        );
        file.save(&vec![7_u32]).unwrap();
        assert_eq!(file.load::<Vec<u32>>().unwrap(), Some(vec![7]));
    }
}
