//! The trainer end to end, small: a few steps from scratch write a checkpoint the runtime loads
//! and answers with; running again with more steps resumes from it; a fine-tuning run starts from
//! that checkpoint and trains on corrections exported from the real CT (the example edits).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use groundglass_feedback::export::radgrounder;
use groundglass_feedback::{Corrections, Entry, Store};
use groundglass_model::config::PaliGemmaConfig;
use groundglass_model::prompt::Lang;
use groundglass_model::{AskInput, ModelSession};
use groundglass_study::{extract, open, NoProgress, Plane};
use groundglass_train::trainer::{train, TrainOptions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn options(out: &Path, steps: usize) -> TrainOptions {
    TrainOptions {
        out: out.to_path_buf(),
        steps,
        batch: 2,
        lr: 1e-3,
        seed: 1,
        phantoms: 1,
        phantom_seed: 500,
        init: None,
        corrections: None,
        checkpoint_every: 2,
        grounded_share: 0.4,
        yes_no_share: 0.4,
        mis_ground_share: 0.2,
        mis_ground_focus: 2.0,
        mis_ground_fillers: 0.3,
        mis_ground_locate: 0.2,
        grow_layers: 0,
    }
}

#[test]
fn trains_resumes_and_fine_tunes_on_corrections() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-trainer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let out = tmp.join("model");
    let mut seen = Vec::new();
    let state = train(&options(&out, 3), |p| seen.push(p.step)).expect("trains");
    assert_eq!(seen, vec![1, 2, 3]);
    assert_eq!(state.step, 3);
    assert!(state.loss.is_finite());
    for f in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "train_state.json",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Resuming continues from step 3.
    let mut resumed = Vec::new();
    train(&options(&out, 5), |p| resumed.push(p.step)).expect("resumes");
    assert_eq!(resumed, vec![4, 5]);

    // The checkpoint is a model folder the runtime opens and asks.
    let (_, phantom_volume) = {
        let p = groundglass_phantom::generate(&groundglass_phantom::PhantomConfig::ct(9));
        let v = p.to_volume();
        (p, v)
    };
    let slice = extract(&phantom_volume, Plane::Axial, 48);
    let mut session = ModelSession::load(&out, DType::F32, &Device::Cpu).expect("loads");
    let answer = session
        .ask(
            &AskInput {
                slice: &slice,
                modality: "CT",
                request: &groundglass_train::text::grounded_request(Lang::En),
                semsam: None,
                max_new_tokens: 8,
                visual_prompt: None,
            },
            |_| true,
        )
        .expect("answers");
    assert!(answer.tokens > 0);

    // Fine-tune on corrections exported from the real CT.
    let ct = root().join("../shared/testdata/dicom/series/ct_head_invesalius");
    let study = open(&ct).expect("ct");
    let series = &study.series[0];
    let volume = series.load(0, &NoProgress).expect("load");
    let mut store = Store::open(&tmp.join("store")).expect("store");
    let edits =
        std::fs::read_to_string(root().join("tests/fixtures/review-edits.jsonl")).expect("edits");
    for line in edits.lines() {
        let entry: Entry = serde_json::from_str(line).expect("edit");
        store.append_entry(entry).expect("append");
    }
    let corrections = Corrections::replay(store.entries());
    let export = tmp.join("export");
    let slices = radgrounder::export(&export, series, &volume, &corrections).expect("export");
    assert_eq!(slices, 2);
    let tuned = tmp.join("tuned");
    let mut opts = options(&tuned, 2);
    opts.init = Some(out.clone());
    opts.corrections = Some(export);
    opts.phantoms = 0;
    let state = train(&opts, |_| {}).expect("fine-tunes on corrections alone");
    assert_eq!(state.step, 2);
    assert!(state.loss.is_finite());
    // The tokenizer and config came from the starting checkpoint.
    assert_eq!(
        std::fs::read(tuned.join("tokenizer.json")).expect("tok"),
        std::fs::read(out.join("tokenizer.json")).expect("tok")
    );
}

/// Fine-tuning a checkpoint whose tokenizer lacks words the dataset now uses: the words join with
/// new ids after every existing one, the embedding grows by as many rows, and the old rows (and
/// every other weight) carry over unchanged (learning rate 0 here).
#[test]
fn fine_tuning_grows_the_vocabulary_and_keeps_old_ids() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-grow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let base = tmp.join("base");
    train(&options(&base, 1), |_| {}).expect("trains");
    // Make "liegt" unknown to the base tokenizer without moving any id.
    let tok_path = base.join("tokenizer.json");
    let mut tok: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&tok_path).expect("tok")).expect("json");
    let vocab = tok["model"]["vocab"].as_object_mut().expect("vocab");
    let id = vocab.remove("liegt").expect("liegt in the vocabulary");
    vocab.insert("zz-unused".into(), id);
    std::fs::write(&tok_path, tok.to_string()).expect("write");
    let old = groundglass_model::Checkpoint::open(&base, DType::F32, &Device::Cpu).expect("base");
    let embed = "language_model.embed_tokens.weight";
    let (rows, width) = old.tensors[embed].dims2().expect("2d");

    let tuned = tmp.join("tuned");
    let mut opts = options(&tuned, 1);
    opts.init = Some(base.clone());
    opts.lr = 0.0;
    train(&opts, |_| {}).expect("fine-tunes");
    let before = tokenizers::Tokenizer::from_file(&tok_path).expect("before");
    let after = tokenizers::Tokenizer::from_file(tuned.join("tokenizer.json")).expect("after");
    for (token, id) in before.get_vocab(true) {
        assert_eq!(after.token_to_id(&token), Some(id), "{token}");
    }
    assert_eq!(after.token_to_id("liegt"), Some(rows as u32));
    let new = groundglass_model::Checkpoint::open(&tuned, DType::F32, &Device::Cpu).expect("tuned");
    assert_eq!(new.tensors[embed].dims2().expect("2d"), (rows + 1, width));
    for (name, t) in &old.tensors {
        let t2 = new.tensors[name]
            .narrow(0, 0, t.dim(0).expect("dim"))
            .expect("narrow");
        let diff = (t - t2)
            .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
            .expect("diff");
        assert_eq!(diff, 0.0, "{name} changed");
    }
    // The question with the new word is encoded without unknown tokens.
    let ids = after
        .encode("auf welcher seite liegt leber ?", false)
        .expect("encodes");
    assert!(
        ids.get_ids().contains(&(rows as u32)),
        "{:?}",
        ids.get_tokens()
    );
}

/// Growing the bundled demo model by two layers a tower: before any step the grown model gives
/// the checkpoint's very answer (its new layers pass their input through), and a few steps later
/// the new layers have left the identity, so they do learn.
#[test]
fn grown_layers_start_as_identities_and_then_learn() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-deeper-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let base = root().join("assets/models/demo");
    let grown = tmp.join("grown");
    let mut opts = options(&grown, 0);
    opts.grow_layers = 2;
    let refused = train(&opts, |_| {}).expect_err("nothing to grow");
    assert!(refused.to_string().contains("--init"), "{refused}");
    opts.init = Some(base.clone());
    train(&opts, |_| {}).expect("grows");
    let layers = |dir: &Path| {
        let c = PaliGemmaConfig::from_file(&dir.join("config.json")).expect("config");
        (
            c.text_config.num_hidden_layers,
            c.vision_config.num_hidden_layers,
        )
    };
    let (text_layers, vision_layers) = layers(&base);
    assert_eq!(layers(&grown), (text_layers + 2, vision_layers + 2));

    let phantom = groundglass_phantom::generate(&groundglass_phantom::PhantomConfig::ct(9));
    let slice = extract(&phantom.to_volume(), Plane::Axial, 48);
    let request = groundglass_train::text::grounded_request(Lang::En);
    let answer = |dir: &Path| {
        let mut session = ModelSession::load(dir, DType::F32, &Device::Cpu).expect("loads");
        session
            .ask(
                &AskInput {
                    slice: &slice,
                    modality: "CT",
                    request: &request,
                    semsam: None,
                    max_new_tokens: 48,
                    visual_prompt: None,
                },
                |_| true,
            )
            .expect("answers")
            .text
    };
    let before = answer(&base);
    assert!(before.contains("<loc"), "a grounded report: {before}");
    assert_eq!(answer(&grown), before);

    // Two steps on: the new layers' output scales and projections move off their start.
    opts.steps = 2;
    train(&opts, |_| {}).expect("trains the grown model");
    let trained =
        groundglass_model::Checkpoint::open(&grown, DType::F32, &Device::Cpu).expect("ckpt");
    for (name, start) in [
        (
            format!("language_model.layers.{text_layers}.post_attention_layernorm.weight"),
            -1.0,
        ),
        (
            format!("vision_tower.encoder.layers.{vision_layers}.self_attn.out_proj.weight"),
            0.0,
        ),
    ] {
        let moved = trained.tensors[&name]
            .affine(1.0, -start)
            .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
            .expect("diff");
        assert!(moved > 0.0, "{name} did not move");
    }
}
