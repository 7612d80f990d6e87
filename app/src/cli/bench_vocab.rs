//! `groundglass bench vocab --tokenizer DIR`: what RadGrounder's 257k vocabulary costs the app:
//! loading its tokenizer.json, and building MIS-SemSam's neighbour table over an embedding of
//! that size (random, seeded: the cost does not depend on the values).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use candle_core::{Device, Tensor};
use clap::Args;
use groundglass_model::semsam::NeighbourTable;
use groundglass_model::tokenizer::PromptTokenizer;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchVocabArgs {
    /// A folder with the tokenizer.json to time.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Embedding rows (RadGrounder: 257,216).
    #[arg(long, default_value_t = 257_216)]
    pub vocab: usize,
    /// Embedding width (Gemma 2 2B: 2304).
    #[arg(long, default_value_t = 2304)]
    pub hidden: usize,
    /// Query rows actually built (all of them with 0).
    #[arg(long, default_value_t = 2048)]
    pub rows: usize,
    #[arg(long, default_value_t = 8)]
    pub k: usize,
}

#[derive(Serialize)]
struct VocabTimings {
    tokenizer_load_ms: f64,
    content_tokens: usize,
    vocab: usize,
    hidden: usize,
    /// Unit rows and fingerprint, once per table.
    prepare_s: f64,
    rows_built: usize,
    rows_s: f64,
    /// prepare_s plus rows_s scaled to every content row.
    full_table_s_estimated: f64,
}

pub fn run(args: BenchVocabArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let tokenizer = PromptTokenizer::from_dir(&args.tokenizer)?;
    let tokenizer_load_ms = start.elapsed().as_secs_f64() * 1e3;
    let content = tokenizer.content_mask(args.vocab);
    let content_tokens = content.iter().filter(|&&c| c).count();
    let embeddings = Tensor::randn(0f32, 1f32, (args.vocab, args.hidden), &Device::Cpu)?;
    let rows = if args.rows == 0 {
        content_tokens
    } else {
        args.rows.min(content_tokens)
    };
    // Normalising and fingerprinting the embedding is paid once per table: timed on its own.
    let start = Instant::now();
    NeighbourTable::build_rows(&embeddings, &content, args.k, 0)?;
    let prepare_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    NeighbourTable::build_rows(&embeddings, &content, args.k, rows)?;
    let rows_s = (start.elapsed().as_secs_f64() - prepare_s).max(0.0);
    let timings = VocabTimings {
        tokenizer_load_ms,
        content_tokens,
        vocab: args.vocab,
        hidden: args.hidden,
        prepare_s,
        rows_built: rows,
        rows_s,
        full_table_s_estimated: prepare_s + rows_s * content_tokens as f64 / rows.max(1) as f64,
    };
    println!("{}", serde_json::to_string(&timings)?);
    Ok(ExitCode::SUCCESS)
}
