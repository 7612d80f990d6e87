//! An append-only journal of framed records: `[length u32 LE][CRC-32 u32 LE][payload]`. A record is
//! acknowledged only after `fsync`, so an acknowledged record survives a crash. On open:
//! - a short or failing record at the end is a write torn by a crash (never acknowledged): the
//!   file is cut there, so the next append follows the last good record;
//! - a damaged record with good ones after it (a bad disk block, a stray write) is left out and
//!   the reader finds the next good frame, so every intact record before and after it is kept; the
//!   damaged file is kept beside the journal first, and the journal is rewritten with the good
//!   records only (temporary file, then rename), so nothing is lost and appends stay clean.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// Records larger than this are refused on read (a corrupt length must not allocate gigabytes).
const MAX_RECORD: u32 = 64 << 20;

pub struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes of good records.
    len: u64,
}

/// What opening found.
pub struct Recovered {
    pub records: Vec<Vec<u8>>,
    /// Bytes cut from the end (a torn or corrupt tail), 0 when the file was clean.
    pub dropped_bytes: u64,
    /// Damaged stretches with good records after them, left out.
    pub damaged: Vec<Damage>,
    /// Where the journal was copied before it was rewritten without them.
    pub damaged_copy: Option<PathBuf>,
}

/// A damaged stretch of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset and length in the file as found.
    pub offset: u64,
    pub bytes: u64,
    /// Good records read before it.
    pub after_records: usize,
}

/// The end of a good frame starting at `at`, if one does.
fn frame_at(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at + 8)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let end = at + 8 + len as usize;
    if len > MAX_RECORD || end > bytes.len() {
        return None;
    }
    (crc32fast::hash(&bytes[at + 8..end]) == crc).then_some(end)
}

/// Writes `bytes` to a new file at `path` and syncs it.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Journal {
    pub fn open(path: &Path) -> Result<(Journal, Recovered), StoreError> {
        let io = |e| StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let mut records = Vec::new();
        let mut damaged = Vec::new();
        let mut at = 0usize;
        while at + 8 <= bytes.len() {
            if let Some(end) = frame_at(&bytes, at) {
                records.push(bytes[at + 8..end].to_vec());
                at = end;
                continue;
            }
            // A bad frame: damage in the middle if a good frame follows, else a torn tail.
            match (at + 1..=bytes.len() - 8).find(|&p| frame_at(&bytes, p).is_some()) {
                Some(next) => {
                    damaged.push(Damage {
                        offset: at as u64,
                        bytes: (next - at) as u64,
                        after_records: records.len(),
                    });
                    at = next;
                }
                None => break,
            }
        }
        let dropped_bytes = (bytes.len() - at) as u64;
        let mut damaged_copy = None;
        if !damaged.is_empty() {
            // Keep the file as found, then write the good records alone in its place.
            let copy = path.with_extension(format!("bin.damaged-{}", crate::now_unix_ms()));
            write_durably(&copy, &bytes).map_err(io)?;
            let mut clean = Vec::with_capacity(bytes.len());
            for r in &records {
                clean.extend_from_slice(&(r.len() as u32).to_le_bytes());
                clean.extend_from_slice(&crc32fast::hash(r).to_le_bytes());
                clean.extend_from_slice(r);
            }
            let tmp = path.with_extension("bin.tmp");
            write_durably(&tmp, &clean).map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
            if let Some(dir) = path.parent() {
                // Makes the rename durable where the platform allows it.
                let _ = File::open(dir).and_then(|d| d.sync_all());
            }
            file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io)?;
            at = clean.len();
            damaged_copy = Some(copy);
        } else if dropped_bytes > 0 {
            file.set_len(at as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(at as u64)).map_err(io)?;
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
                len: at as u64,
            },
            Recovered {
                records,
                dropped_bytes,
                damaged,
                damaged_copy,
            },
        ))
    }

    /// Appends one record and makes it durable before returning.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), StoreError> {
        let io = |e| StoreError::Io {
            path: self.path.clone(),
            source: e,
        };
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        if let Err(e) = self
            .file
            .write_all(&frame)
            .and_then(|()| self.file.sync_data())
        {
            // A full disk or a write error: take back whatever part of the frame got in, so
            // the next append follows the last good record (nothing earlier is touched).
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(io(e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Empties the journal (after its records went into a snapshot).
    pub fn clear(&mut self) -> Result<(), StoreError> {
        let io = |e| StoreError::Io {
            path: self.path.clone(),
            source: e,
        };
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.len = 0;
        Ok(())
    }

    pub fn len_bytes(&self) -> u64 {
        self.len
    }
}
