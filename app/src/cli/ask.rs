//! `groundglass ask STUDY --model DIR [--series N] [--plane P] [--index K] --task
//! report|grounded|segment|vqa [--question TEXT] [--clinical TEXT] [--lang en|de] [--json]`.
//! The engine's slice (never screen pixels) goes through the model's own preprocessing; the answer's
//! grounding is placed back on that slice in pixels and patient LPS.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use clap::Args;
use groundglass_grounding::{parser_for, Format, LabelMap, Language, LocatedFinding};
use groundglass_model::generate::generate;
use groundglass_model::preprocess::preprocess_slice;
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_model::semsam::{NeighbourTable, SemSamConfig};
use groundglass_model::tokenizer::PromptTokenizer;
use groundglass_model::PaliGemma;
use groundglass_study::Plane;
use serde::Serialize;

/// RadGrounder's evaluation limit.
const MAX_NEW_TOKENS: usize = 200;

#[derive(Args, Debug)]
pub struct AskArgs {
    pub study: PathBuf,
    /// A checkpoint folder in Hugging Face layout (config.json, safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub selection: super::selection::SliceSelection,
    /// report, grounded, segment or vqa.
    #[arg(long)]
    pub task: String,
    #[arg(long)]
    pub question: Option<String>,
    #[arg(long)]
    pub clinical: Option<String>,
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// MIS-SemSam decoding (off by default); the neighbour table is cached beside the model.
    #[arg(long)]
    pub semsam: bool,
    /// SemSam: neighbours per token.
    #[arg(long, default_value_t = 8)]
    pub semsam_k: usize,
    /// SemSam: candidates per step (top-M).
    #[arg(long, default_value_t = 10)]
    pub semsam_m: usize,
    /// SemSam: nucleus of the candidates (top-p).
    #[arg(long, default_value_t = 0.9)]
    pub semsam_p: f32,
    #[arg(long, default_value_t = MAX_NEW_TOKENS)]
    pub max_new_tokens: usize,
    /// Weights' dtype: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Answer {
    text: String,
    findings: Vec<LocatedFinding>,
    tokens: usize,
    ttft_ms: f64,
    tok_per_s: f64,
    plane: Plane,
    index: usize,
    slice_size: [usize; 2],
}

pub fn run(args: AskArgs) -> anyhow::Result<ExitCode> {
    let task = Task::parse(&args.task).with_context(|| {
        format!(
            "--task {:?}: expected report, grounded, segment or vqa",
            args.task
        )
    })?;
    let (lang, language) = match args.lang.as_str() {
        "en" => (Lang::En, Language::En),
        "de" => (Lang::De, Language::De),
        other => bail!("--lang {other:?}: expected en or de"),
    };
    if task == Task::Vqa
        && args
            .question
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .is_empty()
    {
        bail!("--task vqa needs --question");
    }
    let dtype = match args.dtype.as_str() {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        other => bail!("--dtype {other:?}: expected f32, f16 or bf16"),
    };
    let super::selection::Selected {
        series,
        volume,
        slice,
    } = args.selection.select(&args.study)?;

    let device = Device::Cpu;
    let mut model = PaliGemma::load(&args.model, dtype, &device)?;
    let tokenizer = PromptTokenizer::from_dir(&args.model)?;
    let size = model.config.vision_config.image_size;
    let image = preprocess_slice(&slice, &series.modality, volume.photometric, size);
    let pixel_values = Tensor::from_vec(image.pixels, (1, 3, size, size), &device)?;
    let request = Request {
        task,
        lang,
        clinical: args.clinical.clone(),
        question: args.question.clone(),
        options: vec![],
    };
    let ids = tokenizer.prompt_ids(
        model.config.image_token_index,
        model.config.num_image_tokens(),
        &request.text(),
    )?;

    let semsam_config = SemSamConfig {
        k: args.semsam_k,
        top_m: args.semsam_m,
        top_p: args.semsam_p,
    };
    let table = if args.semsam {
        let vocab = model.text.embedding_matrix().dim(0)?;
        let content = tokenizer.content_mask(vocab);
        let path = NeighbourTable::cache_path(&args.model, semsam_config.k);
        Some(NeighbourTable::cached(
            &path,
            model.text.embedding_matrix(),
            &content,
            semsam_config.k,
        )?)
    } else {
        None
    };
    let stream = !args.json;
    let semsam = table.as_ref().map(|t| (t, &semsam_config));
    let generation = generate(
        &mut model,
        &pixel_values,
        &ids,
        args.max_new_tokens,
        semsam,
        |t| {
            if stream {
                if let Ok(piece) = tokenizer.decode(&[t]) {
                    print!("{piece} ");
                    let _ = std::io::stdout().flush();
                }
            }
            true
        },
    )?;
    let text = tokenizer.decode(&generation.tokens)?;
    let parser = parser_for(Format::RadGrounder, LabelMap::radgrounder(), language);
    let findings = parser
        .parse(&text)
        .iter()
        .map(|f| f.locate(&slice))
        .collect();
    let answer = Answer {
        text,
        findings,
        tokens: generation.tokens.len(),
        ttft_ms: generation.ttft_ms,
        tok_per_s: generation.tok_per_s,
        plane: slice.grid.plane,
        index: slice.index,
        slice_size: [slice.width, slice.height],
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!();
        eprintln!(
            "{} tokens, first after {:.0} ms, {:.1} tokens/s",
            answer.tokens, answer.ttft_ms, answer.tok_per_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
