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

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};

use crate::config::PaliGemmaConfig;
use crate::error::{ModelError, Result};
use crate::linear::QuantizedMatrices;
use crate::precision::Precision;

pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: PaliGemmaConfig,
    pub tensors: HashMap<String, Tensor>,
    /// The text decoder's matrices quantized as they were read (q8_0, q4_k), not in `tensors`;
    /// `lm_head.weight` here is the tied embedding's quantized copy.
    pub quantized: QuantizedMatrices,
    /// What the weights were read from.
    pub format: WeightFormat,
    /// Where the quantized matrices came from or went: the cache file and whether it was read.
    pub quantized_cache: Option<(PathBuf, CacheUse)>,
}

/// What a quantized load did with the cache beside the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    Read,
    Written,
    /// Could not be written (the message says why); the next load quantizes again.
    NotWritten(String),
}

/// The on-disk form of a checkpoint's weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    Safetensors,
    /// PyTorch's zip of pickles (`torch.save`).
    Pytorch,
}

impl Checkpoint {
    /// Reads config.json and the weights from `dir` onto `device`, every tensor as `dtype`.
    pub fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        Self::open_with(dir, &|_, _, _| dtype, device)
    }

    /// As [`Self::open`], each tensor at the dtype `precision` holds it in (bf16 matrices and f32
    /// norms on a CPU in bf16, for instance). Quantized precisions quantize the text decoder's
    /// matrices as they are read (one bf16 matrix at a time in memory), or read them from the
    /// cache beside the checkpoint ([`crate::quantized_cache`]) and skip them in the weights.
    pub fn open_as(dir: &Path, precision: Precision, device: &Device) -> Result<Self> {
        let dtype_of = |name: &str, rank: usize, stored: DType| {
            precision.stored_dtype(name, rank, stored, device)
        };
        let Some(q) = precision.quantized() else {
            return Self::open_with(dir, &dtype_of, device);
        };
        let (_, files) = weight_files(dir)?;
        let stamp = crate::quantized_cache::stamp(&files);
        let cache = crate::quantized_cache::path(dir, q);
        if let Some(cached) = crate::quantized_cache::read(&cache, &stamp, device) {
            let mut checkpoint = Self::read(
                dir,
                &dtype_of,
                &|name| cached.contains_key(name),
                None,
                device,
            )?;
            checkpoint.quantized = cached;
            checkpoint.quantized_cache = Some((cache, CacheUse::Read));
            return Ok(checkpoint);
        }
        let mut checkpoint = Self::read(dir, &dtype_of, &|_| false, Some(q), device)?;
        let outcome = match crate::quantized_cache::write(&cache, &stamp, &checkpoint.quantized) {
            Ok(()) => CacheUse::Written,
            Err(e) => CacheUse::NotWritten(e.to_string()),
        };
        checkpoint.quantized_cache = Some((cache, outcome));
        Ok(checkpoint)
    }

    /// As [`Self::open`], tensor `name` (canonical) of rank `rank`, stored as `stored`, read as
    /// `dtype_of(name, rank, stored)`.
    pub fn open_with(
        dir: &Path,
        dtype_of: &dyn Fn(&str, usize, DType) -> DType,
        device: &Device,
    ) -> Result<Self> {
        Self::read(dir, dtype_of, &|_| false, None, device)
    }

    /// Reads every tensor but those `skip` names (canonical), quantizing the text decoder's
    /// matrices (and the output projection) to `quantize` when given.
    fn read(
        dir: &Path,
        dtype_of: &dyn Fn(&str, usize, DType) -> DType,
        skip: &dyn Fn(&str) -> bool,
        quantize: Option<GgmlDType>,
        device: &Device,
    ) -> Result<Self> {
        let config = PaliGemmaConfig::from_file(&dir.join("config.json"))?;
        let (format, files) = weight_files(dir)?;
        let tied = config.tie_word_embeddings();
        let mut tensors = HashMap::new();
        let mut quantized = HashMap::new();
        let wanted = |name: &str| {
            let name = canonical_name(name);
            !(skip(&name) || tied && name == "lm_head.weight")
        };
        let mut keep = |name: &str, tensor: Tensor| -> Result<()> {
            let name = canonical_name(name);
            let dtype = dtype_of(&name, tensor.rank(), tensor.dtype());
            let tensor = tensor.to_dtype(dtype)?.to_device(device)?;
            let Some(q) = quantize else {
                tensors.insert(name, tensor);
                return Ok(());
            };
            match crate::linear::quantized_as(&name, tensor.dims(), q, tied) {
                Some(as_name) => {
                    let matrix = crate::linear::quantize_rows(&tensor, q)?;
                    quantized.insert(as_name.clone(), std::sync::Arc::new(matrix));
                    if as_name != name {
                        tensors.insert(name, tensor);
                    }
                }
                None => {
                    tensors.insert(name, tensor);
                }
            }
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
            quantized,
            format,
            quantized_cache: None,
        })
    }
}

/// The dtype a checkpoint's weights are stored in (that of its largest tensor), read from the
/// first weight file's header without loading any tensor.
pub fn stored_dtype(dir: &Path) -> Result<DType> {
    let (format, files) = weight_files(dir)?;
    let Some(file) = files.first() else {
        return Err(ModelError::MissingFile {
            path: dir.join("model.safetensors"),
        });
    };
    let largest = match format {
        WeightFormat::Safetensors => {
            let bytes = safetensors_header(file)?;
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
                weights_error(file, format!("not a readable safetensors file: {e}"))
            })?;
            meta.tensors()
                .values()
                .max_by_key(|i| i.shape.iter().product::<usize>())
                .map(|i| safetensors_dtype(i.dtype))
        }
        WeightFormat::Pytorch => {
            crate::pickle_guard::check(file).map_err(|e| {
                weights_error(file, format!("not a readable PyTorch checkpoint: {e}"))
            })?;
            let pth = candle_core::pickle::PthTensors::new(file, None).map_err(|e| {
                weights_error(file, format!("not a readable PyTorch checkpoint: {e}"))
            })?;
            pth.tensor_infos()
                .values()
                .max_by_key(|i| i.layout.shape().elem_count())
                .map(|i| Some(i.dtype))
        }
    };
    largest
        .flatten()
        .ok_or_else(|| weights_error(file, "holds no tensors of a known dtype"))
}

/// The header of a safetensors file (its 8-byte length and the JSON), without the data.
fn safetensors_header(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e| ModelError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(io)?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(weights_error(path, format!("header of {n} bytes")));
    }
    let mut bytes = len.to_vec();
    bytes.resize(8 + n as usize, 0);
    file.read_exact(&mut bytes[8..]).map_err(io)?;
    Ok(bytes)
}

fn safetensors_dtype(dtype: safetensors::Dtype) -> Option<DType> {
    Some(match dtype {
        safetensors::Dtype::F32 => DType::F32,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::BF16 => DType::BF16,
        safetensors::Dtype::F64 => DType::F64,
        safetensors::Dtype::I64 => DType::I64,
        safetensors::Dtype::U32 => DType::U32,
        safetensors::Dtype::U8 => DType::U8,
        _ => return None,
    })
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
        let Some(dtype) = safetensors_dtype(view.dtype()) else {
            return Err(weights_error(
                path,
                format!("tensor {name}: unsupported dtype {:?}", view.dtype()),
            ));
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
    crate::pickle_guard::check(path)
        .map_err(|e| weights_error(path, format!("not a readable PyTorch checkpoint: {e}")))?;
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
