//! RadGrounder's mask head against the PyTorch reference written from its description
//! (tests/fixtures/make_tiny_mask_head.py): the tiny checkpoint carries a random `segmentation_head`,
//! the answer is teacher-forced through prefill and cached steps, and the masks asked for at each
//! fed-back `</seg>` must match the reference logits within 1e-4.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{fixtures, ids};
use groundglass_model::{Checkpoint, PaliGemma};

#[test]
fn masks_at_fed_back_seg_end_match_reference() {
    let dir = fixtures().join("tiny-paligemma2");
    let prompt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("json"))
            .expect("json");
    let head_dir = fixtures().join("tiny-mask-head");
    let e: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(head_dir.join("expected.json")).expect("json"),
    )
    .expect("json");
    let t = candle_core::safetensors::load(head_dir.join("expected.safetensors"), &Device::Cpu)
        .expect("expected.safetensors");
    let pixels = candle_core::safetensors::load(dir.join("expected.safetensors"), &Device::Cpu)
        .expect("pixels")["pixel_values"]
        .clone();

    let mut model = PaliGemma::load(&dir, DType::F32, &Device::Cpu).expect("loads");
    assert!(model.has_mask_head());
    model.set_seg_end_token(Some(e["seg_end"].as_u64().expect("seg_end") as u32));
    model
        .prefill(&pixels, &ids(&prompt["input_ids"]))
        .expect("prefill");
    for token in ids(&e["answer_ids"]) {
        model.step(token).expect("step");
    }
    let masks = model.masks().expect("masks");
    let expected: Tensor = t["mask_logits"].clone();
    assert_eq!(masks.len(), expected.dim(0).expect("n"));
    let inside = e["inside_pixels"].as_array().expect("inside");
    for (i, mask) in masks.iter().enumerate() {
        let want = expected.get(i).expect("mask").flatten_all().expect("flat");
        let want: Vec<f32> = want.to_vec1().expect("vec");
        let diff = mask
            .logits
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "mask {i}: max logit difference {diff}");
        // Inside/outside agrees wherever the reference is not within the tolerance of the threshold.
        let disagree = mask
            .logits
            .iter()
            .zip(&want)
            .filter(|(a, b)| (**b - 0.5).abs() > 1e-4 && ((**a > 0.5) != (**b > 0.5)))
            .count();
        assert_eq!(disagree, 0, "mask {i}");
        let count = mask.logits.iter().filter(|&&l| l > 0.5).count() as i64;
        let want_count = inside[i].as_i64().expect("count");
        let near = want.iter().filter(|b| (*b - 0.5).abs() <= 1e-4).count() as i64;
        assert!(
            (count - want_count).abs() <= near,
            "mask {i}: {count} vs {want_count}"
        );
    }
    // The first mask is partly inside, so thresholding is exercised on both sides.
    assert!(masks[0].logits.iter().any(|&l| l > 0.5) && masks[0].logits.iter().any(|&l| l <= 0.5));
}

#[test]
fn no_seg_end_no_mask() {
    let dir = fixtures().join("tiny-paligemma2");
    let mut model = PaliGemma::load(&dir, DType::F32, &Device::Cpu).expect("loads");
    let pixels = Tensor::zeros((1, 3, 56, 56), DType::F32, &Device::Cpu).expect("zeros");
    model.set_seg_end_token(Some(1222));
    model.prefill(&pixels, &[2, 15]).expect("prefill");
    model.step(15).expect("step");
    assert!(model.masks().expect("masks").is_empty());
}

#[test]
fn missing_head_tensor_is_named() {
    let dir = fixtures().join("tiny-paligemma2");
    let mut checkpoint = Checkpoint::open(&dir, DType::F32, &Device::Cpu).expect("opens");
    checkpoint
        .tensors
        .remove("segmentation_head.transformer.layers.1.norm4.bias");
    let err = PaliGemma::new(checkpoint, DType::F32.into(), &Device::Cpu)
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(text.contains("segmentation_head"), "{text}");
}

#[test]
fn mask_stretches_back_onto_the_slice() {
    // A 4x4 input mask whose left half is inside maps onto a 10x6 slice as its left 5 columns.
    let mut logits = vec![0.0f32; 16];
    for y in 0..4 {
        logits[y * 4] = 1.0;
        logits[y * 4 + 1] = 1.0;
    }
    let mask = groundglass_model::mask_head::Mask { size: 4, logits };
    let on = mask.on_slice(10, 6);
    for y in 0..6 {
        for x in 0..10 {
            assert_eq!(on[y * 10 + x], x < 5, "({x}, {y})");
        }
    }
}
