//! Which store a study's corrections live in: a key from its series (DICOM series instance UIDs,
//! or for NIfTI a digest of the file's first megabyte and size), stable across runs and machines.

use std::io::Read;

use groundglass_study::{Series, SeriesSource};

fn digest_file(path: &std::path::Path) -> String {
    let mut head = Vec::new();
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(1 << 20).read_to_end(&mut head);
    }
    format!("{:08x}{size:x}", crc32fast::hash(&head))
}

/// `gg-` and 16 hex digits.
pub fn study_key(series: &[Series]) -> String {
    let mut parts: Vec<String> = series
        .iter()
        .map(|s| match &s.source {
            SeriesSource::Dicom(_) => s.uid.clone(),
            _ => s
                .files
                .first()
                .map(|f| digest_file(f))
                .unwrap_or_else(|| s.uid.clone()),
        })
        .collect();
    parts.sort();
    let joined = parts.join("\n");
    let a = crc32fast::hash(joined.as_bytes());
    let mut h = crc32fast::Hasher::new_with_initial(0x9e37_79b9);
    h.update(joined.as_bytes());
    format!("gg-{a:08x}{:08x}", h.finalize())
}
