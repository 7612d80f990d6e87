//! The per-study corrections store: every answer, verdict and correction as a numbered entry, kept
//! crash-safe in a folder of the user's data directory (never in the study folder). Entries go to
//! an append-only journal (checksummed, fsynced before the call returns); compaction writes all of
//! them into a snapshot (written to a temporary file, fsynced, renamed, the folder fsynced) and
//! empties the journal. Opening reads the snapshot, then the journal entries after it, and drops
//! only a torn last record.

mod journal;
mod sent;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::edit::{Edit, Entry};
pub use journal::Journal;
pub use sent::{Delivery, SentLog};

/// Compact when the journal holds this many entries.
const COMPACT_EVERY: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    /// The last entry's number.
    seq: u64,
    entries: Vec<Entry>,
}

pub struct Store {
    dir: PathBuf,
    journal: Journal,
    entries: Vec<Entry>,
    in_journal: usize,
    /// Bytes of a torn record dropped when the store was opened.
    pub recovered_bytes: u64,
    /// Damaged records left out when the store was opened (the entries around them are kept),
    /// and where the damaged journal was kept.
    pub damage: Vec<StoreDamage>,
    pub damaged_copy: Option<PathBuf>,
}

/// A damaged stretch of the journal, between two entries that were kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreDamage {
    pub bytes: u64,
    /// The entries kept on either side (`None` at the start or the end).
    pub after_seq: Option<u64>,
    pub before_seq: Option<u64>,
}

impl std::fmt::Display for StoreDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seq = |s: Option<u64>| s.map_or("none".to_string(), |s| s.to_string());
        write!(
            f,
            "{} damaged bytes between entries {} and {}",
            self.bytes,
            seq(self.after_seq),
            seq(self.before_seq)
        )
    }
}

/// The store folder for a study key under the platform's data directory
/// (`~/.local/share/groundglass/studies/KEY` on Linux).
pub fn default_dir(study_key: &str) -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "groundglass", "groundglass")
        .map(|d| d.data_dir().join("studies").join(study_key))
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    // Makes a rename durable; not possible (nor needed) on every platform.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    let _ = dir;
    Ok(())
}

/// Replaces the file at `path` with `bytes` so that a crash leaves the old file or the new, never
/// a part: written to a temporary file beside it, fsynced, renamed over it, the folder fsynced.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| StoreError::Io { path: p, source: e }
    };
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let snapshot_path = dir.join("snapshot.json");
        let mut entries = match std::fs::read(&snapshot_path) {
            Ok(bytes) => {
                let s: Snapshot =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        path: snapshot_path.clone(),
                        message: e.to_string(),
                    })?;
                s.entries
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(StoreError::Io {
                    path: snapshot_path,
                    source: e,
                })
            }
        };
        let journal_path = dir.join("journal.bin");
        let (journal, recovered) = Journal::open(&journal_path)?;
        let last = entries.last().map(|e| e.seq).unwrap_or(0);
        let mut in_journal = 0;
        let mut seqs = Vec::with_capacity(recovered.records.len());
        for record in recovered.records {
            let entry: Entry =
                serde_json::from_slice(&record).map_err(|e| StoreError::Corrupt {
                    path: journal_path.clone(),
                    message: format!("entry after {}: {e}", entries.len()),
                })?;
            seqs.push(entry.seq);
            // Entries already in the snapshot (a crash between snapshot and journal reset).
            if entry.seq > last {
                entries.push(entry);
                in_journal += 1;
            }
        }
        let damage = recovered
            .damaged
            .iter()
            .map(|d| StoreDamage {
                bytes: d.bytes,
                after_seq: d
                    .after_records
                    .checked_sub(1)
                    .and_then(|i| seqs.get(i).copied()),
                before_seq: seqs.get(d.after_records).copied(),
            })
            .collect();
        Ok(Store {
            dir: dir.to_path_buf(),
            journal,
            entries,
            in_journal,
            recovered_bytes: recovered.dropped_bytes,
            damage,
            damaged_copy: recovered.damaged_copy,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening had to leave out, as the user is told it (the viewer's notices, the CLI's
    /// stderr): `true` with damaged records (entries lost), `false` with an unfinished last write
    /// (never acknowledged).
    pub fn recovery_notes(&self) -> Vec<(bool, String)> {
        let mut notes = Vec::new();
        if self.recovered_bytes > 0 {
            notes.push((
                false,
                format!(
                    "corrections store {}: an unfinished last write ({} bytes) was dropped",
                    self.dir.display(),
                    self.recovered_bytes
                ),
            ));
        }
        if !self.damage.is_empty() {
            let what: Vec<String> = self.damage.iter().map(|d| d.to_string()).collect();
            let kept = self
                .damaged_copy
                .as_ref()
                .map(|p| format!(" (the damaged journal is kept as {})", p.display()))
                .unwrap_or_default();
            notes.push((
                true,
                format!(
                    "corrections store {}: {} were left out; every other entry is kept{kept}",
                    self.dir.display(),
                    what.join(", ")
                ),
            ));
        }
        notes
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn next_seq(&self) -> u64 {
        self.entries.last().map(|e| e.seq).unwrap_or(0) + 1
    }

    /// Records an edit; when this returns, the entry is on disk.
    pub fn append(&mut self, edit: Edit, reviewer: &str) -> Result<Entry, StoreError> {
        let entry = Entry {
            seq: self.next_seq(),
            at_unix_ms: crate::record::now_unix_ms(),
            reviewer: reviewer.to_string(),
            edit,
        };
        self.append_entry(entry.clone())?;
        Ok(entry)
    }

    /// Records an entry as given (its number is replaced by the next one).
    pub fn append_entry(&mut self, mut entry: Entry) -> Result<u64, StoreError> {
        entry.seq = self.next_seq();
        let bytes = serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt {
            path: self.dir.clone(),
            message: e.to_string(),
        })?;
        self.journal.append(&bytes)?;
        let seq = entry.seq;
        self.entries.push(entry);
        self.in_journal += 1;
        if self.in_journal >= COMPACT_EVERY {
            // The entry is durable already: a compaction that fails (a full disk) leaves the
            // journal as it is and is tried again at the next append.
            let _ = self.compact();
        }
        Ok(seq)
    }

    /// Writes every entry into the snapshot and empties the journal.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        let snapshot = Snapshot {
            version: 1,
            seq: self.entries.last().map(|e| e.seq).unwrap_or(0),
            entries: self.entries.clone(),
        };
        let path = self.dir.join("snapshot.json");
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_durably(&path, &bytes)?;
        // Only now may the journal go: the snapshot holds its entries.
        self.journal.clear()?;
        self.in_journal = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::Edit;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gg-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn accept(i: usize) -> Edit {
        Edit::Accept {
            annotation: format!("a{i}"),
        }
    }

    #[test]
    fn entries_survive_reopening_and_compaction() {
        let dir = tmp("reopen");
        {
            let mut s = Store::open(&dir).expect("open");
            for i in 0..5 {
                s.append(accept(i), "dr").expect("append");
            }
            s.compact().expect("compact");
            s.append(accept(5), "dr").expect("append");
        }
        let s = Store::open(&dir).expect("reopen");
        assert_eq!(s.entries().len(), 6);
        assert_eq!(
            s.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=6).collect::<Vec<_>>()
        );
        assert_eq!(s.recovered_bytes, 0);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_rest_kept() {
        let dir = tmp("torn");
        {
            let mut s = Store::open(&dir).expect("open");
            for i in 0..3 {
                s.append(accept(i), "dr").expect("append");
            }
        }
        // A crash in the middle of the fourth write: half a frame at the end.
        let journal = dir.join("journal.bin");
        let mut bytes = std::fs::read(&journal).expect("read");
        let good = bytes.len();
        bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']);
        std::fs::write(&journal, &bytes).expect("write");
        let mut s = Store::open(&dir).expect("reopen");
        assert_eq!(s.entries().len(), 3);
        assert_eq!(s.recovered_bytes, 10);
        assert_eq!(
            std::fs::metadata(&journal).expect("meta").len() as usize,
            good
        );
        s.append(accept(9), "dr").expect("append after recovery");
        drop(s);
        assert_eq!(Store::open(&dir).expect("reopen").entries().len(), 4);
    }

    #[test]
    fn a_damaged_record_in_the_middle_loses_only_itself_and_the_file_is_kept() {
        let dir = tmp("damaged");
        {
            let mut s = Store::open(&dir).expect("open");
            for i in 0..5 {
                s.append(accept(i), "dr").expect("append");
            }
        }
        // One flipped byte inside the third record's payload.
        let journal = dir.join("journal.bin");
        let mut bytes = std::fs::read(&journal).expect("read");
        let third = {
            let mut at = 0;
            for _ in 0..2 {
                let len =
                    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                at += 8 + len as usize;
            }
            at
        };
        bytes[third + 12] ^= 0x55;
        std::fs::write(&journal, &bytes).expect("write");
        let mut s = Store::open(&dir).expect("reopen");
        let seqs: Vec<u64> = s.entries().iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            vec![1, 2, 4, 5],
            "every intact entry before and after it"
        );
        assert_eq!(s.recovered_bytes, 0);
        assert_eq!(s.damage.len(), 1);
        assert_eq!(
            s.damage[0].to_string(),
            format!(
                "{} damaged bytes between entries 2 and 4",
                s.damage[0].bytes
            )
        );
        let copy = s.damaged_copy.clone().expect("the damaged file is kept");
        assert_eq!(std::fs::read(&copy).expect("copy"), bytes);
        // Appends go on cleanly, and the next open finds nothing wrong.
        s.append(accept(9), "dr").expect("append after recovery");
        drop(s);
        let again = Store::open(&dir).expect("reopen");
        assert_eq!(again.entries().len(), 5);
        assert!(again.damage.is_empty() && again.recovered_bytes == 0);
    }

    #[test]
    fn a_crash_between_snapshot_and_journal_reset_does_not_duplicate() {
        let dir = tmp("dup");
        let mut s = Store::open(&dir).expect("open");
        for i in 0..4 {
            s.append(accept(i), "dr").expect("append");
        }
        let journal = std::fs::read(dir.join("journal.bin")).expect("journal");
        s.compact().expect("compact");
        drop(s);
        // As if the journal had not been emptied yet.
        std::fs::write(dir.join("journal.bin"), journal).expect("restore journal");
        let s = Store::open(&dir).expect("reopen");
        assert_eq!(s.entries().len(), 4);
    }
}

#[cfg(test)]
mod undo_tests {
    use super::*;
    use crate::state::Corrections;

    #[test]
    fn undo_entries_reopen_and_replay() {
        let dir = std::env::temp_dir().join(format!("gg-store-undo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Store::open(&dir).expect("open");
        let add = s
            .append(
                Edit::AddBox {
                    id: "a".into(),
                    slice: crate::record::SliceRef {
                        series_uid: "1".into(),
                        volume: 0,
                        plane: groundglass_study::Plane::Axial,
                        index: 0,
                        size: [4, 4],
                    },
                    keyword: "liver".into(),
                    class_id: Some(5),
                    box_px: [0.0, 0.0, 2.0, 2.0],
                },
                "dr",
            )
            .expect("add");
        let moved = s
            .append(
                Edit::Move {
                    annotation: "a".into(),
                    box_px: [1.0, 1.0, 3.0, 3.0],
                },
                "dr",
            )
            .expect("move");
        s.append(Edit::Undo { entry: moved.seq }, "dr")
            .expect("undo");
        drop(s);
        let s = Store::open(&dir).expect("reopens with an undo in the journal");
        let c = Corrections::replay(s.entries());
        assert_eq!(c.annotations["a"].box_px, Some([0.0, 0.0, 2.0, 2.0]));
        assert!(add.seq < moved.seq);
    }
}
