//! Answers decoded step by step, several at once: a [`Decoding`] holds one answer's state between
//! steps (its caches out of the model, its tokens so far), and [`ModelSession::step_all`]
//! advances any number of them with one pass over the decoder's weights. One answer at a time is
//! the same thing with one in the batch, so `ask` here, the viewer and the server all take this
//! path, and an answer does not depend on what it was decoded beside.
//!
//! The rule is [`crate::generate::generate`]'s: the prompt's last logits choose the first token,
//! each token is fed back until end-of-sequence or the token limit.

use std::time::Instant;

use candle_core::Tensor;
use groundglass_grounding::{parser_for, Format, LabelMap};
use groundglass_study::SliceImage;

use crate::error::{ModelError, Result};
use crate::mask_head::Mask;
use crate::paligemma::Sequence;
use crate::preprocess::{preprocess_slice, ModelImage};
use crate::prompt::Lang;
use crate::semsam::{BuildControl, NeighbourTable, SemSamConfig};
use crate::session::{Answer, AskInput, ImageAnswer, ModelSession, SliceMask};

/// One answer being decoded.
pub struct Decoding {
    sequence: Sequence,
    tokens: Vec<u32>,
    max_new_tokens: usize,
    /// End-of-sequence is held back until this many tokens.
    min_new_tokens: usize,
    semsam: Option<SemSamConfig>,
    eos: Vec<u32>,
    ttft_ms: f64,
    decode_started: Instant,
    finished: bool,
    cancelled: bool,
    /// What finishing needs besides the tokens.
    about: About,
}

enum About {
    /// A slice asked about ([`ModelSession::start_ask`]): findings are placed on it.
    Slice {
        slice: Box<SliceImage>,
        lang: Lang,
        input_spacing_mm: Option<[f64; 2]>,
    },
    /// A preprocessed picture ([`ModelSession::start_image`]): text and ids only.
    Image,
}

impl Decoding {
    /// Tokens chosen so far (the last one not yet fed back while not finished).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Whether end-of-sequence, the token limit or a cancel has ended it.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Ends it where it is; the answer keeps the tokens so far and says it was cancelled.
    pub fn cancel(&mut self) {
        if !self.finished {
            self.finished = true;
            self.cancelled = true;
        }
    }

    fn push(&mut self, token: u32) {
        self.tokens.push(token);
        if self.eos.contains(&token) || self.tokens.len() >= self.max_new_tokens {
            self.finished = true;
        }
    }

    /// Tokens a second after the first.
    fn tok_per_s(&self) -> f64 {
        let after_first = self.tokens.len().saturating_sub(1) as f64;
        let secs = self.decode_started.elapsed().as_secs_f64();
        if secs > 0.0 && after_first > 0.0 {
            after_first / secs
        } else {
            0.0
        }
    }
}

/// The next token from one position's logits: greedy, or MIS-SemSam when a table is given.
pub(crate) fn choose(
    logits: &Tensor,
    semsam: Option<(&NeighbourTable, &SemSamConfig)>,
) -> Result<u32> {
    match semsam {
        None => Ok(logits.argmax(0)?.to_scalar::<u32>()?),
        Some((table, config)) => Ok(table.choose(&logits.to_vec1::<f32>()?, config)),
    }
}

/// One position's logits with end-of-sequence made impossible, when `hold` (before the minimum).
fn held_back(logits: Tensor, eos: &[u32], hold: bool) -> Result<Tensor> {
    if !hold {
        return Ok(logits);
    }
    let mut values = logits.to_vec1::<f32>()?;
    for &e in eos {
        if let Some(v) = values.get_mut(e as usize) {
            *v = f32::NEG_INFINITY;
        }
    }
    Ok(Tensor::from_vec(values, logits.dims(), logits.device())?)
}

impl ModelSession {
    /// Preprocesses the slice, runs the prompt and chooses the first token: the answer is then
    /// decoded by [`ModelSession::step_all`] and completed by [`ModelSession::finish_ask`].
    /// End-of-sequence is held back until `min_new_tokens` (0: never).
    pub fn start_ask(&mut self, input: &AskInput, min_new_tokens: usize) -> Result<Decoding> {
        self.check_task(input.request.task)?;
        let size = self.image_size();
        let mut image = preprocess_slice(input.slice, input.modality, size);
        if let Some(mark) = input.visual_prompt {
            mark.burn(&mut image);
        }
        if let Some(config) = input.semsam {
            self.prepare_semsam(config.k, &BuildControl::SILENT)?;
        }
        let about = About::Slice {
            slice: Box::new(input.slice.clone()),
            lang: input.request.lang,
            input_spacing_mm: image.input_spacing_mm,
        };
        let prompt = input.request.text();
        self.start(
            image.pixels,
            &prompt,
            (min_new_tokens, input.max_new_tokens),
            input.semsam,
            about,
        )
    }

    /// As [`ModelSession::start_ask`] for an image already preprocessed (channel-first,
    /// `image_size()` square, in [-1, 1]) and a prompt's text; completed by
    /// [`ModelSession::finish_image`].
    pub fn start_image(
        &mut self,
        image: &ModelImage,
        prompt: &str,
        max_new_tokens: usize,
        min_new_tokens: usize,
    ) -> Result<Decoding> {
        let size = self.image_size();
        if image.size != size || image.pixels.len() != 3 * size * size {
            return Err(ModelError::Input(format!(
                "the image is {0} x {0} pixels; this model takes {size} x {size}",
                image.size
            )));
        }
        self.start(
            image.pixels.clone(),
            prompt,
            (min_new_tokens, max_new_tokens),
            None,
            About::Image,
        )
    }

    fn start(
        &mut self,
        pixels: Vec<f32>,
        prompt: &str,
        (min_new_tokens, max_new_tokens): (usize, usize),
        semsam: Option<SemSamConfig>,
        about: About,
    ) -> Result<Decoding> {
        let started = Instant::now();
        let size = self.image_size();
        let device = self.model.device().clone();
        let pixel_values = Tensor::from_vec(pixels, (1, 3, size, size), &device)?;
        let config = &self.model.config;
        let ids = self.tokenizer.prompt_ids(
            config.image_token_index,
            config.num_image_tokens(),
            prompt,
        )?;
        let eos = config.eos_ids();
        let last = self.model.prefill_last(&pixel_values, &ids)?;
        let last = held_back(last, &eos, min_new_tokens > 0)?;
        let table = self.semsam_for(semsam.as_ref());
        let first = choose(&last, table)?;
        let mut decoding = Decoding {
            sequence: self.model.take_sequence(),
            tokens: Vec::new(),
            max_new_tokens,
            min_new_tokens,
            semsam,
            eos,
            ttft_ms: started.elapsed().as_secs_f64() * 1e3,
            decode_started: Instant::now(),
            finished: max_new_tokens == 0,
            cancelled: false,
            about,
        };
        if !decoding.finished {
            decoding.push(first);
        }
        Ok(decoding)
    }

    /// The neighbour table for a SemSam config, when it is built (`start_ask` builds it).
    fn semsam_for<'a>(
        &'a self,
        config: Option<&'a SemSamConfig>,
    ) -> Option<(&'a NeighbourTable, &'a SemSamConfig)> {
        let config = config?;
        let table = self.semsam_tables.get(&config.k)?;
        Some((table, config))
    }

    /// Feeds each unfinished answer its last token and chooses its next, all in one decoding step
    /// (the decoder's weights read once for all of them). Finished ones are left as they are.
    pub fn step_all(&mut self, decodings: &mut [&mut Decoding]) -> Result<()> {
        let mut running: Vec<&mut Decoding> = decodings
            .iter_mut()
            .filter(|d| !d.finished)
            .map(|d| &mut **d)
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        let fed: Vec<u32> = running
            .iter()
            .map(|d| {
                *d.tokens
                    .last()
                    .expect("an unfinished answer has its first token")
            })
            .collect();
        let mut sequences: Vec<&mut Sequence> =
            running.iter_mut().map(|d| &mut d.sequence).collect();
        let logits = self.model.step_batch(&mut sequences, &fed)?;
        for (b, d) in running.into_iter().enumerate() {
            let early = d.tokens.len() < d.min_new_tokens;
            let row = held_back(logits.get(b)?, &d.eos, early)?;
            let next = choose(&row, self.semsam_for(d.semsam.as_ref()))?;
            d.push(next);
        }
        Ok(())
    }

    /// The answer of a finished (or cancelled) [`ModelSession::start_ask`]: text, masks from the
    /// mask head, findings placed on the slice.
    pub fn finish_ask(&self, decoding: Decoding) -> Result<Answer> {
        let About::Slice {
            slice,
            lang,
            input_spacing_mm,
        } = &decoding.about
        else {
            return Err(ModelError::Input(
                "finish_ask on an image's decoding (finish_image completes those)".into(),
            ));
        };
        let text = self.tokenizer.decode(&decoding.tokens)?;
        let masks: Vec<SliceMask> = self
            .model
            .masks_of(&decoding.sequence)?
            .iter()
            .map(|m: &Mask| {
                SliceMask::from_pixels(
                    slice.width,
                    slice.height,
                    &m.on_slice(slice.width, slice.height),
                )
            })
            .collect();
        let parser = parser_for(Format::RadGrounder, LabelMap::radgrounder(), (*lang).into());
        let findings = parser
            .parse(&text)
            .into_iter()
            .map(|mut f| {
                if f.box_norm.is_none() {
                    f.box_norm = f
                        .mask_index
                        .and_then(|i| masks.get(i))
                        .and_then(SliceMask::bounds);
                }
                f.locate(slice)
            })
            .collect();
        Ok(Answer {
            text,
            findings,
            masks,
            tokens: decoding.tokens.len(),
            ttft_ms: decoding.ttft_ms,
            tok_per_s: decoding.tok_per_s(),
            cancelled: decoding.cancelled,
            input_spacing_mm: *input_spacing_mm,
        })
    }

    /// The answer of a finished [`ModelSession::start_image`]: its text (special tokens dropped
    /// when `skip_special`) and token ids.
    pub fn finish_image(&self, decoding: Decoding, skip_special: bool) -> Result<ImageAnswer> {
        Ok(ImageAnswer {
            text: self.tokenizer.decode_with(&decoding.tokens, skip_special)?,
            tok_per_s: decoding.tok_per_s(),
            ttft_ms: decoding.ttft_ms,
            token_ids: decoding.tokens,
        })
    }
}
