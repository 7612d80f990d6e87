//! RadGrounder's vocabulary at its real size: a tokenizer of Gemma's structure (256,000 BPE pieces
//! with byte fallback, `<loc0000>`..`<loc1023>`, `<seg000>`..`<seg127>`, `<image>`, RadGrounder's
//! added tokens), made by `bench/make_gemma_tokenizer.py` (no download), builds the same prompt ids
//! as transformers' tokenizer on the same file (tests/fixtures/gemma-tokenizer-ids.json, made by
//! tests/fixtures/make_gemma_tokenizer_fixture.py).

use std::path::PathBuf;
use std::process::Command;

use groundglass_model::tokenizer::PromptTokenizer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn prompt_ids_match_transformers_on_a_gemma_sized_vocabulary() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-gemma-tok-{}", std::process::id()));
    let status = Command::new("python3")
        .arg(root().join("bench/make_gemma_tokenizer.py"))
        .arg(&dir)
        .status()
        .expect("python3 runs bench/make_gemma_tokenizer.py");
    assert!(status.success());
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/gemma-tokenizer-ids.json"))
            .expect("fixture"),
    )
    .expect("json");
    let bytes = std::fs::read(dir.join("tokenizer.json")).expect("tokenizer.json");
    assert_eq!(
        bytes.len() as u64,
        fixture["bytes"].as_u64().expect("bytes")
    );
    assert_eq!(
        u64::from(crc32fast::hash(&bytes)),
        fixture["crc32"].as_u64().expect("crc"),
        "the generator no longer writes the file transformers read"
    );
    let tok = PromptTokenizer::from_dir(&dir).expect("loads");
    assert_eq!(tok.token_id("<loc0000>"), Some(256_000));
    assert_eq!(tok.token_id("<seg127>"), Some(257_151));
    assert_eq!(tok.token_id("<image>"), Some(257_152));
    assert_eq!(tok.token_id("<p bbox="), Some(257_153));
    assert_eq!(tok.token_id("id="), Some(257_155));
    for case in fixture["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let want: Vec<u32> = case["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect();
        let ids = tok.prompt_ids(257_152, 256, text).expect("ids");
        assert_eq!(ids, want, "{text:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
