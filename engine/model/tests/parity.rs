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
    let t = candle_core::safetensors::load(fixture().join("expected.safetensors"), &Device::Cpu)
        .expect("expected.safetensors");
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture().join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let ids = |k: &str| {
        j[k].as_array()
            .expect(k)
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect()
    };
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
    (a - b)
        .expect("same shape")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flat")
        .max(0)
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar")
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
    assert!(
        max_diff(&f, &e.image_features) < 1e-4,
        "{}",
        max_diff(&f, &e.image_features)
    );
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
    let mut token = last
        .argmax(0)
        .expect("argmax")
        .to_scalar::<u32>()
        .expect("id");
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

#[test]
fn the_tokenizer_builds_the_same_prompt_ids_as_python() {
    let e = expected();
    let j: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture().join("expected.json")).expect("json"),
    )
    .expect("json");
    let tok =
        groundglass_model::tokenizer::PromptTokenizer::from_dir(&fixture()).expect("tokenizer");
    let m = model();
    let ids = tok
        .prompt_ids(
            m.config.image_token_index,
            m.config.num_image_tokens(),
            j["prompt"].as_str().expect("prompt"),
        )
        .expect("ids");
    assert_eq!(ids, e.input_ids);
}

#[test]
fn streaming_greedy_generation_stops_when_asked() {
    let e = expected();
    let mut m = model();
    let mut streamed = Vec::new();
    let full = groundglass_model::generate::generate_greedy(
        &mut m,
        &e.pixel_values,
        &e.input_ids,
        e.generated.len(),
        |t| {
            streamed.push(t);
            true
        },
    )
    .expect("generate");
    assert_eq!(full.tokens, e.generated);
    assert_eq!(streamed, e.generated);
    let mut n = 0;
    let cut = groundglass_model::generate::generate_greedy(
        &mut m,
        &e.pixel_values,
        &e.input_ids,
        100,
        |_| {
            n += 1;
            n < 3
        },
    )
    .expect("generate");
    assert!(cut.cancelled);
    assert_eq!(cut.tokens, e.generated[..3].to_vec());
}

#[test]
fn broken_checkpoints_fail_with_the_file_or_tensor_named() {
    let dir = std::env::temp_dir().join(format!("gg-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let err = PaliGemma::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("no config")
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("missing"),
        "{err}"
    );
    std::fs::copy(fixture().join("config.json"), dir.join("config.json")).expect("copy");
    let err = PaliGemma::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("no weights")
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    let weights = std::fs::read(fixture().join("model.safetensors")).expect("read");
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 2]).expect("write");
    let err = PaliGemma::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("truncated")
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // A config that promises a wider model than the weights hold: the tensor is named.
    std::fs::write(dir.join("model.safetensors"), &weights).expect("write");
    let config = std::fs::read_to_string(fixture().join("config.json"))
        .expect("config")
        .replace("\"intermediate_size\": 96", "\"intermediate_size\": 100");
    std::fs::write(dir.join("config.json"), config).expect("write");
    let err = PaliGemma::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("shape")
        .to_string();
    assert!(
        err.contains("language_model") && err.contains("shape"),
        "{err}"
    );
    let config = std::fs::read_to_string(fixture().join("config.json"))
        .expect("config")
        .replace("\"model_type\": \"paligemma\"", "\"model_type\": \"llava\"");
    std::fs::write(dir.join("config.json"), config).expect("write");
    let err = PaliGemma::load(&dir, DType::F32, &Device::Cpu)
        .err()
        .expect("arch")
        .to_string();
    assert!(err.contains("unknown architecture"), "{err}");
}
