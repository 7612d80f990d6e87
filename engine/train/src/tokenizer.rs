//! The demo model's tokenizer: word level over the words the dataset uses (lowercased, punctuation
//! split off), plus the tokens a PaliGemma-2 / RadGrounder checkpoint carries (`<image>`,
//! `<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`, `<p bbox=`, `</p>`, `id=`, `<seg>`, `</seg>`,
//! `>` and the newline). Written as a Hugging Face `tokenizer.json`, so the app's tokenizer code
//! (and Python's `tokenizers`) read it like any checkpoint's.

use std::collections::BTreeSet;

use groundglass_grounding::LabelMap;
use groundglass_model::prompt::{Lang, Task};
use serde_json::{json, Value};

use crate::text::{self, words, OpenQuestion};

pub const SPECIALS: [&str; 4] = ["<pad>", "<eos>", "<bos>", "<unk>"];

/// Every word the dataset's prompts and targets use.
pub fn dataset_words(classes: &[u32]) -> BTreeSet<String> {
    let labels = LabelMap::radgrounder();
    let mut texts = Vec::new();
    for lang in [Lang::En, Lang::De] {
        for task in [Task::Report, Task::Grounded, Task::Segment, Task::Vqa] {
            let mut r = text::grounded_request(lang);
            r.task = task;
            r.clinical = Some("x".into());
            r.question = Some("x".into());
            texts.push(r.text());
        }
        for &c in classes {
            texts.push(text::yes_no_question(&labels, c, lang));
        }
        texts.push(text::yes_no_answer(true, lang).into());
        texts.push(text::yes_no_answer(false, lang).into());
        texts.push(text::grounded_target(&labels, &[], lang));
        for q in [OpenQuestion::Structures, OpenQuestion::Largest] {
            texts.push(text::open_question(&labels, q, lang));
        }
        for &c in classes {
            texts.push(text::open_question(&labels, OpenQuestion::Side(c), lang));
        }
        for x in [0.0, 0.5, 1.0] {
            texts.push(text::side_word(x, lang).into());
        }
    }
    texts.extend(crate::mis_ground::terms::training_texts(&labels));
    // The phrase separator and sentence punctuation of targets.
    texts.push(", . ; : ? ( ) -".into());
    // Every class name, so relabelled corrections stay in the vocabulary.
    for c in labels.classes() {
        texts.push(c.english.clone());
        texts.push(c.german.clone());
    }
    texts.iter().flat_map(|t| words(t)).collect()
}

/// The tokenizer.json for `words`.
pub fn tokenizer_json(words: &BTreeSet<String>) -> Value {
    let mut vocab = serde_json::Map::new();
    for (i, s) in SPECIALS.iter().enumerate() {
        vocab.insert((*s).to_string(), json!(i));
    }
    for w in words {
        if !vocab.contains_key(w) {
            let id = vocab.len();
            vocab.insert(w.clone(), json!(id));
        }
    }
    let mut added = Vec::new();
    for (i, s) in SPECIALS.iter().enumerate() {
        added.push(
            json!({"id": i, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true}),
        );
    }
    let mut extra: Vec<String> = vec!["<image>".into()];
    extra.extend((0..1024).map(|i| format!("<loc{i:04}>")));
    extra.extend((0..128).map(|i| format!("<seg{i:03}>")));
    for t in ["<p bbox=", "</p>", "id=", "<seg>", "</seg>", "\n", ">"] {
        extra.push(t.into());
    }
    for (id, t) in (vocab.len()..).zip(extra) {
        added.push(
            json!({"id": id, "content": t, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": false}),
        );
    }
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}]},
        "post_processor": null,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}

/// The id one past the largest a tokenizer.json uses (its vocabulary and added tokens): the
/// model's vocabulary size.
pub fn vocab_size(json: &Value) -> usize {
    let words = json["model"]["vocab"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(Value::as_u64);
    let added = json["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_u64());
    words.chain(added).max().map_or(0, |m| m as usize + 1)
}

/// Adds the `words` a tokenizer.json lacks with ids after every id it has, so the ids of an
/// existing checkpoint stay valid and only its embedding grows (new rows at the end). They join as
/// whole-word added tokens: `tokenizers` numbers added tokens after the word vocabulary's size,
/// so new vocabulary entries would shift every added token (`<loc…>`, `<seg…>`, `<image>`).
/// Returns the words added.
pub fn extend_tokenizer(json: &mut Value, words: &BTreeSet<String>) -> Vec<String> {
    let first = vocab_size(json);
    let known: BTreeSet<String> = json["model"]["vocab"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys().cloned())
        .chain(
            json["added_tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["content"].as_str().map(str::to_string)),
        )
        .collect();
    let Some(added_tokens) = json["added_tokens"].as_array_mut() else {
        return Vec::new();
    };
    let mut added = Vec::new();
    for (id, w) in (first..).zip(words.iter().filter(|w| !known.contains(*w))) {
        added_tokens.push(json!({"id": id, "content": w, "single_word": true,
            "lstrip": false, "rstrip": false, "normalized": true, "special": false}));
        added.push(w.clone());
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_tokenize_without_unknown_words() {
        let classes: Vec<u32> = vec![1, 2, 3, 5, 51, 52, 21];
        let json = tokenizer_json(&dataset_words(&classes));
        let tok = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).expect("loads");
        let labels = LabelMap::radgrounder();
        for lang in [Lang::En, Lang::De] {
            let target = text::grounded_target(
                &labels,
                &[(2, [0.1, 0.2, 0.3, 0.4]), (5, [0.2, 0.2, 0.4, 0.4])],
                lang,
            );
            let ids = tok.encode(target.as_str(), false).expect("encodes");
            let unk = tok.token_to_id("<unk>").expect("unk");
            assert!(
                !ids.get_ids().contains(&unk),
                "{target}: {:?}",
                ids.get_tokens()
            );
            let q = text::vqa_request(text::yes_no_question(&labels, 3, lang), lang).text();
            let ids = tok.encode(q.as_str(), false).expect("encodes");
            assert!(!ids.get_ids().contains(&unk), "{q}: {:?}", ids.get_tokens());
            let q = text::open_question(&labels, OpenQuestion::Side(5), lang);
            let a = text::side_word(0.9, lang);
            let ids = tok
                .encode(format!("{q} {a}").as_str(), false)
                .expect("encodes");
            assert!(!ids.get_ids().contains(&unk), "{q}: {:?}", ids.get_tokens());
        }
    }

    #[test]
    fn extending_keeps_every_existing_id() {
        let classes: Vec<u32> = vec![1, 2];
        let mut small: BTreeSet<String> = dataset_words(&classes);
        small.remove("liegt");
        small.remove("largest");
        let mut json = tokenizer_json(&small);
        let before = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).expect("loads");
        let size = vocab_size(&json);
        let added = extend_tokenizer(&mut json, &dataset_words(&classes));
        assert_eq!(added, vec!["largest".to_string(), "liegt".to_string()]);
        assert_eq!(vocab_size(&json), size + 2);
        let after = tokenizers::Tokenizer::from_bytes(json.to_string().as_bytes()).expect("loads");
        for (token, id) in before.get_vocab(true) {
            assert_eq!(after.token_to_id(&token), Some(id), "{token}");
        }
        assert_eq!(after.token_to_id("largest"), Some(size as u32));
        let ids = after
            .encode("Was ist die größte Struktur, die liegt? <loc0001>", false)
            .expect("encodes");
        let unk = after.token_to_id("<unk>");
        assert!(
            !ids.get_ids().iter().any(|i| Some(*i) == unk),
            "{:?}",
            ids.get_tokens()
        );
        assert_eq!(
            ids.get_ids().last().copied(),
            before.token_to_id("<loc0001>")
        );
        assert!(
            ids.get_ids().contains(&(size as u32 + 1)),
            "liegt: {:?}",
            ids.get_tokens()
        );
        // A new word inside another word is not split out.
        let ids = after.encode("largestness", false).expect("encodes");
        assert_eq!(ids.get_ids(), &[unk.expect("unk")]);
    }

    /// MIS-SemSam re-scores words only: the words a fine-tuning run added (as added tokens) are
    /// words like the others; special tokens and the grounding markup are not.
    #[test]
    fn added_words_are_content_for_semsam_and_markup_is_not() {
        let classes: Vec<u32> = vec![1, 2];
        let mut small: BTreeSet<String> = dataset_words(&classes);
        small.remove("hepar");
        let mut json = tokenizer_json(&small);
        extend_tokenizer(&mut json, &dataset_words(&classes));
        let dir = std::env::temp_dir().join(format!("gg-content-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("tokenizer.json"), json.to_string()).expect("write");
        let tok = groundglass_model::tokenizer::PromptTokenizer::from_dir(&dir).expect("loads");
        let _ = std::fs::remove_dir_all(&dir);
        let content = tok.content_mask(vocab_size(&json));
        let is = |t: &str| content[tok.token_id(t).unwrap_or_else(|| panic!("{t}")) as usize];
        for word in ["liver", "hepar", "left", "yes"] {
            assert!(is(word), "{word} is a word");
        }
        for markup in [
            "<loc0001>",
            "<seg005>",
            "<image>",
            "<eos>",
            "<p bbox=",
            "id=",
            ">",
            "</p>",
        ] {
            assert!(!is(markup), "{markup:?} is markup");
        }
    }
}
