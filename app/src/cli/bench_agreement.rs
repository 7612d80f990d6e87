//! `groundglass bench agreement --model DIR`: what a cheaper precision costs in accuracy. The
//! same prefill (fixed random pixels, the image tokens, <bos> and fixed text ids) at f32 and at
//! each precision asked for; per precision, over every prompt position: how often the most likely
//! token is f32's (top-1 agreement) and the mean KL divergence of its next-token distribution
//! from f32's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::{DType, Device, Tensor, D};
use clap::Args;
use groundglass_model::{PaliGemma, Precision};

#[derive(Args, Debug)]
pub struct BenchAgreementArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Precisions compared with f32, comma-separated.
    #[arg(long, default_value = "bf16,q8_0,q4_k")]
    pub dtypes: String,
    /// Text tokens after the image tokens and <bos>.
    #[arg(long, default_value_t = 16)]
    pub prompt_tokens: usize,
}

/// Logits (positions, vocab) of the prefill at `precision`.
fn prefill(args: &BenchAgreementArgs, precision: Precision) -> anyhow::Result<Tensor> {
    let device = Device::Cpu;
    let mut model = PaliGemma::load(&args.model, precision, &device)
        .with_context(|| format!("loading {} at {precision}", args.model.display()))?;
    let size = model.config.vision_config.image_size;
    // A fixed pseudo-random image: the same pixels for every precision.
    let n = 3 * size * size;
    let mut x = 12345u32;
    let pixels: Vec<f32> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as f32 / u32::MAX as f32 * 2.0 - 1.0
        })
        .collect();
    let pixels = Tensor::from_vec(pixels, (1, 3, size, size), &device)?;
    let mut ids = vec![model.config.image_token_index; model.config.num_image_tokens()];
    ids.push(2);
    ids.extend((0..args.prompt_tokens as u32).map(|i| 1000 + 37 * i));
    Ok(model.prefill(&pixels, &ids)?.to_dtype(DType::F32)?)
}

pub fn run(args: BenchAgreementArgs) -> anyhow::Result<ExitCode> {
    let precisions = args
        .dtypes
        .split(',')
        .map(|t| {
            Precision::parse(t.trim())
                .with_context(|| format!("--dtypes: {t:?} is not f32, bf16, f16, q8_0 or q4_k"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reference = prefill(&args, Precision::F32)?;
    let log_p = candle_nn::ops::log_softmax(&reference, D::Minus1)?;
    let top = reference.argmax(D::Minus1)?.to_vec1::<u32>()?;
    for precision in precisions {
        let logits = prefill(&args, precision)?;
        let log_q = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        // KL(p || q) = Σ p (log p − log q), per position, then the mean.
        let kl = (log_p.exp()? * (&log_p - &log_q)?)?
            .sum(D::Minus1)?
            .to_vec1::<f32>()?;
        let got = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let agree = top.iter().zip(&got).filter(|(a, b)| a == b).count();
        println!(
            "{}",
            serde_json::json!({
                "model": args.model,
                "dtype": precision.name(),
                "positions": top.len(),
                "top1_agreement": agree as f64 / top.len() as f64,
                "mean_kl": kl.iter().map(|&v| f64::from(v)).sum::<f64>() / kl.len() as f64,
                "max_kl": kl.iter().cloned().fold(0f32, f32::max),
            })
        );
    }
    Ok(ExitCode::SUCCESS)
}
