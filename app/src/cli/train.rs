//! `groundglass train --out DIR [--steps N] [--batch B] [--lr LR] [--seed S] [--phantoms N]
//! [--init CHECKPOINT] [--corrections EXPORT_DIR] [--grounded-share F] [--yes-no-share F]`: trains a small grounding model in Candle on
//! synthetic phantoms (and exported corrections), printing progress; rerunning with the same
//! `--out` resumes from its last checkpoint.
//!
//! `groundglass eval grounding --model DIR --phantoms N --seed S [--slices K] [--json]`: scores a
//! model on fresh phantoms (Acc@0.5, laterality swaps, yes/no and open-question accuracy, with and
//! without SemSam).
//!
//! `groundglass eval mis-ground --model DIR --phantoms N --seed S [--slices K] [--semsam]
//! [--json]`: the MIS-Ground-style benchmark, accuracy per factor level with 95 % intervals, greedy
//! and SemSam side by side.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use groundglass_train::eval::{evaluate, EvalOptions};
use groundglass_train::mis_ground;
use groundglass_train::trainer::{train, TrainOptions};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The model folder to write (and to resume from when it holds a checkpoint).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Phantoms in the training pool (CT and MR alternating).
    #[arg(long, default_value_t = 32)]
    pub phantoms: usize,
    /// First phantom seed of the pool (evaluate on seeds outside it).
    #[arg(long, default_value_t = 10_000)]
    pub phantom_seed: u64,
    /// Start from this checkpoint (fine-tuning).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// An export of corrections (`groundglass export --format radgrounder`) to train on.
    #[arg(long)]
    pub corrections: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// The share of grounded reports among the phantom samples.
    #[arg(long, default_value_t = 0.4)]
    pub grounded_share: f64,
    /// The share of yes/no questions; the rest are open questions.
    #[arg(long, default_value_t = 0.4)]
    pub yes_no_share: f64,
    /// The share of MIS-Ground questions (marked structures, sides, relations, synonyms).
    #[arg(long, default_value_t = 0.0)]
    pub mis_ground_share: f64,
    /// How much more often MIS-Ground's slow-to-learn questions (relations, a side asked yes/no,
    /// a marked structure) are drawn than the rest; 1 draws every question of a slice alike.
    #[arg(long, default_value_t = 1.0)]
    pub mis_ground_focus: f64,
    /// The share of MIS-Ground questions asked with a filler phrase ("in this image") added,
    /// which the benchmark's wording never uses: fillers must not change a question.
    #[arg(long, default_value_t = 0.0)]
    pub mis_ground_fillers: f64,
    /// The share of MIS-Ground samples that ask where a marked structure is, answered with its
    /// box and name (training only; the benchmark never asks it).
    #[arg(long, default_value_t = 0.0)]
    pub mis_ground_locate: f64,
    /// Layers to add to both towers of the --init checkpoint. Each starts as an identity, so
    /// the grown model answers as the checkpoint did until training changes it.
    #[arg(long, default_value_t = 0)]
    pub grow_layers: usize,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub what: EvalWhat,
}

#[derive(Subcommand, Debug)]
pub enum EvalWhat {
    /// Grounding on fresh phantoms.
    Grounding {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 4)]
        phantoms: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Slices per plane and phantom.
        #[arg(long, default_value_t = 6)]
        slices: usize,
        /// The precision the model runs at (f32, bf16, q8_0, q4_k): what a cheaper type costs
        /// in grounding.
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long)]
        json: bool,
    },
    /// MIS-Ground-style spatial robustness on fresh phantoms: modality, plane, coordinate
    /// convention, visual prompt, terminology, question form, seen and held-out wording.
    MisGround {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 8)]
        phantoms: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Slices per plane and phantom.
        #[arg(long, default_value_t = 4)]
        slices: usize,
        /// Also decode with MIS-SemSam and report the difference.
        #[arg(long)]
        semsam: bool,
        /// Print the report (every question and answer included) as JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run_train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let opts = TrainOptions {
        out: args.out,
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        phantoms: args.phantoms,
        phantom_seed: args.phantom_seed,
        init: args.init,
        corrections: args.corrections,
        checkpoint_every: args.checkpoint_every,
        grounded_share: args.grounded_share,
        yes_no_share: args.yes_no_share,
        mis_ground_share: args.mis_ground_share,
        mis_ground_focus: args.mis_ground_focus,
        mis_ground_fillers: args.mis_ground_fillers,
        mis_ground_locate: args.mis_ground_locate,
        grow_layers: args.grow_layers,
    };
    let mut mean = 0.0;
    let state = train(&opts, |p| {
        mean = if p.step <= 1 {
            p.loss
        } else {
            0.95 * mean + 0.05 * p.loss
        };
        if p.step % 10 == 0 || p.step == p.steps || p.checkpoint.is_some() {
            eprintln!(
                "step {:>5}/{} loss {:.3} (avg {:.3}) token acc {:.3} lr {:.1e} {:.0} s{}",
                p.step,
                p.steps,
                p.loss,
                mean,
                p.token_accuracy,
                p.lr,
                p.seconds,
                if p.checkpoint.is_some() {
                    " [saved]"
                } else {
                    ""
                }
            );
            let _ = std::io::stderr().flush();
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(ExitCode::SUCCESS)
}

pub fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (model, phantoms, seed, slices, dtype, json) = match args.what {
        EvalWhat::Grounding {
            model,
            phantoms,
            seed,
            slices,
            dtype,
            json,
        } => (model, phantoms, seed, slices, dtype, json),
        EvalWhat::MisGround {
            model,
            phantoms,
            seed,
            slices,
            semsam,
            json,
        } => {
            anyhow::ensure!(
                phantoms > 0 && slices > 0,
                "--phantoms and --slices must be at least 1"
            );
            let report = mis_ground::evaluate(
                &mis_ground::MisOptions {
                    model,
                    phantoms,
                    seed,
                    slices,
                    semsam,
                },
                |m| eprintln!("{m}"),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", mis_ground::table(&report));
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let precision = super::ask::parse_precision(&dtype, &model, &candle_core::Device::Cpu)?;
    let report = evaluate(
        &EvalOptions {
            model,
            phantoms,
            seed,
            slices,
            precision,
        },
        |m| eprintln!("{m}"),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let show = |name: &str, s: &groundglass_train::eval::Scores| {
            println!(
                "{name}: Acc@0.5 (axial) {:?}, laterality swaps {:?}, yes/no {:?}, open VQA {:?}",
                s.acc_at_0_5, s.laterality_swap_rate, s.yes_no_accuracy, s.open_vqa_accuracy
            );
        };
        show("greedy", &report.greedy);
        show("semsam", &report.semsam);
    }
    Ok(ExitCode::SUCCESS)
}
