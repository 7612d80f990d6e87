//! Training samples from phantoms (and from exported corrections): a slice in one of the three
//! planes, preprocessed exactly as the runtime does, and a prompt with its target: a grounded
//! report with one union box per class from the label map, a yes/no question about a class, or an
//! open question (which side an organ lies on, which structures are visible, the largest one).

use groundglass_grounding::LabelMap;
use groundglass_model::preprocess::{preprocess_slice, preprocess_values};
use groundglass_model::prompt::Lang;
use groundglass_model::tokenizer::PromptTokenizer;
use groundglass_phantom::Phantom;
use groundglass_study::{extract, Plane, PlaneGrid, Volume};

use crate::mis_ground::terms::Template;
use crate::text::{self, OpenQuestion};
use crate::Result;

/// Slices need this many pixels of a class for it to count (slivers are not findings).
pub const MIN_PIXELS: usize = 16;
/// What share of phantom samples are grounded reports, yes/no questions and MIS-Ground questions;
/// the rest are open questions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mix {
    pub grounded: f64,
    pub yes_no: f64,
    /// MIS-Ground questions (marked structures, sides, relations, synonyms; seen wording only).
    pub mis_ground: f64,
    /// How much more often the questions that are slowest to learn are drawn (1: every question
    /// of a slice alike).
    pub mis_ground_focus: f64,
    /// The share of MIS-Ground questions given a filler phrase.
    pub mis_ground_fillers: f64,
    /// The share of MIS-Ground samples that ask where a marked structure is (its box and name).
    pub mis_ground_locate: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            grounded: 0.4,
            yes_no: 0.4,
            mis_ground: 0.0,
            mis_ground_focus: 1.0,
            mis_ground_fillers: 0.0,
            mis_ground_locate: 0.0,
        }
    }
}

/// Share of MIS-Ground training samples shown in the neurological convention (flipped left to
/// right, axial and coronal), whose sides still follow the patient.
pub const NEUROLOGICAL_SHARE: f64 = 0.2;

/// At most this many phrases per grounded target (the largest classes).
pub const MAX_PHRASES: usize = 8;

/// A small deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index drawn in proportion to `weights` (not negative, not all zero).
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut at = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if at < *w {
                return i;
            }
            at -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// What a slice truly shows: one union box per class (fractions of the slice, pixel edges).
#[derive(Clone, Debug, PartialEq)]
pub struct SliceTruth {
    pub plane: Plane,
    pub index: usize,
    pub width: usize,
    pub height: usize,
    /// (class, [x0, y0, x1, y1], pixel count), by class id.
    pub boxes: Vec<(u32, [f64; 4], usize)>,
}

/// The label map of `phantom` on slice `index` of `plane` in the radiological view.
pub fn label_raster(phantom: &Phantom, plane: Plane, index: usize) -> (usize, usize, Vec<u8>) {
    let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, plane);
    let (w, h) = (grid.width, grid.height);
    let mut out = vec![0u8; w * h];
    let Some(inv) = phantom.affine.inverse() else {
        return (w, h, out);
    };
    for y in 0..h {
        for x in 0..w {
            let ijk = inv.apply(grid.pixel_to_lps(index, x as f64, y as f64));
            let v: Option<Vec<usize>> = (0..3)
                .map(|a| {
                    let v = ijk[a].round();
                    (v >= 0.0 && v < phantom.dims[a] as f64).then_some(v as usize)
                })
                .collect();
            if let Some(v) = v {
                out[y * w + x] = phantom.label(v[0], v[1], v[2]);
            }
        }
    }
    (w, h, out)
}

/// The label map of `phantom` on slice `index` of `plane`, as union boxes per class.
pub fn slice_truth(phantom: &Phantom, plane: Plane, index: usize) -> SliceTruth {
    let (w, h, raster) = label_raster(phantom, plane, index);
    let mut bounds: std::collections::BTreeMap<u8, ([usize; 4], usize)> = Default::default();
    for (i, &l) in raster.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let (x, y) = (i % w, i / w);
        let e = bounds
            .entry(l)
            .or_insert(([usize::MAX, usize::MAX, 0, 0], 0));
        e.0 = [
            e.0[0].min(x),
            e.0[1].min(y),
            e.0[2].max(x + 1),
            e.0[3].max(y + 1),
        ];
        e.1 += 1;
    }
    let boxes = bounds
        .into_iter()
        .filter(|(_, (b, n))| *n >= MIN_PIXELS && b[2] - b[0] >= 3 && b[3] - b[1] >= 3)
        .map(|(l, (b, n))| {
            (
                u32::from(l),
                [
                    b[0] as f64 / w as f64,
                    b[1] as f64 / h as f64,
                    b[2] as f64 / w as f64,
                    b[3] as f64 / h as f64,
                ],
                n,
            )
        })
        .collect();
    SliceTruth {
        plane,
        index,
        width: w,
        height: h,
        boxes,
    }
}

/// The phrases a grounded target names: the largest `MAX_PHRASES` classes, by class id.
pub fn target_boxes(truth: &SliceTruth) -> Vec<(u32, [f64; 4])> {
    let mut by_size: Vec<&(u32, [f64; 4], usize)> = truth.boxes.iter().collect();
    by_size.sort_by_key(|b| std::cmp::Reverse(b.2));
    let mut kept: Vec<(u32, [f64; 4])> = by_size
        .into_iter()
        .take(MAX_PHRASES)
        .map(|(c, b, _)| (*c, *b))
        .collect();
    kept.sort_by_key(|(c, _)| *c);
    kept
}

/// Phantom `n` of a set starting at seed `first`: CT and MR alternating, seeds counting up (the
/// training pool and every evaluation draw their phantoms so).
pub fn alternating_phantom(first: u64, n: u64) -> groundglass_phantom::PhantomConfig {
    use groundglass_phantom::PhantomConfig;
    if n.is_multiple_of(2) {
        PhantomConfig::ct(first + n)
    } else {
        PhantomConfig::mr(first + n)
    }
}

/// The solid organs and large vessels of the phantoms (not lung lobes, airways or vertebrae).
pub fn is_organ(class: u32) -> bool {
    matches!(class, 1..=7 | 21 | 51 | 52)
}

/// The open questions a slice answers: the side of each midline-named organ on it (not on
/// sagittal slices, which have no left and right), and which structures it shows and the
/// largest, when it shows any.
pub fn open_questions(truth: &SliceTruth) -> Vec<OpenQuestion> {
    let mut out = Vec::new();
    if truth.boxes.is_empty() {
        return out;
    }
    out.push(OpenQuestion::Structures);
    out.push(OpenQuestion::Largest);
    if truth.plane != Plane::Sagittal {
        out.extend(
            truth
                .boxes
                .iter()
                .filter(|b| text::is_side_question_class(b.0))
                .map(|b| OpenQuestion::Side(b.0)),
        );
    }
    out
}

/// The answer to an open question from the slice's truth.
pub fn open_answer(labels: &LabelMap, truth: &SliceTruth, q: OpenQuestion, lang: Lang) -> String {
    match q {
        OpenQuestion::Side(class) => match truth.boxes.iter().find(|b| b.0 == class) {
            Some((_, b, _)) => text::side_word((b[0] + b[2]) / 2.0, lang).into(),
            None => text::yes_no_answer(false, lang).into(),
        },
        OpenQuestion::Structures => {
            let classes: Vec<u32> = target_boxes(truth).iter().map(|b| b.0).collect();
            text::structures_answer(labels, &classes, lang)
        }
        OpenQuestion::Largest => truth
            .boxes
            .iter()
            .max_by_key(|b| b.2)
            .map(|b| text::class_name(labels, b.0, lang))
            .unwrap_or_else(|| text::structures_answer(labels, &[], lang)),
    }
}

/// One training example: preprocessed pixels (3, S, S) and the ids (image tokens, `<bos>`,
/// prompt, target, `<eos>`); the first `prefix` ids form the bidirectional prefix.
#[derive(Clone, Debug)]
pub struct Sample {
    pub pixels: Vec<f32>,
    pub ids: Vec<u32>,
    pub prefix: usize,
}

/// Tokenizes a prompt and its target into a sample.
pub fn sample(
    tokenizer: &PromptTokenizer,
    image_token: u32,
    image_tokens: usize,
    pixels: Vec<f32>,
    prompt: &str,
    target: &str,
) -> Result<Sample> {
    let mut ids = tokenizer.prompt_ids(image_token, image_tokens, prompt)?;
    let prefix = ids.len();
    ids.extend(tokenizer.encode(target)?);
    ids.push(1); // <eos>
    Ok(Sample {
        pixels,
        ids,
        prefix,
    })
}

/// Draws random samples from a pool of phantoms.
pub struct PhantomSamples {
    pub phantoms: Vec<(Phantom, Volume)>,
    pub size: usize,
    pub rng: Rng,
    pub mix: Mix,
    labels: LabelMap,
}

impl PhantomSamples {
    pub fn new(phantoms: Vec<Phantom>, size: usize, seed: u64) -> Self {
        let phantoms = phantoms
            .into_iter()
            .map(|p| {
                let v = p.to_volume();
                (p, v)
            })
            .collect();
        PhantomSamples {
            phantoms,
            size,
            rng: Rng::new(seed),
            mix: Mix::default(),
            labels: LabelMap::radgrounder(),
        }
    }

    /// A random sample: mostly axial; grounded reports, yes/no and open questions; both languages.
    pub fn draw(
        &mut self,
        tokenizer: &PromptTokenizer,
        image_token: u32,
        image_tokens: usize,
    ) -> Result<Sample> {
        let (phantom, volume) = &self.phantoms[self.rng.below(self.phantoms.len())];
        let plane = match self.rng.below(10) {
            0 | 1 => Plane::Coronal,
            2 => Plane::Sagittal,
            _ => Plane::Axial,
        };
        let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, plane);
        let index = self.rng.below(grid.count);
        let lang = if self.rng.below(2) == 0 {
            Lang::En
        } else {
            Lang::De
        };
        let kind = self.rng.unit();
        let mix = self.mix;
        if kind >= mix.grounded && kind < mix.grounded + mix.mis_ground {
            let s = mis_ground_sample(
                &mut self.rng,
                &self.labels,
                &mix,
                self.size,
                phantom,
                volume,
                plane,
                index,
                lang,
            )?;
            if let Some(s) = s {
                return sample(
                    tokenizer,
                    image_token,
                    image_tokens,
                    s.pixels,
                    &s.prompt,
                    &s.target,
                );
            }
        }
        let rest = kind
            - if kind >= mix.grounded {
                mix.mis_ground
            } else {
                0.0
            };
        // The slice, its truth and its pixels for the other kinds (a MIS-Ground sample builds
        // its own scene).
        let truth = slice_truth(phantom, plane, index);
        let slice = extract(volume, plane, index);
        let pixels = preprocess_slice(&slice, phantom.modality.code(), self.size).pixels;
        let open = open_questions(&truth);
        let (prompt, target) = if rest < self.mix.grounded {
            let boxes = target_boxes(&truth);
            (
                text::grounded_request(lang).text(),
                text::grounded_target(&self.labels, &boxes, lang),
            )
        } else if rest >= self.mix.grounded + self.mix.yes_no && !open.is_empty() {
            let q = open[self.rng.below(open.len())];
            (
                text::vqa_request(text::open_question(&self.labels, q, lang), lang).text(),
                open_answer(&self.labels, &truth, q, lang),
            )
        } else {
            // Half the questions about a class on the slice, half about one that is not.
            let present: Vec<u32> = truth.boxes.iter().map(|b| b.0).collect();
            let all: Vec<u32> = groundglass_phantom::classes::CLASSES
                .iter()
                .map(|(c, _)| u32::from(*c))
                .collect();
            let absent: Vec<u32> = all
                .iter()
                .copied()
                .filter(|c| !present.contains(c))
                .collect();
            let ask_present = !present.is_empty() && (absent.is_empty() || self.rng.below(2) == 0);
            // Half the absent ones are organs (hard negatives: an organ missing from this slice
            // is on its neighbours; a vertebra level far away is easy to rule out).
            let absent_organs: Vec<u32> = absent.iter().copied().filter(|c| is_organ(*c)).collect();
            let class = if ask_present {
                present[self.rng.below(present.len())]
            } else if !absent_organs.is_empty() && self.rng.below(2) == 0 {
                absent_organs[self.rng.below(absent_organs.len())]
            } else {
                absent[self.rng.below(absent.len())]
            };
            (
                text::vqa_request(text::yes_no_question(&self.labels, class, lang), lang).text(),
                text::yes_no_answer(ask_present, lang).to_string(),
            )
        };
        sample(
            tokenizer,
            image_token,
            image_tokens,
            pixels,
            &prompt,
            &target,
        )
    }
}

/// A MIS-Ground training sample before tokenizing.
struct MisSample {
    /// The input with the mark burned in.
    pixels: Vec<f32>,
    prompt: String,
    target: String,
    /// The benchmark template it was built from (none for training-only questions); the tests
    /// read it to check what the focus draws.
    #[cfg_attr(not(test), allow(dead_code))]
    template: Option<Template>,
}

/// A MIS-Ground question about slice `index` of `plane`, or `None` where the slice gives none.
#[allow(clippy::too_many_arguments)]
fn mis_ground_sample(
    rng: &mut Rng,
    labels: &LabelMap,
    mix: &Mix,
    size: usize,
    phantom: &Phantom,
    volume: &Volume,
    plane: Plane,
    index: usize,
    lang: Lang,
) -> Result<Option<MisSample>> {
    use crate::mis_ground::scene;
    let convention = if plane != Plane::Sagittal && rng.unit() < NEUROLOGICAL_SHARE {
        scene::Convention::Neurological
    } else {
        scene::Convention::Radiological
    };
    let scene = scene::scene(phantom, volume, None, plane, index, convention)?;
    let located = (mix.mis_ground_locate > 0.0 && rng.unit() < mix.mis_ground_locate)
        .then(|| locate_question(&scene, labels, lang, rng))
        .flatten();
    let (question, target, mark, template) = match located {
        Some((question, target, mark)) => (question, target, Some(mark), None),
        None => match question_item(&scene, labels, mix, lang, rng) {
            Some(item) => (item.question, item.target, item.mark, Some(item.template)),
            None => return Ok(None),
        },
    };
    let mut image = preprocess_slice(&scene.slice, scene.modality, size);
    if let Some(mark) = &mark {
        mark.burn(&mut image);
    }
    Ok(Some(MisSample {
        pixels: image.pixels,
        prompt: text::vqa_request(question, lang).text(),
        target,
        template,
    }))
}

/// One of the benchmark's questions about `scene` (seen wording), drawn with the mix's focus
/// and given a filler at its share.
fn question_item(
    scene: &crate::mis_ground::scene::Scene,
    labels: &LabelMap,
    mix: &Mix,
    lang: Lang,
    rng: &mut Rng,
) -> Option<crate::mis_ground::items::Item> {
    let mut all = crate::mis_ground::items::items(scene, labels, lang, 0.0, 0.3, rng);
    if all.is_empty() {
        return None;
    }
    let pick = if mix.mis_ground_focus > 1.0 {
        let weights: Vec<f64> = all
            .iter()
            .map(|i| {
                if i.template.is_slow_to_learn() {
                    mix.mis_ground_focus
                } else {
                    1.0
                }
            })
            .collect();
        rng.weighted(&weights)
    } else {
        rng.below(all.len())
    };
    let mut item = all.swap_remove(pick);
    if mix.mis_ground_fillers > 0.0 && rng.unit() < mix.mis_ground_fillers {
        item.question = crate::mis_ground::terms::with_filler(&item.question, lang, rng);
    }
    Some(item)
}

/// "Where is the marked structure?" (question, target, mark), answered with the structure's box
/// and name: it ties the mark to a place, which the grounded reports already tie to a name
/// (training only, so it has no benchmark template).
fn locate_question(
    scene: &crate::mis_ground::scene::Scene,
    labels: &LabelMap,
    lang: Lang,
    rng: &mut Rng,
) -> Option<(
    String,
    String,
    groundglass_model::visual_prompt::VisualPrompt,
)> {
    let present = scene.named();
    if present.is_empty() {
        return None;
    }
    let s = present[rng.below(present.len())];
    let mark = crate::mis_ground::items::mark_of(scene, s, rng);
    Some((
        crate::mis_ground::terms::locate_marked(lang).to_string(),
        text::grounded_target(labels, &[(s.class, s.rect)], lang),
        mark,
    ))
}

/// Samples from a RadGrounder export of corrections (`groundglass export --format radgrounder`):
/// each line's 16-bit slice and its prompt and target.
pub fn correction_samples(
    dir: &std::path::Path,
    tokenizer: &PromptTokenizer,
    image_token: u32,
    image_tokens: usize,
    size: usize,
) -> Result<Vec<Sample>> {
    let mut out = Vec::new();
    for lang in ["en", "de"] {
        let path = dir.join(format!("train_{lang}.jsonl"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| crate::file_err(&path, format!("line {}: {e}", n + 1)))?;
            let field = |k: &str| {
                v[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| crate::file_err(&path, format!("line {}: no {k}", n + 1)))
            };
            let image = dir.join(field("image")?);
            let offset = v["value_offset"].as_f64().unwrap_or(32768.0) as f32;
            let (values, w, h) = read_png16(&image, offset)?;
            let is_ct = v["modality"].as_str() == Some("CT");
            let pixels = preprocess_values(&values, w, h, is_ct, size).pixels;
            out.push(sample(
                tokenizer,
                image_token,
                image_tokens,
                pixels,
                &field("prompt")?,
                &field("target")?,
            )?);
        }
    }
    Ok(out)
}

fn read_png16(path: &std::path::Path, offset: f32) -> Result<(Vec<f32>, usize, usize)> {
    let file = std::fs::File::open(path).map_err(|e| crate::file_err(path, e))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().map_err(|e| crate::file_err(path, e))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| crate::file_err(path, e))?;
    if info.bit_depth != png::BitDepth::Sixteen || info.color_type != png::ColorType::Grayscale {
        return Err(crate::file_err(path, "expected a 16-bit greyscale PNG"));
    }
    let values = buf[..info.buffer_size()]
        .chunks_exact(2)
        .map(|b| f32::from(u16::from_be_bytes([b[0], b[1]])) - offset)
        .collect();
    Ok((values, info.width as usize, info.height as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundglass_phantom::{generate, PhantomConfig};

    /// Open answers come from the label map in the radiological convention: the liver on the
    /// patient's right (the image's left), the spleen on the left.
    #[test]
    fn open_answers_follow_the_label_map() {
        let phantom = generate(&PhantomConfig::ct(3));
        let labels = LabelMap::radgrounder();
        let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, Plane::Axial);
        let truth = (0..grid.count)
            .map(|k| slice_truth(&phantom, Plane::Axial, k))
            .find(|t| t.boxes.iter().any(|b| b.0 == 5) && t.boxes.iter().any(|b| b.0 == 1))
            .expect("a slice with liver and spleen");
        let questions = open_questions(&truth);
        assert!(questions.contains(&OpenQuestion::Side(5)));
        assert!(questions.contains(&OpenQuestion::Side(1)));
        let answer = |q, lang| open_answer(&labels, &truth, q, lang);
        assert_eq!(answer(OpenQuestion::Side(5), Lang::En), "right");
        assert_eq!(answer(OpenQuestion::Side(1), Lang::En), "left");
        assert_eq!(answer(OpenQuestion::Side(1), Lang::De), "links");
        let largest = truth.boxes.iter().max_by_key(|b| b.2).expect("boxes").0;
        assert_eq!(
            answer(OpenQuestion::Largest, Lang::En),
            text::class_name(&labels, largest, Lang::En)
        );
        let listed = answer(OpenQuestion::Structures, Lang::De);
        assert!(
            listed.contains("leber") && listed.contains("milz"),
            "{listed}"
        );
        // Sagittal slices have no sides to ask about.
        let sagittal = slice_truth(&phantom, Plane::Sagittal, phantom.dims[0] / 2);
        assert!(!open_questions(&sagittal)
            .iter()
            .any(|q| matches!(q, OpenQuestion::Side(_))));
    }

    /// A focused mix draws the slow-to-learn questions about as often as their weight says, and
    /// a filler keeps the question it was added to.
    #[test]
    fn focus_and_fillers_shape_mis_ground_samples() {
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[rng.weighted(&[1.0, 3.0, 0.0])] += 1;
        }
        assert_eq!(counts[2], 0);
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((2.8..3.2).contains(&ratio), "{counts:?}");

        let phantom = generate(&PhantomConfig::ct(3));
        let volume = phantom.to_volume();
        let labels = LabelMap::radgrounder();
        let grid = PlaneGrid::from_geometry(phantom.dims, &phantom.affine, Plane::Axial);
        let index = grid.count / 2;
        let mix = |focus, fillers| Mix {
            mis_ground: 1.0,
            mis_ground_focus: focus,
            mis_ground_fillers: fillers,
            ..Mix::default()
        };
        let draw = |rng: &mut Rng, mix: &Mix, lang| {
            mis_ground_sample(
                rng,
                &labels,
                mix,
                32,
                &phantom,
                &volume,
                Plane::Axial,
                index,
                lang,
            )
            .expect("sample")
            .expect("a question")
        };
        let slow_share = |mix: Mix| {
            let mut rng = Rng::new(9);
            let (mut slow, mut all, mut filled) = (0, 0, 0);
            for n in 0..300 {
                let lang = if n % 2 == 0 { Lang::En } else { Lang::De };
                let sample = draw(&mut rng, &mix, lang);
                all += 1;
                slow += usize::from(sample.template.is_some_and(Template::is_slow_to_learn));
                let q = sample.prompt;
                filled += usize::from(q.contains("in this image") || q.contains("in diesem bild"));
            }
            (slow as f64 / all as f64, filled as f64 / all as f64)
        };
        let (uniform, no_fillers) = slow_share(mix(1.0, 0.0));
        let (focused, fillers) = slow_share(mix(3.0, 0.5));
        assert_eq!(no_fillers, 0.0);
        assert!((0.35..0.65).contains(&fillers), "{fillers}");
        // Five of a slice's eleven or so questions are slow to learn; weighed three times, they
        // are some 15 of 21.
        assert!(
            (0.35..0.55).contains(&uniform) && (0.62..0.8).contains(&focused),
            "{uniform} -> {focused}"
        );

        // Where a marked structure is: answered with one box and a name.
        let mut rng = Rng::new(2);
        let locate = Mix {
            mis_ground_locate: 1.0,
            ..mix(1.0, 0.0)
        };
        for lang in [Lang::En, Lang::De] {
            let MisSample {
                pixels,
                prompt,
                target,
                template,
            } = draw(&mut rng, &locate, lang);
            assert!(template.is_none());
            assert!(
                prompt.contains("markierte") || prompt.contains("marked"),
                "{prompt}"
            );
            assert_eq!(target.matches("<loc").count(), 4, "{target}");
            // The mark is burned in: some pixel has its colour.
            assert!(pixels.chunks(32 * 32).count() == 3);
            let has_mark = (0..32 * 32).any(|i| {
                pixels[i] == 1.0 && pixels[32 * 32 + i] == 1.0 && pixels[2 * 32 * 32 + i] == -1.0
            });
            assert!(has_mark);
        }
    }
}
