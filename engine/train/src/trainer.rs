//! Training in Candle on the runtime's own PaliGemma-2 code (`PaliGemma::forward_batch`), with
//! every op differentiable (Candle's fused LayerNorm, softmax and rope, and our fused CPU kernels,
//! have no backward pass; see `fast_gelu::set_differentiable`). Teacher forcing with the
//! cross-entropy of the target tokens, AdamW with a linear warm-up. Checkpoints are complete model
//! folders in Hugging Face layout (config.json, model.safetensors in transformers' tensor names,
//! tokenizer.json) plus `train_state.json`; a run resumes from its folder, or starts from another
//! checkpoint (`init`) and can mix in exported corrections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use groundglass_model::config::PaliGemmaConfig;
use groundglass_model::linear::WeightPlan;
use groundglass_model::tokenizer::PromptTokenizer;
use groundglass_model::{Checkpoint, PaliGemma};
use groundglass_phantom::generate;
use serde::{Deserialize, Serialize};

use crate::config::{config_json, DemoSize};
use crate::dataset::{alternating_phantom, correction_samples, Mix, PhantomSamples, Rng, Sample};
use crate::tokenizer::{dataset_words, extend_tokenizer, tokenizer_json, vocab_size};
use crate::{file_err, Result, TrainError};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub out: PathBuf,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
    /// Phantoms in the training pool (seeds `phantom_seed` ..), CT and MR alternating.
    pub phantoms: usize,
    pub phantom_seed: u64,
    /// Start from this checkpoint instead of random weights.
    pub init: Option<PathBuf>,
    /// A RadGrounder export of corrections to mix in (half of each batch).
    pub corrections: Option<PathBuf>,
    pub checkpoint_every: usize,
    /// The share of grounded reports among phantom samples (state files written before this
    /// option read as the default).
    #[serde(default = "default_grounded_share")]
    pub grounded_share: f64,
    /// The share of yes/no questions; the rest are open questions.
    #[serde(default = "default_yes_no_share")]
    pub yes_no_share: f64,
    /// The share of MIS-Ground questions (state files written before this option read as 0).
    #[serde(default)]
    pub mis_ground_share: f64,
    /// How much more often the slow-to-learn MIS-Ground questions are drawn (1: all alike).
    #[serde(default = "default_focus")]
    pub mis_ground_focus: f64,
    /// The share of MIS-Ground questions given a filler phrase.
    #[serde(default)]
    pub mis_ground_fillers: f64,
    /// The share of MIS-Ground samples asking where a marked structure is.
    #[serde(default)]
    pub mis_ground_locate: f64,
    /// Layers added to both towers of the starting checkpoint, each made to pass its input
    /// through unchanged at first (see [`identity_layer_value`]), so the grown model starts
    /// where the checkpoint was and has more depth to learn with.
    #[serde(default)]
    pub grow_layers: usize,
}

fn default_focus() -> f64 {
    1.0
}

fn default_grounded_share() -> f64 {
    Mix::default().grounded
}

fn default_yes_no_share() -> f64 {
    Mix::default().yes_no
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub loss: f64,
    pub token_accuracy: f64,
    pub seconds: f64,
    pub options: Option<TrainOptions>,
}

/// Progress after a step.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub token_accuracy: f64,
    pub lr: f64,
    pub seconds: f64,
    pub checkpoint: Option<PathBuf>,
}

/// transformers' saved names for our canonical ones.
fn hf_name(canonical: &str) -> String {
    if let Some(rest) = canonical.strip_prefix("vision_tower.") {
        return format!("vision_tower.vision_model.{rest}");
    }
    if let Some(rest) = canonical.strip_prefix("language_model.") {
        return format!("language_model.model.{rest}");
    }
    canonical.to_string()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| file_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))
}

/// What a run trains on, for the checkpoint's notes: the phantoms always (a model trained only on
/// corrections still started from them), and the corrections where they were mixed in.
fn trained_on(opts: Option<&TrainOptions>) -> groundglass_model::TrainedOn {
    let mut description =
        "Groundglass synthetic torso phantoms only (CT and MR, axial, coronal and sagittal slices)"
            .to_string();
    if let Some(dir) = opts.and_then(|o| o.corrections.as_ref()) {
        description.push_str(&format!(", with corrections from {}", dir.display()));
    }
    groundglass_model::TrainedOn {
        description,
        domain: groundglass_model::TrainedOn::PHANTOMS.into(),
    }
}

/// Saves the weights (transformers' names) and the state into `dir`.
pub fn save_checkpoint(varmap: &VarMap, dir: &Path, state: &TrainState) -> Result<()> {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Invalid("the variable map lock is poisoned".into()))?
        .iter()
        .map(|(k, v)| (hf_name(k), v.as_tensor().clone()))
        .collect();
    let path = dir.join("model.safetensors");
    let tmp = dir.join("model.safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    std::fs::rename(&tmp, &path).map_err(|e| file_err(&path, e))?;
    let state_json =
        serde_json::to_vec_pretty(state).map_err(|e| TrainError::Invalid(e.to_string()))?;
    write_atomic(&dir.join("train_state.json"), &state_json)?;
    // The forward pass trains with every soft-cap the config names: the runtime must run so too.
    let notes = groundglass_model::TrainingNotes {
        soft_capping: Some(groundglass_model::SoftCapping::ALL),
        trained_on: Some(trained_on(state.options.as_ref())),
    };
    let notes =
        serde_json::to_vec_pretty(&notes).map_err(|e| TrainError::Invalid(e.to_string()))?;
    write_atomic(&dir.join(groundglass_model::TrainingNotes::FILE), &notes)?;
    // A SemSam neighbour table cached beside older weights (an evaluation during training) no
    // longer matches the embeddings.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("semsam_neighbours_") && name.ends_with(".safetensors") {
                std::fs::remove_file(entry.path()).map_err(|e| file_err(&entry.path(), e))?;
            }
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, e))
}

fn phantom_classes() -> Vec<u32> {
    groundglass_phantom::classes::CLASSES
        .iter()
        .map(|(c, _)| u32::from(*c))
        .collect()
}

/// Copies a checkpoint's weights into the model's variables; every variable must be there. The
/// token embedding may have fewer rows than the model (words added to the tokenizer): the new
/// rows start at the mean embedding plus a little seeded noise, so the new words differ.
/// With `grown`, the variables of layers past the checkpoint's last are not there: they start as
/// [`identity_layer_value`] says.
fn load_weights(varmap: &VarMap, dir: &Path, seed: u64, grown: bool) -> Result<()> {
    let checkpoint = Checkpoint::open(dir, DType::F32, &Device::Cpu)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| TrainError::Invalid("the variable map lock is poisoned".into()))?;
    let err = |name: &str, e: &dyn std::fmt::Display| {
        TrainError::Invalid(format!("{}: tensor {name}: {e}", dir.display()))
    };
    // Per tower, the checkpoint's layer count: only layers past it may be missing.
    let mut layers: HashMap<&str, usize> = HashMap::new();
    for name in checkpoint.tensors.keys() {
        if let Some((tower, index)) = layer_of(name) {
            let count = layers.entry(tower).or_default();
            *count = (*count).max(index + 1);
        }
    }
    for (name, var) in data.iter() {
        let Some(t) = checkpoint.tensors.get(name) else {
            let added = layer_of(name)
                .is_some_and(|(tower, index)| index >= layers.get(tower).copied().unwrap_or(0));
            if !(grown && added) {
                return Err(TrainError::Invalid(format!(
                    "{}: no tensor {name}",
                    dir.display()
                )));
            }
            if let Some(value) =
                identity_layer_value(name, var.as_tensor()).map_err(|e| err(name, &e))?
            {
                var.set(&value).map_err(|e| err(name, &e))?;
            }
            continue;
        };
        let (want, have) = (var.dims(), t.dims());
        let t = if name.ends_with("embed_tokens.weight")
            && want.len() == 2
            && have.len() == 2
            && want[1] == have[1]
            && want[0] > have[0]
        {
            grow_rows(t, want[0], seed).map_err(|e| err(name, &e))?
        } else {
            t.clone()
        };
        var.set(&t).map_err(|e| err(name, &e))?;
    }
    Ok(())
}

/// The tower ("language_model", "vision_tower.encoder") and layer index of a layer's variable.
fn layer_of(name: &str) -> Option<(&str, usize)> {
    let (tower, rest) = name.split_once(".layers.")?;
    let index = rest.split('.').next()?.parse().ok()?;
    Some((tower, index))
}

/// The value a variable of a layer added by growing starts at, where its initialisation would
/// not make the layer pass its input through unchanged (`None`: the initialisation stays). A
/// text layer adds `post_norm(sublayer(x))` to its input, and Gemma's norm scales by
/// (1 + weight): a weight of -1 makes it add nothing. (Zeroing the sublayer's output projection
/// instead would not do: the norm blows a near-zero output up to full size at the first step.)
/// A vision layer adds its attention's and MLP's outputs directly: their output projections
/// start at zero.
fn identity_layer_value(name: &str, init: &Tensor) -> candle_core::Result<Option<Tensor>> {
    let text_output_scale = name.ends_with("post_attention_layernorm.weight")
        || name.ends_with("post_feedforward_layernorm.weight");
    let vision_output = name.contains("self_attn.out_proj.") || name.contains("mlp.fc2.");
    if text_output_scale {
        init.ones_like()?.neg().map(Some)
    } else if vision_output {
        init.zeros_like().map(Some)
    } else {
        Ok(None)
    }
}

/// `t` (rows, width) with rows appended up to `rows`: the mean row plus uniform noise of a tenth
/// of the embedding's spread.
fn grow_rows(t: &Tensor, rows: usize, seed: u64) -> candle_core::Result<Tensor> {
    let (have, width) = t.dims2()?;
    let mean = t.mean_keepdim(0)?;
    let spread = f64::from(
        t.broadcast_sub(&mean)?
            .sqr()?
            .mean_all()?
            .to_scalar::<f32>()?
            .sqrt(),
    );
    let mut rng = Rng::new(seed ^ 0xE3B0_C442);
    let noise: Vec<f32> = (0..(rows - have) * width)
        .map(|_| ((rng.unit() * 2.0 - 1.0) * 0.1 * spread) as f32)
        .collect();
    let new = Tensor::from_vec(noise, (rows - have, width), t.device())?.broadcast_add(&mean)?;
    Tensor::cat(&[t, &new], 0)
}

/// A padded batch: pixels (B, 3, S, S), ids (B, L) with `<pad>`, the prefixes, and per target
/// token its logit row, its id and its weight.
struct Batch {
    pixels: Tensor,
    ids: Tensor,
    prefix: Vec<usize>,
    rows: Tensor,
    targets: Tensor,
    weights: Tensor,
}

/// Pads a batch. Each sample weighs the same in the loss whatever its length: a one-word answer
/// ("yes") would otherwise be drowned by the sixty tokens of a grounded report.
fn batch_tensors(samples: &[Sample], size: usize) -> Result<Batch> {
    let b = samples.len();
    let len = samples.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let mut pixels = Vec::with_capacity(b * 3 * size * size);
    let mut ids = Vec::with_capacity(b * len);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    let mut weights = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        pixels.extend_from_slice(&s.pixels);
        ids.extend_from_slice(&s.ids);
        ids.extend(std::iter::repeat_n(0u32, len - s.ids.len()));
        let n = s.ids.len().saturating_sub(s.prefix).max(1);
        for t in s.prefix..s.ids.len() {
            rows.push((i * len + t - 1) as u32);
            targets.push(s.ids[t]);
            weights.push(1.0 / (n * b) as f32);
        }
    }
    let device = Device::Cpu;
    Ok(Batch {
        pixels: Tensor::from_vec(pixels, (b, 3, size, size), &device)?,
        ids: Tensor::from_vec(ids, (b, len), &device)?,
        prefix: samples.iter().map(|s| s.prefix).collect(),
        rows: Tensor::new(rows.as_slice(), &device)?,
        weights: Tensor::new(weights.as_slice(), &device)?,
        targets: Tensor::new(targets.as_slice(), &device)?,
    })
}

/// Linear warm-up, then a cosine decay to a tenth of `peak` at the last step.
pub fn learning_rate(peak: f64, step: usize, steps: usize, warmup: f64) -> f64 {
    let s = step as f64 + 1.0;
    if s < warmup {
        return peak * s / warmup;
    }
    let t = ((s - warmup) / (steps as f64 - warmup).max(1.0)).clamp(0.0, 1.0);
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Adds `n` layers to both towers of a config (full attention, as every demo layer).
fn grow_config(config: &mut serde_json::Value, n: usize) -> Result<()> {
    for tower in ["text_config", "vision_config"] {
        let layers = config[tower]["num_hidden_layers"].as_u64().ok_or_else(|| {
            TrainError::Invalid(format!("config.json: no {tower}.num_hidden_layers"))
        })?;
        config[tower]["num_hidden_layers"] = (layers + n as u64).into();
    }
    if let Some(types) = config["text_config"]["layer_types"].as_array_mut() {
        types.extend(std::iter::repeat_n("full_attention".into(), n));
    }
    Ok(())
}

/// Writes the tokenizer and config of a new run: from the starting checkpoint (its tokenizer
/// grown by the words the dataset now uses), or the demo model's for a run from scratch.
fn write_model_files(opts: &TrainOptions) -> Result<()> {
    match &opts.init {
        Some(init) => {
            // The dataset may use words the checkpoint's tokenizer lacks (it was trained on
            // an older dataset): they get new ids at the end and new embedding rows.
            let mut tok = read_json(&init.join("tokenizer.json"))?;
            let mut config = read_json(&init.join("config.json"))?;
            let added = extend_tokenizer(&mut tok, &dataset_words(&phantom_classes()));
            if opts.grow_layers > 0 {
                grow_config(&mut config, opts.grow_layers)?;
            }
            if added.is_empty() && opts.grow_layers == 0 {
                for f in ["config.json", "tokenizer.json"] {
                    std::fs::copy(init.join(f), opts.out.join(f))
                        .map_err(|e| file_err(&init.join(f), e))?;
                }
            } else {
                let vocab = vocab_size(&tok);
                config["vocab_size"] = vocab.into();
                config["text_config"]["vocab_size"] = vocab.into();
                for (name, value) in [("tokenizer.json", &tok), ("config.json", &config)] {
                    let text = serde_json::to_string_pretty(value)
                        .map_err(|e| TrainError::Invalid(e.to_string()))?;
                    write_atomic(&opts.out.join(name), text.as_bytes())?;
                }
            }
        }
        None => {
            let tok = tokenizer_json(&dataset_words(&phantom_classes()));
            let tok_text = tok.to_string();
            write_atomic(&opts.out.join("tokenizer.json"), tok_text.as_bytes())?;
            let parsed = tokenizers::Tokenizer::from_bytes(tok_text.as_bytes())
                .map_err(|e| TrainError::Invalid(e.to_string()))?;
            let vocab = vocab_size(&tok);
            let image = parsed
                .token_to_id("<image>")
                .ok_or_else(|| TrainError::Invalid("no <image> token".into()))?;
            let config = config_json(&DemoSize::default(), vocab, image);
            write_atomic(
                &opts.out.join("config.json"),
                serde_json::to_string_pretty(&config)
                    .map_err(|e| TrainError::Invalid(e.to_string()))?
                    .as_bytes(),
            )?;
        }
    }
    Ok(())
}

/// Trains; `progress` is called after every step.
pub fn train(opts: &TrainOptions, mut progress: impl FnMut(&Progress)) -> Result<TrainState> {
    std::fs::create_dir_all(&opts.out).map_err(|e| file_err(&opts.out, e))?;
    let state_path = opts.out.join("train_state.json");
    let resume = state_path.exists() && opts.out.join("model.safetensors").exists();
    if opts.grow_layers > 0 && opts.init.is_none() && !resume {
        return Err(TrainError::Invalid(
            "growing layers needs a starting checkpoint (--init)".into(),
        ));
    }
    let mut state: TrainState = if resume {
        let text = std::fs::read_to_string(&state_path).map_err(|e| file_err(&state_path, e))?;
        serde_json::from_str(&text).map_err(|e| file_err(&state_path, e))?
    } else {
        TrainState::default()
    };
    if !resume {
        write_model_files(opts)?;
    }
    let config = PaliGemmaConfig::from_file(&opts.out.join("config.json"))?;
    let tokenizer = PromptTokenizer::from_dir(&opts.out)?;
    let size = config.vision_config.image_size;
    let image_token = config.image_token_index;
    let image_tokens = config.num_image_tokens();

    groundglass_model::fast_gelu::set_differentiable(true);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mut model =
        PaliGemma::from_var_builder(config, vb, None, false, 0, WeightPlan::uniform(DType::F32))?;
    if resume {
        load_weights(&varmap, &opts.out, opts.seed, false)?;
    } else if let Some(init) = &opts.init {
        load_weights(&varmap, init, opts.seed, opts.grow_layers > 0)?;
    }
    let mut optimizer = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;

    let pool: Vec<_> = (0..opts.phantoms as u64)
        .map(|i| generate(&alternating_phantom(opts.phantom_seed, i)))
        .collect();
    // Resuming continues the sample stream from where the step count is (not bit-exact: AdamW's
    // moments start afresh, Candle does not expose them).
    let mut phantoms = PhantomSamples::new(pool, size, opts.seed.wrapping_add(state.step as u64));
    let mix = Mix {
        grounded: opts.grounded_share,
        yes_no: opts.yes_no_share,
        mis_ground: opts.mis_ground_share,
        mis_ground_focus: opts.mis_ground_focus,
        mis_ground_fillers: opts.mis_ground_fillers,
        mis_ground_locate: opts.mis_ground_locate,
    };
    if !(mix.grounded >= 0.0
        && mix.yes_no >= 0.0
        && mix.mis_ground >= 0.0
        && mix.grounded + mix.yes_no + mix.mis_ground <= 1.0)
    {
        return Err(TrainError::Invalid(format!(
            "the grounded ({}), yes/no ({}) and MIS-Ground ({}) shares must be at least 0 and add up to at most 1",
            mix.grounded, mix.yes_no, mix.mis_ground
        )));
    }
    if !(mix.mis_ground_focus >= 1.0
        && mix.mis_ground_focus.is_finite()
        && (0.0..=1.0).contains(&mix.mis_ground_fillers)
        && (0.0..=1.0).contains(&mix.mis_ground_locate))
    {
        return Err(TrainError::Invalid(format!(
            "the MIS-Ground focus ({}) must be at least 1, and its filler ({}) and locate ({}) shares between 0 and 1",
            mix.mis_ground_focus, mix.mis_ground_fillers, mix.mis_ground_locate
        )));
    }
    phantoms.mix = mix;
    let corrections = match &opts.corrections {
        Some(dir) => correction_samples(dir, &tokenizer, image_token, image_tokens, size)?,
        None => Vec::new(),
    };
    if phantoms.phantoms.is_empty() && corrections.is_empty() {
        return Err(TrainError::Invalid(
            "nothing to train on: no phantoms and no corrections".into(),
        ));
    }
    let mut rng = Rng::new(opts.seed ^ 0xC0FFEE ^ state.step as u64);
    let start = Instant::now();
    let already = state.seconds;
    let warmup = 100.0;
    for step in state.step..opts.steps {
        let mut samples = Vec::with_capacity(opts.batch);
        for k in 0..opts.batch {
            let from_corrections =
                !corrections.is_empty() && (phantoms.phantoms.is_empty() || k % 2 == 1);
            samples.push(if from_corrections {
                corrections[rng.below(corrections.len())].clone()
            } else {
                phantoms.draw(&tokenizer, image_token, image_tokens)?
            });
        }
        let batch = batch_tensors(&samples, size)?;
        let lr = learning_rate(opts.lr, step, opts.steps, warmup);
        optimizer.set_learning_rate(lr);
        let logits = model.forward_batch(&batch.pixels, &batch.ids, &batch.prefix)?;
        let (b, len, vocab) = logits.dims3()?;
        let picked = logits
            .reshape((b * len, vocab))?
            .index_select(&batch.rows, 0)?;
        // Per-sample mean cross-entropy, averaged over the batch.
        let log_p = candle_nn::ops::log_softmax(&picked, 1)?
            .gather(&batch.targets.unsqueeze(1)?, 1)?
            .squeeze(1)?;
        let loss = (log_p * &batch.weights)?.sum_all()?.neg()?;
        let targets = batch.targets;
        optimizer.backward_step(&loss)?;
        let hits = picked
            .argmax(1)?
            .eq(&targets)?
            .to_dtype(DType::F32)?
            .mean_all()?
            .to_scalar::<f32>()?;
        state.step = step + 1;
        state.loss = f64::from(loss.to_scalar::<f32>()?);
        state.token_accuracy = f64::from(hits);
        state.seconds = already + start.elapsed().as_secs_f64();
        state.options = Some(opts.clone());
        let mut checkpoint = None;
        if state.step.is_multiple_of(opts.checkpoint_every.max(1)) || state.step == opts.steps {
            save_checkpoint(&varmap, &opts.out, &state)?;
            checkpoint = Some(opts.out.clone());
        }
        progress(&Progress {
            step: state.step,
            steps: opts.steps,
            loss: state.loss,
            token_accuracy: state.token_accuracy,
            lr,
            seconds: state.seconds,
            checkpoint,
        });
    }
    if opts.steps <= state.step && !resume {
        save_checkpoint(&varmap, &opts.out, &state)?;
    }
    groundglass_model::fast_gelu::set_differentiable(false);
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn warm_up_then_cosine_to_a_tenth() {
        assert!((learning_rate(1.0, 0, 1000, 100.0) - 0.01).abs() < 1e-12);
        assert!((learning_rate(1.0, 99, 1000, 100.0) - 1.0).abs() < 1e-12);
        let mid = learning_rate(1.0, 549, 1000, 100.0);
        assert!((mid - 0.55).abs() < 1e-9, "{mid}");
        assert!((learning_rate(1.0, 999, 1000, 100.0) - 0.1).abs() < 1e-12);
    }
}
