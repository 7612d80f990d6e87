//! `groundglass bench model --model DIR`: time to first token and decoding speed of a checkpoint,
//! measured the way `bench/model_torch.py` measures PyTorch, so `bench/model.sh` can print ratios.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Tensor};
use clap::Args;
use groundglass_model::{best_device, PaliGemma};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchModelArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Text tokens after the image tokens and <bos>.
    #[arg(long, default_value_t = 16)]
    pub prompt_tokens: usize,
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Also decode this many sequences together (as `serve` batches them) and report their
    /// aggregate tokens/s.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
}

#[derive(Serialize)]
struct ModelTimings {
    model: PathBuf,
    device: String,
    dtype: String,
    parameters: usize,
    prompt_len: usize,
    new_tokens: usize,
    /// Medians over the runs after one warm-up run.
    ttft_ms: f64,
    tok_per_s: f64,
    /// The vision tower and projector alone (part of ttft_ms).
    vision_ms: f64,
    /// With `--batch` above 1: sequences decoded together, their aggregate tokens/s and the
    /// time of one step for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_tok_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_step_ms: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: BenchModelArgs) -> anyhow::Result<ExitCode> {
    let device = best_device();
    let precision = super::ask::parse_precision(&args.dtype, &args.model, &device)?;
    let mut model = PaliGemma::load(&args.model, precision, &device)?;
    let size = model.config.vision_config.image_size;
    let pixels = Tensor::rand(-1f32, 1f32, (1, 3, size, size), &device)?;
    // Image tokens, <bos> (2 in Gemma's vocabulary), then fixed ordinary token ids.
    let mut ids = vec![model.config.image_token_index; model.config.num_image_tokens()];
    ids.push(2);
    ids.extend((0..args.prompt_tokens as u32).map(|i| 1000 + 37 * i));
    let mut ttft = Vec::new();
    let mut speed = Vec::new();
    let mut vision = Vec::new();
    for run in 0..=args.runs.max(1) {
        let start = Instant::now();
        let logits = model.prefill_last(&pixels, &ids)?;
        let mut token = logits.argmax(0)?.to_scalar::<u32>()?;
        let first = start.elapsed().as_secs_f64() * 1e3;
        let decode = Instant::now();
        for _ in 1..args.new_tokens {
            token = model.step(token)?.argmax(0)?.to_scalar::<u32>()?;
        }
        device.synchronize()?;
        let per_s = (args.new_tokens - 1) as f64 / decode.elapsed().as_secs_f64();
        let start = Instant::now();
        model.image_features(&pixels)?;
        device.synchronize()?;
        if run > 0 {
            ttft.push(first);
            speed.push(per_s);
            vision.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let batched = if args.batch > 1 {
        let mut sequences = Vec::with_capacity(args.batch);
        let mut tokens = Vec::with_capacity(args.batch);
        for _ in 0..args.batch {
            let logits = model.prefill_last(&pixels, &ids)?;
            tokens.push(logits.argmax(0)?.to_scalar::<u32>()?);
            sequences.push(model.take_sequence());
        }
        let mut steps = Vec::new();
        for _ in 1..args.new_tokens.max(2) {
            let start = Instant::now();
            let mut all: Vec<_> = sequences.iter_mut().collect();
            let logits = model.step_batch(&mut all, &tokens)?;
            tokens = logits.argmax(1)?.to_vec1::<u32>()?;
            device.synchronize()?;
            steps.push(start.elapsed().as_secs_f64() * 1e3);
        }
        let step_ms = median(steps);
        Some((args.batch as f64 * 1e3 / step_ms, step_ms))
    } else {
        None
    };
    let timings = ModelTimings {
        model: args.model,
        device: match device {
            Device::Cpu => "cpu".into(),
            Device::Cuda(_) => "cuda".into(),
            Device::Metal(_) => "metal".into(),
        },
        dtype: args.dtype,
        parameters: model.parameter_count(),
        prompt_len: ids.len(),
        new_tokens: args.new_tokens,
        ttft_ms: median(ttft),
        tok_per_s: median(speed),
        vision_ms: median(vision),
        batch: batched.map(|_| args.batch),
        batch_tok_per_s: batched.map(|b| b.0),
        batch_step_ms: batched.map(|b| b.1),
    };
    println!("{}", serde_json::to_string(&timings)?);
    Ok(ExitCode::SUCCESS)
}
