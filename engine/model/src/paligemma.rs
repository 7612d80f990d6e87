//! PaliGemma 2: SigLIP image features, projected and placed at the `<image>` tokens, then Gemma 2.
//! Image features enter the decoder unscaled while text embeddings are multiplied by sqrt(hidden):
//! transformers 4.x divides the projector output by sqrt(hidden) before a normaliser shared by all
//! embeddings, 5.x scales inside the text embedding; the result is the same, and so is ours.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::Checkpoint;
use crate::config::PaliGemmaConfig;
use crate::error::{ModelError, Result};
use crate::gemma2::{Gemma2, SequenceState};
use crate::linear::{FastLinear, WeightPlan};
use crate::mask_head::{Mask, MaskHead};
use crate::precision::Precision;
use crate::siglip::VisionTower;

/// One answer's state between decoding steps, out of the model: the decoder's caches and what
/// the mask head will read (the image's SigLIP output, the hidden states at each `</seg>`).
/// [`PaliGemma::take_sequence`] makes it after a prefill, [`PaliGemma::step_batch`] advances
/// several together.
#[derive(Clone, Debug)]
pub struct Sequence {
    text: SequenceState,
    last_vision: Option<Tensor>,
    seg_queries: Vec<Tensor>,
}

impl Sequence {
    /// Tokens in the decoder's cache (prompt and answer so far).
    pub fn seen(&self) -> usize {
        self.text.seen()
    }
}

pub struct PaliGemma {
    pub config: PaliGemmaConfig,
    vision: VisionTower,
    projector: FastLinear,
    pub text: Gemma2,
    /// RadGrounder's mask head, when the checkpoint has `segmentation_head.*`.
    mask_head: Option<MaskHead>,
    /// The token whose fed-back hidden state queries the mask head (`</seg>`).
    seg_end_token: Option<u32>,
    /// SigLIP output (after its post-LayerNorm) of the last prefill, for the mask head.
    last_vision: Option<Tensor>,
    /// Final hidden states at each `</seg>` fed back since the last prefill.
    seg_queries: Vec<Tensor>,
    parameters: usize,
    /// Bytes the weights take as loaded (quantized where they are).
    weight_bytes: usize,
    device: Device,
    /// The activations' dtype.
    dtype: DType,
    precision: Precision,
}

impl PaliGemma {
    /// Builds the model from a loaded checkpoint at `precision`; a missing or mis-shaped tensor
    /// is named.
    pub fn new(checkpoint: Checkpoint, precision: Precision, device: &Device) -> Result<Self> {
        let Checkpoint {
            config,
            tensors,
            quantized,
            ..
        } = checkpoint;
        let head = tensors.get("lm_head.weight").cloned();
        // The dtype the embedding table was read in: what unquantized matrices keep.
        let stored = tensors
            .get("language_model.embed_tokens.weight")
            .map(|t| t.dtype())
            .unwrap_or(DType::F32);
        let has_mask_head = tensors.keys().any(|k| k.starts_with("segmentation_head."));
        let parameters = tensors.values().map(|t| t.elem_count()).sum::<usize>()
            + quantized
                .iter()
                // A tied head's quantized copy is the embedding again.
                .filter(|(name, _)| *name != "lm_head.weight" || !config.tie_word_embeddings())
                .map(|(_, q)| q.shape().elem_count())
                .sum::<usize>();
        // Everything but the text decoder, at the dtype it was read in.
        let other_bytes: usize = tensors
            .iter()
            .filter(|(name, _)| !name.starts_with("language_model.") && *name != "lm_head.weight")
            .map(|(_, t)| t.elem_count() * t.dtype().size_in_bytes())
            .sum();
        // The layers let each weight they repack go from `tensors` (see `WeightPlan::release`).
        let tensors = crate::linear::CheckpointTensors::new(tensors);
        let vb = VarBuilder::from_backend(
            Box::new(tensors.clone()),
            precision.activations(device),
            device.clone(),
        );
        let mut model = Self::from_var_builder(
            config,
            vb,
            head,
            has_mask_head,
            parameters,
            precision.plan(stored, quantized).reading(tensors),
        )?;
        model.weight_bytes = other_bytes + model.text.matrix_bytes();
        model.precision = precision;
        Ok(model)
    }

    /// Builds the model from any variable builder in canonical names (a checkpoint's tensors, or a
    /// `VarMap` for training, which creates what is missing). Activations are `vb`'s dtype; the
    /// text decoder's linear layers follow `plan`, the vision tower's the same unquantized.
    pub fn from_var_builder(
        config: PaliGemmaConfig,
        vb: VarBuilder,
        head: Option<Tensor>,
        has_mask_head: bool,
        parameters: usize,
        plan: WeightPlan,
    ) -> Result<Self> {
        let (dtype, device) = (vb.dtype(), vb.device().clone());
        let device = &device;
        let named = |name: &str| {
            let name = name.to_string();
            move |e: candle_core::Error| ModelError::Tensor {
                name: name.clone(),
                message: e.to_string(),
            }
        };
        let vision = VisionTower::new(
            &config.vision_config,
            vb.pp("vision_tower"),
            &plan.unquantized(),
        )
        .map_err(named("vision_tower"))?;
        let projector = crate::linear::linear(
            config.vision_config.hidden_size,
            config.projection_dim,
            vb.pp("multi_modal_projector").pp("linear"),
            &plan.unquantized(),
        )
        .map_err(named("multi_modal_projector.linear"))?;
        let text = Gemma2::new(&config.text_config, vb.pp("language_model"), head, &plan)
            .map_err(named("language_model"))?;
        let mask_head = if has_mask_head {
            Some(
                MaskHead::new(
                    config.vision_config.hidden_size,
                    config.text_config.hidden_size,
                    vb.pp("segmentation_head"),
                )
                .map_err(named("segmentation_head"))?,
            )
        } else {
            None
        };
        Ok(PaliGemma {
            config,
            vision,
            projector,
            text,
            mask_head,
            seg_end_token: None,
            last_vision: None,
            seg_queries: Vec::new(),
            parameters,
            weight_bytes: 0,
            device: device.clone(),
            dtype,
            precision: Precision::from(plan.matrices),
        })
    }

    /// Opens a checkpoint folder at `precision` (a `DType` converts: bf16, f16 or f32).
    pub fn load(
        dir: &std::path::Path,
        precision: impl Into<Precision>,
        device: &Device,
    ) -> Result<Self> {
        let precision = precision.into();
        Self::new(
            Checkpoint::open_as(dir, precision, device)?,
            precision,
            device,
        )
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes the weights take as loaded.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Parameters in the checkpoint (tied weights counted once).
    pub fn parameter_count(&self) -> usize {
        self.parameters
    }

    pub fn has_mask_head(&self) -> bool {
        self.mask_head.is_some()
    }

    /// Sets the token (the tokenizer's `</seg>`) whose hidden state, when fed back, asks for a mask.
    pub fn set_seg_end_token(&mut self, token: Option<u32>) {
        self.seg_end_token = token;
    }

    /// Projected image features (num_image_tokens, hidden), before the 1/sqrt(hidden) scaling.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let vision = self.vision.forward(&pixel_values.to_dtype(self.dtype)?)?;
        Ok(vision.apply(&self.projector)?.squeeze(0)?)
    }

    /// Training forward: pixel values (B, 3, S, S) and ids (B, L) whose first tokens are the image
    /// tokens; the first `prefix[b]` tokens of sample b form its bidirectional prefix. Returns
    /// logits (B, L, vocab).
    pub fn forward_batch(
        &mut self,
        pixel_values: &Tensor,
        ids: &Tensor,
        prefix: &[usize],
    ) -> Result<Tensor> {
        let n = self.config.num_image_tokens();
        let vision = self.vision.forward(&pixel_values.to_dtype(self.dtype)?)?;
        let image = (vision.apply(&self.projector)? / (self.text.hidden_size() as f64).sqrt())?;
        let (_, len) = ids.dims2()?;
        let text = self.text.embed_tokens(&ids.narrow(1, n, len - n)?)?;
        let embeds = Tensor::cat(&[&image, &text], 1)?;
        Ok(self.text.forward_batch(&embeds, prefix)?)
    }

    /// One mask per `</seg>` fed back since the last prefill, in order (empty without a mask head).
    pub fn masks(&self) -> Result<Vec<Mask>> {
        self.masks_from(self.last_vision.as_ref(), &self.seg_queries)
    }

    /// One mask per `</seg>` `sequence` has fed back, in order (empty without a mask head).
    pub fn masks_of(&self, sequence: &Sequence) -> Result<Vec<Mask>> {
        self.masks_from(sequence.last_vision.as_ref(), &sequence.seg_queries)
    }

    fn masks_from(&self, vision: Option<&Tensor>, seg_queries: &[Tensor]) -> Result<Vec<Mask>> {
        let (Some(head), Some(vision)) = (&self.mask_head, vision) else {
            return Ok(Vec::new());
        };
        if seg_queries.is_empty() {
            return Ok(Vec::new());
        }
        let queries = Tensor::stack(seg_queries, 0)?;
        let size = self.config.vision_config.image_size;
        let logits = head.forward(vision, &queries, size)?.to_dtype(DType::F32)?;
        (0..queries.dim(0)?)
            .map(|i| {
                Ok(Mask {
                    size,
                    logits: logits.get(i)?.flatten_all()?.to_vec1()?,
                })
            })
            .collect()
    }

    /// Prefill: `pixel_values` (1, 3, S, S) and the prompt ids (image tokens included). Clears the
    /// cache; the whole prompt is the bidirectional prefix. Returns logits for every position.
    pub fn prefill(&mut self, pixel_values: &Tensor, ids: &[u32]) -> Result<Tensor> {
        self.prefill_logits(pixel_values, ids, false)
    }

    /// Prefill returning only the last position's logits (vocab): what decoding needs.
    pub fn prefill_last(&mut self, pixel_values: &Tensor, ids: &[u32]) -> Result<Tensor> {
        Ok(self.prefill_logits(pixel_values, ids, true)?.squeeze(0)?)
    }

    fn prefill_logits(
        &mut self,
        pixel_values: &Tensor,
        ids: &[u32],
        last_only: bool,
    ) -> Result<Tensor> {
        self.text.clear_cache();
        self.seg_queries.clear();
        let embeds = self.merged_embeddings(pixel_values, ids)?;
        let (logits, hidden) = self.text.forward_logits(&embeds, ids.len(), last_only)?;
        if let (Some(end), Some(&last)) = (self.seg_end_token, ids.last()) {
            if last == end {
                let hidden = hidden.squeeze(0)?;
                self.seg_queries.push(hidden.get(hidden.dim(0)? - 1)?);
            }
        }
        Ok(logits.squeeze(0)?)
    }

    /// One decoding step with the KV cache; returns the logits of the new position. The same
    /// code as [`PaliGemma::step_batch`] with one sequence in the batch.
    pub fn step(&mut self, token: u32) -> Result<Tensor> {
        let mut sequence = self.take_sequence();
        let logits = self.step_batch(&mut [&mut sequence], &[token]);
        self.text.put_state(sequence.text);
        self.last_vision = sequence.last_vision;
        self.seg_queries = sequence.seg_queries;
        Ok(logits?.squeeze(0)?)
    }

    /// The sequence the last prefill started (and `step` continued), taken out of the model to be
    /// decoded with others in [`PaliGemma::step_batch`]; the model is left with an empty one.
    pub fn take_sequence(&mut self) -> Sequence {
        Sequence {
            text: self.text.take_state(),
            last_vision: self.last_vision.take(),
            seg_queries: std::mem::take(&mut self.seg_queries),
        }
    }

    /// One decoding step for several sequences at once, `tokens[b]` fed to `sequences[b]`: the
    /// decoder's weights are read once for all (see [`Gemma2::step_batch`]). Returns the new
    /// positions' logits (B, vocab); row b is what `step` gives sequence b alone.
    pub fn step_batch(&self, sequences: &mut [&mut Sequence], tokens: &[u32]) -> Result<Tensor> {
        if sequences.len() != tokens.len() {
            return Err(ModelError::Input(format!(
                "{} tokens for {} sequences",
                tokens.len(),
                sequences.len()
            )));
        }
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(1)?;
        let embeds = self.text.embed_tokens(&ids)?;
        let mut states: Vec<&mut SequenceState> =
            sequences.iter_mut().map(|s| &mut s.text).collect();
        let (logits, hidden) = self.text.step_batch(&mut states, &embeds)?;
        for (b, (sequence, &token)) in sequences.iter_mut().zip(tokens).enumerate() {
            if self.seg_end_token == Some(token) {
                sequence.seg_queries.push(hidden.get(b)?);
            }
        }
        Ok(logits)
    }

    fn merged_embeddings(&mut self, pixel_values: &Tensor, ids: &[u32]) -> Result<Tensor> {
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
        let vision = self
            .vision
            .forward(&pixel_values.to_dtype(self.dtype)?)?
            .squeeze(0)?;
        let features = (vision.apply(&self.projector)? / (self.text.hidden_size() as f64).sqrt())?;
        if self.mask_head.is_some() {
            self.last_vision = Some(vision);
        }
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
