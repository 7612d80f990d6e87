//! MIS-Ground in the manner of arXiv 2603.14579, built from phantoms whose label maps give the
//! truth: questions that vary modality, slice direction, coordinate convention, visual prompt,
//! terminology, question form and wording (seen in training or held out from it), asked through
//! the runtime's own `ask` path with greedy decoding and with MIS-SemSam, and scored per factor
//! level with 95 % intervals and the paired difference of the two decoders.

pub mod items;
pub mod scene;
pub mod stats;
pub mod terms;

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device};
use groundglass_grounding::LabelMap;
use groundglass_model::semsam::SemSamConfig;
use groundglass_model::{AskInput, ModelSession};
use groundglass_phantom::generate;
use groundglass_study::{Plane, PlaneGrid};
use serde::Serialize;

use crate::dataset::{alternating_phantom, label_raster, Rng};
use crate::text::vqa_request;
use crate::Result;
use items::{is_correct, items, Item};
use scene::{scene, Convention, StoredCopies};

#[derive(Clone, Debug)]
pub struct MisOptions {
    pub model: PathBuf,
    pub phantoms: usize,
    pub seed: u64,
    /// Slices per plane and phantom.
    pub slices: usize,
    /// Also decode with MIS-SemSam (its default configuration).
    pub semsam: bool,
}

/// Share of questions whose wording is held out from training, and of names given as synonyms.
pub const HELD_OUT_SHARE: f64 = 0.5;
pub const SYNONYM_SHARE: f64 = 0.4;

/// Whether greedy decoding answered right, and SemSam (when it ran).
type Outcome = (bool, Option<bool>);

/// Accuracy with its interval; `None` where nothing was asked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Level {
    pub n: usize,
    pub greedy: Option<f64>,
    pub semsam: Option<f64>,
    pub greedy_ci95: Option<[f64; 2]>,
    pub semsam_ci95: Option<[f64; 2]>,
    pub difference: Option<f64>,
    pub difference_ci95: Option<[f64; 2]>,
}

impl Level {
    fn of(outcomes: &[(bool, Option<bool>)]) -> Level {
        let n = outcomes.len();
        let g = outcomes.iter().filter(|o| o.0).count();
        let pairs: Option<Vec<(bool, bool)>> =
            outcomes.iter().map(|(g, s)| s.map(|s| (*g, s))).collect();
        let pairs = pairs.filter(|p| !p.is_empty());
        let s = pairs.as_ref().map(|p| p.iter().filter(|(_, s)| *s).count());
        let difference = pairs.as_deref().and_then(stats::paired_difference);
        Level {
            n,
            greedy: (n > 0).then(|| g as f64 / n as f64),
            semsam: s.map(|s| s as f64 / n as f64),
            greedy_ci95: stats::wilson(g, n),
            semsam_ci95: s.and_then(|s| stats::wilson(s, n)),
            difference: difference.map(|d| d.0),
            difference_ci95: difference.map(|d| d.1),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Changed {
    pub answers: usize,
    pub to_right: usize,
    pub to_wrong: usize,
}

/// One question as asked and answered.
#[derive(Clone, Debug, Serialize)]
pub struct Asked {
    pub phantom: u64,
    pub plane: &'static str,
    pub slice: usize,
    /// The template the question was built from (its family and form).
    pub template: String,
    pub question: String,
    pub expected: String,
    pub greedy: String,
    pub semsam: Option<String>,
    pub greedy_right: bool,
    pub semsam_right: Option<bool>,
    pub factors: BTreeMap<&'static str, &'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MisReport {
    pub model: PathBuf,
    pub phantoms: usize,
    pub seed: u64,
    pub slices_per_plane: usize,
    pub questions: usize,
    pub overall: Level,
    /// Questions whose SemSam answer differs from the greedy one in its words (what SemSam did at
    /// all), and of those, how many it turned right and wrong.
    pub semsam_changed: Option<Changed>,
    /// factor -> level -> accuracy.
    pub factors: BTreeMap<&'static str, BTreeMap<&'static str, Level>>,
    /// Every question, its answers and its factor levels (for reading what went wrong).
    pub asked: Vec<Asked>,
}

/// The slices of `plane` that show a MIS-Ground structure, `count` of them evenly spread.
fn picked_slices(phantom: &groundglass_phantom::Phantom, plane: Plane, count: usize) -> Vec<usize> {
    let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, plane);
    let with: Vec<usize> = (0..grid.count)
        .filter(|&k| {
            let (_, _, r) = label_raster(phantom, plane, k);
            terms::CLASSES.iter().any(|c| {
                r.iter().filter(|l| u32::from(**l) == *c).count() >= scene::MIN_STRUCTURE_PIXELS
            })
        })
        .collect();
    (0..count)
        .filter_map(|i| {
            with.get((i * 2 + 1) * with.len() / (2 * count.max(1)))
                .copied()
        })
        .collect()
}

/// Runs the benchmark on `opts.phantoms` fresh phantoms (CT and MR alternating) from `opts.seed`.
pub fn evaluate(opts: &MisOptions, mut progress: impl FnMut(&str)) -> Result<MisReport> {
    let mut session = ModelSession::load(&opts.model, DType::F32, &Device::Cpu)?;
    let labels = LabelMap::radgrounder();
    let scratch = Scratch::new()?;
    let mut outcomes: Vec<(Item, bool, Option<bool>)> = Vec::new();
    let mut asked = Vec::new();
    for n in 0..opts.phantoms as u64 {
        let seed = opts.seed + n;
        let phantom = generate(&alternating_phantom(opts.seed, n));
        let volume = phantom.to_volume();
        let stored = StoredCopies::write(&phantom, &scratch.0)?;
        let mut rng = Rng::new(seed ^ 0x4D49_5347);
        for (p, plane) in [Plane::Axial, Plane::Coronal, Plane::Sagittal]
            .into_iter()
            .enumerate()
        {
            let conventions: Vec<Convention> = Convention::ALL
                .into_iter()
                .filter(|c| plane != Plane::Sagittal || *c != Convention::Neurological)
                .collect();
            for (i, k) in picked_slices(&phantom, plane, opts.slices)
                .into_iter()
                .enumerate()
            {
                let turn = n as usize + p + i;
                let convention = conventions[turn % conventions.len()];
                let lang = if turn.is_multiple_of(2) {
                    groundglass_model::prompt::Lang::En
                } else {
                    groundglass_model::prompt::Lang::De
                };
                let scene = scene(&phantom, &volume, Some(&stored), plane, k, convention)?;
                for item in items(
                    &scene,
                    &labels,
                    lang,
                    HELD_OUT_SHARE,
                    SYNONYM_SHARE,
                    &mut rng,
                ) {
                    let request = vqa_request(item.question.clone(), lang);
                    let mut answer = |semsam: Option<SemSamConfig>| {
                        session
                            .ask(
                                &AskInput {
                                    slice: &scene.slice,
                                    modality: scene.modality,
                                    request: &request,
                                    semsam,
                                    max_new_tokens: 16,
                                    visual_prompt: item.mark.as_ref(),
                                },
                                |_| true,
                            )
                            .map(|a| a.text)
                    };
                    let greedy = answer(None)?;
                    let semsam = if opts.semsam {
                        Some(answer(Some(SemSamConfig::default()))?)
                    } else {
                        None
                    };
                    let g = is_correct(&labels, &item, &greedy);
                    let s = semsam.as_deref().map(|a| is_correct(&labels, &item, a));
                    asked.push(Asked {
                        phantom: seed,
                        plane: plane.name(),
                        slice: k,
                        template: format!("{:?}", item.template),
                        question: item.question.clone(),
                        expected: item.target.clone(),
                        greedy,
                        semsam,
                        greedy_right: g,
                        semsam_right: s,
                        factors: item.factors.pairs().into_iter().collect(),
                    });
                    outcomes.push((item, g, s));
                }
            }
            progress(&format!(
                "phantom {seed} ({}) {}: {} questions so far",
                phantom.modality.code(),
                plane.name(),
                outcomes.len()
            ));
        }
    }
    let all: Vec<(bool, Option<bool>)> = outcomes.iter().map(|(_, g, s)| (*g, *s)).collect();
    let mut grouped: BTreeMap<&'static str, BTreeMap<&'static str, Vec<Outcome>>> = BTreeMap::new();
    for (item, g, s) in &outcomes {
        for (factor, level) in item.factors.pairs() {
            grouped
                .entry(factor)
                .or_default()
                .entry(level)
                .or_default()
                .push((*g, *s));
        }
    }
    Ok(MisReport {
        model: opts.model.clone(),
        phantoms: opts.phantoms,
        seed: opts.seed,
        slices_per_plane: opts.slices,
        questions: outcomes.len(),
        overall: Level::of(&all),
        semsam_changed: opts.semsam.then(|| {
            let mut c = Changed::default();
            for (a, (_, g, s)) in asked.iter().zip(&outcomes) {
                if a.semsam.as_deref().map(crate::text::words)
                    != Some(crate::text::words(&a.greedy))
                {
                    c.answers += 1;
                    c.to_right += usize::from(!*g && *s == Some(true));
                    c.to_wrong += usize::from(*g && *s == Some(false));
                }
            }
            c
        }),
        factors: grouped
            .into_iter()
            .map(|(f, levels)| (f, levels.iter().map(|(l, o)| (*l, Level::of(o))).collect()))
            .collect(),
        asked,
    })
}

/// A folder for the stored copies, removed when the run ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("groundglass-mis-ground-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| crate::file_err(&dir, e))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The report as a table: overall, then each factor's levels.
pub fn table(report: &MisReport) -> String {
    let pct = |v: Option<f64>| v.map_or("   -  ".to_string(), |v| format!("{:5.1}%", 100.0 * v));
    let ci = |v: Option<[f64; 2]>| {
        v.map_or(String::new(), |[lo, hi]| {
            format!("[{:4.1}, {:4.1}]", 100.0 * lo, 100.0 * hi)
        })
    };
    let row = |name: &str, l: &Level| {
        format!(
            "{name:<28} {:>5}  {} {:<14} {} {:<14} {}\n",
            l.n,
            pct(l.greedy),
            ci(l.greedy_ci95),
            pct(l.semsam),
            ci(l.semsam_ci95),
            match (l.difference, l.difference_ci95) {
                (Some(d), Some([lo, hi])) => format!(
                    "{:+5.1} [{:+5.1}, {:+5.1}]",
                    100.0 * d,
                    100.0 * lo,
                    100.0 * hi
                ),
                _ => String::new(),
            }
        )
    };
    let mut out = format!(
        "{:<28} {:>5}  {:<21} {:<21} {}\n",
        "", "n", "greedy [95% CI]", "SemSam [95% CI]", "SemSam - greedy [95% CI]"
    );
    out.push_str(&row("overall", &report.overall));
    if let Some(c) = &report.semsam_changed {
        out.push_str(&format!(
            "SemSam changed {} of {} answers: {} to right, {} to wrong\n",
            c.answers, report.questions, c.to_right, c.to_wrong
        ));
    }
    for (factor, levels) in &report.factors {
        out.push_str(&format!("{factor}\n"));
        for (level, l) in levels {
            out.push_str(&row(&format!("  {level}"), l));
        }
    }
    out
}
