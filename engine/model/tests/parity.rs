//! Parity with transformers' PaliGemmaForConditionalGeneration on the tiny random PaliGemma-2
//! checkpoint in tests/fixtures/tiny-paligemma2 (made by tests/fixtures/make_tiny_paligemma2.py):
//! logits within 1e-4 and identical greedy tokens, with and without the KV cache.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use groundglass_model::PaliGemma;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-paligemma2")
}

struct Expected {
    pixel_values: Tensor,
    prefix_logits: Tensor,
    full_logits: Tensor,
    image_features: Tensor,
    input_ids: Vec<u32>,
    generated: Vec<u32>,
}

fn expected() -> Expected {
    let t = candle_core::safetensors::load(fixture().join("expected.safetensors"), &Device::Cpu).expect("expected.safetensors");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("expected.json")).expect("expected.json")).expect("json");
    let ids = |k: &str| j[k].as_array().expect(k).iter().map(|v| v.as_u64().expect("id") as u32).collect();
    Expected {
        pixel_values: t["pixel_values"].clone(),
        prefix_logits: t["prefix_logits"].clone(),
        full_logits: t["full_logits"].clone(),
        image_features: t["image_features"].clone(),
        input_ids: ids("input_ids"),
        generated: ids("generated"),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).expect("same shape").abs().expect("abs").flatten_all().expect("flat").max(0).expect("max").to_scalar::<f32>().expect("scalar")
}

fn model() -> PaliGemma {
    PaliGemma::load(&fixture(), DType::F32, &Device::Cpu).expect("tiny checkpoint loads")
}

#[test]
fn image_features_match_transformers() {
    let e = expected();
    let m = model();
    // transformers' get_image_features: the projector output, unscaled.
    let f = m.image_features(&e.pixel_values).expect("features");
    assert!(max_diff(&f, &e.image_features) < 1e-4, "{}", max_diff(&f, &e.image_features));
}

#[test]
fn prefill_logits_match_transformers() {
    let e = expected();
    let mut m = model();
    let logits = m.prefill(&e.pixel_values, &e.input_ids).expect("prefill");
    let d = max_diff(&logits, &e.prefix_logits);
    assert!(d < 1e-4, "max |logit difference| {d}");
}

#[test]
fn greedy_tokens_match_with_the_kv_cache() {
    let e = expected();
    let mut m = model();
    let logits = m.prefill(&e.pixel_values, &e.input_ids).expect("prefill");
    let last = logits.get(logits.dim(0).expect("len") - 1).expect("last");
    let mut token = last.argmax(0).expect("argmax").to_scalar::<u32>().expect("id");
    let mut out = vec![token];
    while out.len() < e.generated.len() {
        let l = m.step(token).expect("step");
        token = l.argmax(0).expect("argmax").to_scalar::<u32>().expect("id");
        out.push(token);
    }
    assert_eq!(out, e.generated);
}

#[test]
fn logits_without_the_cache_match_the_full_sequence() {
    // The whole sequence (prompt + generated) in one pass, with the generated part causal: the
    // reference's full_logits. Decoding step by step must give the same last-position logits.
    let e = expected();
    let mut m = model();
    let _ = m.prefill(&e.pixel_values, &e.input_ids).expect("prefill");
    let mut steps = Vec::new();
    for t in &e.generated {
        steps.push(m.step(*t).expect("step"));
    }
    let p = e.input_ids.len();
    for (n, l) in steps.iter().enumerate().take(e.generated.len() - 1) {
        let reference = e.full_logits.get(p + n).expect("row");
        let d = max_diff(l, &reference);
        assert!(d < 1e-4, "step {n}: {d}");
    }
}
