//! A checkpoint folder: config, weights (one safetensors file or a sharded index), tokenizer. Tensor
//! names are normalised to one layout, so checkpoints saved by transformers 4.x
//! (`vision_tower.vision_model.*`, `language_model.model.*`) and 5.x (`model.vision_tower.*`,
//! `model.language_model.*`) both load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::config::PaliGemmaConfig;
use crate::error::{ModelError, Result};

pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: PaliGemmaConfig,
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads config.json and the weights from `dir` onto `device` as `dtype`.
    pub fn open(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let config = PaliGemmaConfig::from_file(&dir.join("config.json"))?;
        let mut tensors = HashMap::new();
        for file in weight_files(dir)? {
            let loaded =
                candle_core::safetensors::load(&file, device).map_err(|e| ModelError::Weights {
                    path: file.clone(),
                    message: e.to_string(),
                })?;
            for (name, tensor) in loaded {
                let tensor = tensor.to_dtype(dtype)?;
                tensors.insert(canonical_name(&name), tensor);
            }
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            config,
            tensors,
        })
    }
}

/// `model.safetensors`, or the shards a `model.safetensors.index.json` names.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        return Err(ModelError::MissingFile { path: single });
    }
    let text = std::fs::read_to_string(&index).map_err(|e| ModelError::Io {
        path: index.clone(),
        source: e,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: index.clone(),
        message: e.to_string(),
    })?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::Config {
            path: index.clone(),
            message: "no weight_map".into(),
        })?;
    let mut files: Vec<PathBuf> = map
        .values()
        .filter_map(|v| v.as_str())
        .map(|f| dir.join(f))
        .collect();
    files.sort();
    files.dedup();
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
