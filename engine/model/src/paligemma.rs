//! PaliGemma 2: SigLIP image features, projected and placed at the `<image>` tokens, then Gemma 2.
//! Image features enter the decoder unscaled while text embeddings are multiplied by sqrt(hidden):
//! transformers 4.x divides the projector output by sqrt(hidden) before a normaliser shared by all
//! embeddings, 5.x scales inside the text embedding; the result is the same, and so is ours.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::siglip;

use crate::checkpoint::Checkpoint;
use crate::config::PaliGemmaConfig;
use crate::error::{ModelError, Result};
use crate::gemma2::Gemma2;

pub struct PaliGemma {
    pub config: PaliGemmaConfig,
    vision: siglip::VisionModel,
    projector: Linear,
    pub text: Gemma2,
    device: Device,
    dtype: DType,
}

impl PaliGemma {
    /// Builds the model from a loaded checkpoint; a missing or mis-shaped tensor is named.
    pub fn new(checkpoint: Checkpoint, dtype: DType, device: &Device) -> Result<Self> {
        let Checkpoint {
            config, tensors, ..
        } = checkpoint;
        let head = tensors.get("lm_head.weight").cloned();
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let named = |name: &str| {
            let name = name.to_string();
            move |e: candle_core::Error| ModelError::Tensor {
                name: name.clone(),
                message: e.to_string(),
            }
        };
        let vision = siglip::VisionModel::new(&config.vision_config, false, vb.pp("vision_tower"))
            .map_err(named("vision_tower"))?;
        let projector = candle_nn::linear(
            config.vision_config.hidden_size,
            config.projection_dim,
            vb.pp("multi_modal_projector").pp("linear"),
        )
        .map_err(named("multi_modal_projector.linear"))?;
        let text = Gemma2::new(&config.text_config, vb.pp("language_model"), head)
            .map_err(named("language_model"))?;
        Ok(PaliGemma {
            config,
            vision,
            projector,
            text,
            device: device.clone(),
            dtype,
        })
    }

    /// Opens a checkpoint folder.
    pub fn load(dir: &std::path::Path, dtype: DType, device: &Device) -> Result<Self> {
        Self::new(Checkpoint::open(dir, dtype, device)?, dtype, device)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Projected image features (num_image_tokens, hidden), before the 1/sqrt(hidden) scaling.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let features = self.vision.forward(&pixel_values.to_dtype(self.dtype)?)?;
        Ok(features.apply(&self.projector)?.squeeze(0)?)
    }

    /// Prefill: `pixel_values` (1, 3, S, S) and the prompt ids (image tokens included). Clears the
    /// cache; the whole prompt is the bidirectional prefix. Returns logits for every position.
    pub fn prefill(&mut self, pixel_values: &Tensor, ids: &[u32]) -> Result<Tensor> {
        self.text.clear_cache();
        let embeds = self.merged_embeddings(pixel_values, ids)?;
        let (logits, _) = self.text.forward(&embeds, ids.len())?;
        Ok(logits.squeeze(0)?)
    }

    /// One decoding step with the KV cache; returns the logits of the new position.
    pub fn step(&mut self, token: u32) -> Result<Tensor> {
        let ids = Tensor::new(&[token], &self.device)?.unsqueeze(0)?;
        let embeds = self.text.embed_tokens(&ids)?;
        let (logits, _) = self.text.forward(&embeds, 0)?;
        Ok(logits.squeeze(0)?.squeeze(0)?)
    }

    fn merged_embeddings(&self, pixel_values: &Tensor, ids: &[u32]) -> Result<Tensor> {
        let ids_t = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let text = self.text.embed_tokens(&ids_t)?.squeeze(0)?;
        let image_positions: Vec<usize> = ids
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == self.config.image_token_index)
            .map(|(i, _)| i)
            .collect();
        if image_positions.is_empty() {
            return Ok(text.unsqueeze(0)?);
        }
        let features =
            (self.image_features(pixel_values)? / (self.text.hidden_size() as f64).sqrt())?;
        let n = features.dim(0)?;
        if image_positions.len() != n {
            return Err(ModelError::Tensor {
                name: "input_ids".into(),
                message: format!(
                    "{} <image> tokens for {n} image features",
                    image_positions.len()
                ),
            });
        }
        // Rows: text embedding, or the next image feature at an <image> position.
        let mut rows = Vec::with_capacity(ids.len());
        let mut next = 0;
        for (i, _) in ids.iter().enumerate() {
            if next < n && image_positions[next] == i {
                rows.push(features.get(next)?);
                next += 1;
            } else {
                rows.push(text.get(i)?);
            }
        }
        Ok(Tensor::stack(&rows, 0)?.unsqueeze(0)?)
    }
}
