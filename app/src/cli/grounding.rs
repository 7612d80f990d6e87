//! `groundglass grounding parse --format radgrounder|paligemma|qwen2.5|qwen3 --width W --height H`
//! reads model text on stdin and prints `{"findings": [...]}` with boxes in slice pixels.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use groundglass_grounding::{parser_for, Format, LabelMap, Language, LocatedFinding};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct GroundingArgs {
    #[command(subcommand)]
    pub what: GroundingWhat,
}

#[derive(Subcommand, Debug)]
pub enum GroundingWhat {
    /// Parse model text from stdin.
    Parse {
        /// radgrounder, paligemma, qwen2.5 or qwen3.
        #[arg(long)]
        format: String,
        /// Slice width and height in pixels (boxes are returned in slice pixels).
        #[arg(long)]
        width: usize,
        #[arg(long)]
        height: usize,
        /// Qwen2.5-VL only: the size of the resized image the model saw, WxH (default: the slice).
        #[arg(long)]
        input_size: Option<String>,
        /// Language of class names (radgrounder): en or de.
        #[arg(long, default_value = "en")]
        lang: String,
    },
}

#[derive(Serialize)]
struct Output {
    findings: Vec<LocatedFinding>,
}

pub fn run(args: GroundingArgs) -> anyhow::Result<ExitCode> {
    let GroundingWhat::Parse {
        format,
        width,
        height,
        input_size,
        lang,
    } = args.what;
    if width == 0 || height == 0 {
        bail!("--width and --height must be positive");
    }
    let input = match input_size {
        Some(s) => Some(
            s.split_once('x')
                .and_then(|(w, h)| Some((w.parse::<f64>().ok()?, h.parse::<f64>().ok()?)))
                .with_context(|| format!("--input-size {s:?}: expected WxH"))?,
        ),
        None => Some((width as f64, height as f64)),
    };
    let format = Format::parse(&format, input).with_context(|| {
        format!("--format {format:?}: expected radgrounder, paligemma, qwen2.5 or qwen3")
    })?;
    let language =
        Language::parse(&lang).with_context(|| format!("--lang {lang:?}: expected en or de"))?;
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read stdin")?;
    let parser = parser_for(format, LabelMap::radgrounder(), language);
    let findings = parser
        .parse(&text)
        .iter()
        .map(|f| f.located_in(width, height))
        .collect();
    println!("{}", serde_json::to_string_pretty(&Output { findings })?);
    Ok(ExitCode::SUCCESS)
}
