//! Where retrieved instances land: a folder the study loader opens like any other. Each instance
//! is written under a temporary name and renamed when whole, so a file the loader sees is never
//! half written; a marker written last (`MARKER`) says the transfer finished and what it held, so
//! a half-received series is never taken for a complete one ([`finished`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::PacsError;

/// Written into the folder when every instance has arrived.
pub const MARKER: &str = ".groundglass-retrieved.json";

/// What the marker records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retrieved {
    pub server: String,
    pub study_uid: String,
    pub series_uid: Option<String>,
    pub instances: usize,
    pub bytes: u64,
}

/// Whether `dir` holds a finished transfer, and what it was: its marker, and as many instance
/// files of as many bytes as the marker counts. The instances are not synced one by one (that
/// made a 300-slice retrieval twice as slow); the count and size check catches files a power cut
/// left short.
pub fn finished(dir: &Path) -> Option<Retrieved> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let done: Retrieved = serde_json::from_str(&text).ok()?;
    let (mut count, mut bytes) = (0usize, 0u64);
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".dcm") && !name.starts_with('.') {
            count += 1;
            bytes += entry.metadata().ok()?.len();
        }
    }
    (count == done.instances && bytes == done.bytes).then_some(done)
}

/// Writes instances into one folder as they arrive.
pub struct Sink {
    dir: PathBuf,
    count: usize,
    bytes: u64,
}

impl Sink {
    /// Creates `dir` if needed and removes an earlier transfer's marker: from here until
    /// [`Sink::finish`] the folder is incomplete.
    pub fn new(dir: &Path) -> Result<Sink, PacsError> {
        std::fs::create_dir_all(dir).map_err(|e| PacsError::io(dir, e))?;
        match std::fs::remove_file(dir.join(MARKER)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(PacsError::io(dir.join(MARKER), e)),
        }
        Ok(Sink {
            dir: dir.to_path_buf(),
            count: 0,
            bytes: 0,
        })
    }

    /// One instance (a DICOM file's bytes, preamble and meta included), named by its SOP
    /// Instance UID where the meta names one. Returns the path.
    pub fn add(&mut self, bytes: &[u8]) -> Result<PathBuf, PacsError> {
        let name = sop_instance_uid(bytes)
            .filter(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
            .unwrap_or_else(|| format!("instance-{:06}", self.count + 1));
        let path = self.dir.join(format!("{name}.dcm"));
        let partial = self.dir.join(format!(".{name}.dcm.part"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&partial)?;
            f.write_all(bytes)?;
            std::fs::rename(&partial, &path)
        };
        write().map_err(|e| PacsError::io(&path, e))?;
        self.count += 1;
        self.bytes += bytes.len() as u64;
        Ok(path)
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes the marker: the folder is complete.
    pub fn finish(
        self,
        server: &str,
        study_uid: &str,
        series_uid: Option<&str>,
    ) -> Result<Retrieved, PacsError> {
        let done = Retrieved {
            server: server.to_string(),
            study_uid: study_uid.to_string(),
            series_uid: series_uid.map(str::to_string),
            instances: self.count,
            bytes: self.bytes,
        };
        let path = self.dir.join(MARKER);
        let partial = self.dir.join(format!("{MARKER}.part"));
        let text = serde_json::to_string_pretty(&done).unwrap_or_default();
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| PacsError::io(&path, e))?;
        Ok(done)
    }
}

/// The meta group's Media Storage SOP Instance UID of a DICOM file in memory.
fn sop_instance_uid(bytes: &[u8]) -> Option<String> {
    let after_preamble = bytes.get(128..)?;
    let meta = dicom_object::meta::FileMetaTable::from_reader(after_preamble).ok()?;
    Some(
        meta.media_storage_sop_instance_uid
            .trim_end_matches(['\0', ' '])
            .to_string(),
    )
}
