//! Decoding several answers in one pass over the weights gives each what it gets alone: the
//! tiny random checkpoint (tests/fixtures/tiny-paligemma2, with a mask head), three sequences of
//! different images and prompt lengths, decoded past the sliding window, one leaving the batch
//! early. Logits, masks and greedy tokens are compared with the one-at-a-time path, which
//! parity.rs checks against transformers.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use common::{ids, json};
use groundglass_model::preprocess::ModelImage;
use groundglass_model::{ModelSession, PaliGemma};

fn fixture() -> PathBuf {
    common::fixtures().join("tiny-paligemma2")
}

fn pixels() -> Tensor {
    candle_core::safetensors::load(fixture().join("expected.safetensors"), &Device::Cpu)
        .expect("expected.safetensors")["pixel_values"]
        .clone()
}

/// (image, prompt ids, tokens fed back) for three sequences.
fn sequences() -> Vec<(Tensor, Vec<u32>, Vec<u32>)> {
    let prompt = ids(&json(fixture().join("expected.json"))["input_ids"]);
    let head = json(fixture().join("../tiny-mask-head/expected.json"));
    let answer = ids(&head["answer_ids"]);
    let p = pixels();
    // A longer prompt: text tokens before the closing newline.
    let mut longer = prompt.clone();
    longer.splice(prompt.len() - 1..prompt.len() - 1, [7, 8, 9, 10, 11]);
    let other: Vec<u32> = answer.iter().rev().copied().collect();
    vec![
        (p.clone(), prompt.clone(), answer.clone()),
        ((&p * 0.5).expect("scale"), longer, other),
        (p.neg().expect("neg"), prompt, answer[..5].to_vec()),
    ]
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
        .expect("same shape")
}

#[test]
fn sequences_decoded_together_get_what_each_gets_alone() {
    let seg_end = json(fixture().join("../tiny-mask-head/expected.json"))["seg_end"]
        .as_u64()
        .expect("seg_end") as u32;
    let mut model = PaliGemma::load(&fixture(), DType::F32, &Device::Cpu).expect("loads");
    model.set_seg_end_token(Some(seg_end));
    let inputs = sequences();

    // Alone: prefill, then one token at a time.
    let mut alone_logits = Vec::new();
    let mut alone_masks = Vec::new();
    for (image, prompt, fed) in &inputs {
        model.prefill(image, prompt).expect("prefill");
        let steps: Vec<Tensor> = fed.iter().map(|&t| model.step(t).expect("step")).collect();
        alone_logits.push(steps);
        alone_masks.push(model.masks().expect("masks"));
    }

    // Together: every prefill first, then steps over whichever still have tokens to feed.
    let mut taken = Vec::new();
    for (image, prompt, _) in &inputs {
        model.prefill(image, prompt).expect("prefill");
        taken.push(model.take_sequence());
    }
    assert_eq!(taken[1].seen(), taken[0].seen() + 5);
    let longest = inputs.iter().map(|(_, _, f)| f.len()).max().unwrap_or(0);
    // `step` indexes each sequence's own tokens and logits.
    #[allow(clippy::needless_range_loop)]
    for step in 0..longest {
        let live: Vec<usize> = (0..inputs.len())
            .filter(|&s| step < inputs[s].2.len())
            .collect();
        let tokens: Vec<u32> = live.iter().map(|&s| inputs[s].2[step]).collect();
        let mut batch: Vec<_> = taken
            .iter_mut()
            .enumerate()
            .filter(|(s, _)| live.contains(s))
            .map(|(_, q)| q)
            .collect();
        let logits = model.step_batch(&mut batch, &tokens).expect("step_batch");
        assert_eq!(logits.dims(), &[live.len(), 1224]);
        for (row, &s) in live.iter().enumerate() {
            let got = logits.get(row).expect("row");
            let want = &alone_logits[s][step];
            let d = max_diff(&got, want);
            assert!(d <= 1e-5, "sequence {s}, step {step}: logits differ by {d}");
        }
    }
    // Past the sliding window (8) and the prompt: the caches grew as each alone.
    assert_eq!(taken[0].seen(), 26 + 14);
    for (s, sequence) in taken.iter().enumerate() {
        let masks = model.masks_of(sequence).expect("masks");
        assert_eq!(masks.len(), alone_masks[s].len(), "sequence {s}");
        for (got, want) in masks.iter().zip(&alone_masks[s]) {
            let d = got
                .logits
                .iter()
                .zip(&want.logits)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(d <= 1e-5, "sequence {s}: mask logits differ by {d}");
        }
    }
    // Each `</seg>` fed back asked for a mask: two in the whole answer, one in its first five.
    assert_eq!(alone_masks[0].len(), 2);
    assert_eq!(alone_masks[2].len(), 1);
}

#[test]
fn a_session_decodes_answers_together_with_the_tokens_each_gets_alone() {
    let mut session = ModelSession::load(&fixture(), DType::F32, &Device::Cpu).expect("loads");
    let size = session.image_size();
    let base = pixels()
        .flatten_all()
        .expect("flat")
        .to_vec1::<f32>()
        .expect("vec");
    let image = |scale: f32| ModelImage {
        size,
        pixels: base.iter().map(|v| (v * scale).clamp(-1.0, 1.0)).collect(),
        input_spacing_mm: None,
    };
    let asks = [
        (image(1.0), "caption en", 12),
        (image(-0.7), "detect liver ; spleen", 20),
        (image(0.3), "answer en where is the liver?", 3),
    ];
    let alone: Vec<Vec<u32>> = asks
        .iter()
        .map(|(img, prompt, max)| {
            session
                .answer_image(img, prompt, *max, false)
                .expect("alone")
                .token_ids
        })
        .collect();
    let mut decodings: Vec<_> = asks
        .iter()
        .map(|(img, prompt, max)| session.start_image(img, prompt, *max, 0).expect("start"))
        .collect();
    let mut steps = 0;
    while decodings.iter().any(|d| !d.is_finished()) {
        let mut all: Vec<_> = decodings.iter_mut().collect();
        session.step_all(&mut all).expect("step");
        steps += 1;
        assert!(steps <= 20, "the token limit ends every answer");
    }
    for (i, d) in decodings.into_iter().enumerate() {
        let answer = session.finish_image(d, false).expect("finish");
        assert_eq!(answer.token_ids, alone[i], "answer {i}");
        assert!(answer.token_ids.len() <= asks[i].2);
    }
    // Cancelled while others go on: it keeps what it had and leaves the batch.
    let mut first = session
        .start_image(&asks[0].0, asks[0].1, 12, 0)
        .expect("start");
    let mut second = session
        .start_image(&asks[1].0, asks[1].1, 20, 0)
        .expect("start");
    session
        .step_all(&mut [&mut first, &mut second])
        .expect("step");
    first.cancel();
    let kept = first.tokens().to_vec();
    session
        .step_all(&mut [&mut first, &mut second])
        .expect("step");
    assert_eq!(first.tokens(), kept);
    assert_eq!(second.tokens(), &alone[1][..3.min(alone[1].len())]);

    // A minimum holds end-of-sequence (id 1 here) back: exactly as many tokens as asked.
    let mut long = session
        .start_image(&asks[2].0, asks[2].1, 30, 30)
        .expect("start");
    while !long.is_finished() {
        session.step_all(&mut [&mut long]).expect("step");
    }
    assert_eq!(long.tokens().len(), 30);
    assert!(!long.tokens().contains(&1), "{:?}", long.tokens());
}
