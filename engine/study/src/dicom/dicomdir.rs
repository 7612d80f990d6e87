//! DICOMDIR: the image files a media directory references.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;

use super::attrs::{self, Obj};
use crate::error::{Result, StudyError};

/// Files referenced by IMAGE (and other instance) records, resolved against the DICOMDIR's folder.
/// Components that differ only in case from what is on disk are matched too (media written on
/// case-insensitive systems).
pub fn referenced_files(dicomdir: &Path, obj: &Obj) -> Result<Vec<PathBuf>> {
    let base = dicomdir.parent().unwrap_or(Path::new("."));
    let records = attrs::items(obj, tags::DIRECTORY_RECORD_SEQUENCE);
    if records.is_empty() {
        return Err(StudyError::invalid(
            dicomdir,
            "DICOMDIR has no directory records",
        ));
    }
    let mut files = Vec::new();
    for record in records {
        let components = attrs::strings(record, tags::REFERENCED_FILE_ID);
        if components.is_empty() {
            continue;
        }
        let mut path = base.to_path_buf();
        for c in &components {
            // A component can never climb out of the media folder.
            if c.is_empty() || c == ".." || c.contains('/') {
                continue;
            }
            path = resolve_component(&path, c);
        }
        files.push(path);
    }
    if files.is_empty() {
        return Err(StudyError::invalid(
            dicomdir,
            "DICOMDIR references no files",
        ));
    }
    Ok(files)
}

fn resolve_component(dir: &Path, component: &str) -> PathBuf {
    let direct = dir.join(component);
    if direct.exists() {
        return direct;
    }
    std::fs::read_dir(dir)
        .ok()
        .and_then(|entries| {
            entries
                .filter_map(|e| e.ok())
                .find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .eq_ignore_ascii_case(component)
                })
                .map(|e| e.path())
        })
        .unwrap_or(direct)
}
