//! Retrieved series kept on disk so that they reopen without the network: one folder per series
//! under a root (the viewer uses the platform cache directory), bounded in size, the least
//! recently used out first. A folder counts only when its transfer finished
//! ([`crate::retrieve::finished`]): a half-received series is fetched again, never opened as if
//! complete. Last use is the marker's modification time, set again on every reuse.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::retrieve::{self, Retrieved, MARKER};
use crate::PacsError;

/// A folder left unfinished this long ago is a transfer that died, not one under way.
const ABANDONED: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
    limit_bytes: u64,
}

/// A series folder in the cache, as [`Cache::entries`] lists it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub dir: PathBuf,
    pub bytes: u64,
    pub last_use: SystemTime,
    pub complete: bool,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>, limit_bytes: u64) -> Cache {
        Cache {
            root: root.into(),
            limit_bytes,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder a series of a study from `server` is kept in (`series_uid` `None`: the whole
    /// study). UIDs are checked to be UIDs (digits and dots): they come from the server's answer
    /// and must not name a path elsewhere.
    pub fn folder(
        &self,
        server: &str,
        study_uid: &str,
        series_uid: Option<&str>,
    ) -> Result<PathBuf, PacsError> {
        let uid = |u: &str| -> Result<String, PacsError> {
            let ok = !u.is_empty()
                && u.len() <= 64
                && u.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && !u.starts_with('.');
            if ok {
                Ok(u.to_string())
            } else {
                Err(PacsError::Malformed {
                    server: server.to_string(),
                    what: "a study or series UID".into(),
                    detail: format!("`{u}` is not a DICOM UID"),
                })
            }
        };
        Ok(self
            .root
            .join(server_key(server))
            .join(uid(study_uid)?)
            .join(match series_uid {
                Some(s) => uid(s)?,
                None => "study".to_string(),
            }))
    }

    /// The finished transfer in `dir`, marked as just used; `None` when it is missing or
    /// incomplete (fetch it again).
    pub fn reuse(&self, dir: &Path) -> Option<Retrieved> {
        let done = retrieve::finished(dir)?;
        if let Ok(f) = std::fs::File::options().append(true).open(dir.join(MARKER)) {
            let _ = f.set_modified(SystemTime::now());
        }
        Some(done)
    }

    /// Every series folder under the root (three levels: server, study, series).
    pub fn entries(&self) -> Vec<Entry> {
        let mut found = Vec::new();
        for server in subdirs(&self.root) {
            for study in subdirs(&server) {
                for dir in subdirs(&study) {
                    let marker = std::fs::metadata(dir.join(MARKER)).ok();
                    let complete = retrieve::finished(&dir).is_some();
                    let last_use = marker
                        .and_then(|m| m.modified().ok())
                        .or_else(|| std::fs::metadata(&dir).and_then(|m| m.modified()).ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push(Entry {
                        bytes: folder_bytes(&dir),
                        dir,
                        last_use,
                        complete,
                    });
                }
            }
        }
        found
    }

    /// Removes the least recently used series until the cache is within its limit, never
    /// `keep` (the series being opened) nor a transfer that may still be under way (no marker
    /// and written to within the last hour). Returns the folders removed.
    pub fn make_room(&self, keep: &Path) -> Result<Vec<PathBuf>, PacsError> {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        entries.sort_by_key(|e| e.last_use);
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for e in entries {
            if total <= self.limit_bytes {
                break;
            }
            // No marker yet (a transfer removes it when it starts) and written to lately.
            let running = !e.dir.join(MARKER).exists()
                && now.duration_since(e.last_use).unwrap_or_default() < ABANDONED;
            if e.dir == keep || running {
                continue;
            }
            std::fs::remove_dir_all(&e.dir).map_err(|err| PacsError::io(&e.dir, err))?;
            total = total.saturating_sub(e.bytes);
            removed.push(e.dir.clone());
            // The study folder goes too once its last series has.
            if let Some(study) = e.dir.parent() {
                let _ = std::fs::remove_dir(study);
            }
        }
        Ok(removed)
    }
}

/// A folder name for a server address: its letters and digits, the rest as `_`, e.g.
/// `http___127.0.0.1_8042_dicom-web`.
fn server_key(server: &str) -> String {
    let key: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if key.trim_matches('.').is_empty() {
        "server".into()
    } else {
        key
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

fn folder_bytes(dir: &Path) -> u64 {
    let Ok(read) = std::fs::read_dir(dir) else {
        return 0;
    };
    read.filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieve::Sink;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gg-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A finished series of `n` instances of `size` bytes each, last used `age` ago.
    fn series(cache: &Cache, series: &str, n: usize, size: usize, age: u64) -> PathBuf {
        let dir = cache
            .folder("http://pacs:8042/dicom-web", "1.2.3", Some(series))
            .expect("test file system");
        let mut sink = Sink::new(&dir).expect("test file system");
        for _ in 0..n {
            sink.add(&vec![0u8; size]).expect("test file system");
        }
        sink.finish("pacs", "1.2.3", Some(series))
            .expect("test file system");
        let marker = std::fs::File::options()
            .append(true)
            .open(dir.join(MARKER))
            .expect("test file system");
        marker
            .set_modified(SystemTime::now() - Duration::from_secs(age))
            .expect("test file system");
        dir
    }

    #[test]
    fn uids_from_a_server_cannot_name_other_paths() {
        let cache = Cache::new(temp("uids"), 1000);
        for bad in ["../etc", "1.2/3", "", ".1.2", "1.2.3\0", &"1".repeat(65)] {
            let e = cache
                .folder("s", bad, None)
                .expect_err("a UID that names another path")
                .to_string();
            assert!(e.contains("is not a DICOM UID"), "{bad:?}: {e}");
            assert!(cache.folder("s", "1.2", Some(bad)).is_err(), "{bad:?}");
        }
        let dir = cache
            .folder("dicom://ORTHANC@host:4242", "1.2.840.1", None)
            .expect("test file system");
        assert!(dir.starts_with(cache.root()));
        assert!(
            dir.ends_with("dicom___ORTHANC_host_4242/1.2.840.1/study"),
            "{dir:?}"
        );
    }

    #[test]
    fn least_recently_used_goes_first_and_the_open_series_stays() {
        let root = temp("lru");
        // Three series of 4 KB; room for two.
        let cache = Cache::new(&root, 9_000);
        let old = series(&cache, "1.1", 4, 1000, 300);
        let newer = series(&cache, "1.2", 4, 1000, 200);
        let newest = series(&cache, "1.3", 4, 1000, 100);
        // Reusing the oldest makes it the most recent.
        assert!(cache.reuse(&old).is_some());
        let removed = cache.make_room(&newest).expect("test file system");
        assert_eq!(removed, vec![newer.clone()]);
        assert!(!newer.exists() && old.exists() && newest.exists());
        // Over the limit with only the kept one left to spare: the kept one stays.
        let tight = Cache::new(&root, 10);
        let removed = tight.make_room(&newest).expect("test file system");
        assert_eq!(removed, vec![old]);
        assert!(newest.exists());
        std::fs::remove_dir_all(&root).expect("test file system");
    }

    #[test]
    fn a_half_received_series_is_not_reused_and_a_running_one_is_not_removed() {
        let root = temp("partial");
        let cache = Cache::new(&root, 0);
        let done = series(&cache, "1.1", 2, 100, 50);
        // A transfer under way: instances, no marker.
        let running = cache
            .folder("pacs", "1.2.3", Some("1.9"))
            .expect("test file system");
        let mut sink = Sink::new(&running).expect("test file system");
        sink.add(&[1u8; 100]).expect("test file system");
        assert!(cache.reuse(&running).is_none());
        // A file lost from a finished series makes it incomplete.
        let first = std::fs::read_dir(&done)
            .expect("test file system")
            .map(|e| e.expect("test file system").path())
            .find(|p| p.extension().is_some_and(|x| x == "dcm"))
            .expect("test file system");
        std::fs::remove_file(first).expect("test file system");
        assert!(cache.reuse(&done).is_none());
        let removed = cache
            .make_room(Path::new("/nowhere"))
            .expect("test file system");
        assert_eq!(removed, vec![done]);
        assert!(running.exists());
        std::fs::remove_dir_all(&root).expect("test file system");
    }
}
