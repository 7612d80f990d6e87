//! Training reaches every weight: with the differentiable ops switched on, one teacher-forced step
//! on a phantom sample gives every variable of the PaliGemma-2 model a non-zero gradient (Candle's
//! fused LayerNorm, softmax and rope would silently cut the graph), and the batched training
//! forward gives the same logits as the runtime's prefill.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use groundglass_model::config::PaliGemmaConfig;
use groundglass_model::linear::WeightPlan;
use groundglass_model::tokenizer::PromptTokenizer;
use groundglass_model::PaliGemma;
use groundglass_train::config::{config_json, DemoSize};
use groundglass_train::dataset::PhantomSamples;
use groundglass_train::tokenizer::{dataset_words, tokenizer_json};

#[test]
fn every_weight_gets_a_gradient_and_batched_logits_match_prefill() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-grad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let tok = tokenizer_json(&dataset_words(&[1, 2, 3, 5]));
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).expect("write");
    let parsed = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    let size = DemoSize {
        image_size: 32,
        patch_size: 16,
        vision_hidden: 16,
        vision_layers: 1,
        text_hidden: 16,
        text_layers: 2,
        heads: 2,
        intermediate: 32,
    };
    let cfg = config_json(
        &size,
        parsed.get_vocab_size(true),
        parsed.token_to_id("<image>").expect("image"),
    );
    std::fs::write(dir.join("config.json"), cfg.to_string()).expect("write");
    let config = PaliGemmaConfig::from_file(&dir.join("config.json")).expect("config");
    let tokenizer = PromptTokenizer::from_dir(&dir).expect("tokenizer");
    let (image_token, n) = (config.image_token_index, config.num_image_tokens());

    groundglass_model::fast_gelu::set_differentiable(true);
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let mut model =
        PaliGemma::from_var_builder(config, vb, None, false, 0, WeightPlan::uniform(DType::F32))
            .expect("model");
    let phantom = groundglass_phantom::generate(&groundglass_phantom::PhantomConfig {
        dims: [48, 48, 32],
        ..groundglass_phantom::PhantomConfig::ct(3)
    });
    let mut samples = PhantomSamples::new(vec![phantom], 32, 1);
    let s = samples.draw(&tokenizer, image_token, n).expect("sample");
    let len = s.ids.len();
    let pixels = Tensor::from_vec(s.pixels.clone(), (1, 3, 32, 32), &Device::Cpu).expect("pixels");
    let ids = Tensor::new(s.ids.as_slice(), &Device::Cpu)
        .expect("ids")
        .unsqueeze(0)
        .expect("batch");
    let logits = model
        .forward_batch(&pixels, &ids, &[s.prefix])
        .expect("forward");
    let rows: Vec<u32> = (s.prefix - 1..len - 1).map(|r| r as u32).collect();
    let targets: Vec<u32> = s.ids[s.prefix..].to_vec();
    let picked = logits
        .squeeze(0)
        .expect("squeeze")
        .index_select(
            &Tensor::new(rows.as_slice(), &Device::Cpu).expect("rows"),
            0,
        )
        .expect("select");
    let loss = candle_nn::loss::cross_entropy(
        &picked,
        &Tensor::new(targets.as_slice(), &Device::Cpu).expect("targets"),
    )
    .expect("loss");
    let grads = loss.backward().expect("backward");
    let data = varmap.data().lock().expect("lock");
    let mut missing = Vec::new();
    for (name, var) in data.iter() {
        let ok = grads
            .get(var.as_tensor())
            .and_then(|g| g.abs().ok()?.sum_all().ok()?.to_scalar::<f32>().ok())
            .is_some_and(|s| s > 0.0);
        if !ok {
            missing.push(name.clone());
        }
    }
    drop(data);
    assert!(missing.is_empty(), "no gradient for {missing:?}");

    // The same prompt through the runtime's cached prefill (fused ops) gives the same logits.
    groundglass_model::fast_gelu::set_differentiable(false);
    let prefill = model.prefill(&pixels, &s.ids[..s.prefix]).expect("prefill");
    let batched = logits
        .squeeze(0)
        .expect("squeeze")
        .narrow(0, 0, s.prefix)
        .expect("narrow");
    let diff = (prefill - batched)
        .expect("sub")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flat")
        .max(0)
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar");
    assert!(diff < 1e-4, "{diff}");
}
