//! The text decoder's quantized matrices, kept beside the checkpoint as a GGUF file (Candle's
//! reader and writer) so that a q8_0 or q4_k load after the first reads them instead of
//! quantizing 2.6 B weights again. The file records the weight files it was made from (names,
//! sizes, modification times); a cache from other weights is not taken. Written to a temporary
//! file and renamed, so a crash never leaves a half cache under the real name; a folder that
//! cannot be written (an installed model) just goes without.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

use crate::error::{ModelError, Result};
use crate::linear::QuantizedMatrices;

const STAMP_KEY: &str = "groundglass.source";

/// `groundglass-q8_0.gguf` beside the checkpoint.
pub fn path(dir: &Path, q: GgmlDType) -> PathBuf {
    let name = match q {
        GgmlDType::Q8_0 => "q8_0".to_string(),
        GgmlDType::Q4K => "q4_k".to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    dir.join(format!("groundglass-{name}.gguf"))
}

/// What the cache must have been made from: each weight file's name, size and modification time.
pub fn stamp(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok();
            let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let modified = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            format!("{name}:{size}:{modified}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The cached matrices, when the file exists, reads, and was made from `stamp`'s weights.
pub fn read(path: &Path, stamp: &str, device: &Device) -> Option<QuantizedMatrices> {
    let mut file = std::fs::File::open(path).ok()?;
    let content = gguf_file::Content::read(&mut file).ok()?;
    match content.metadata.get(STAMP_KEY) {
        Some(gguf_file::Value::String(s)) if s == stamp => {}
        _ => return None,
    }
    let mut out = HashMap::new();
    for name in content.tensor_infos.keys() {
        let t = content.tensor(&mut file, name, device).ok()?;
        out.insert(name.clone(), Arc::new(t));
    }
    Some(out)
}

/// Writes the matrices with `stamp`, through a temporary file renamed into place.
pub fn write(path: &Path, stamp: &str, matrices: &QuantizedMatrices) -> Result<()> {
    let io = |e: std::io::Error| ModelError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let tmp = path.with_extension(format!("gguf.tmp{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let value = gguf_file::Value::String(stamp.to_string());
        let mut names: Vec<&String> = matrices.keys().collect();
        names.sort();
        let tensors: Vec<(&str, &QTensor)> = names
            .iter()
            .map(|n| (n.as_str(), matrices[*n].as_ref()))
            .collect();
        gguf_file::write(&mut file, &[(STAMP_KEY, &value)], &tensors).map_err(|e| {
            ModelError::Weights {
                path: path.to_path_buf(),
                message: format!("writing the quantized cache: {e}"),
            }
        })?;
        let file = file.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
