//! An append-only journal of framed records: `[length u32 LE][CRC-32 u32 LE][payload]`. A record is
//! acknowledged only after `fsync`, so an acknowledged record survives a crash. On open, records
//! are read until the first one that is short or fails its checksum (a write torn by a crash);
//! the file is cut there, so the next append follows the last good record.

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
        let mut at = 0usize;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let crc =
                u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
            let end = at + 8 + len as usize;
            if len > MAX_RECORD || end > bytes.len() {
                break;
            }
            let payload = &bytes[at + 8..end];
            if crc32fast::hash(payload) != crc {
                break;
            }
            records.push(payload.to_vec());
            at = end;
        }
        let dropped_bytes = (bytes.len() - at) as u64;
        if dropped_bytes > 0 {
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
        self.file.write_all(&frame).map_err(io)?;
        self.file.sync_data().map_err(io)?;
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
