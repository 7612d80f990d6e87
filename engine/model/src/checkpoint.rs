//! A checkpoint folder: config, weights, tokenizer. Weights come as transformers saves them:
//! `model.safetensors` or safetensors shards with `model.safetensors.index.json`, or, as
//! RadGrounder's training scripts write them (`safe_serialization=False`), `pytorch_model.bin` or
//! `.bin` shards with `pytorch_model.bin.index.json`. Tensor names are normalised to one layout,
//! so checkpoints saved by transformers 4.x (`vision_tower.vision_model.*`,
//! `language_model.model.*`) and 5.x (`model.vision_tower.*`, `model.language_model.*`) both load.
//!
//! Loading is lean: tensors are read one at a time and converted to the runtime's dtype, so the
//! process never holds a second full copy of the weights (safetensors files are memory-mapped and
//! each tensor's pages are handed back once it is copied; PyTorch pickles are read entry by entry
//! through Candle's reader). A tied output projection (`lm_head.weight`, stored by PyTorch pickles
//! as a second name for the embedding) is not read at all when the config ties it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::PaliGemmaConfig;
use crate::error::{ModelError, Result};

pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: PaliGemmaConfig,
    pub tensors: HashMap<String, Tensor>,
    /// What the weights were read from.
    pub format: WeightFormat,
}

/// The on-disk form of a checkpoint's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    Safetensors,
    /// PyTorch's zip of pickles (`torch.save`).
    Pytorch,
}

impl Checkpoint {
    /// Reads config.json and the weights from `dir` onto `device` as `dtype`.
    pub fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let config = PaliGemmaConfig::from_file(&dir.join("config.json"))?;
        let (format, files) = weight_files(dir)?;
        let skip_head = config.tie_word_embeddings();
        let mut tensors = HashMap::new();
        let wanted = |name: &str| !(skip_head && canonical_name(name) == "lm_head.weight");
        let mut keep = |name: &str, tensor: Tensor| -> Result<()> {
            tensors.insert(
                canonical_name(name),
                tensor.to_dtype(dtype)?.to_device(device)?,
            );
            Ok(())
        };
        for file in files {
            match format {
                WeightFormat::Safetensors => read_safetensors(&file, &wanted, &mut keep)?,
                WeightFormat::Pytorch => read_pytorch(&file, &wanted, &mut keep)?,
            }
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            tensors,
            format,
        })
    }
}

fn weights_error(path: &Path, message: impl ToString) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Each tensor of a safetensors file, in file order, copied out of the mapping one at a time.
fn read_safetensors(
    path: &Path,
    wanted: &dyn Fn(&str) -> bool,
    keep: &mut dyn FnMut(&str, Tensor) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    // SAFETY: the mapping is read-only and private to this function; a file changed underneath
    // while loading can give wrong numbers, as any reader would, but not unsoundness in our code
    // (the bytes are only copied).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let st = safetensors::SafeTensors::deserialize(&map)
        .map_err(|e| weights_error(path, format!("not a readable safetensors file: {e}")))?;
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| wanted(n))
        .collect();
    let base = map.as_ptr() as usize;
    // By name: with file (offset) order the 107M benchmark's prefill ran about 10 % slower here,
    // for a reason not found (the allocations' placement); name order measured as the old loader.
    views.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in views {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::F64 => DType::F64,
            safetensors::Dtype::I64 => DType::I64,
            safetensors::Dtype::U32 => DType::U32,
            safetensors::Dtype::U8 => DType::U8,
            other => {
                return Err(weights_error(
                    path,
                    format!("tensor {name}: unsupported dtype {other:?}"),
                ))
            }
        };
        let data = view.data();
        let tensor = Tensor::from_raw_buffer(data, dtype, view.shape(), &Device::Cpu)
            .map_err(|e| weights_error(path, format!("tensor {name}: {e}")))?;
        keep(&name, tensor)?;
        release_pages(&map, data.as_ptr() as usize - base, data.len());
    }
    Ok(())
}

/// Drops a copied range's pages from the process (they stay in the page cache), so the mapping
/// does not count as a second copy of the weights.
#[cfg(unix)]
fn release_pages(map: &memmap2::Mmap, start: usize, len: usize) {
    let page = 4096;
    let aligned = start / page * page;
    // SAFETY: DONTNEED on a read-only file mapping only discards this process's copies of the
    // pages; a later read of the range would fault them back in from the file.
    let _ = unsafe {
        map.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            aligned,
            len + (start - aligned),
        )
    };
}

#[cfg(not(unix))]
fn release_pages(_map: &memmap2::Mmap, _start: usize, _len: usize) {}

/// Each tensor of a PyTorch checkpoint (a zip of pickles), read entry by entry.
fn read_pytorch(
    path: &Path,
    wanted: &dyn Fn(&str) -> bool,
    keep: &mut dyn FnMut(&str, Tensor) -> Result<()>,
) -> Result<()> {
    let pth = candle_core::pickle::PthTensors::new(path, None)
        .map_err(|e| weights_error(path, format!("not a readable PyTorch checkpoint: {e}")))?;
    let mut names: Vec<String> = pth
        .tensor_infos()
        .keys()
        .filter(|n| wanted(n))
        .cloned()
        .collect();
    if names.is_empty() {
        return Err(weights_error(path, "holds no tensors"));
    }
    names.sort();
    for name in names {
        let tensor = pth
            .get(&name)
            .map_err(|e| weights_error(path, format!("tensor {name}: {e}")))?
            .ok_or_else(|| weights_error(path, format!("tensor {name}: listed but absent")))?;
        keep(&name, tensor)?;
    }
    Ok(())
}

/// The weight files of a folder, in the order transformers prefers them: safetensors (single,
/// then sharded), then PyTorch pickles (single, then sharded).
fn weight_files(dir: &Path) -> Result<(WeightFormat, Vec<PathBuf>)> {
    let candidates = [
        (WeightFormat::Safetensors, "model.safetensors"),
        (WeightFormat::Pytorch, "pytorch_model.bin"),
    ];
    for (format, single) in candidates {
        let file = dir.join(single);
        if file.exists() {
            return Ok((format, vec![file]));
        }
        let index = dir.join(format!("{single}.index.json"));
        if index.exists() {
            return Ok((format, sharded_files(dir, &index)?));
        }
    }
    Err(ModelError::MissingFile {
        path: dir.join("model.safetensors"),
    })
}

/// The shards a `*.index.json` names, each checked to exist.
fn sharded_files(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::Io {
        path: index.to_path_buf(),
        source: e,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: index.to_path_buf(),
        message: e.to_string(),
    })?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::Config {
            path: index.to_path_buf(),
            message: "no weight_map".into(),
        })?;
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|f| dir.join(f))
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(ModelError::Config {
            path: index.to_path_buf(),
            message: "the weight_map names no files".into(),
        });
    }
    for f in &files {
        if !f.exists() {
            return Err(ModelError::MissingFile { path: f.clone() });
        }
    }
    Ok(files)
}

/// One layout for every saved form: `vision_tower.*` (SigLIP, without `vision_model.`),
/// `multi_modal_projector.*`, `language_model.*` (Gemma 2, without `model.`), `lm_head.*`.
pub fn canonical_name(name: &str) -> String {
    let name = name.strip_prefix("model.").unwrap_or(name);
    if let Some(rest) = name.strip_prefix("vision_tower.") {
        let rest = rest.strip_prefix("vision_model.").unwrap_or(rest);
        return format!("vision_tower.{rest}");
    }
    if let Some(rest) = name.strip_prefix("language_model.") {
        if let Some(head) = rest.strip_prefix("lm_head.") {
            return format!("lm_head.{head}");
        }
        let rest = rest.strip_prefix("model.").unwrap_or(rest);
        return format!("language_model.{rest}");
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::canonical_name;

    #[test]
    fn both_saved_layouts_map_to_one() {
        for (a, b) in [
            (
                "vision_tower.vision_model.embeddings.patch_embedding.weight",
                "vision_tower.embeddings.patch_embedding.weight",
            ),
            (
                "model.vision_tower.embeddings.patch_embedding.weight",
                "vision_tower.embeddings.patch_embedding.weight",
            ),
            (
                "language_model.model.layers.0.mlp.up_proj.weight",
                "language_model.layers.0.mlp.up_proj.weight",
            ),
            (
                "model.language_model.layers.0.mlp.up_proj.weight",
                "language_model.layers.0.mlp.up_proj.weight",
            ),
            ("language_model.lm_head.weight", "lm_head.weight"),
            (
                "multi_modal_projector.linear.bias",
                "multi_modal_projector.linear.bias",
            ),
        ] {
            assert_eq!(canonical_name(a), b);
        }
    }
}
