//! The checkpoint's `tokenizer.json` (Hugging Face tokenizers, pure Rust build) and the prompt ids:
//! `<image>` x N, `<bos>`, then the encoded text without automatic special tokens.

use std::path::Path;

use crate::error::{ModelError, Result};

pub struct PromptTokenizer {
    inner: tokenizers::Tokenizer,
    path: std::path::PathBuf,
    pub bos: u32,
}

impl PromptTokenizer {
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::MissingFile { path });
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let bos = inner
            .token_to_id("<bos>")
            .ok_or_else(|| ModelError::Tokenizer {
                path: path.clone(),
                message: "no <bos> token".into(),
            })?;
        Ok(PromptTokenizer { inner, path, bos })
    }

    /// Prompt ids for `text` after `image_tokens` copies of `image_token` and `<bos>`.
    pub fn prompt_ids(
        &self,
        image_token: u32,
        image_tokens: usize,
        text: &str,
    ) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        let mut ids = vec![image_token; image_tokens];
        ids.push(self.bos);
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// Ids of `text` without special tokens (e.g. a training target).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The id of a token such as `</seg>`, when the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Content tokens for MIS-SemSam: words, not special tokens or markup such as `<loc0001>`,
    /// `<seg012>`, `<image>`, `<bos>`, `<p bbox=`.
    pub fn content_mask(&self, vocab_size: usize) -> Vec<bool> {
        let added = self.inner.get_added_tokens_decoder();
        (0..vocab_size as u32)
            .map(|id| {
                // Added tokens are special tokens and markup (`<loc…>`, `<seg…>`, `<image>`,
                // `<p bbox=`, `id=`, `>`), or words a fine-tuned tokenizer gained (the demo
                // trainer adds new words as added tokens): those are content like any word.
                if let Some(t) = added.get(&id) {
                    let markup = t.content.contains(['<', '>']) || t.content.ends_with('=');
                    return !t.special && !markup && !t.content.trim().is_empty();
                }
                match self.inner.id_to_token(id) {
                    Some(t) => {
                        let markup = t.starts_with('<') && t.ends_with('>');
                        !markup && !t.trim().is_empty()
                    }
                    None => false,
                }
            })
            .collect()
    }

    /// Generated ids to text, special tokens kept (the grounding markup is made of them), with the
    /// `<pad>` and `<eos>` strings removed as RadGrounder's evaluation does.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.decode_with(ids, false)
    }

    /// As [`Self::decode`], the special tokens dropped when `skip_special` (what OpenAI-compatible
    /// servers answer unless asked for `skip_special_tokens: false`: the `<loc>` boxes go too).
    pub fn decode_with(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let text = self
            .inner
            .decode(ids, skip_special)
            .map_err(|e| ModelError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(text
            .replace("<pad>", "")
            .replace("<eos>", "")
            .trim()
            .to_string())
    }
}
