//! A loaded checkpoint ready to answer about a slice: the model, its tokenizer and (built on first
//! use) the MIS-SemSam neighbour table. One call runs preprocessing, the prompt, decoding (tokens
//! streamed to a callback that can cancel), the grounding parser and, for the segmentation
//! checkpoint, the mask head; findings come back placed on the slice in pixels and patient LPS.
//! The CLI's `ask`, the viewer's model panel and the evaluation all go through here.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::precision::Precision;
use groundglass_grounding::{BoxNorm, LocatedFinding};
use groundglass_study::SliceImage;
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::gemma2::SoftCapping;
use crate::paligemma::PaliGemma;
use crate::prompt::{Request, Task};
use crate::semsam::{BuildControl, NeighbourTable, SemSamConfig};
use crate::tokenizer::PromptTokenizer;
use crate::visual_prompt::VisualPrompt;

/// RadGrounder's evaluation limit.
pub const MAX_NEW_TOKENS: usize = 200;

/// The best device the build supports: CUDA or Metal when compiled in and present, else CPU.
pub fn best_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

/// The precision a checkpoint runs at by default on a device. On the CPU, the checkpoint's own:
/// a bf16 checkpoint (as RadGrounder's are released) keeps bf16 weights, which are exact, with f32
/// activations; anything else runs in f32. On CUDA bf16, what the authors run (its tokens on the
/// fixtures are not checked: CI has no GPU); on Metal f16.
pub fn default_precision(dir: &Path, device: &Device) -> Precision {
    match device {
        Device::Cpu => match crate::checkpoint::stored_dtype(dir) {
            Ok(DType::BF16) => Precision::Bf16,
            _ => Precision::F32,
        },
        Device::Cuda(_) => Precision::Bf16,
        Device::Metal(_) => Precision::F16,
    }
}

/// What the model panel shows about a loaded checkpoint.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ModelSummary {
    pub dir: PathBuf,
    pub architecture: String,
    pub parameters: usize,
    pub device: String,
    /// The precision's name (`f32`, `bf16`, `f16`, `q8_0`, `q4_k`).
    pub dtype: String,
    pub mask_head: bool,
    /// The tasks this checkpoint was trained for (boxes or masks, never both).
    pub tasks: Vec<Task>,
    pub soft_capping: SoftCapping,
    /// `safetensors` or `pytorch`.
    pub weights: crate::checkpoint::WeightFormat,
    /// Bytes the weights take in memory as loaded (quantized where they are).
    pub weight_bytes: usize,
    /// Bytes one decoded token reads: the text decoder's matrices (what bounds decoding's speed).
    pub decode_bytes: usize,
    /// Milliseconds a decoded token takes at best on the CPU: `decode_bytes` at this machine's
    /// read bandwidth, measured at load (decoding one answer at a time is bound by memory; the
    /// kernels reach about 80 % of it). `None` on GPUs.
    pub ms_per_token_limit: Option<f64>,
    /// What the checkpoint's trainer says it was trained on (`groundglass.json`); `None` for
    /// checkpoints made elsewhere, which do not say.
    pub trained_on: Option<TrainedOn>,
    /// The MIS-SemSam neighbour counts whose tables are built (a server answers SemSam
    /// requests for these only).
    #[serde(default)]
    pub semsam_tables: Vec<usize>,
}

/// A mask on the slice it was asked on, run-length encoded row by row: counts alternate outside,
/// inside, outside, ... starting with outside (the first count may be 0).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct SliceMask {
    pub width: usize,
    pub height: usize,
    pub inside: usize,
    pub rle: Vec<u32>,
}

impl SliceMask {
    pub fn from_pixels(width: usize, height: usize, pixels: &[bool]) -> Self {
        let mut rle = Vec::new();
        let mut current = false;
        let mut run = 0u32;
        for &p in pixels {
            if p != current {
                rle.push(run);
                run = 0;
                current = p;
            }
            run += 1;
        }
        rle.push(run);
        SliceMask {
            width,
            height,
            inside: pixels.iter().filter(|&&p| p).count(),
            rle,
        }
    }

    pub fn pixels(&self) -> Vec<bool> {
        let mut out = Vec::with_capacity(self.width * self.height);
        for (i, &run) in self.rle.iter().enumerate() {
            out.extend(std::iter::repeat_n(i % 2 == 1, run as usize));
        }
        out.resize(self.width * self.height, false);
        out
    }

    /// The bounding box of the inside pixels as fractions of the slice (pixel edges).
    pub fn bounds(&self) -> Option<BoxNorm> {
        let pixels = self.pixels();
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (i, _) in pixels.iter().enumerate().filter(|(_, &p)| p) {
            let (x, y) = (i % self.width, i / self.width);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
        (x0 != usize::MAX).then(|| {
            let (w, h) = (self.width as f64, self.height as f64);
            BoxNorm::new(x0 as f64 / w, y0 as f64 / h, x1 as f64 / w, y1 as f64 / h)
        })
    }
}

/// The slice and what to ask about it.
pub struct AskInput<'a> {
    pub slice: &'a SliceImage,
    pub modality: &'a str,
    pub request: &'a Request,
    /// MIS-SemSam decoding; greedy when `None`.
    pub semsam: Option<SemSamConfig>,
    pub max_new_tokens: usize,
    /// A mark drawn into the model's input, for questions about "the marked structure".
    pub visual_prompt: Option<&'a VisualPrompt>,
}

#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Answer {
    pub text: String,
    /// Findings on the slice; a mask finding's `mask_index` points into `masks`, and its box is
    /// the mask's bounding box.
    pub findings: Vec<LocatedFinding>,
    pub masks: Vec<SliceMask>,
    pub tokens: usize,
    pub ttft_ms: f64,
    pub tok_per_s: f64,
    pub cancelled: bool,
    /// Pixel spacing (x, y) in mm of the image handed to the model's preprocessing: square
    /// (equal within 1 %) whatever the plane, since reformats are resampled first.
    pub input_spacing_mm: Option<[f64; 2]>,
}

/// What [`ModelSession::answer_image`] answers.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct ImageAnswer {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub ttft_ms: f64,
    pub tok_per_s: f64,
}

/// `groundglass.json` beside a checkpoint's config, written by Groundglass' trainer: what the
/// runtime must know about how the model was trained that config.json does not say.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct TrainingNotes {
    /// The soft-caps applied in training; absent for checkpoints made elsewhere.
    #[serde(default)]
    pub soft_capping: Option<SoftCapping>,
    /// What the model was trained on; absent for checkpoints made elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_on: Option<TrainedOn>,
}

/// The data a model knows, as its trainer recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TrainedOn {
    /// In words, for the panel ("Groundglass synthetic torso phantoms (CT and MR) only").
    pub description: String,
    /// The kind of study it knows; [`TrainedOn::PHANTOMS`] for the trainer's phantoms.
    pub domain: String,
}

impl TrainedOn {
    pub const PHANTOMS: &'static str = "groundglass-phantom";

    /// Whether a study described by `series_description` (its series or NIfTI description) is
    /// of the kind the model knows; `None` where the domain is not one Groundglass can recognise.
    pub fn knows(&self, series_description: &str) -> Option<bool> {
        (self.domain == Self::PHANTOMS)
            .then(|| series_description.starts_with("Groundglass phantom"))
    }
}

impl TrainingNotes {
    pub const FILE: &'static str = "groundglass.json";

    /// The notes in `dir`, or none (a missing or unreadable file means a foreign checkpoint).
    pub fn read(dir: &Path) -> Self {
        std::fs::read_to_string(dir.join(Self::FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}

/// The soft-capping a checkpoint runs with unless the user chooses: what its training notes say
/// (our own checkpoints), else what RadGrounder's published evaluation ran.
pub fn default_soft_capping(dir: &Path) -> SoftCapping {
    TrainingNotes::read(dir)
        .soft_capping
        .unwrap_or(SoftCapping::AUTHORS_EVALUATION)
}

pub struct ModelSession {
    pub model: PaliGemma,
    pub tokenizer: PromptTokenizer,
    dir: PathBuf,
    weights: crate::checkpoint::WeightFormat,
    ms_per_token_limit: Option<f64>,
    /// MIS-SemSam's neighbour tables by neighbour count (answers decoded together may differ).
    pub(crate) semsam_tables: std::collections::HashMap<usize, NeighbourTable>,
}

impl ModelSession {
    /// Loads a checkpoint with its default soft-capping ([`default_soft_capping`]) at `precision`
    /// (a `DType` converts).
    pub fn load(dir: &Path, precision: impl Into<Precision>, device: &Device) -> Result<Self> {
        Self::load_with(dir, precision, None, device)
    }

    /// Loads a checkpoint; `soft_capping` overrides the checkpoint's default.
    pub fn load_with(
        dir: &Path,
        precision: impl Into<Precision>,
        soft_capping: Option<SoftCapping>,
        device: &Device,
    ) -> Result<Self> {
        let precision = precision.into();
        // The tokenizer first: a folder without one fails at once, not after the weights load.
        let tokenizer = PromptTokenizer::from_dir(dir)?;
        let checkpoint = crate::checkpoint::Checkpoint::open_as(dir, precision, device)?;
        let weights = checkpoint.format;
        let mut model = PaliGemma::new(checkpoint, precision, device)?;
        model
            .text
            .set_soft_capping(soft_capping.unwrap_or_else(|| default_soft_capping(dir)));
        let ms_per_token_limit = matches!(device, Device::Cpu).then(|| {
            let gb_per_s = crate::kernels::machine_read_bandwidth_gb_per_s();
            model.text.matrix_bytes() as f64 / (gb_per_s * 1e9) * 1e3
        });
        model.set_seg_end_token(tokenizer.token_id("</seg>"));
        Ok(ModelSession {
            model,
            tokenizer,
            dir: dir.to_path_buf(),
            weights,
            ms_per_token_limit,
            semsam_tables: Default::default(),
        })
    }

    /// What the checkpoint was trained for: RadGrounder's detection checkpoint knows boxes
    /// ("detect keywords"), its segmentation checkpoint (with the mask head) masks ("segment
    /// keywords"); both write reports and answer questions.
    pub fn tasks(&self) -> Vec<Task> {
        let grounding = if self.model.has_mask_head() {
            Task::Segment
        } else {
            Task::Grounded
        };
        vec![Task::Report, grounding, Task::Vqa]
    }

    /// An error naming why `task` cannot be asked of this checkpoint, if it cannot.
    pub fn check_task(&self, task: Task) -> Result<()> {
        if self.tasks().contains(&task) {
            return Ok(());
        }
        let why = match task {
            Task::Segment => "it has no mask head (segmentation_head.*), so it is a detection checkpoint: ask for boxes (grounded) instead",
            _ => "it has a mask head, so it is a segmentation checkpoint trained on \"segment keywords\" only: ask for masks (segment) instead",
        };
        Err(ModelError::UnsupportedTask {
            dir: self.dir.clone(),
            task: format!("{task:?}").to_lowercase(),
            why: why.into(),
        })
    }

    pub fn summary(&self) -> ModelSummary {
        let c = &self.model.config;
        let v = &c.vision_config;
        let t = &c.text_config;
        ModelSummary {
            dir: self.dir.clone(),
            architecture: format!(
                "PaliGemma 2: SigLIP {}px/{} ({} layers x {}), Gemma 2 ({} layers x {}, vocab {})",
                v.image_size,
                v.patch_size,
                v.num_hidden_layers,
                v.hidden_size,
                t.num_hidden_layers,
                t.hidden_size,
                t.vocab_size
            ),
            parameters: self.model.parameter_count(),
            device: match self.model.device() {
                Device::Cpu => "CPU".into(),
                Device::Cuda(_) => "CUDA".into(),
                Device::Metal(_) => "Metal".into(),
            },
            dtype: self.model.precision().name().into(),
            mask_head: self.model.has_mask_head(),
            tasks: self.tasks(),
            soft_capping: self.model.text.soft_capping(),
            weights: self.weights,
            weight_bytes: self.model.weight_bytes(),
            decode_bytes: self.model.text.matrix_bytes(),
            trained_on: TrainingNotes::read(&self.dir).trained_on,
            ms_per_token_limit: self.ms_per_token_limit,
            semsam_tables: {
                let mut ks: Vec<usize> = self.semsam_tables.keys().copied().collect();
                ks.sort_unstable();
                ks
            },
        }
    }

    /// Builds (or loads from its cache beside the model, when it was built from these very
    /// embeddings) MIS-SemSam's neighbour table for `k` neighbours; at RadGrounder's 257k
    /// vocabulary this takes minutes on a CPU, so callers run it off the UI thread and show the
    /// progress. A later `ask` with SemSam reuses it.
    pub fn prepare_semsam(&mut self, k: usize, control: &BuildControl) -> Result<()> {
        if !self.semsam_tables.contains_key(&k) {
            let embeddings = self.model.text.embedding_matrix();
            let content = self.tokenizer.content_mask(embeddings.dim(0)?);
            let path = NeighbourTable::cache_path(&self.dir, k);
            self.semsam_tables.insert(
                k,
                NeighbourTable::cached_with(&path, embeddings, &content, k, control)?,
            );
        }
        Ok(())
    }

    /// Whether the neighbour table for `k` is ready.
    pub fn semsam_ready(&self, k: usize) -> bool {
        self.semsam_tables.contains_key(&k)
    }

    /// The image side the model takes (its preprocessing makes `size x size`).
    pub fn image_size(&self) -> usize {
        self.model.config.vision_config.image_size
    }

    /// The model on an image already preprocessed (channel-first, `image_size()` square, in
    /// [-1, 1]: what [`preprocess_slice`](crate::preprocess::preprocess_slice) makes, or an
    /// OpenAI-compatible client sends as RGB) with a prompt's text: the answer's text (special
    /// tokens dropped when `skip_special`) and its token ids. No masks or findings: nothing here
    /// knows the slice.
    pub fn answer_image(
        &mut self,
        image: &crate::preprocess::ModelImage,
        prompt: &str,
        max_new_tokens: usize,
        skip_special: bool,
    ) -> Result<ImageAnswer> {
        let mut decoding = self.start_image(image, prompt, max_new_tokens, 0)?;
        while !decoding.is_finished() {
            self.step_all(&mut [&mut decoding])?;
        }
        self.finish_image(decoding, skip_special)
    }

    /// Runs the request on the slice; after each token `on_token` gets the answer so far (decoded
    /// whole, so pieces join as the tokenizer joins them) and returns false to cancel.
    pub fn ask(
        &mut self,
        input: &AskInput,
        mut on_token: impl FnMut(&str) -> bool,
    ) -> Result<Answer> {
        let mut decoding = self.start_ask(input, 0)?;
        let mut shown = 0;
        loop {
            // Each chosen token goes to the callback once, the one that ends the answer too.
            while shown < decoding.tokens().len() {
                shown += 1;
                let so_far = self.tokenizer.decode(&decoding.tokens()[..shown])?;
                if !on_token(&so_far) {
                    decoding.cancel();
                    break;
                }
            }
            if decoding.is_finished() {
                break;
            }
            self.step_all(&mut [&mut decoding])?;
        }
        self.finish_ask(decoding)
    }
}

#[cfg(test)]
mod tests {
    use super::SliceMask;

    #[test]
    fn masks_round_trip_through_their_run_lengths() {
        let pixels: Vec<bool> = (0..35)
            .map(|i| (i % 7 > 2 && i / 7 < 3) || i == 34)
            .collect();
        let m = SliceMask::from_pixels(7, 5, &pixels);
        assert_eq!(m.pixels(), pixels);
        assert_eq!(m.inside, pixels.iter().filter(|&&p| p).count());
        assert_eq!(m.rle[0], 3);
        let b = m.bounds().expect("inside pixels").0;
        assert_eq!(b, [3.0 / 7.0, 0.0, 1.0, 1.0]);
        let empty = SliceMask::from_pixels(2, 2, &[false; 4]);
        assert_eq!(empty.rle, vec![4]);
        assert!(empty.bounds().is_none());
    }
}
