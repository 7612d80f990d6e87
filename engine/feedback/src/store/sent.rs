//! What was sent from a study's store to a PACS (`batch --send`), so that a run started again
//! after a kill sends nothing twice: `sent.json` beside the journal, the whole list replaced
//! durably at each delivery (a kill leaves the old list or the new one).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{write_durably, StoreError};

/// One delivery: what went where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// What was sent, as its sender names it (the series, the task, the answers' ids): the same
    /// content has the same key.
    pub key: String,
    /// The PACS, as its address names it.
    pub server: String,
    /// The files sent (kept in the store's folder, under `sent/`).
    pub files: Vec<String>,
    pub at_unix_ms: u64,
}

pub struct SentLog {
    path: PathBuf,
    deliveries: Vec<Delivery>,
}

impl SentLog {
    /// The log of the store in `dir` (empty when nothing was sent from it yet).
    pub fn open(dir: &Path) -> Result<SentLog, StoreError> {
        let path = dir.join("sent.json");
        let deliveries = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: format!("not a list of deliveries: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        Ok(SentLog { path, deliveries })
    }

    /// An empty log for the store in `dir`, whose next delivery replaces whatever `sent.json`
    /// held (for a damaged one: what it listed is sent again).
    pub fn fresh(dir: &Path) -> SentLog {
        SentLog {
            path: dir.join("sent.json"),
            deliveries: Vec::new(),
        }
    }

    /// Whether `key` went to `server` already.
    pub fn has(&self, key: &str, server: &str) -> bool {
        self.deliveries
            .iter()
            .any(|d| d.key == key && d.server == server)
    }

    pub fn deliveries(&self) -> &[Delivery] {
        &self.deliveries
    }

    /// Adds `delivery`; on return it is on disk.
    pub fn record(&mut self, delivery: Delivery) -> Result<(), StoreError> {
        let mut all = self.deliveries.clone();
        all.push(delivery);
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        write_durably(&self.path, &bytes)?;
        self.deliveries = all;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(key: &str) -> Delivery {
        Delivery {
            key: key.into(),
            server: "http://127.0.0.1:8042/dicom-web".into(),
            files: vec!["1.2.3_model_sr.dcm".into()],
            at_unix_ms: 1,
        }
    }

    #[test]
    fn deliveries_survive_reopening_and_a_damaged_log_is_said() {
        let dir = std::env::temp_dir().join(format!("gg-sent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut log = SentLog::open(&dir).expect("an empty log");
        assert!(!log.has("a", "http://127.0.0.1:8042/dicom-web"));
        log.record(delivery("a")).expect("recorded");
        log.record(delivery("b")).expect("recorded");
        let again = SentLog::open(&dir).expect("reopened");
        assert_eq!(again.deliveries(), &[delivery("a"), delivery("b")]);
        assert!(again.has("b", "http://127.0.0.1:8042/dicom-web"));
        assert!(!again.has("b", "dicom://ORTHANC@127.0.0.1:4242"));
        assert!(!dir.join("sent.json.tmp").exists());
        std::fs::write(dir.join("sent.json"), b"[{\"key\": ").expect("damage");
        let err = SentLog::open(&dir)
            .err()
            .expect("a damaged log is an error");
        assert!(err.to_string().contains("sent.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
