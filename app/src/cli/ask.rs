//! `groundglass ask STUDY --model DIR [--series N] [--plane P] [--index K] --task
//! report|grounded|segment|vqa [--question TEXT] [--clinical TEXT] [--lang en|de] [--mark M] [--json]`.
//! The engine's slice (never screen pixels) goes through the model's own preprocessing; the answer's
//! grounding is placed back on that slice in pixels and patient LPS.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_model::semsam::SemSamConfig;
use groundglass_model::session::MAX_NEW_TOKENS;
use groundglass_model::visual_prompt::VisualPrompt;
use groundglass_model::{best_device, Answer, AskInput, ModelSession, Precision, SoftCapping};
use groundglass_study::Plane;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct AskArgs {
    pub study: PathBuf,
    /// A checkpoint folder in Hugging Face layout (config.json, safetensors, tokenizer.json).
    #[arg(long, required_unless_present = "remote", conflicts_with = "remote")]
    pub model: Option<PathBuf>,
    /// A Groundglass server (`groundglass serve`), e.g. http://gpu-host:8080, instead of a local
    /// model; its bearer token from --remote-token-file, else GROUNDGLASS_REMOTE_TOKEN.
    #[arg(long)]
    pub remote: Option<String>,
    /// A file whose first line is the server's bearer token (keep it chmod 600).
    #[arg(long, requires = "remote")]
    pub remote_token_file: Option<PathBuf>,
    /// What the server speaks: `groundglass` (`groundglass serve`: the slice's values in,
    /// findings and masks out) or `openai` (vLLM and other OpenAI-compatible servers: the
    /// preprocessed picture in, text out, boxes parsed here; no masks, no SemSam).
    #[arg(long, default_value = "groundglass", requires = "remote")]
    pub remote_api: String,
    /// The model's name on an OpenAI-compatible server (vLLM's `--served-model-name`).
    #[arg(long, default_value = "radgrounder", requires = "remote")]
    pub remote_model: String,
    /// The side of the picture the served checkpoint takes (224 for RadGrounder).
    #[arg(long, default_value_t = 224, requires = "remote")]
    pub remote_image_size: usize,
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
    /// Precision: auto (on the CPU the checkpoint's own, bf16 or f32; bf16 on CUDA), f32, bf16,
    /// f16, or quantized at load: q8_0, q4_k (the text decoder; the vision tower stays bf16).
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// Gemma 2 soft-capping: auto (the checkpoint's training notes, else RadGrounder's published
    /// evaluation: none), none, attention, final or both.
    #[arg(long, default_value = "auto")]
    pub soft_capping: String,
    #[arg(long)]
    pub json: bool,
    /// A mark drawn into the model's input for questions about "the marked structure":
    /// `box:X0,Y0,X1,Y1`, `point:X,Y`, `arrow:X,Y` or `label:X,Y`, in pixels of the slice.
    #[arg(long)]
    pub mark: Option<String>,
}

/// The `ask` JSON: the model's answer and where it was asked.
#[derive(Serialize)]
pub struct AskJson {
    #[serde(flatten)]
    pub answer: Answer,
    pub plane: Plane,
    pub index: usize,
    pub slice_size: [usize; 2],
    /// The mark drawn into the model's input (fractions of the slice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<VisualPrompt>,
}

pub fn parse_task(task: &str) -> anyhow::Result<Task> {
    Task::parse(task)
        .with_context(|| format!("--task {task:?}: expected report, grounded, segment or vqa"))
}

pub fn parse_lang(lang: &str) -> anyhow::Result<Lang> {
    match lang {
        "en" => Ok(Lang::En),
        "de" => Ok(Lang::De),
        other => bail!("--lang {other:?}: expected en or de"),
    }
}

/// `--dtype`: `None` for `auto`, else the precision named.
pub fn parse_precision_choice(text: &str) -> anyhow::Result<Option<Precision>> {
    if text == "auto" {
        return Ok(None);
    }
    Precision::parse(text)
        .map(Some)
        .with_context(|| format!("--dtype {text:?}: expected auto, f32, bf16, f16, q8_0 or q4_k"))
}

/// `auto` is the checkpoint's default on the device ([`groundglass_model::default_precision`]).
pub fn parse_precision(
    text: &str,
    model: &std::path::Path,
    device: &candle_core::Device,
) -> anyhow::Result<Precision> {
    Ok(parse_precision_choice(text)?
        .unwrap_or_else(|| groundglass_model::default_precision(model, device)))
}

/// `auto` leaves the choice to the checkpoint ([`groundglass_model::default_soft_capping`]).
pub fn parse_soft_capping(text: &str) -> anyhow::Result<Option<SoftCapping>> {
    if text == "auto" {
        return Ok(None);
    }
    SoftCapping::parse(text).map(Some).with_context(|| {
        format!("--soft-capping {text:?}: expected auto, none, attention, final or both")
    })
}

/// Checks that a VQA request has a question.
pub fn check_question(task: Task, question: Option<&str>) -> anyhow::Result<()> {
    if task == Task::Vqa && question.map(str::trim).unwrap_or("").is_empty() {
        bail!("--task vqa needs --question");
    }
    Ok(())
}

/// The checkpoint in `model` on the best device, with `--dtype` and `--soft-capping` as typed
/// (shared by `ask`, `serve` and `batch`).
pub fn load_session(
    model: &std::path::Path,
    dtype: &str,
    soft_capping: &str,
) -> anyhow::Result<ModelSession> {
    let device = best_device();
    let precision = parse_precision(dtype, model, &device)?;
    let soft_capping = parse_soft_capping(soft_capping)?;
    ModelSession::load_with(model, precision, soft_capping, &device)
        .with_context(|| format!("loading the model in {}", model.display()))
}

/// The answer from the model on this machine, streamed to stdout unless `--json`.
fn ask_here(
    model: &std::path::Path,
    args: &AskArgs,
    input: &AskInput,
) -> anyhow::Result<groundglass_model::Answer> {
    let mut session = load_session(model, &args.dtype, &args.soft_capping)?;
    session.check_task(input.request.task)?;
    let stream = !args.json;
    let mut printed = String::new();
    Ok(session.ask(input, |so_far| {
        if stream {
            print_new(&mut printed, so_far);
        }
        true
    })?)
}

/// Prints what is new of an answer being made; the whole answer again if decoding changed
/// earlier text.
fn print_new(printed: &mut String, so_far: &str) {
    match so_far.strip_prefix(printed.as_str()) {
        Some(new) => print!("{new}"),
        None => print!("\n{so_far}"),
    }
    *printed = so_far.to_string();
    let _ = std::io::stdout().flush();
}

pub fn run(args: AskArgs) -> anyhow::Result<ExitCode> {
    let task = parse_task(&args.task)?;
    let lang = parse_lang(&args.lang)?;
    check_question(task, args.question.as_deref())?;
    let super::selection::Selected { series, slice, .. } = args.selection.select(&args.study)?;
    let request = Request {
        task,
        lang,
        clinical: args.clinical.clone(),
        question: args.question.clone(),
        options: vec![],
    };
    let mark = args
        .mark
        .as_deref()
        .map(|m| VisualPrompt::parse_pixels(m, slice.width, slice.height))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--mark {e}"))?;
    let input = AskInput {
        slice: &slice,
        modality: &series.modality,
        request: &request,
        semsam: args.semsam.then_some(SemSamConfig {
            k: args.semsam_k,
            top_m: args.semsam_m,
            top_p: args.semsam_p,
        }),
        max_new_tokens: args.max_new_tokens,
        visual_prompt: mark.as_ref(),
    };
    let answer = match (&args.model, &args.remote) {
        (_, Some(url)) => {
            let token = super::token::for_client(args.remote_token_file.as_deref())?;
            let remote = match args.remote_api.as_str() {
                "groundglass" => groundglass_serve::Remote::new(url, token),
                "openai" | "vllm" => groundglass_serve::Remote::openai(
                    url,
                    token,
                    &args.remote_model,
                    args.remote_image_size,
                ),
                other => bail!("--remote-api {other:?}: expected groundglass or openai"),
            }
            .trusting_environment_ca()?;
            // Streamed to stdout as the server decodes it, as a local answer is (a whole answer
            // at once with --json).
            let got = if args.json {
                remote.ask(&input)?
            } else {
                let mut printed = String::new();
                remote.ask_streaming(&input, |so_far| {
                    print_new(&mut printed, so_far);
                    true
                })?
            };
            eprintln!(
                "answered by {url} in {:.0} ms ({:.0} ms waiting in its queue)",
                got.round_trip_ms, got.queue_ms
            );
            got.answer
        }
        (Some(model), None) => ask_here(model, &args, &input)?,
        (None, None) => bail!("--model DIR or --remote URL is needed"),
    };
    let json = AskJson {
        plane: slice.grid.plane,
        index: slice.index,
        slice_size: [slice.width, slice.height],
        mark,
        answer,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!();
        eprintln!(
            "{} tokens, first after {:.0} ms, {:.1} tokens/s",
            json.answer.tokens, json.answer.ttft_ms, json.answer.tok_per_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
