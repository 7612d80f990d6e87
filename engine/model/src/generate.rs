//! Greedy decoding with the KV cache: each token goes to a callback as it is made (streaming); the
//! callback returns false to stop (cancel). Stops at end-of-sequence or at the token limit.

use std::time::Instant;

use candle_core::Tensor;

use crate::decoding::choose;
use crate::error::Result;
use crate::paligemma::PaliGemma;
use crate::semsam::{NeighbourTable, SemSamConfig};

#[derive(Clone, Debug)]
pub struct Generation {
    pub tokens: Vec<u32>,
    /// Prefill plus the first token, milliseconds.
    pub ttft_ms: f64,
    /// Tokens per second after the first.
    pub tok_per_s: f64,
    pub cancelled: bool,
}

/// Runs the prompt and decodes greedily up to `max_new_tokens`.
pub fn generate_greedy(
    model: &mut PaliGemma,
    pixel_values: &Tensor,
    prompt_ids: &[u32],
    max_new_tokens: usize,
    on_token: impl FnMut(u32) -> bool,
) -> Result<Generation> {
    generate(
        model,
        pixel_values,
        prompt_ids,
        max_new_tokens,
        None,
        on_token,
    )
}

/// Runs the prompt and decodes up to `max_new_tokens`, greedily or with MIS-SemSam.
pub fn generate(
    model: &mut PaliGemma,
    pixel_values: &Tensor,
    prompt_ids: &[u32],
    max_new_tokens: usize,
    semsam: Option<(&NeighbourTable, &SemSamConfig)>,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<Generation> {
    let eos = model.config.eos_ids();
    let start = Instant::now();
    let last = model.prefill_last(pixel_values, prompt_ids)?;
    let mut token = choose(&last, semsam)?;
    let ttft_ms = start.elapsed().as_secs_f64() * 1e3;
    let mut tokens = Vec::new();
    let mut cancelled = false;
    let decode_start = Instant::now();
    while tokens.len() < max_new_tokens {
        tokens.push(token);
        if !on_token(token) {
            cancelled = true;
            break;
        }
        if eos.contains(&token) || tokens.len() == max_new_tokens {
            break;
        }
        token = choose(&model.step(token)?, semsam)?;
    }
    let after_first = tokens.len().saturating_sub(1) as f64;
    let secs = decode_start.elapsed().as_secs_f64();
    Ok(Generation {
        tokens,
        ttft_ms,
        tok_per_s: if secs > 0.0 && after_first > 0.0 {
            after_first / secs
        } else {
            0.0
        },
        cancelled,
    })
}
